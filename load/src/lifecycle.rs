//! N concurrent clients, each looping whole ticket lifecycles over HTTP:
//! create → assign → sign → handle → verify → feedback → close.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::stats::{self, Latency, Window};

/// How many failing responses are printed in full.
const PRINTED_ERRORS: usize = 5;

/// Bearer tokens, one per role.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub hotline: String,
    pub dispatcher: String,
    pub handler: String,
    pub admin: String,
}

impl Tokens {
    /// The load tool's tokens on the demo organisation: hotline agent and dispatcher
    /// of the district, handler of the department; `admin` was issued before the
    /// server started (discovering the organisation needs it).
    pub(crate) async fn issue(
        cli: &crate::service::Cli,
        org: &Org,
        admin: String,
    ) -> Result<Tokens> {
        Ok(Tokens {
            hotline: cli
                .token("load-hotline", "hotline_agent", Some(&org.district))
                .await?,
            dispatcher: cli
                .token("load-dispatcher", "dispatcher", Some(&org.district))
                .await?,
            handler: cli
                .token("load-handler", "handler", Some(&org.department))
                .await?,
            admin,
        })
    }
}

/// What the clients need to know about the demo organisation.
#[derive(Clone, Debug)]
pub struct Org {
    pub district: String,
    pub department: String,
    pub grid: String,
    pub category: String,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub base: String,
    pub tokens: Tokens,
    pub org: Org,
}

/// GET a list endpoint answering `{"items":[...]}`.
async fn items(http: &reqwest::Client, url: &str, token: &str) -> Result<Vec<Value>> {
    let r = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let text = r.text().await.with_context(|| format!("GET {url}"))?;
    if !status.is_success() {
        bail!(
            "GET {url} -> {status}: {}",
            crate::service::tail(&text, 500)
        );
    }
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("GET {url}: body is not JSON"))?;
    match v.get("items") {
        Some(Value::Array(a)) => Ok(a.clone()),
        _ => bail!(r#"GET {url}: expected {{"items":[...]}}"#),
    }
}

/// Read /api/v1/units and /api/v1/categories: the district, a department, a grid and
/// the first category.
pub async fn discover(http: &reqwest::Client, base: &str, admin: &str) -> Result<Org> {
    let units = items(http, &format!("{base}/api/v1/units"), admin).await?;
    let of_kind = |kind: &str| -> Result<String> {
        units
            .iter()
            .find(|u| u.get("kind").and_then(Value::as_str) == Some(kind))
            .and_then(|u| u.get("code").and_then(Value::as_str))
            .map(str::to_string)
            .with_context(|| format!("the organisation has no unit of kind {kind:?}"))
    };
    let (district, department, grid) = (
        of_kind("district")?,
        of_kind("department")?,
        of_kind("grid")?,
    );
    let categories = items(http, &format!("{base}/api/v1/categories"), admin).await?;
    let category = categories
        .iter()
        .find_map(|c| c.get("code").and_then(Value::as_str))
        .map(str::to_string)
        .context("the category catalogue is empty")?;
    Ok(Org {
        district,
        department,
        grid,
        category,
    })
}

/// The size of a stored ticket event: the mean length of the JSON text of each event
/// of one ticket as `GET /api/v1/tickets/{id}/events` returns it (data, metadata, type,
/// times and hashes), which is close to the size of the row the service stores.
/// The service's append batches over its life, from `/metrics`: how many, and
/// their mean requests and write time (PostgreSQL: per statement; SQLite: per
/// COMMIT). Counts the warm-up too. None when the service does not export them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batches {
    pub count: f64,
    pub mean_requests: f64,
    pub mean_ms: f64,
}

impl Batches {
    pub fn json(&self) -> Value {
        json!({
            "count": self.count,
            "mean_requests": stats::round3(self.mean_requests),
            "mean_ms": stats::round3(self.mean_ms),
        })
    }

    /// Reads them from the text of `/metrics` (summed over engines: one serves).
    pub fn parse(metrics: &str) -> Option<Batches> {
        let sum = |name: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let count = sum("yiwang_append_batch_requests_count");
        if count <= 0.0 {
            return None;
        }
        Some(Batches {
            count,
            mean_requests: sum("yiwang_append_batch_requests_sum") / count,
            mean_ms: 1000.0 * sum("yiwang_append_batch_duration_seconds_sum")
                / sum("yiwang_append_batch_duration_seconds_count").max(1.0),
        })
    }

    pub async fn fetch(http: &reqwest::Client, base: &str) -> Result<Option<Batches>> {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Batches::parse(&text))
    }
}

pub async fn event_size(http: &reqwest::Client, target: &Target, ticket: &str) -> Result<usize> {
    let url = format!("{}/api/v1/tickets/{ticket}/events", target.base);
    let events = items(http, &url, &target.tokens.admin).await?;
    if events.is_empty() {
        bail!("ticket {ticket} has no events");
    }
    let total: usize = events.iter().map(|e| e.to_string().len()).sum();
    Ok(total / events.len())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Hotline,
    Dispatcher,
    Handler,
}

/// One command of the lifecycle after the create.
pub(crate) struct Step {
    pub(crate) action: &'static str,
    pub(crate) role: Role,
    pub(crate) body: fn(&Org) -> Value,
    pub(crate) state: &'static str,
}

pub(crate) const STEPS: [Step; 6] = [
    Step {
        action: "assign",
        role: Role::Dispatcher,
        body: |o| json!({"unit": o.department}),
        state: "assigned",
    },
    Step {
        action: "sign",
        role: Role::Handler,
        body: |_| json!({"handler": "钱工"}),
        state: "assigned",
    },
    Step {
        action: "handle",
        role: Role::Handler,
        body: |_| json!({"result": "已处理"}),
        state: "handled",
    },
    Step {
        action: "verify",
        role: Role::Dispatcher,
        body: |_| json!({"passed": true, "note": "ok"}),
        state: "verified",
    },
    Step {
        action: "feedback",
        role: Role::Hotline,
        body: |_| json!({"satisfaction": "satisfied"}),
        state: "verified",
    },
    Step {
        action: "close",
        role: Role::Dispatcher,
        body: |_| json!({"code": "resolved"}),
        state: "closed",
    },
];

/// Command names in report order: index 0 is create, 1 the idempotent replay of a
/// create, then the steps.
pub const COMMANDS: [&str; 8] = [
    "create",
    "create (replay)",
    "assign",
    "sign",
    "handle",
    "verify",
    "feedback",
    "close",
];
const CREATE: usize = 0;
const REPLAY: usize = 1;

const TITLES: [&str; 6] = [
    "路灯不亮",
    "暴露垃圾",
    "占道经营",
    "道路遗撒",
    "噪音扰民",
    "违章搭建",
];

/// About 300 bytes of Chinese text.
const DESCRIPTION: &str = "市民来电反映：小区东门外人行道上堆放大量建筑垃圾和生活垃圾，已持续一周无人清理，\
天气炎热散发异味，影响居民通行和周边环境卫生。希望有关部门尽快安排人员清运，并加强日常巡查。";

pub(crate) fn create_body(org: &Org, n: u64) -> Value {
    let title = TITLES[(n % TITLES.len() as u64) as usize];
    json!({
        "source": "hotline",
        "category": org.category,
        "title": format!("{title}（压测 {n}）"),
        "description": DESCRIPTION,
        "urgency": "normal",
        "location": {"address": "威海经区皇冠街道海埠路", "lat": 37.5, "lon": 122.1, "grid": org.grid},
        "reporter": {"name": "赵先生", "phone": "13800000000"},
    })
}

/// xorshift64*: enough randomness to pick which creates are replayed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
        Rng((hi ^ lo) | 1)
    }

    fn percent(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100
    }
}

/// The outcome of one POST.
pub(crate) enum Reply {
    /// 2xx with a JSON body.
    Ok(Value),
    /// Anything else: what to print.
    Failed(String),
}

pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> Reply {
    let sent = http
        .post(url)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await;
    let r = match sent {
        Ok(r) => r,
        Err(e) => return Reply::Failed(format!("transport error: {e}")),
    };
    let status = r.status();
    let text = match r.text().await {
        Ok(t) => t,
        Err(e) => return Reply::Failed(format!("{status}, body unreadable: {e}")),
    };
    if !status.is_success() {
        return Reply::Failed(format!("{status} {}", crate::service::tail(&text, 500)));
    }
    match serde_json::from_str(&text) {
        Ok(v) => Reply::Ok(v),
        Err(_) => Reply::Failed(format!(
            "{status} but the body is not JSON: {}",
            crate::service::tail(&text, 300)
        )),
    }
}

/// Per-client tallies, merged at the end.
struct Tally {
    all: Histogram<u64>,
    by_command: Vec<Histogram<u64>>,
    errors: u64,
    warmup_errors: u64,
    completed: u64,
    abandoned: u64,
    replay_mismatches: u64,
    last_closed: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            all: stats::new_histogram(),
            by_command: COMMANDS.iter().map(|_| stats::new_histogram()).collect(),
            errors: 0,
            warmup_errors: 0,
            completed: 0,
            abandoned: 0,
            replay_mismatches: 0,
            last_closed: None,
        }
    }

    fn success(&mut self, window: &Window, command: usize, t0: Instant, t1: Instant) {
        if window.counts(t1) {
            stats::record(&mut self.all, t1 - t0);
            if let Some(h) = self.by_command.get_mut(command) {
                stats::record(h, t1 - t0);
            }
        }
    }

    fn failure(&mut self, window: &Window, t1: Instant, printed: &AtomicUsize, what: &str) {
        if window.counts(t1) {
            self.errors += 1;
            self.abandoned += 1;
        } else {
            self.warmup_errors += 1;
        }
        if printed.fetch_add(1, Ordering::Relaxed) < PRINTED_ERRORS {
            eprintln!("lifecycle error: {what}");
        }
    }

    fn merge(&mut self, o: &Tally) {
        stats::merge(&mut self.all, &o.all);
        for (a, b) in self.by_command.iter_mut().zip(&o.by_command) {
            stats::merge(a, b);
        }
        self.errors += o.errors;
        self.warmup_errors += o.warmup_errors;
        self.completed += o.completed;
        self.abandoned += o.abandoned;
        self.replay_mismatches += o.replay_mismatches;
        if self.last_closed.is_none() {
            self.last_closed.clone_from(&o.last_closed);
        }
    }
}

/// The state a command's response reports, if it is the expected one.
pub(crate) fn state_is(v: &Value, expected: &str) -> Result<(), String> {
    match v.get("state").and_then(Value::as_str) {
        Some(s) if s == expected => Ok(()),
        Some(s) => Err(format!("state {s:?}, expected {expected:?}")),
        None => Err("response has no \"state\"".to_string()),
    }
}

async fn client_loop(
    http: reqwest::Client,
    target: Arc<Target>,
    window: Window,
    replay_percent: u64,
    printed: Arc<AtomicUsize>,
) -> Tally {
    let mut t = Tally::new();
    let mut rng = Rng::seeded();
    let tickets = format!("{}/api/v1/tickets", target.base);
    let toks = &target.tokens;
    let token = |r: Role| match r {
        Role::Hotline => toks.hotline.as_str(),
        Role::Dispatcher => toks.dispatcher.as_str(),
        Role::Handler => toks.handler.as_str(),
    };
    let mut n = 0u64;
    'lifecycles: while window.open(Instant::now()) {
        n += 1;
        // Create.
        let key = uuid::Uuid::new_v4().to_string();
        let body = create_body(&target.org, n);
        let t0 = Instant::now();
        let reply = post(&http, &tickets, &toks.hotline, &key, &body).await;
        let t1 = Instant::now();
        let id = match reply {
            Reply::Ok(v) => match (
                v.get("id").and_then(Value::as_str),
                state_is(&v, "accepted"),
            ) {
                (Some(id), Ok(())) => {
                    t.success(&window, CREATE, t0, t1);
                    id.to_string()
                }
                (None, _) => {
                    t.failure(&window, t1, &printed, "create: response has no \"id\"");
                    continue;
                }
                (_, Err(e)) => {
                    t.failure(&window, t1, &printed, &format!("create: {e}"));
                    continue;
                }
            },
            Reply::Failed(e) => {
                t.failure(&window, t1, &printed, &format!("create: {e}"));
                continue;
            }
        };
        // Now and then a client retries the create with the same key: same ticket back.
        if rng.percent() < replay_percent && window.open(Instant::now()) {
            let t0 = Instant::now();
            let reply = post(&http, &tickets, &toks.hotline, &key, &body).await;
            let t1 = Instant::now();
            match reply {
                Reply::Ok(v) if v.get("id").and_then(Value::as_str) == Some(id.as_str()) => {
                    t.success(&window, REPLAY, t0, t1);
                }
                Reply::Ok(v) => {
                    if window.counts(t1) {
                        t.replay_mismatches += 1;
                    }
                    let got = v.get("id").cloned().unwrap_or(Value::Null);
                    let what = format!("create replayed with key {key}: id {got}, expected {id:?}");
                    t.failure(&window, t1, &printed, &what);
                    continue;
                }
                Reply::Failed(e) => {
                    let what = format!("create replayed with key {key}: {e}");
                    t.failure(&window, t1, &printed, &what);
                    continue;
                }
            }
        }
        for (i, step) in STEPS.iter().enumerate() {
            if !window.open(Instant::now()) {
                break 'lifecycles;
            }
            let url = format!("{tickets}/{id}/{}", step.action);
            let key = uuid::Uuid::new_v4().to_string();
            let body = (step.body)(&target.org);
            let t0 = Instant::now();
            let reply = post(&http, &url, token(step.role), &key, &body).await;
            let t1 = Instant::now();
            let outcome = match reply {
                Reply::Ok(v) => state_is(&v, step.state),
                Reply::Failed(e) => Err(e),
            };
            match outcome {
                Ok(()) => t.success(&window, REPLAY + 1 + i, t0, t1),
                Err(e) => {
                    let what = format!("{} {id}: {e}", step.action);
                    t.failure(&window, t1, &printed, &what);
                    continue 'lifecycles;
                }
            }
        }
        if window.counts(Instant::now()) {
            t.completed += 1;
        }
        t.last_closed = Some(id);
    }
    t
}

#[derive(Clone, Debug)]
pub struct CommandStats {
    pub name: &'static str,
    pub count: u64,
    pub latency: Latency,
}

#[derive(Clone, Debug)]
pub struct LifecycleResult {
    pub clients: u32,
    pub seconds: f64,
    pub commands: u64,
    pub errors: u64,
    pub warmup_errors: u64,
    pub latency: Latency,
    pub by_command: Vec<CommandStats>,
    pub lifecycles_completed: u64,
    pub lifecycles_abandoned: u64,
    pub replays: u64,
    pub replay_mismatches: u64,
    /// A ticket that went all the way to closed, for measuring event sizes.
    pub closed_ticket: Option<String>,
}

impl LifecycleResult {
    pub fn per_second(&self) -> f64 {
        stats::rate(self.commands, self.seconds)
    }

    pub fn json(&self) -> Value {
        let by: serde_json::Map<String, Value> = self
            .by_command
            .iter()
            .map(|c| {
                let mut v = c.latency.json();
                v["count"] = json!(c.count);
                (c.name.to_string(), v)
            })
            .collect();
        json!({
            "clients": self.clients,
            "seconds": stats::round3(self.seconds),
            "commands": self.commands,
            "commands_per_s": stats::round3(self.per_second()),
            "errors": self.errors,
            "warmup_errors": self.warmup_errors,
            "latency": self.latency.json(),
            "lifecycles_completed": self.lifecycles_completed,
            "lifecycles_abandoned": self.lifecycles_abandoned,
            "idempotent_replays": self.replays,
            "replay_mismatches": self.replay_mismatches,
            "by_command": by,
        })
    }
}

/// Run `clients` lifecycle loops until the window closes.
pub async fn drive(
    http: &reqwest::Client,
    target: Target,
    clients: u32,
    warmup: Duration,
    duration: Duration,
    replay_percent: u64,
) -> Result<LifecycleResult> {
    let target = Arc::new(target);
    let printed = Arc::new(AtomicUsize::new(0));
    let window = Window::after_warmup(warmup, duration);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(client_loop(
                http.clone(),
                target.clone(),
                window,
                replay_percent,
                printed.clone(),
            ))
        })
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        let t = task.await.context("a client task panicked")?;
        total.merge(&t);
    }
    let by_command: Vec<CommandStats> = COMMANDS
        .iter()
        .zip(&total.by_command)
        .map(|(name, h)| CommandStats {
            name,
            count: h.len(),
            latency: Latency::of(h),
        })
        .collect();
    Ok(LifecycleResult {
        clients,
        seconds: window.seconds(),
        commands: total.all.len(),
        errors: total.errors,
        warmup_errors: total.warmup_errors,
        latency: Latency::of(&total.all),
        replays: total.by_command.get(REPLAY).map_or(0, Histogram::len),
        by_command,
        lifecycles_completed: total.completed,
        lifecycles_abandoned: total.abandoned,
        replay_mismatches: total.replay_mismatches,
        closed_ticket: total.last_closed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_is_about_300_bytes() {
        let n = DESCRIPTION.len();
        assert!((250..=350).contains(&n), "{n} bytes");
    }

    #[test]
    fn create_body_has_contract_fields() {
        let org = Org {
            district: "D".into(),
            department: "P".into(),
            grid: "G".into(),
            category: "C".into(),
        };
        let b = create_body(&org, 7);
        assert_eq!(b["category"], "C");
        assert_eq!(b["location"]["grid"], "G");
        assert_eq!(b["source"], "hotline");
        assert_eq!((STEPS[0].body)(&org)["unit"], "P");
    }

    #[test]
    fn rng_percent_is_roughly_uniform() {
        let mut r = Rng(42);
        let hits = (0..100_000).filter(|_| r.percent() < 5).count();
        assert!((4_000..6_000).contains(&hits), "{hits}");
    }

    #[test]
    fn state_check() {
        assert!(state_is(&json!({"state": "closed"}), "closed").is_ok());
        assert!(state_is(&json!({"state": "handled"}), "closed").is_err());
        assert!(state_is(&json!({}), "closed").is_err());
    }

    #[test]
    fn command_names_cover_the_steps() {
        assert_eq!(COMMANDS.len(), STEPS.len() + 2);
        for (i, s) in STEPS.iter().enumerate() {
            assert_eq!(COMMANDS[REPLAY + 1 + i], s.action);
        }
    }

    #[test]
    fn append_batches_are_read_from_the_metrics_text() {
        let text = "# HELP yiwang_append_batch_requests x\n\
            yiwang_append_batch_requests_bucket{engine=\"postgres\",le=\"1\"} 2\n\
            yiwang_append_batch_requests_sum{engine=\"postgres\"} 30\n\
            yiwang_append_batch_requests_count{engine=\"postgres\"} 4\n\
            yiwang_append_batch_duration_seconds_sum{engine=\"postgres\"} 0.01\n\
            yiwang_append_batch_duration_seconds_count{engine=\"postgres\"} 4\n";
        let b = Batches::parse(text).expect("batches");
        assert_eq!(b.count, 4.0);
        assert_eq!(b.mean_requests, 7.5);
        assert!((b.mean_ms - 2.5).abs() < 1e-9);
        assert_eq!(Batches::parse("process_cpu_seconds_total 1\n"), None);
    }
}

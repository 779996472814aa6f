//! The realistic mix (issue 5): the people of DESIGN §1 at once, against one or more
//! `serve` instances.
//!
//! - **Ticket workers** (`--clients` tasks). Each plans one ticket at a time with the
//!   seed's simulation (`plan.rs`: hotline calls and grid reports, routing through
//!   the centres, returns, extensions granted and denied, supervision, failed
//!   verification and rework, self-handled reports, repeat complaints, duplicates,
//!   comments) and sends its commands over HTTP as the planned actor, with a token
//!   for that actor's role and unit. Handlers open the ticket before they act on it.
//!   Every command carries an Idempotency-Key. A command that gets no answer (a
//!   transport error, a timeout, a `5xx`) is sent again with the same key and body,
//!   to any instance, until it gets a definite answer (`2xx` or `4xx`) or
//!   `resolve_within` passes: a phone on a bad network. So every command ends
//!   acknowledged, refused, or (counted as an error) unresolved.
//! - `--retry-percent` of acknowledged commands are sent once more with the same
//!   key: the answer must name the same ticket at the same version.
//! - `--refuse-percent` of tickets get a command the rules forbid (a hotline agent
//!   trying to mark a ticket handled); it must be refused and leave no trace.
//! - **Dashboards** poll the statistics, the appraisal and the dispatch queue.
//! - **SSE subscribers** follow `/api/v1/events/stream` from the end of the feed
//!   (`from=now`), reconnecting with `Last-Event-ID` (to any instance) whenever the
//!   connection drops.
//!
//! Everything acknowledged goes into the [`Ledger`], which `check.rs` holds against
//! the database at the end.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{Datelike, Utc};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::sla::calendar::Calendar;
use yiwang::sla::{SlaPolicy, SlaSettings};
use yiwang::store::Pool;

use crate::plan::{History, World, plan_ticket};
use crate::stats::{self, Latency};

/// Failures printed in full; the rest are counted.
const PRINTED: usize = 8;
/// The prefix of every Idempotency-Key the mix sends: the check tells the mix's
/// commands from anything else in the log by it.
pub const KEY_PREFIX: &str = "mix-";

/// The instances the clients spread over. A fault scenario swaps the list (a
/// killed instance is taken out and put back).
#[derive(Default)]
pub struct Fleet(RwLock<Vec<String>>);

impl Fleet {
    pub fn new(bases: Vec<String>) -> Fleet {
        Fleet(RwLock::new(bases))
    }

    pub fn set(&self, bases: Vec<String>) {
        if let Ok(mut g) = self.0.write() {
            *g = bases;
        }
    }

    fn pick(&self, rng: &mut StdRng) -> Option<String> {
        let g = self.0.read().ok()?;
        if g.is_empty() {
            return None;
        }
        Some(g[rng.random_range(0..g.len())].clone())
    }
}

/// One bearer token per (role, unit), made straight in the database.
pub struct Tokens {
    pool: Pool,
    map: tokio::sync::Mutex<HashMap<(Role, String), String>>,
}

impl Tokens {
    pub fn new(pool: Pool) -> Tokens {
        Tokens {
            pool,
            map: Default::default(),
        }
    }

    pub async fn get(&self, role: Role, unit: &str) -> Result<String> {
        let mut map = self.map.lock().await;
        if let Some(t) = map.get(&(role, unit.to_string())) {
            return Ok(t.clone());
        }
        let user = format!("mix-{}-{unit}", role.as_str());
        let (_, token) = yiwang::auth::create_token(&self.pool, &user, role, unit)
            .await
            .with_context(|| format!("creating a {} token for {unit}", role.as_str()))?;
        map.insert((role, unit.to_string()), token.clone());
        Ok(token)
    }
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A `2xx` naming the ticket at this version.
    Acked { ticket: Uuid, version: i64 },
    /// A `4xx`; `expected` when the mix sent it to be refused.
    Refused { status: u16, expected: bool },
    /// No definite answer within `resolve_within`: it may or may not have happened,
    /// but at most once.
    Unresolved,
}

/// One command as the mix saw it.
#[derive(Clone, Debug)]
pub struct Record {
    pub key: String,
    pub action: String,
    pub outcome: Outcome,
    pub attempts: u32,
}

#[derive(Default)]
pub struct Ledger(Mutex<Vec<Record>>);

impl Ledger {
    fn push(&self, r: Record) {
        if let Ok(mut g) = self.0.lock() {
            g.push(r);
        }
    }

    pub fn records(&self) -> Vec<Record> {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// What the mix counted.
pub struct Tally {
    pub commands: BTreeMap<String, Histogram<u64>>,
    pub reads: BTreeMap<String, Histogram<u64>>,
    /// Latency of answers that were not a definite one (`5xx`, transport errors).
    pub failed_answers: Histogram<u64>,
    pub unavailable: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub timeouts: u64,
    pub throttled: u64,
    pub retried_commands: u64,
    pub unexpected_refusals: u64,
    pub expected_refusals: u64,
    pub refusals_accepted: u64,
    pub replays: u64,
    pub replay_mismatches: u64,
    pub unresolved: u64,
    pub tickets: u64,
    pub read_errors: u64,
    /// Dashboard reads answered 4xx (not 429): the request or the service is
    /// wrong, in any scenario.
    pub refused_reads: u64,
    pub sse_events: u64,
    pub sse_reconnects: u64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            commands: BTreeMap::new(),
            reads: BTreeMap::new(),
            failed_answers: stats::new_histogram(),
            unavailable: 0,
            server_errors: 0,
            transport_errors: 0,
            timeouts: 0,
            throttled: 0,
            retried_commands: 0,
            unexpected_refusals: 0,
            expected_refusals: 0,
            refusals_accepted: 0,
            replays: 0,
            replay_mismatches: 0,
            unresolved: 0,
            tickets: 0,
            read_errors: 0,
            refused_reads: 0,
            sse_events: 0,
            sse_reconnects: 0,
        }
    }
}

impl Tally {
    /// Errors that make a run fail whatever the scenario: `5xx` other than 503, a
    /// command refused that the plan says is allowed, a forbidden one accepted, a
    /// replay answered differently, a command never resolved, a dashboard's read
    /// refused.
    pub fn errors(&self) -> u64 {
        self.server_errors
            + self.unexpected_refusals
            + self.refusals_accepted
            + self.replay_mismatches
            + self.unresolved
            + self.refused_reads
    }

    pub fn all_commands(&self) -> Histogram<u64> {
        let mut all = stats::new_histogram();
        for h in self.commands.values() {
            stats::merge(&mut all, h);
        }
        all
    }

    pub fn json(&self, seconds: f64) -> Value {
        let lat = |m: &BTreeMap<String, Histogram<u64>>| -> Value {
            m.iter()
                .map(|(k, h)| {
                    let mut v = Latency::of(h).json();
                    v["count"] = json!(h.len());
                    (k.clone(), v)
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let all = self.all_commands();
        json!({
            "seconds": stats::round3(seconds),
            "commands": all.len(),
            "commands_per_s": stats::round3(stats::rate(all.len(), seconds)),
            "command_latency": Latency::of(&all).json(),
            "by_command": lat(&self.commands),
            "by_read": lat(&self.reads),
            "failed_answer_latency": Latency::of(&self.failed_answers).json(),
            "unavailable_503": self.unavailable,
            "server_errors": self.server_errors,
            "transport_errors": self.transport_errors,
            "timeouts": self.timeouts,
            "throttled_429": self.throttled,
            "retried_commands": self.retried_commands,
            "unexpected_refusals": self.unexpected_refusals,
            "expected_refusals": self.expected_refusals,
            "refusals_accepted": self.refusals_accepted,
            "replays": self.replays,
            "replay_mismatches": self.replay_mismatches,
            "unresolved": self.unresolved,
            "tickets": self.tickets,
            "read_errors": self.read_errors,
            "refused_reads": self.refused_reads,
            "sse_events": self.sse_events,
            "sse_reconnects": self.sse_reconnects,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub clients: u32,
    pub dashboards: u32,
    pub sse: u32,
    pub retry_percent: u32,
    pub refuse_percent: u32,
    /// How long a command is retried before it counts as unresolved.
    pub resolve_within: Duration,
    /// How long one attempt may take before the client gives up on it.
    pub attempt_timeout: Duration,
    pub seed: u64,
    /// Commands a second offered by all the ticket workers together; None: a
    /// closed loop (each worker sends its next command when the last is answered).
    pub rate: Option<f64>,
}

/// The running mix: shared by its tasks, the fault scenario and the check.
pub struct Mix {
    pub http: reqwest::Client,
    pub fleet: Arc<Fleet>,
    pub tokens: Tokens,
    pub ledger: Ledger,
    pub tally: Mutex<Tally>,
    pub settings: Settings,
    /// Positions each SSE subscriber received, in order.
    pub sse_seen: Mutex<Vec<Vec<i64>>>,
    stop: AtomicBool,
    world: World,
    analyst: String,
    admin: String,
    printed: AtomicUsize,
}

impl Mix {
    pub async fn new(
        http: reqwest::Client,
        fleet: Arc<Fleet>,
        pool: Pool,
        settings: Settings,
    ) -> Result<Arc<Mix>> {
        let org = Arc::new(yiwang::org::model::demo());
        let root = org.root().code.clone();
        let sla = SlaPolicy::new(Calendar::embedded(), SlaSettings::default());
        let world = World::new(org, sla, Utc::now())?;
        let tokens = Tokens::new(pool);
        let analyst = tokens.get(Role::Analyst, &root).await?;
        let admin = tokens.get(Role::Admin, &root).await?;
        let mix = Arc::new(Mix {
            http,
            fleet,
            tokens,
            ledger: Ledger::default(),
            tally: Mutex::new(Tally::default()),
            settings,
            sse_seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            world,
            analyst,
            admin,
            printed: AtomicUsize::new(0),
        });
        mix.prepare_tokens().await?;
        Ok(mix)
    }

    /// Tokens for every actor a few thousand planned tickets use, made before the
    /// run: a scenario that takes the database away must not need one mid-run.
    async fn prepare_tokens(&self) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(self.settings.seed ^ 0x5eed);
        let mut history = History::default();
        let mut seen: std::collections::HashSet<(Role, String)> = Default::default();
        for i in 0..3000 {
            let at = self.world.accept_time(f64::from(i) / 3000.0, &mut rng);
            let plan = plan_ticket(&self.world, &mut rng, at, format!("p{i}"), &mut history)?;
            for s in &plan.steps {
                if let Some((actor, _, _)) = &s.command {
                    seen.insert((actor.role, actor.unit.clone()));
                }
            }
        }
        for (role, unit) in seen {
            self.tokens.get(role, &unit).await?;
        }
        Ok(())
    }

    /// The analyst token (root unit) the dashboards use.
    pub fn analyst(&self) -> &str {
        &self.analyst
    }

    /// One create sent once to `base`, outside the tally: a fault scenario's probe.
    /// Returns the status (0 for no answer) and how long it took; the command goes
    /// into the ledger (a 503 as refused: the service says nothing was recorded).
    pub async fn probe(&self, base: &str) -> (u16, Duration) {
        // The creation of a planned ticket, as its planned actor sends it.
        let mut rng = StdRng::seed_from_u64(self.settings.seed ^ 0x9e0be);
        let create = plan_ticket(
            &self.world,
            &mut rng,
            self.world.until,
            "probe".into(),
            &mut History::default(),
        )
        .ok()
        .and_then(|p| p.steps.into_iter().find_map(|s| s.command));
        let Some((actor, _, body)) = create else {
            return (0, Duration::ZERO);
        };
        let Ok(token) = self.tokens.get(actor.role, &actor.unit).await else {
            return (0, Duration::ZERO);
        };
        let key = format!("{KEY_PREFIX}{}", Uuid::new_v4());
        let answer = self
            .post_once(base, "/api/v1/tickets", &token, &body, &key)
            .await;
        let (status, took, outcome) = match answer {
            Answer::Ok(v, took) => match acked(&v) {
                Some((ticket, version)) => (200, took, Outcome::Acked { ticket, version }),
                None => (200, took, Outcome::Unresolved),
            },
            Answer::Refused(s, _) => (
                s,
                Duration::ZERO,
                Outcome::Refused {
                    status: s,
                    expected: false,
                },
            ),
            Answer::Throttled(_) => (
                429,
                Duration::ZERO,
                Outcome::Refused {
                    status: 429,
                    expected: true,
                },
            ),
            Answer::Unavailable(503, _, took) => (
                503,
                took,
                Outcome::Refused {
                    status: 503,
                    expected: true,
                },
            ),
            Answer::Unavailable(s, _, took) => (s, took, Outcome::Unresolved),
            Answer::Transport(_, took) => (0, took, Outcome::Unresolved),
        };
        self.ledger.push(Record {
            key,
            action: "probe".into(),
            outcome,
            attempts: 1,
        });
        (status, took)
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Ask every task to finish: a ticket worker completes the command in hand
    /// (retrying it until it resolves) and stops.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Drop the latencies counted so far (the end of a warm-up). Every error
    /// counter is kept: an error in the warm-up still fails the run.
    pub fn forget_latencies(&self) {
        self.count(|t| {
            t.commands.clear();
            t.reads.clear();
            t.failed_answers = stats::new_histogram();
        });
    }

    fn complain(&self, what: &str) {
        if self.printed.fetch_add(1, Ordering::Relaxed) < PRINTED {
            eprintln!("mix: {what}");
        }
    }

    fn count(&self, f: impl FnOnce(&mut Tally)) {
        if let Ok(mut t) = self.tally.lock() {
            f(&mut t);
        }
    }

    /// Start every task; they run until [`Mix::stop`].
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinSet<()> {
        let mut set = tokio::task::JoinSet::new();
        let s = &self.settings;
        for k in 0..s.clients {
            let m = self.clone();
            set.spawn(async move { m.worker(u64::from(k)).await });
        }
        for k in 0..s.dashboards {
            let m = self.clone();
            set.spawn(async move { m.dashboard(u64::from(k)).await });
        }
        for k in 0..s.sse {
            let m = self.clone();
            set.spawn(async move { m.subscriber(u64::from(k)).await });
        }
        set
    }

    /// One POST, sent until it gets a definite answer.
    async fn command(
        &self,
        rng: &mut StdRng,
        action: &str,
        path: &str,
        token: &str,
        body: &Value,
        key: &str,
    ) -> (Reply, u32) {
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut backoff = Duration::from_millis(50);
        loop {
            attempts += 1;
            let answer = match self.fleet.pick(rng) {
                Some(base) => self.post_once(&base, path, token, body, key).await,
                None => Answer::Transport("no instance is up".into(), Duration::ZERO),
            };
            match answer {
                Answer::Ok(v, took) => {
                    self.count(|t| {
                        stats::record(
                            t.commands
                                .entry(action.to_string())
                                .or_insert_with(stats::new_histogram),
                            took,
                        );
                        if attempts > 1 {
                            t.retried_commands += 1;
                        }
                    });
                    return (Reply::Ok(v), attempts);
                }
                Answer::Refused(status, text) => return (Reply::Refused(status, text), attempts),
                Answer::Throttled(wait) => {
                    self.count(|t| t.throttled += 1);
                    tokio::time::sleep(wait).await;
                }
                Answer::Unavailable(status, text, took) => {
                    self.count(|t| {
                        stats::record(&mut t.failed_answers, took);
                        if status == 503 {
                            t.unavailable += 1;
                        } else {
                            t.server_errors += 1;
                        }
                    });
                    if status != 503 {
                        self.complain(&format!("{action} {path}: {status} {text}"));
                    }
                }
                Answer::Transport(e, took) => {
                    self.count(|t| {
                        stats::record(&mut t.failed_answers, took);
                        if took >= self.settings.attempt_timeout {
                            t.timeouts += 1;
                        } else {
                            t.transport_errors += 1;
                        }
                    });
                    if took >= self.settings.attempt_timeout {
                        self.complain(&format!("{action} {path}: no answer in {took:?}: {e}"));
                    }
                }
            }
            if started.elapsed() > self.settings.resolve_within {
                self.count(|t| t.unresolved += 1);
                self.complain(&format!(
                    "{action} {path} (key {key}): no definite answer after {attempts} attempts in {:?}",
                    started.elapsed()
                ));
                return (Reply::Unresolved, attempts);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn post_once(
        &self,
        base: &str,
        path: &str,
        token: &str,
        body: &Value,
        key: &str,
    ) -> Answer {
        let t0 = Instant::now();
        let sent = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .timeout(self.settings.attempt_timeout)
            .json(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) => return Answer::Transport(e.to_string(), t0.elapsed()),
        };
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = match r.text().await {
            Ok(t) => t,
            Err(e) => return Answer::Transport(format!("{status}, body lost: {e}"), t0.elapsed()),
        };
        let took = t0.elapsed();
        match status {
            200..=299 => match serde_json::from_str::<Value>(&text) {
                Ok(v) => Answer::Ok(v, took),
                Err(_) => Answer::Unavailable(status, "2xx but the body is not JSON".into(), took),
            },
            429 => Answer::Throttled(Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 10))),
            400..=499 => Answer::Refused(status, crate::service::tail(&text, 300).to_string()),
            _ => Answer::Unavailable(status, crate::service::tail(&text, 300).to_string(), took),
        }
    }

    /// A GET for the read side; its latency goes under `name`.
    async fn read(&self, rng: &mut StdRng, name: &str, path: &str, token: &str) -> Option<Value> {
        let base = self.fleet.pick(rng)?;
        let t0 = Instant::now();
        let r = self
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .timeout(self.settings.attempt_timeout)
            .send()
            .await;
        let mut refused = false;
        let ok = match r {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
            Ok(r) => {
                let s = r.status().as_u16();
                // The dashboards' routes are the analyst's to read at any time; a
                // handler's read of a ticket may race a move away from its unit.
                refused = name != "ticket" && (400..500).contains(&s) && s != 429;
                if refused {
                    self.complain(&format!("GET {path} refused: {s}"));
                }
                None
            }
            _ => None,
        };
        let took = t0.elapsed();
        if refused {
            self.count(|t| t.refused_reads += 1);
        }
        self.count(|t| match ok {
            Some(_) => stats::record(
                t.reads
                    .entry(name.to_string())
                    .or_insert_with(stats::new_histogram),
                took,
            ),
            None => t.read_errors += 1,
        });
        ok
    }

    /// A ticket worker: plans tickets and drives them, one at a time.
    async fn worker(self: Arc<Self>, k: u64) {
        let mut rng =
            StdRng::seed_from_u64(self.settings.seed.wrapping_mul(1_000_003).wrapping_add(k));
        let mut history = History::default();
        // Planned ticket ids to the ids the service gave them.
        let mut ids: HashMap<Uuid, Uuid> = HashMap::new();
        let started = Instant::now();
        // With a rate, this worker's commands go out on a schedule one interval
        // apart, the workers' schedules spread over the first interval.
        let interval = self
            .settings
            .rate
            .map(|r| Duration::from_secs_f64(f64::from(self.settings.clients) / r));
        let mut due = started + interval.map_or(Duration::ZERO, |i| i.mul_f64(rng.random()));
        let mut n = 0u64;
        while !self.stopping() {
            n += 1;
            // The planned acceptance times sweep the year again every ten minutes;
            // they only shape the plan (the service stamps its own time).
            let progress = (started.elapsed().as_secs_f64() / 600.0).fract();
            let at = self.world.accept_time(progress, &mut rng);
            let plan =
                match plan_ticket(&self.world, &mut rng, at, format!("m{k}-{n}"), &mut history) {
                    Ok(p) => p,
                    Err(e) => {
                        self.complain(&format!("planning a ticket: {e:#}"));
                        self.count(|t| t.server_errors += 1);
                        return;
                    }
                };
            if let Err(e) = self
                .drive(&mut rng, &plan, &mut ids, interval, &mut due, false)
                .await
            {
                self.complain(&format!("{e:#}"));
            }
            self.count(|t| t.tickets += 1);
        }
    }

    /// Tickets driven until one of their units has a deadline to sign by, and left
    /// there, `n` of them (or as many as `4 n` plans give): their deadlines are in
    /// the log, so business time shifted past them makes them fall due. The
    /// `cluster` scenario leaves them open before its kill, so that its SLA watchers
    /// always have warnings and breaches to race for (the tickets the mix and the
    /// import happen to leave open gave 1 to 13 of them). Returns how many were left.
    pub async fn leave_open(&self, n: usize) -> usize {
        let mut rng = StdRng::seed_from_u64(self.settings.seed ^ 0x0be1);
        let mut history = History::default();
        let mut ids: HashMap<Uuid, Uuid> = HashMap::new();
        let mut due = Instant::now();
        let mut left = 0;
        for i in 0..4 * n {
            if left == n || self.stopping() {
                break;
            }
            let at = self.world.accept_time(rng.random(), &mut rng);
            let plan =
                match plan_ticket(&self.world, &mut rng, at, format!("open-{i}"), &mut history) {
                    Ok(p) => p,
                    Err(e) => {
                        self.complain(&format!("planning a ticket: {e:#}"));
                        break;
                    }
                };
            match self
                .drive(&mut rng, &plan, &mut ids, None, &mut due, true)
                .await
            {
                Ok(true) => left += 1,
                Ok(false) => {}
                Err(e) => self.complain(&format!("{e:#}")),
            }
            self.count(|t| t.tickets += 1);
        }
        left
    }

    /// Sends one planned ticket's commands. Stops at the first command that is not
    /// acknowledged (or when the mix stops); with `leave_at_sign`, also after the
    /// first command that leaves a deadline to sign by, and then answers true.
    async fn drive(
        &self,
        rng: &mut StdRng,
        plan: &crate::plan::TicketPlan,
        ids: &mut HashMap<Uuid, Uuid>,
        interval: Option<Duration>,
        due: &mut Instant,
        leave_at_sign: bool,
    ) -> Result<bool> {
        let mut id: Option<Uuid> = None;
        let mut refuse_once = rng.random_range(0..100) < self.settings.refuse_percent;
        for step in &plan.steps {
            let Some((actor, action, body)) = &step.command else {
                continue;
            };
            if self.stopping() {
                return Ok(false);
            }
            let mut body = body.clone();
            // Earlier tickets the plan names by its own ids.
            for field in ["related_to", "duplicate_of"] {
                if let Some(Value::String(s)) = body.get(field) {
                    let planned = Uuid::parse_str(s).context("a planned ticket id")?;
                    match ids.get(&planned) {
                        Some(real) => body[field] = json!(real.to_string()),
                        // The earlier ticket was never created here (the mix
                        // stopped mid-way on it): a repeat complaint stands alone,
                        // a duplicate cannot be closed as one.
                        None if field == "related_to" => {
                            if let Some(o) = body.as_object_mut() {
                                o.remove(field);
                            }
                        }
                        None => return Ok(false),
                    }
                }
            }
            let token = self.tokens.get(actor.role, &actor.unit).await?;
            let path = match (*action, id) {
                ("create", _) => "/api/v1/tickets".to_string(),
                (a, Some(t)) => format!("/api/v1/tickets/{t}/{a}"),
                (a, None) => anyhow::bail!("planned {a} before the ticket exists"),
            };
            if let (Some(t), Role::Handler) = (id, actor.role) {
                self.read(rng, "ticket", &format!("/api/v1/tickets/{t}"), &token)
                    .await;
            }
            if let Some(interval) = interval {
                let now = Instant::now();
                if *due > now {
                    tokio::time::sleep_until((*due).into()).await;
                } else if now - *due > interval {
                    // Behind by more than an interval (the service is saturated):
                    // no burst to catch up, the schedule restarts from now.
                    *due = now;
                }
                *due += interval;
            }
            let key = format!("{KEY_PREFIX}{}", Uuid::new_v4());
            let (reply, attempts) = self.command(rng, action, &path, &token, &body, &key).await;
            let outcome = match &reply {
                Reply::Ok(v) => match acked(v) {
                    Some((ticket, version)) => Outcome::Acked { ticket, version },
                    None => {
                        self.count(|t| t.server_errors += 1);
                        Outcome::Unresolved
                    }
                },
                Reply::Refused(status, _) => Outcome::Refused {
                    status: *status,
                    expected: false,
                },
                Reply::Unresolved => Outcome::Unresolved,
            };
            self.ledger.push(Record {
                key: key.clone(),
                action: action.to_string(),
                outcome: outcome.clone(),
                attempts,
            });
            let Outcome::Acked { ticket, version } = outcome else {
                if let Reply::Refused(status, text) = &reply {
                    self.count(|t| t.unexpected_refusals += 1);
                    anyhow::bail!("{action} {path} refused: {status} {text}");
                }
                return Ok(false);
            };
            if *action == "create" {
                id = Some(ticket);
                ids.insert(plan.id, ticket);
            }
            // The same command again, as a phone that never heard the answer
            // would send it.
            if rng.random_range(0..100) < self.settings.retry_percent {
                let (again, _) = self
                    .command(rng, "replay", &path, &token, &body, &key)
                    .await;
                let same = matches!(&again, Reply::Ok(v) if acked(v) == Some((ticket, version)));
                self.count(|t| {
                    t.replays += 1;
                    if !same {
                        t.replay_mismatches += 1;
                    }
                });
                if !same {
                    self.complain(&format!(
                        "{action} {path} replayed with key {key}: {again:?}, expected ticket {ticket} v{version}"
                    ));
                }
            }
            if refuse_once {
                refuse_once = false;
                self.forbidden(rng, ticket).await?;
            }
            if leave_at_sign
                && matches!(&reply, Reply::Ok(v) if v.pointer("/deadlines/sign_due_at").is_some_and(|d| !d.is_null()))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A command the rules forbid: a hotline agent marking a ticket handled.
    async fn forbidden(&self, rng: &mut StdRng, ticket: Uuid) -> Result<()> {
        let token = self
            .tokens
            .get(Role::HotlineAgent, &self.world.district)
            .await?;
        let key = format!("{KEY_PREFIX}{}", Uuid::new_v4());
        let path = format!("/api/v1/tickets/{ticket}/handle");
        let body = json!({"result": "'); DROP TABLE events; --"});
        let (reply, attempts) = self
            .command(rng, "forbidden", &path, &token, &body, &key)
            .await;
        let outcome = match reply {
            Reply::Refused(status, _) => {
                self.count(|t| t.expected_refusals += 1);
                Outcome::Refused {
                    status,
                    expected: true,
                }
            }
            Reply::Ok(v) => {
                self.count(|t| t.refusals_accepted += 1);
                self.complain(&format!("a hotline agent could handle {ticket}: {v}"));
                match acked(&v) {
                    Some((ticket, version)) => Outcome::Acked { ticket, version },
                    None => Outcome::Unresolved,
                }
            }
            Reply::Unresolved => Outcome::Unresolved,
        };
        self.ledger.push(Record {
            key,
            action: "forbidden".into(),
            outcome,
            attempts,
        });
        Ok(())
    }

    /// A leader's dashboard and a dispatch desk: statistics, appraisal and the
    /// queue, every half second.
    async fn dashboard(self: Arc<Self>, k: u64) {
        let mut rng = StdRng::seed_from_u64(self.settings.seed ^ (0xda5b << 8) ^ k);
        // The appraisal of the quarter in progress (a period is required: without
        // one the read is refused, and it was in the runs before 2026-11-29).
        let today = chrono::Utc::now().date_naive();
        let appraisal = format!(
            "/api/v1/appraisal?period={}-Q{}",
            today.year(),
            today.month0() / 3 + 1
        );
        let routes = [
            ("stats month", "/api/v1/stats/units?granularity=month"),
            ("stats day", "/api/v1/stats/units?granularity=day"),
            ("appraisal", appraisal.as_str()),
            ("queue", "/api/v1/tickets?state=assigned&limit=50"),
            ("overdue", "/api/v1/tickets?overdue=true&limit=50"),
        ];
        let mut i = k as usize;
        while !self.stopping() {
            let (name, path) = routes[i % routes.len()];
            i += 1;
            self.read(&mut rng, name, path, &self.analyst).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// An SSE subscriber following the whole feed; records every position.
    async fn subscriber(self: Arc<Self>, k: u64) {
        let mut rng = StdRng::seed_from_u64(self.settings.seed ^ (0x55e << 8) ^ k);
        let mut seen: Vec<i64> = Vec::new();
        let mut connects = 0u64;
        while !self.stopping() {
            let Some(base) = self.fleet.pick(&mut rng) else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            connects += 1;
            // The first connection starts at the end of the feed, as a live view
            // does; a reconnection resumes after the last position received.
            let mut req = self
                .http
                .get(format!("{base}/api/v1/events/stream"))
                .bearer_auth(&self.admin);
            req = match seen.last() {
                Some(last) => req.header("Last-Event-ID", last.to_string()),
                None => req.query(&[("from", "now")]),
            };
            let sent = req.send().await;
            if let Ok(r) = sent
                && r.status().is_success()
            {
                let mut body = r.bytes_stream();
                let mut buf: Vec<u8> = Vec::new();
                'read: loop {
                    let next = tokio::select! {
                        c = body.next() => c,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {
                            if self.stopping() { break 'read; }
                            continue;
                        }
                    };
                    let Some(Ok(chunk)) = next else { break };
                    buf.extend_from_slice(&chunk);
                    while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        if let Some(id) = line.strip_prefix(b"id:")
                            && let Some(p) = std::str::from_utf8(id)
                                .ok()
                                .and_then(|s| s.trim().parse::<i64>().ok())
                        {
                            seen.push(p);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let n = seen.len() as u64;
        self.count(|t| {
            t.sse_events += n;
            t.sse_reconnects += connects.saturating_sub(1);
        });
        if let Ok(mut g) = self.sse_seen.lock() {
            g.push(seen);
        }
    }
}

enum Answer {
    Ok(Value, Duration),
    Refused(u16, String),
    Throttled(Duration),
    Unavailable(u16, String, Duration),
    Transport(String, Duration),
}

#[derive(Debug)]
enum Reply {
    Ok(Value),
    Refused(u16, String),
    Unresolved,
}

/// The ticket id and version a command's answer names.
fn acked(v: &Value) -> Option<(Uuid, i64)> {
    let id = v.get("id")?.as_str()?.parse().ok()?;
    let version = v.get("version")?.as_i64()?;
    Some((id, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_names_ticket_and_version() {
        let id = Uuid::new_v4();
        assert_eq!(
            acked(&json!({"id": id.to_string(), "version": 3})),
            Some((id, 3))
        );
        assert_eq!(acked(&json!({"id": "x", "version": 3})), None);
        assert_eq!(acked(&json!({"id": id.to_string()})), None);
    }

    #[test]
    fn an_empty_fleet_picks_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(Fleet::default().pick(&mut rng).is_none());
        let f = Fleet::new(vec!["http://a".into()]);
        assert_eq!(f.pick(&mut rng).as_deref(), Some("http://a"));
    }
}

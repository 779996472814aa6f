//! Simulated ticket histories for `seed` and `import-file`: a year of tickets in
//! the demo organisation, each a sequence of API commands at simulated times.
//!
//! Every command is written as the API's own JSON body, parsed by the API's own
//! parser (`parse_command`) and decided by the live decision functions
//! (`decide_create` / `decide_action`: policy, organisation, aggregate, working-day
//! deadlines) at its simulated time. So a plan is a history the service itself
//! would have recorded. Between commands, the SLA watcher's events are added where
//! the watcher would have appended them (`sla_events` at the warning and breach
//! instants), so a late ticket carries its `SlaWarning` / `SlaBreached` as a live
//! one does.
//!
//! Nothing here touches a database: `seed` appends the plans, `import-file` writes
//! their commands as import lines.

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use yiwang::app::commands::{ParsedCommand, parse_command};
use yiwang::app::decide::{check_new_ticket, decide_action, decide_create};
use yiwang::auth::policy::holding_centre;
use yiwang::auth::{Actor, Role};
use yiwang::domain::{State, Ticket, TicketEvent, sla_events, sla_warn_at};
use yiwang::org::{Org, UnitKind};
use yiwang::repo::contacts::Contact;
use yiwang::sla::calendar::{business_date, start_of_day};
use yiwang::sla::{OrgDeadlines, SlaPolicy};

/// The SLA watcher's default warning point (`serve --sla-warn-fraction`).
const WARN_FRACTION: f64 = 0.8;

/// Tickets a task remembers for repeat complaints and duplicates.
const HISTORY: usize = 400;

/// One appended step of a ticket's history.
#[derive(Clone, Debug)]
pub struct Planned {
    pub at: DateTime<Utc>,
    /// The command: who, which action and its API body. None: the SLA watcher.
    pub command: Option<(Actor, &'static str, Value)>,
    pub events: Vec<TicketEvent>,
    /// The ticket after the step (its view row).
    pub next: Ticket,
    /// The reporter's contact, on a hotline ticket's creation.
    pub contact: Option<Contact>,
}

/// What kind of history a ticket got, for the summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traits {
    pub hotline: bool,
    pub straight: bool,
    pub returned: bool,
    pub extension: bool,
    pub extension_denied: bool,
    pub supervised: bool,
    pub supervised_repeat: bool,
    pub reworked: bool,
    pub late_sign: bool,
    pub late_handle: bool,
    pub self_handled: bool,
    pub duplicate: bool,
    pub invalid: bool,
    pub repeat_complaint: bool,
    pub via_centre: bool,
    pub abandoned: bool,
    pub closed: bool,
}

pub struct TicketPlan {
    pub id: Uuid,
    pub steps: Vec<Planned>,
    pub traits: Traits,
}

impl TicketPlan {
    pub fn events(&self) -> usize {
        self.steps.iter().map(|s| s.events.len()).sum()
    }
}

/// The organisation, the SLA policy and the simulated time window.
pub struct World {
    pub org: Arc<Org>,
    pub sla: SlaPolicy,
    /// First and last instant a ticket may be accepted.
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Nothing happens after this (the real now: the service must not find
    /// events from the future).
    pub limit: DateTime<Utc>,
    pub district: String,
    grids: Vec<String>,
    hotline_categories: Weighted,
    grid_categories: Weighted,
}

/// Codes with cumulative weights.
struct Weighted(Vec<(String, u32)>);

impl Weighted {
    fn new(items: impl IntoIterator<Item = (String, u32)>) -> Weighted {
        let mut total = 0;
        let mut out = Vec::new();
        for (code, w) in items {
            if w > 0 {
                total += w;
                out.push((code, total));
            }
        }
        Weighted(out)
    }

    fn pick(&self, rng: &mut StdRng) -> &str {
        let total = self.0.last().map_or(1, |(_, t)| *t);
        let x = rng.random_range(0..total);
        self.0
            .iter()
            .find(|(_, t)| x < *t)
            .map_or("", |(c, _)| c.as_str())
    }
}

/// How often the hotline (12345) and the grid workers report each group.
fn weights(category: &str) -> (u32, u32) {
    let group = category.split('.').next().unwrap_or("");
    match group {
        "city" => (3, 10),
        "food" => (2, 1),
        "market" => (5, 0),
        "env" => (2, 2),
        "dispute" => (3, 1),
        "order" => (2, 1),
        "safety" => (1, 2),
        "service" => (3, 1),
        _ => (1, 1),
    }
}

impl World {
    /// Tickets accepted from 2026-01-01 to 2026-11-27 (Asia/Shanghai), nothing
    /// after `limit`.
    pub fn new(org: Arc<Org>, sla: SlaPolicy, limit: DateTime<Utc>) -> Result<World> {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).context("a valid date");
        let from = start_of_day(day(2026, 1, 1)?);
        let until = start_of_day(day(2026, 11, 28)?).min(limit - Duration::hours(1));
        if until <= from {
            bail!("the clock reads {limit}: the simulated year 2026 has not begun");
        }
        let district = org.root().code.clone();
        let grids: Vec<String> = org
            .units_of_kind(UnitKind::Grid)
            .map(|u| u.code.clone())
            .collect();
        if grids.is_empty() {
            bail!("the organisation has no grids to report from");
        }
        let cats: Vec<String> = org.categories().iter().map(|c| c.code.clone()).collect();
        let hotline_categories = Weighted::new(cats.iter().map(|c| (c.clone(), weights(c).0)));
        let grid_categories = Weighted::new(cats.iter().map(|c| (c.clone(), weights(c).1)));
        Ok(World {
            org,
            sla,
            from,
            until,
            limit,
            district,
            grids,
            hotline_categories,
            grid_categories,
        })
    }

    /// An acceptance time at `progress` (0..1) through the window: that day
    /// (give or take half a day), mostly in the daytime.
    pub fn accept_time(&self, progress: f64, rng: &mut StdRng) -> DateTime<Utc> {
        let span = (self.until - self.from).num_seconds() as f64;
        let jitter = rng.random_range(-43_200.0..43_200.0);
        let t = self.from
            + Duration::seconds((progress.clamp(0.0, 1.0) * span + jitter).max(0.0) as i64);
        let day = business_date(t.min(self.until));
        let secs = if rng.random_bool(0.88) {
            rng.random_range(8 * 3600..20 * 3600)
        } else {
            rng.random_range(0..86_400)
        };
        (start_of_day(day) + Duration::seconds(secs)).clamp(self.from, self.until)
    }
}

/// A task's recent tickets: what repeat complaints and duplicates point at.
#[derive(Default)]
pub struct History(VecDeque<Recent>);

#[derive(Clone)]
struct Recent {
    id: Uuid,
    at: DateTime<Utc>,
    category: String,
    location: Value,
}

impl History {
    fn remember(&mut self, r: Recent) {
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(r);
    }

    /// A ticket accepted between `after` and `before`.
    fn pick(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> Option<Recent> {
        let fits: Vec<&Recent> = self
            .0
            .iter()
            .filter(|r| r.at > after && r.at < before)
            .collect();
        if fits.is_empty() {
            None
        } else {
            Some(fits[rng.random_range(0..fits.len())].clone())
        }
    }
}

const SURNAMES: [&str; 24] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "梁", "宋", "郑", "谢",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建国", "海燕",
];

/// The `slot`-th person of a roster (unit and duty): a stable Chinese name.
fn person(roster: &str, slot: u32) -> String {
    // FNV-1a: stable across runs and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in roster.bytes().chain(slot.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let s = SURNAMES[(h % 24) as usize];
    let g = GIVEN[((h / 24) % 24) as usize];
    format!("{s}{g}")
}

fn actor(user: String, role: Role, unit: &str) -> Actor {
    Actor {
        token_id: "seed".into(),
        user,
        role,
        unit: unit.to_string(),
    }
}

fn hotline_agent(w: &World, rng: &mut StdRng) -> Actor {
    let slot = rng.random_range(0..12);
    actor(
        person("hotline", slot),
        Role::HotlineAgent,
        w.district.as_str(),
    )
}

fn dispatcher(centre: &str, rng: &mut StdRng) -> Actor {
    let slot = rng.random_range(0..3);
    actor(
        person(&format!("{centre}/dispatch"), slot),
        Role::Dispatcher,
        centre,
    )
}

fn handler(unit: &str, rng: &mut StdRng) -> Actor {
    let slot = rng.random_range(0..4);
    actor(person(unit, slot), Role::Handler, unit)
}

fn grid_worker(grid: &str, rng: &mut StdRng) -> Actor {
    let slot = rng.random_range(0..2);
    actor(person(grid, slot), Role::GridWorker, grid)
}

fn minutes(rng: &mut StdRng, lo: i64, hi: i64) -> Duration {
    Duration::seconds(rng.random_range(lo * 60..=hi * 60))
}

fn hours(rng: &mut StdRng, lo: i64, hi: i64) -> Duration {
    Duration::seconds(rng.random_range(lo * 3600..=hi * 3600))
}

/// The instant `u` (0..1) of the way from `a` to `b` (`a` when `b` is not after it).
fn between(a: DateTime<Utc>, b: DateTime<Utc>, u: f64) -> DateTime<Utc> {
    let span = (b - a).num_seconds();
    if span <= 0 {
        return a;
    }
    a + Duration::seconds((span as f64 * u) as i64)
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// One ticket being simulated.
struct Sim<'w> {
    w: &'w World,
    deadlines: OrgDeadlines<'w>,
    id: Uuid,
    number: String,
    t: Option<Ticket>,
    /// The time of the last step.
    now: DateTime<Utc>,
    steps: Vec<Planned>,
    /// The next step would have fallen after `limit`: the ticket stays as it is.
    stopped: bool,
}

impl<'w> Sim<'w> {
    fn ticket(&self) -> Result<&Ticket> {
        self.t.as_ref().context("no ticket yet")
    }

    /// Runs one command at `at` (at least a minute after the last step). Ok(false)
    /// when it would fall after the limit: then nothing more happens to the ticket.
    fn act(
        &mut self,
        at: DateTime<Utc>,
        who: Actor,
        action: &'static str,
        body: Value,
        rng: &mut StdRng,
    ) -> Result<bool> {
        if self.stopped {
            return Ok(false);
        }
        let at = at.max(self.now + Duration::seconds(rng.random_range(60..600)));
        if at > self.w.limit {
            self.stopped = true;
            return Ok(false);
        }
        self.watch_until(rng, at);
        let raw = serde_json::to_vec(&body)?;
        let parsed = parse_command(action, &raw)
            .map_err(|e| anyhow!("{action} {body}: the API refuses the body: {e}"))?;
        let org = self.w.org.as_ref();
        let (decided, contact) = match parsed {
            ParsedCommand::Create(mut input) => {
                check_new_ticket(org, &who, &input).map_err(|e| anyhow!("create {body}: {e}"))?;
                let contact = input.reporter.take().map(|(name, phone)| Contact {
                    id: uuid_at(at, rng),
                    name,
                    phone,
                });
                let d = decide_create(
                    org,
                    &self.deadlines,
                    &who,
                    input,
                    (self.id, self.number.clone()),
                    contact.as_ref().map(|c| c.id),
                    at,
                )
                .map_err(|e| anyhow!("create {body}: {e}"))?;
                (d, contact)
            }
            ParsedCommand::Act(input) => {
                let t = self.ticket()?;
                let d = decide_action(org, &self.deadlines, &who, t, input, at, None).map_err(
                    |e| {
                        anyhow!(
                            "{action} {body} by {} ({}, {}) on a ticket {} with {:?} at centre {}: {e}",
                            who.user,
                            who.role.as_str(),
                            who.unit,
                            t.state.as_str(),
                            t.unit,
                            t.centre
                        )
                    },
                )?;
                (d, None)
            }
        };
        self.t = Some(decided.next.clone());
        self.steps.push(Planned {
            at,
            command: Some((who, action, body)),
            events: decided.events,
            next: decided.next,
            contact,
        });
        self.now = at;
        Ok(true)
    }

    /// The SLA watcher's appends before `until`: at each warning point and just
    /// after each deadline (plus up to half a minute, its polling interval), what
    /// `sla_events` says is due then.
    fn watch_until(&mut self, rng: &mut StdRng, until: DateTime<Utc>) {
        loop {
            let Some(t) = &self.t else { return };
            if t.state != State::Assigned || t.at_centre {
                return;
            }
            let mut marks = Vec::with_capacity(4);
            if let Some(due) = t.sign_due_at
                && t.signed_at.is_none()
            {
                let start = t.assigned_at.unwrap_or(due);
                marks.push(sla_warn_at(start, due, WARN_FRACTION));
                marks.push(due + Duration::seconds(1));
            }
            if let Some(due) = t.handle_due_at {
                let start = t.handle_started_at.or(t.assigned_at).unwrap_or(due);
                marks.push(sla_warn_at(start, due, WARN_FRACTION));
                marks.push(due + Duration::seconds(1));
            }
            marks.sort();
            let mut appended = false;
            for m in marks {
                let at = m.max(self.now) + Duration::seconds(rng.random_range(1..30));
                if at >= until || at > self.w.limit {
                    continue;
                }
                let events = sla_events(t, at, WARN_FRACTION);
                if events.is_empty() {
                    continue;
                }
                let mut next = t.clone();
                for e in &events {
                    next = Ticket::apply(Some(next), self.id, e, at);
                }
                self.t = Some(next.clone());
                self.steps.push(Planned {
                    at,
                    command: None,
                    events,
                    next,
                    contact: None,
                });
                self.now = at;
                appended = true;
                break;
            }
            if !appended {
                return;
            }
        }
    }
}

/// A UUID v7 for the instant `at` (random bits from `rng`).
pub fn uuid_at(at: DateTime<Utc>, rng: &mut StdRng) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let bits: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid()
}

const ADDRESSES: [&str; 10] = [
    "青岛路",
    "海南路",
    "齐鲁大道",
    "香港路",
    "珠海路",
    "深圳路",
    "上海路",
    "大庆路",
    "泰山路",
    "黄河街",
];

/// The unit that does the work for a category reported at `grid` (or with no
/// grid): the category's route or default unit; a township as the route means a
/// community of that township does it.
fn target_unit(org: &Org, category: &str, grid: Option<&str>) -> Result<String> {
    let t = match grid {
        Some(g) => org.route(category, g),
        None => org
            .category(category)
            .and_then(|c| c.default_unit.as_deref()),
    }
    .with_context(|| format!("category {category} has no unit to go to"))?;
    if org.unit(t).map(|u| u.kind) != Some(UnitKind::Township) {
        return Ok(t.to_string());
    }
    // A township's own service: the community of the grid, or its first community.
    if let Some(c) = grid.and_then(|g| org.parent(g))
        && org.is_within(c, t)
    {
        return Ok(c.to_string());
    }
    org.children(t)
        .into_iter()
        .find(|c| org.unit(c).map(|u| u.kind) == Some(UnitKind::Community))
        .map(str::to_string)
        .with_context(|| format!("township {t} has no community"))
}

/// Plans one ticket accepted at `accepted_at`, numbered `number`. Remembers it in
/// `history` for later repeat complaints.
pub fn plan_ticket(
    w: &World,
    rng: &mut StdRng,
    accepted_at: DateTime<Utc>,
    number: String,
    history: &mut History,
) -> Result<TicketPlan> {
    let id = uuid_at(accepted_at, rng);
    let mut sim = Sim {
        w,
        deadlines: w.sla.with_org(w.org.clone()),
        id,
        number,
        t: None,
        now: accepted_at - Duration::minutes(10),
        steps: Vec::with_capacity(12),
        stopped: false,
    };
    let mut tr = Traits::default();
    let result = flow(w, rng, &mut sim, accepted_at, history, &mut tr);
    result.with_context(|| format!("planning ticket {id} accepted at {accepted_at}"))?;
    // Whatever the watcher would have appended by now to a ticket left open.
    sim.watch_until(rng, w.limit);
    let t = sim.ticket()?;
    tr.closed = t.state == State::Closed;
    tr.straight = !(tr.returned
        || tr.extension
        || tr.supervised
        || tr.reworked
        || tr.late_sign
        || tr.late_handle
        || tr.self_handled
        || tr.duplicate
        || tr.invalid
        || tr.abandoned)
        && tr.closed;
    Ok(TicketPlan {
        id,
        steps: sim.steps,
        traits: tr,
    })
}

/// The command, or stop planning this ticket when it falls after the limit.
macro_rules! step {
    ($e:expr) => {
        if !$e? {
            return Ok(());
        }
    };
}

fn flow(
    w: &World,
    rng: &mut StdRng,
    sim: &mut Sim<'_>,
    accepted_at: DateTime<Utc>,
    history: &mut History,
    tr: &mut Traits,
) -> Result<()> {
    let org = w.org.clone();
    let hotline = rng.random_bool(0.55);
    tr.hotline = hotline;
    let urgency = match rng.random_range(0..100) {
        0..85 => "normal",
        85..97 => "urgent",
        _ => "emergency",
    };

    // What and where: fresh, or the same matter as an earlier ticket.
    let earlier = if hotline && rng.random_bool(0.06) {
        history.pick(
            accepted_at - Duration::days(60),
            accepted_at - Duration::hours(6),
            rng,
        )
    } else {
        None
    };
    let duplicate = earlier.is_some() && rng.random_bool(0.35);
    let (category, location) = match &earlier {
        Some(e) => (e.category.clone(), e.location.clone()),
        None => {
            let category = if hotline {
                w.hotline_categories.pick(rng)
            } else {
                w.grid_categories.pick(rng)
            }
            .to_string();
            let with_grid = !hotline || rng.random_bool(0.75);
            let grid = with_grid.then(|| w.grids[rng.random_range(0..w.grids.len())].clone());
            let area = grid
                .as_deref()
                .and_then(|g| org.township_of(g))
                .and_then(|t| org.unit(t))
                .map_or("经济技术开发区", |u| {
                    u.name.trim_end_matches("网格化治理中心")
                });
            let address = format!(
                "{area}{}{}号",
                ADDRESSES[rng.random_range(0..ADDRESSES.len())],
                rng.random_range(1..300)
            );
            let mut loc = json!({
                "address": address,
                "lat": 37.45 + rng.random_range(0.0..0.1),
                "lon": 122.05 + rng.random_range(0.0..0.15),
            });
            if let Some(g) = grid {
                loc["grid"] = json!(g);
            }
            (category, loc)
        }
    };
    let grid = location
        .get("grid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let cat_name = org
        .category(&category)
        .map_or(category.clone(), |c| c.name.clone());
    history.remember(Recent {
        id: sim.id,
        at: accepted_at,
        category: category.clone(),
        location: location.clone(),
    });

    // 受理 / 网格上报.
    let self_handled = !hotline && rng.random_bool(0.06);
    let mut body = json!({
        "source": if hotline { "hotline" } else { "grid" },
        "category": category,
        "urgency": urgency,
        "title": format!("{cat_name}问题"),
        "location": location,
    });
    if hotline {
        body["description"] = json!(format!(
            "市民来电反映{}附近{cat_name}，希望尽快处理。",
            location["address"].as_str().unwrap_or("")
        ));
        body["reporter"] = json!({
            "name": format!("{}先生", SURNAMES[rng.random_range(0..SURNAMES.len())]),
            "phone": format!("13{:09}", rng.random_range(0..1_000_000_000u64)),
        });
        if let Some(e) = &earlier
            && !duplicate
        {
            body["related_to"] = json!(e.id);
            tr.repeat_complaint = true;
        }
    } else {
        body["description"] = json!(format!("网格巡查发现{cat_name}。"));
        if self_handled {
            body["self_handled"] = json!({"result": "网格员现场劝导，已整改。"});
        }
    }
    let creator = match &grid {
        Some(g) if !hotline => grid_worker(g, rng),
        _ => hotline_agent(w, rng),
    };
    step!(sim.act(accepted_at, creator, "create", body, rng));

    if self_handled {
        tr.self_handled = true;
        let centre = sim.ticket()?.centre.clone();
        let at = sim.now + hours(rng, 1, 30);
        step!(sim.act(
            at,
            dispatcher(&centre, rng),
            "verify",
            json!({"passed": true, "note": "已核实，现场整改到位"}),
            rng
        ));
        let at = sim.now + minutes(rng, 10, 600);
        step!(sim.act(
            at,
            dispatcher(&centre, rng),
            "close",
            json!({"code": "resolved"}),
            rng
        ));
        return Ok(());
    }

    let centre = sim.ticket()?.centre.clone();
    if duplicate {
        tr.duplicate = true;
        let of = earlier.map(|e| e.id);
        let at = sim.now + minutes(rng, 5, 90);
        step!(sim.act(
            at,
            dispatcher(&centre, rng),
            "close",
            json!({"code": "duplicate", "duplicate_of": of}),
            rng
        ));
        return Ok(());
    }
    if rng.random_bool(0.012) {
        tr.invalid = true;
        let code = if rng.random_bool(0.5) {
            "invalid"
        } else {
            "withdrawn"
        };
        let at = sim.now + minutes(rng, 10, 240);
        step!(sim.act(
            at,
            dispatcher(&centre, rng),
            "close",
            json!({"code": code}),
            rng
        ));
        return Ok(());
    }

    // 派单: sometimes to the wrong unit first, which returns it (退回).
    let target = target_unit(&org, &category, grid.as_deref())?;
    if rng.random_bool(0.06) {
        let from = centre.clone();
        let right = org.next_hop(&from, &target).unwrap_or(&target).to_string();
        let wrong: Vec<&str> = org
            .dispatch_targets(&from)
            .into_iter()
            .filter(|u| !org.is_centre(u) && *u != right)
            .collect();
        if !wrong.is_empty() {
            tr.returned = true;
            let unit = pick(rng, &wrong).to_string();
            let at = sim.now + minutes(rng, 10, 120);
            step!(sim.act(
                at,
                dispatcher(&from, rng),
                "assign",
                json!({"unit": unit, "note": "请及时办理"}),
                rng
            ));
            let at = sim.now + minutes(rng, 30, 1200);
            step!(sim.act(
                at,
                handler(&unit, rng),
                "return",
                json!({"reason": "不属于本单位职责范围，请重新派遣"}),
                rng
            ));
        }
    }
    for _ in 0..4 {
        let t = sim.ticket()?;
        if t.unit.as_deref() == Some(target.as_str()) && !t.at_centre {
            break;
        }
        let from = holding_centre(t).to_string();
        let hop = org
            .next_hop(&from, &target)
            .with_context(|| format!("no way from {from} to {target}"))?
            .to_string();
        if org.is_centre(&hop) {
            tr.via_centre = true;
        }
        let at = sim.now + minutes(rng, 10, 180);
        step!(sim.act(
            at,
            dispatcher(&from, rng),
            "assign",
            json!({"unit": hop}),
            rng
        ));
    }
    if rng.random_bool(0.003) {
        // Never signed for: overdue until someone notices.
        tr.abandoned = true;
        return Ok(());
    }

    // 签收.
    let worker = handler(&target, rng);
    let t = sim.ticket()?;
    let assigned = t.assigned_at.unwrap_or(sim.now);
    let sign_due = t.sign_due_at.unwrap_or(assigned + Duration::days(1));
    let handle_due = t.handle_due_at.unwrap_or(sign_due);
    tr.late_sign = rng.random_bool(0.045);
    let at = if tr.late_sign {
        sign_due + hours(rng, 1, 48)
    } else {
        between(
            assigned,
            sign_due.min(handle_due),
            rng.random_range(0.02..0.5),
        )
    };
    step!(sim.act(
        at,
        worker.clone(),
        "sign",
        json!({"handler": worker.user}),
        rng
    ));
    if rng.random_bool(0.005) {
        tr.abandoned = true;
        return Ok(());
    }
    let centre = sim.ticket()?.centre.clone();

    // Progress notes (办理进度).
    let notes = if rng.random_bool(0.45) {
        1 + usize::from(rng.random_bool(0.3))
    } else {
        0
    };
    for _ in 0..notes {
        let due = sim.ticket()?.handle_due_at.unwrap_or(sim.now);
        let at = if due > sim.now {
            between(sim.now, due, rng.random_range(0.05..0.4))
        } else {
            sim.now + hours(rng, 1, 6)
        };
        let text = pick(
            rng,
            &[
                "已安排人员到现场核查",
                "已联系当事人，正在协调处理",
                "正在整改中",
            ],
        );
        step!(sim.act(at, worker.clone(), "comment", json!({"text": text}), rng));
    }

    // 延期申请 and its decision.
    if rng.random_bool(0.05) {
        tr.extension = true;
        let due = sim.ticket()?.handle_due_at.unwrap_or(sim.now);
        let at = if due > sim.now {
            between(sim.now, due, rng.random_range(0.3..0.8))
        } else {
            sim.now + hours(rng, 1, 6)
        };
        let days = rng.random_range(2..=7);
        step!(sim.act(
            at,
            worker.clone(),
            "request-extension",
            json!({"days": days, "reason": "涉及多部门协调，需延期办理"}),
            rng
        ));
        let approved = rng.random_bool(0.75);
        tr.extension_denied = !approved;
        let at = sim.now + hours(rng, 1, 20);
        step!(sim.act(
            at,
            dispatcher(&centre, rng),
            "decide-extension",
            json!({"approved": approved}),
            rng
        ));
    }

    // 督办 and 办结, on time or late.
    let due = sim.ticket()?.handle_due_at.unwrap_or(sim.now);
    tr.late_handle = rng.random_bool(if tr.late_sign { 0.25 } else { 0.06 });
    let supervised = rng.random_bool(if tr.late_handle { 0.6 } else { 0.03 });
    let supervisions = if !supervised {
        0
    } else if rng.random_bool(0.3) {
        if rng.random_bool(0.3) { 3 } else { 2 }
    } else {
        1
    };
    tr.supervised = supervisions > 0;
    tr.supervised_repeat = supervisions > 1;
    for i in 0..supervisions {
        let at = if i > 0 {
            sim.now + hours(rng, 20, 72)
        } else if tr.late_handle || due <= sim.now {
            due.max(sim.now) + hours(rng, 1, 20)
        } else {
            between(sim.now, due, rng.random_range(0.3..0.6))
        };
        step!(sim.act(
            at,
            w.district_dispatcher(rng),
            "supervise",
            json!({"note": "请加快办理进度，按时办结并反馈"}),
            rng
        ));
    }
    let at = if tr.late_handle {
        (due + hours(rng, 2, 96)).max(sim.now + hours(rng, 2, 48))
    } else if due > sim.now {
        // Most units finish well before the deadline; some close to it.
        between(sim.now, due, 0.05 + 0.92 * rng.random::<f64>().powf(1.6))
    } else {
        sim.now + hours(rng, 1, 12)
    };
    // Photos are attachments uploaded first (POST /api/v1/attachments) and named by
    // hash; the harness sends none. The draws stay, so a seed plans what it did.
    if rng.random_bool(0.6) {
        let _ = uuid_at(at, rng);
    }
    let photos = json!([]);
    step!(sim.act(
        at,
        worker.clone(),
        "handle",
        json!({"result": "已处理完毕，现场整改到位。", "photos": photos}),
        rng
    ));

    // 核查: a failed verification sends it back for rework (返工).
    for round in 0..3 {
        let fail = match round {
            0 => rng.random_bool(0.05),
            1 => rng.random_bool(0.2),
            _ => false,
        };
        let at = sim.now + hours(rng, 1, 30);
        let body = if fail {
            json!({"passed": false, "note": "现场复核未整改到位，请限期重新办理"})
        } else {
            json!({"passed": true, "note": "现场核实，已办结"})
        };
        step!(sim.act(at, dispatcher(&centre, rng), "verify", body, rng));
        if !fail {
            break;
        }
        tr.reworked = true;
        let due = sim.ticket()?.handle_due_at.unwrap_or(sim.now);
        let at = if rng.random_bool(0.85) && due > sim.now {
            between(sim.now, due, rng.random_range(0.2..0.9))
        } else {
            due.max(sim.now) + hours(rng, 2, 48)
        };
        step!(sim.act(
            at,
            worker.clone(),
            "handle",
            json!({"result": "已按要求重新整改。"}),
            rng
        ));
    }

    // 回访 (hotline tickets: the citizen who called).
    if hotline && rng.random_bool(0.92) {
        let unhappy = tr.late_handle || tr.reworked || tr.returned;
        let x = rng.random_range(0..100);
        let satisfaction = match (unhappy, x) {
            (false, 0..88) | (true, 0..65) => "satisfied",
            (false, 88..96) | (true, 65..85) => "basically_satisfied",
            _ => "unsatisfied",
        };
        let at = sim.now + hours(rng, 2, 48);
        step!(sim.act(
            at,
            hotline_agent(w, rng),
            "feedback",
            json!({"satisfaction": satisfaction}),
            rng
        ));
    }

    // 结案: by the district for the hotline, else by the centre that dispatched it.
    let closer = if hotline {
        w.district_dispatcher(rng)
    } else {
        dispatcher(&centre, rng)
    };
    let at = sim.now + minutes(rng, 30, 1440);
    step!(sim.act(at, closer, "close", json!({"code": "resolved"}), rng));
    Ok(())
}

impl World {
    fn district_dispatcher(&self, rng: &mut StdRng) -> Actor {
        dispatcher(&self.district, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use yiwang::sla::{Calendar, SlaSettings};

    #[test]
    fn plans_decide_cleanly_and_look_like_a_year() {
        let org = Arc::new(yiwang::org::model::demo());
        let sla = SlaPolicy::new(Calendar::embedded(), SlaSettings::default());
        let limit =
            start_of_day(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()) + Duration::hours(23);
        let w = World::new(org, sla, limit).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut history = History::default();
        let n = 3000;
        let (mut events, mut straight, mut closed) = (0, 0, 0);
        for i in 0..n {
            let at = w.accept_time(i as f64 / n as f64, &mut rng);
            let p = plan_ticket(&w, &mut rng, at, format!("N{i}"), &mut history).unwrap();
            assert!(p.steps.windows(2).all(|s| s[0].at < s[1].at));
            assert!(p.steps.iter().all(|s| s.at <= limit));
            events += p.events();
            straight += usize::from(p.traits.straight);
            closed += usize::from(p.traits.closed);
        }
        let mean = events as f64 / n as f64;
        eprintln!("mean {mean:.2} events per ticket, {straight} straight, {closed} closed of {n}");
        assert!((6.5..11.0).contains(&mean), "{mean}");
        assert!(straight * 100 / n >= 55, "{straight}");
    }
}

//! Unit statistics for periods, computed from the `unit_stats` rows.
//!
//! The rows are facts with dates; the figures are counted at query time, so every
//! granularity, any period and any subtree roll-up come from one read model, and a
//! figure can name the tickets and events behind it. The definitions (issue 4):
//!
//! - received: assignments to the unit in the period;
//! - due to sign: sign deadlines in the period, unless the unit returned the ticket
//!   before the deadline; signed on time: of those, signed by the deadline;
//! - due to finish (应办结): handle deadline in force in the period (unless returned
//!   or closed before it), or handled in the period, each ticket once; handled on
//!   time: of those, the last handling at or before the deadline in force then;
//! - overdue open (超期未办结): open past the deadline at the end of the period (or
//!   now, for the current period);
//! - turnaround: working hours from assignment to handling, for tickets handled in
//!   the period; the median and p90 by the nearest-rank method;
//! - returns, extensions, failed verifications, supervisions, repeated supervisions,
//!   feedback and repeat complaints: the events in the period.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::QueryBuilder;
use uuid::Uuid;

use sqlx::Row;

use super::daily::{self, Col, Counts, Lists};
use super::facts::{self, Kind};
use super::periods::{Granularity, Period};
use super::unit_stats::on_pool;
use crate::org::Org;
use crate::store::{Pool, StoreError};

/// Appends ` AND unit IN (…)` with one bound parameter per unit.
macro_rules! push_units {
    ($q:expr, $units:expr) => {{
        $q.push(" AND unit IN (");
        let mut sep = $q.separated(", ");
        for u in $units {
            sep.push_bind(u.as_str());
        }
        $q.push(")");
    }};
}

/// One episode row (see `stats_episodes`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EpisodeRow {
    pub ticket: String,
    pub unit: String,
    pub category: String,
    pub assigned_at: i64,
    pub assign_pos: i64,
    pub sign_due: Option<i64>,
    pub signed_at: Option<i64>,
    pub sign_pos: Option<i64>,
    pub left_at: Option<i64>,
    pub handle_due: Option<i64>,
    pub handled_at: Option<i64>,
    pub handle_pos: Option<i64>,
    pub handled_due: Option<i64>,
    pub turnaround_secs: Option<i64>,
    pub closed_at: Option<i64>,
    pub reworks: i32,
    pub ext_requested: i32,
    pub after_return: i32,
}

impl EpisodeRow {
    fn one_time(&self) -> bool {
        self.handled_at.is_some()
            && self.after_return == 0
            && self.reworks == 0
            && self.ext_requested == 0
    }
}

/// One occurrence row (see `stats_occurrences`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OccurrenceRow {
    pub position: i64,
    pub kind: String,
    pub ticket: String,
    pub unit: String,
    pub at: i64,
    pub category: String,
    pub source: String,
}

/// A ticket and the event position behind a counted figure.
// Ordered by ticket, then position (`Ord` below).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// The ticket id.
    pub ticket: Uuid,
    /// The event's position in the global feed.
    pub position: i64,
}

impl Ord for Evidence {
    /// A `Uuid`'s `u128` is big-endian: it orders as the bytes do, and as the
    /// hyphenated lowercase text does, so lists sort as their stored text. One
    /// integer comparison where the bytes took a `memcmp` (a year's appraisal sorts
    /// and searches hundreds of thousands of items).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ticket.as_u128(), self.position).cmp(&(other.ticket.as_u128(), other.position))
    }
}

impl PartialOrd for Evidence {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The figures of one unit (with its subtree) in one period, with the evidence
/// behind the ones an appraisal deducts for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub received: u64,
    pub due_to_sign: u64,
    pub signed: u64,
    pub signed_on_time: u64,
    pub due_to_finish: u64,
    pub handled: u64,
    pub handled_on_time: u64,
    pub overdue_open: u64,
    pub one_time: u64,
    pub returns: u64,
    pub extensions_requested: u64,
    pub extensions_approved: u64,
    pub verification_failures: u64,
    pub supervisions: u64,
    pub repeated_supervisions: u64,
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub unsatisfied: u64,
    pub repeat_complaints: u64,
    /// Working seconds from assignment to handling, per handled episode.
    pub turnaround_secs: Vec<i64>,
    /// Signed after the sign deadline, or not signed and the deadline passed.
    pub late_signs: Vec<Evidence>,
    /// Handled in the period after the deadline in force (late completion).
    pub late_completions: Vec<Evidence>,
    /// Due to finish and not handled on time (handled late, or overdue).
    pub not_on_time: Vec<Evidence>,
    pub overdue: Vec<Evidence>,
    pub verification_failed: Vec<Evidence>,
    pub supervised_repeat: Vec<Evidence>,
    pub feedback_unsatisfied: Vec<Evidence>,
    pub feedback_basic: Vec<Evidence>,
    pub returned: Vec<Evidence>,
    pub extension_approved: Vec<Evidence>,
}

impl Figures {
    pub fn feedback(&self) -> u64 {
        self.satisfied + self.basically_satisfied + self.unsatisfied
    }

    /// 满意率: (satisfied + basically satisfied) / feedback, or only satisfied when `strict`.
    pub fn satisfaction_rate(&self, strict: bool) -> Option<f64> {
        let good = if strict {
            self.satisfied
        } else {
            self.satisfied + self.basically_satisfied
        };
        ratio(good, self.feedback())
    }

    /// 按时办结率.
    pub fn on_time_rate(&self) -> Option<f64> {
        ratio(self.handled_on_time, self.due_to_finish)
    }

    /// 按时签收率.
    pub fn signed_on_time_rate(&self) -> Option<f64> {
        ratio(self.signed_on_time, self.due_to_sign)
    }
}

/// A rate to four decimals; None when nothing was due.
pub fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| round(n as f64 / d as f64, 4))
}

pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// What to compute: units (each rolled up over its subtree) and periods.
#[derive(Clone)]
pub struct Request<'a> {
    pub org: &'a Org,
    /// The units to report, each with its subtree.
    pub units: Vec<String>,
    /// When true, each unit counts only its own rows (appraisal).
    pub own_only: bool,
    pub periods: Vec<Period>,
    pub now: DateTime<Utc>,
}

impl Request<'_> {
    /// For each unit named, the requested units its rows count for: itself and,
    /// unless `own_only`, every requested ancestor.
    fn targets<'u>(&self, units: impl Iterator<Item = &'u str>) -> HashMap<String, Vec<usize>> {
        let index: HashMap<&str, usize> = self
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.as_str(), i))
            .collect();
        let mut out: HashMap<String, Vec<usize>> = HashMap::new();
        for unit in units {
            if out.contains_key(unit) {
                continue;
            }
            let mut t: Vec<usize> = index.get(unit).copied().into_iter().collect();
            if !self.own_only {
                for a in self.org.ancestors(unit) {
                    if let Some(&i) = index.get(a) {
                        if !t.contains(&i) {
                            t.push(i);
                        }
                    }
                }
            }
            out.insert(unit.to_string(), t);
        }
        out
    }

    /// A table of empty figures for every requested unit and period.
    fn empty_table(&self) -> Table {
        Table {
            units: self.units.clone(),
            periods: self.periods.clone(),
            cells: vec![Figures::default(); self.units.len() * self.periods.len()],
        }
    }
}

/// Figures per (unit, period), in the order of `units` then `periods`.
pub struct Table {
    pub units: Vec<String>,
    pub periods: Vec<Period>,
    pub cells: Vec<Figures>,
}

impl Table {
    pub fn get(&self, unit: usize, period: usize) -> &Figures {
        &self.cells[unit * self.periods.len() + period]
    }
}

/// Reads the rows the request needs: episodes that can count in the periods and
/// occurrences inside them, for the units' subtrees (all units when `scope` is None).
pub async fn fetch(
    pool: &Pool,
    scope: Option<&[String]>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(Vec<EpisodeRow>, Vec<OccurrenceRow>), StoreError> {
    fetch_rows(pool, scope, start, end, None).await
}

/// The kinds of occurrence that appear in evidence lists.
const EVIDENCE_KINDS: [Kind; 6] = [
    Kind::Returned,
    Kind::ExtensionApproved,
    Kind::VerificationFailed,
    Kind::SupervisedRepeat,
    Kind::FeedbackUnsatisfied,
    Kind::FeedbackBasic,
];

/// Reads the rows behind evidence only: episodes that were late or overdue at
/// some point before `evidence_at` (a superset of those `compute` lists) and the
/// occurrences of the evidence kinds; all rows when `evidence_at` is None.
async fn fetch_rows(
    pool: &Pool,
    scope: Option<&[String]>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    evidence_at: Option<DateTime<Utc>>,
) -> Result<(Vec<EpisodeRow>, Vec<OccurrenceRow>), StoreError> {
    let (s, e) = (start.timestamp_micros(), end.timestamp_micros());
    on_pool!(pool, p, Db => {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT ticket, unit, category, assigned_at, assign_pos, sign_due, signed_at, sign_pos, \
             left_at, handle_due, handled_at, handle_pos, handled_due, turnaround_secs, closed_at, \
             reworks, ext_requested, after_return FROM stats_episodes WHERE assigned_at < ",
        );
        q.push_bind(e).push(" AND span_end >= ").push_bind(s);
        if let Some(now) = evidence_at {
            let now = now.timestamp_micros();
            q.push(" AND (signed_at > sign_due OR (signed_at IS NULL AND sign_due < ")
                .push_bind(now)
                .push(") OR handled_at > handled_due OR (handled_at IS NULL AND handle_due < ")
                .push_bind(now)
                .push(") OR handled_at > handle_due OR left_at > handle_due OR closed_at > handle_due)");
        }
        if let Some(units) = scope {
            push_units!(q, units);
        }
        let episodes: Vec<EpisodeRow> = q.build_query_as().fetch_all(p).await?;
        let mut q = QueryBuilder::<Db>::new(
            "SELECT position, kind, ticket, unit, at, category, source FROM stats_occurrences WHERE at >= ",
        );
        q.push_bind(s).push(" AND at < ").push_bind(e);
        if evidence_at.is_some() {
            q.push(" AND kind IN (");
            let mut sep = q.separated(", ");
            for k in EVIDENCE_KINDS {
                sep.push_bind(k.as_str());
            }
            q.push(")");
        } else {
            q.push(" AND kind <> 'accepted'");
        }
        if let Some(units) = scope {
            push_units!(q, units);
        }
        q.push(" ORDER BY position, kind");
        let occurrences: Vec<OccurrenceRow> = q.build_query_as().fetch_all(p).await?;
        Ok((episodes, occurrences))
    })
}

/// The occurrences of some kinds in `[start, end)` charged to these units (all
/// units when None), e.g. the grid reports of a township for an appraisal rule.
pub async fn occurrences(
    pool: &Pool,
    kinds: &[Kind],
    units: Option<&[String]>,
    categories: Option<&[String]>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<OccurrenceRow>, StoreError> {
    let (s, e) = (start.timestamp_micros(), end.timestamp_micros());
    on_pool!(pool, p, Db => {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT position, kind, ticket, unit, at, category, source FROM stats_occurrences WHERE at >= ",
        );
        q.push_bind(s).push(" AND at < ").push_bind(e).push(" AND kind IN (");
        let mut sep = q.separated(", ");
        for k in kinds {
            sep.push_bind(k.as_str());
        }
        q.push(")");
        if let Some(units) = units {
            push_units!(q, units);
        }
        if let Some(categories) = categories {
            q.push(" AND category IN (");
            let mut sep = q.separated(", ");
            for c in categories {
                sep.push_bind(c.as_str());
            }
            q.push(")");
        }
        q.push(" ORDER BY position, kind");
        Ok(q.build_query_as().fetch_all(p).await?)
    })
}

/// Reports of one source and category accepted in one area (a township) in one
/// month, or at one instant (see [`AreaReport::from_rows`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AreaReport {
    /// The township where they were reported.
    pub unit: String,
    /// The start of the month they fell in, or the instant of the one report.
    pub at: i64,
    pub source: String,
    pub category: String,
    /// Each report's ticket and `TicketAccepted` position.
    pub items: Vec<Evidence>,
}

impl AreaReport {
    /// One report per `accepted` occurrence row (others are left out).
    pub fn from_rows(rows: &[OccurrenceRow]) -> Vec<AreaReport> {
        rows.iter()
            .filter(|o| o.kind == Kind::Accepted.as_str())
            .map(|o| AreaReport {
                unit: o.unit.clone(),
                at: o.at,
                source: o.source.clone(),
                category: o.category.clone(),
                items: vec![Evidence {
                    ticket: uuid_of(&o.ticket),
                    position: o.position,
                }],
            })
            .collect()
    }
}

/// The reports accepted in these townships (all when None) in `period`, of these
/// categories (all when None), from the monthly report lists: the same reports as
/// the `accepted` [`occurrences`], grouped by month (a test checks the two agree).
/// `period` is a month, quarter or year; a day reads the rows.
pub async fn area_reports(
    pool: &Pool,
    areas: Option<&[String]>,
    categories: Option<&[String]>,
    period: &Period,
) -> Result<Vec<AreaReport>, StoreError> {
    if period.granularity == Granularity::Day {
        let kinds = [Kind::Accepted];
        let rows = occurrences(pool, &kinds, areas, categories, period.start, period.end).await?;
        return Ok(AreaReport::from_rows(&rows));
    }
    if categories.is_some_and(|c| c.is_empty()) {
        return Ok(Vec::new());
    }
    let (s, e) = (
        daily::month_number(period.first_day),
        daily::month_number(period.end_day),
    );
    let months = fetch_month_lists(pool, s, e).await?;
    let mut out = Vec::new();
    for l in months.iter().flat_map(|m| &m.lists) {
        let Some((source, category)) = daily::parse_report_list(&l.list) else {
            continue;
        };
        if categories.is_some_and(|cs| !cs.iter().any(|c| c == category))
            || areas.is_some_and(|a| !a.contains(&l.unit))
        {
            continue;
        }
        let Some(first_day) = daily::first_day_of_month(l.month) else {
            continue;
        };
        out.push(AreaReport {
            at: Period::containing(Granularity::Month, first_day)
                .start
                .timestamp_micros(),
            source: source.to_string(),
            category: category.to_string(),
            items: l.items.clone(),
            unit: l.unit.clone(),
        });
    }
    Ok(out)
}

/// Counts the rows into figures per requested unit and period.
pub fn compute(req: &Request<'_>, episodes: &[EpisodeRow], occurrences: &[OccurrenceRow]) -> Table {
    let np = req.periods.len();
    let Table { mut cells, .. } = req.empty_table();
    if np == 0 {
        return req.empty_table();
    }
    let targets_of = req.targets(
        episodes
            .iter()
            .map(|e| e.unit.as_str())
            .chain(occurrences.iter().map(|o| o.unit.as_str())),
    );
    let no_targets: Vec<usize> = Vec::new();
    let targets = |unit: &str| -> &Vec<usize> { targets_of.get(unit).unwrap_or(&no_targets) };
    let starts: Vec<i64> = req
        .periods
        .iter()
        .map(|p| p.start.timestamp_micros())
        .collect();
    let ends: Vec<i64> = req
        .periods
        .iter()
        .map(|p| p.end.timestamp_micros())
        .collect();
    let now = req.now.timestamp_micros();
    let period_of = |us: i64| -> Option<usize> {
        if us < starts[0] || us >= ends[np - 1] {
            return None;
        }
        Some(starts.partition_point(|&s| s <= us) - 1)
    };
    // The instant "the end of period p" is judged at: its end, or now if sooner.
    let judged: Vec<i64> = ends.iter().map(|&e| e.min(now)).collect();
    // A deadline is the end of its last day (24:00, which is 00:00 of the next):
    // it counts in the period of that day, so periods are found for `due - 1µs`.

    for e in episodes {
        let ts = targets(&e.unit);
        if ts.is_empty() {
            continue;
        }
        let ticket = uuid_of(&e.ticket);
        let ev = |pos: i64| Evidence {
            ticket,
            position: pos,
        };
        let mut add = |p: usize, f: &mut dyn FnMut(&mut Figures)| {
            for &t in ts {
                f(&mut cells[t * np + p]);
            }
        };
        if let Some(p) = period_of(e.assigned_at) {
            add(p, &mut |c| c.received += 1);
        }
        if let Some(due) = e.sign_due {
            let returned_first = e.left_at.is_some_and(|l| l < due);
            if let (false, Some(p)) = (returned_first, period_of(due - 1)) {
                let on_time = e.signed_at.is_some_and(|s| s <= due);
                let late = match e.signed_at {
                    Some(s) => s > due,
                    None => due < now,
                };
                let pos = e.sign_pos.unwrap_or(e.assign_pos);
                add(p, &mut |c| {
                    c.due_to_sign += 1;
                    if on_time {
                        c.signed_on_time += 1;
                    } else if late {
                        c.late_signs.push(ev(pos));
                    }
                });
            }
        }
        if let Some(p) = e.signed_at.and_then(period_of) {
            add(p, &mut |c| c.signed += 1);
        }
        // Due to finish: by the deadline's period and by the handling's, once each.
        let due = e.handle_due;
        let due_counts = facts::due_counts(due, e.left_at, e.closed_at);
        let on_time = facts::finished_on_time(e.handled_at, e.handled_due, due);
        let late_known = match (e.handled_at, due) {
            (Some(_), _) => !on_time,
            (None, Some(d)) => d < now && e.left_at.is_none() && e.closed_at.is_none(),
            (None, None) => false,
        };
        let mut dtf_periods: Vec<usize> = Vec::with_capacity(2);
        if due_counts {
            if let Some(p) = due.and_then(|d| period_of(d - 1)) {
                dtf_periods.push(p);
            }
        }
        if let Some(p) = e.handled_at.and_then(period_of) {
            if !dtf_periods.contains(&p) {
                dtf_periods.push(p);
            }
        }
        let pos = e.handle_pos.unwrap_or(e.assign_pos);
        for p in dtf_periods {
            add(p, &mut |c| {
                c.due_to_finish += 1;
                if on_time {
                    c.handled_on_time += 1;
                } else if late_known {
                    c.not_on_time.push(ev(pos));
                }
            });
        }
        if let (Some(h), Some(p)) = (e.handled_at, e.handled_at.and_then(period_of)) {
            let secs = e.turnaround_secs.unwrap_or(0);
            let one_time = e.one_time();
            let late = e.handled_due.is_some_and(|d| h > d);
            let hp = e.handle_pos.unwrap_or(e.assign_pos);
            add(p, &mut |c| {
                c.handled += 1;
                c.turnaround_secs.push(secs);
                if one_time {
                    c.one_time += 1;
                }
                if late {
                    c.late_completions.push(ev(hp));
                }
            });
        }
        // Overdue at the end of each period whose judging instant falls after the
        // deadline and before the ticket was resolved (handled, returned, closed).
        if let Some(h) = due {
            let resolved = [e.handled_at, e.left_at, e.closed_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(i64::MAX);
            let first = judged.partition_point(|&t| t <= h);
            let last = judged.partition_point(|&t| t < resolved);
            for p in first..last {
                add(p, &mut |c| {
                    c.overdue_open += 1;
                    c.overdue.push(ev(e.assign_pos));
                });
            }
        }
    }

    for o in occurrences {
        let Some(kind) = Kind::parse(&o.kind) else {
            continue;
        };
        let Some(p) = period_of(o.at) else { continue };
        let ts = targets(&o.unit);
        let ev = Evidence {
            ticket: uuid_of(&o.ticket),
            position: o.position,
        };
        for &t in ts {
            let c = &mut cells[t * np + p];
            match kind {
                Kind::Accepted => {}
                Kind::RepeatComplaint => c.repeat_complaints += 1,
                Kind::Returned => {
                    c.returns += 1;
                    c.returned.push(ev);
                }
                Kind::ExtensionRequested => c.extensions_requested += 1,
                Kind::ExtensionApproved => {
                    c.extensions_approved += 1;
                    c.extension_approved.push(ev);
                }
                Kind::VerificationFailed => {
                    c.verification_failures += 1;
                    c.verification_failed.push(ev);
                }
                Kind::Supervised => c.supervisions += 1,
                Kind::SupervisedRepeat => {
                    c.repeated_supervisions += 1;
                    c.supervised_repeat.push(ev);
                }
                Kind::FeedbackSatisfied => c.satisfied += 1,
                Kind::FeedbackBasic => {
                    c.basically_satisfied += 1;
                    c.feedback_basic.push(ev);
                }
                Kind::FeedbackUnsatisfied => {
                    c.unsatisfied += 1;
                    c.feedback_unsatisfied.push(ev);
                }
            }
        }
    }
    for c in &mut cells {
        for v in [
            &mut c.late_signs,
            &mut c.late_completions,
            &mut c.not_on_time,
            &mut c.overdue,
            &mut c.verification_failed,
            &mut c.supervised_repeat,
            &mut c.feedback_unsatisfied,
            &mut c.feedback_basic,
            &mut c.returned,
            &mut c.extension_approved,
        ] {
            v.sort();
        }
    }
    Table {
        units: req.units.clone(),
        periods: req.periods.clone(),
        cells,
    }
}

/// Turnaround summary in hours (two decimals): mean, median and p90 by nearest rank.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Turnaround {
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

/// The summary of turnaround times given in seconds. The mean is taken over the
/// exact sum, so it does not depend on the order the values came in.
pub fn turnaround(secs: &[i64]) -> Turnaround {
    if secs.is_empty() {
        return Turnaround {
            mean: None,
            median: None,
            p90: None,
        };
    }
    let mut v = secs.to_vec();
    let n = v.len();
    let hours = |s: i64| s as f64 / 3600.0;
    // Nearest rank: the k-th smallest value, k = ceil(q·n). Selected, not sorted.
    let rank = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n);
    let (k50, k90) = (rank(0.5), rank(0.9));
    let median = *v.select_nth_unstable(k50 - 1).1;
    let p90 = if k90 > k50 {
        *v[k50..].select_nth_unstable(k90 - 1 - k50).1
    } else {
        median
    };
    let sum: i64 = v.iter().sum();
    Turnaround {
        mean: Some(round(hours(sum) / n as f64, 2)),
        median: Some(round(hours(median), 2)),
        p90: Some(round(hours(p90), 2)),
    }
}

/// One item of `GET /api/v1/stats/units` (the field names are the public contract;
/// the ones after `turnaround_hours` are additions).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StatsItem {
    pub unit: String,
    pub period: String,
    pub received: u64,
    pub due_to_sign: u64,
    pub signed: u64,
    pub signed_on_time: u64,
    pub due_to_finish: u64,
    pub handled: u64,
    pub handled_on_time: u64,
    pub on_time_rate: Option<f64>,
    pub overdue_open: u64,
    pub returns: u64,
    pub extensions_requested: u64,
    pub extensions_approved: u64,
    pub verification_failures: u64,
    pub supervisions: u64,
    pub repeated_supervisions: u64,
    pub feedback: u64,
    pub satisfaction_rate: Option<f64>,
    pub turnaround_hours: Turnaround,
    pub unit_name: String,
    pub signed_on_time_rate: Option<f64>,
    pub return_rate: Option<f64>,
    pub extension_rate: Option<f64>,
    pub rework_rate: Option<f64>,
    pub one_time: u64,
    pub one_time_rate: Option<f64>,
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub unsatisfied: u64,
    pub repeat_complaints: u64,
}

impl StatsItem {
    pub fn new(org: &Org, unit: &str, period: &Period, f: &Figures, strict: bool) -> StatsItem {
        StatsItem {
            unit: unit.to_string(),
            period: period.label.clone(),
            received: f.received,
            due_to_sign: f.due_to_sign,
            signed: f.signed,
            signed_on_time: f.signed_on_time,
            due_to_finish: f.due_to_finish,
            handled: f.handled,
            handled_on_time: f.handled_on_time,
            on_time_rate: f.on_time_rate(),
            overdue_open: f.overdue_open,
            returns: f.returns,
            extensions_requested: f.extensions_requested,
            extensions_approved: f.extensions_approved,
            verification_failures: f.verification_failures,
            supervisions: f.supervisions,
            repeated_supervisions: f.repeated_supervisions,
            feedback: f.feedback(),
            satisfaction_rate: f.satisfaction_rate(strict),
            turnaround_hours: turnaround(&f.turnaround_secs),
            unit_name: org.unit(unit).map(|u| u.name.clone()).unwrap_or_default(),
            signed_on_time_rate: f.signed_on_time_rate(),
            return_rate: ratio(f.returns, f.received),
            extension_rate: ratio(f.extensions_approved, f.received),
            rework_rate: ratio(f.verification_failures, f.handled + f.verification_failures),
            one_time: f.one_time,
            one_time_rate: ratio(f.one_time, f.handled),
            satisfied: f.satisfied,
            basically_satisfied: f.basically_satisfied,
            unsatisfied: f.unsatisfied,
            repeat_complaints: f.repeat_complaints,
        }
    }
}

/// A ticket id as the projection's rows hold it (text). The projection writes
/// these columns from `Uuid` values, so the nil id never stands for a real one.
pub fn uuid_of(s: &str) -> Uuid {
    Uuid::try_parse(s).unwrap_or(Uuid::nil())
}

/// An evidence item as the counter lists store it: `ticket:position`.
pub fn parse_item(it: &str) -> Option<Evidence> {
    let (t, pos) = it.rsplit_once(':')?;
    Some(Evidence {
        ticket: Uuid::try_parse(t).ok()?,
        position: pos.parse().ok()?,
    })
}

/// Sets the open and overdue ticket gauges per unit from the open episodes.
pub async fn refresh_ticket_gauges(app: &crate::app::App) -> Result<(), StoreError> {
    let now = app.now().timestamp_micros();
    let rows: Vec<(String, i64, i64)> = on_pool!(&app.store.pool(), p, Db => {
        sqlx::query_as(
            "SELECT unit, COUNT(*), SUM(CASE WHEN handle_due < $1 OR (signed_at IS NULL AND sign_due < $1) THEN 1 ELSE 0 END) \
             FROM stats_episodes WHERE span_end = $2 AND (signed_at IS NULL OR handled_at IS NULL) GROUP BY unit",
        )
        .bind(now)
        .bind(super::facts::OPEN)
        .fetch_all(p)
        .await?
    });
    app.metrics.open_tickets.reset();
    app.metrics.overdue_tickets.reset();
    for (unit, open, overdue) in rows {
        app.metrics
            .open_tickets
            .with_label_values(&[&unit])
            .set(open);
        app.metrics
            .overdue_tickets
            .with_label_values(&[&unit])
            .set(overdue);
    }
    Ok(())
}

/// Open episodes past a deadline at `now` in these units (all when None), oldest
/// deadline first: the overdue list.
pub async fn overdue_tickets(
    pool: &Pool,
    units: Option<&[String]>,
    now: DateTime<Utc>,
    offset: i64,
    limit: i64,
) -> Result<Vec<Uuid>, StoreError> {
    let now = now.timestamp_micros();
    let rows: Vec<(String,)> = on_pool!(pool, p, Db => {
        let mut q = QueryBuilder::<Db>::new("SELECT ticket FROM stats_episodes WHERE span_end = ");
        q.push_bind(super::facts::OPEN)
            .push(" AND (handle_due < ")
            .push_bind(now)
            .push(" OR (signed_at IS NULL AND sign_due < ")
            .push_bind(now)
            .push("))");
        if let Some(units) = units {
            push_units!(q, units);
        }
        q.push(" ORDER BY COALESCE(handle_due, sign_due), ticket LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        q.build_query_as().fetch_all(p).await?
    });
    Ok(rows
        .iter()
        .filter_map(|(t,)| Uuid::parse_str(t).ok())
        .collect())
}

/// What the daily counters hold for a request: the counters summed per unit and
/// period, the overdue balance before the first period, the turnaround lists, and
/// the open episodes overdue now.
#[derive(Debug, Default)]
pub struct Daily {
    /// (unit, period index, counters).
    pub sums: Vec<(String, usize, Counts)>,
    /// (unit, overdue starts − stops before the first period).
    pub overdue_before: Vec<(String, i64)>,
    /// (unit, period index, seconds comma-separated).
    pub turnaround: Vec<(String, i64, String)>,
    /// (unit, open episodes past their handle deadline now).
    pub overdue_now: Vec<(String, i64)>,
}

/// Whether [`fetch_daily`] reads the turnaround seconds (the median and p90 need
/// every value: the largest part of a long period's read). The appraisal does not
/// use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turnarounds {
    Read,
    Skip,
}

/// Reads the daily counters behind `periods` (contiguous, whole periods of one
/// granularity) for these units (all when None). A few hundred rows for a year.
pub async fn fetch_daily(
    pool: &Pool,
    scope: Option<&[String]>,
    periods: &[Period],
    now: DateTime<Utc>,
    turnaround: Turnarounds,
) -> Result<Daily, StoreError> {
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Ok(Daily::default());
    };
    // Days for days; months (a few hundred rows for a district's year) otherwise.
    let g = first.granularity;
    let (counts_table, lists_table, key): (&str, &str, &str) = if g == Granularity::Day {
        ("stats_daily", "stats_turnaround", "day")
    } else {
        ("stats_monthly", "stats_turnaround_monthly", "month")
    };
    let bucket = |d: chrono::NaiveDate| {
        if g == Granularity::Day {
            daily::day_number(d)
        } else {
            daily::month_number(d)
        }
    };
    let s = bucket(first.first_day);
    let e = bucket(last.end_day);
    let (both, both_ot) = daily::both_cols(g);
    // PostgreSQL sums BIGINTs in NUMERIC: for a district's year of months that
    // was half the read. A double holds every integer up to 2^53 exactly, and
    // so does every partial sum of counters below that (a count, or working
    // seconds: 2^53 s is 285 million years); SQLite sums integers as integers.
    let float_sums = matches!(pool, Pool::Postgres(_));
    on_pool!(pool, p, Db => {
        // The index of the period a day falls in, as SQL.
        macro_rules! push_period {
            ($q:expr) => {{
                $q.push("CAST(");
                if periods.len() == 1 {
                    $q.push("0");
                } else if g == Granularity::Day {
                    $q.push("day - ").push_bind(s);
                } else {
                    $q.push("CASE");
                    for (i, period) in periods.iter().enumerate().skip(1) {
                        $q.push(format!(" WHEN {key} < "))
                            .push_bind(bucket(period.first_day))
                            .push(format!(" THEN {}", i - 1));
                    }
                    $q.push(format!(" ELSE {} END", periods.len() - 1));
                }
                $q.push(" AS BIGINT) AS p");
            }};
        }
        // Five reads, independent of each other: built here, run at once below.
        // The counters: unit, period, then every column (`c0`…).
        macro_rules! push_counts {
            ($q:expr) => {{
                $q.push("SELECT unit, ");
                push_period!($q);
                for (i, c) in daily::COLUMNS.iter().enumerate() {
                    // The "both" columns of other granularities are not read, but
                    // for the year's: a year can be summed from its months or
                    // quarters (`summed_year`).
                    let year = g != Granularity::Day
                        && (i == Col::BothYear as usize || i == Col::OnTimeBothYear as usize);
                    let wanted = !c.starts_with("both_") && !c.starts_with("on_time_both_")
                        || i == both as usize
                        || i == both_ot as usize
                        || year;
                    // Days are one row per unit and day already: no sums (PostgreSQL
                    // sums BIGINTs as NUMERIC, which for a month of a district's days
                    // was most of the read).
                    if !wanted {
                        $q.push(format!(", CAST(0 AS BIGINT) AS c{i}"));
                    } else if g == Granularity::Day {
                        $q.push(format!(", {c} AS c{i}"));
                    } else if float_sums {
                        $q.push(format!(", CAST(SUM(CAST({c} AS DOUBLE PRECISION)) AS BIGINT) AS c{i}"));
                    } else {
                        $q.push(format!(", CAST(SUM({c}) AS BIGINT) AS c{i}"));
                    }
                }
                $q.push(format!(" FROM {counts_table} WHERE {key} >= "))
                    .push_bind(s)
                    .push(format!(" AND {key} < "))
                    .push_bind(e);
                if let Some(units) = scope {
                    push_units!($q, units);
                }
                if g != Granularity::Day {
                    $q.push(" GROUP BY unit, p");
                }
            }};
        }
        let mut sq = QueryBuilder::<Db>::new("");
        push_counts!(sq);
        // On SQLite, the same rows as one joined text (see `split_counts`): sqlx
        // copies every value of every row across threads, 45,000 of them for a
        // month of a district's days.
        let mut jq = matches!(pool, Pool::Sqlite(_)).then(|| {
            let mut q = QueryBuilder::<Db>::new("SELECT group_concat(ifnull(unit, '') || char(31) || ifnull(p, '')");
            for i in 0..daily::NCOLS {
                q.push(format!(" || char(31) || ifnull(c{i}, '')"));
            }
            q.push(", char(30)) FROM (");
            push_counts!(q);
            q.push(")");
            q
        });

        // The overdue balance before the first period: whole months from the
        // monthly rows, and for days the days of the first day's month before it
        // (a few hundred rows, where the days since the first event are thousands).
        let month = daily::month_number(first.first_day);
        let month_start = daily::day_number(
            daily::first_day_of_month(month).unwrap_or(first.first_day),
        );
        let balance = "SELECT unit, CAST(SUM(overdue_start) - SUM(overdue_end) AS BIGINT)";
        let mut mq = QueryBuilder::<Db>::new(format!("{balance} FROM stats_monthly WHERE month < "));
        mq.push_bind(month);
        if let Some(units) = scope {
            push_units!(mq, units);
        }
        mq.push(" GROUP BY unit");
        let mut dq = (g == Granularity::Day && month_start < s).then(|| {
            let mut q = QueryBuilder::<Db>::new(format!("{balance} FROM stats_daily WHERE day >= "));
            q.push_bind(month_start).push(" AND day < ").push_bind(s);
            if let Some(units) = scope {
                push_units!(q, units);
            }
            q.push(" GROUP BY unit");
            q
        });

        // One row per unit and period, the day lists joined by the database.
        let concat = if matches!(pool, Pool::Postgres(_)) { "string_agg(secs, ',')" } else { "group_concat(secs, ',')" };
        let mut tq = QueryBuilder::<Db>::new("SELECT unit, ");
        push_period!(tq);
        tq.push(format!(", {concat} FROM {lists_table} WHERE {key} >= "));
        tq.push_bind(s).push(format!(" AND {key} < ")).push_bind(e).push(" AND secs <> ''");
        if let Some(units) = scope {
            push_units!(tq, units);
        }
        tq.push(" GROUP BY unit, p");

        let mut nq = (last.end > now).then(|| {
            let mut q = QueryBuilder::<Db>::new("SELECT unit, COUNT(*) FROM stats_episodes WHERE span_end = ");
            q.push_bind(super::facts::OPEN).push(" AND handle_due < ").push_bind(now.timestamp_micros());
            // Implied (an open episode is not handled); lets `stats_episodes_open` serve.
            q.push(" AND (signed_at IS NULL OR handled_at IS NULL)");
            if let Some(units) = scope {
                push_units!(q, units);
            }
            q.push(" GROUP BY unit");
            q
        });

        let (sums, mut overdue_before, days_before, turnaround, overdue_now) = tokio::try_join!(
            async {
                if let Some(q) = jq.as_mut() {
                    let joined: Option<String> = q.build_query_scalar().fetch_one(p).await?;
                    match split_counts(joined.as_deref().unwrap_or("")) {
                        Some(sums) => return Ok::<_, StoreError>(sums),
                        None => {
                            // Tests run debug builds: there, a text that does not split fails.
                            debug_assert!(false, "the counters did not split from their joined text");
                            tracing::warn!("the counters did not split from their joined text; read as rows");
                        }
                    }
                }
                let rows = sq.build().fetch_all(p).await?;
                let mut sums = Vec::with_capacity(rows.len());
                for r in &rows {
                    let unit: String = r.try_get(0)?;
                    let pi: i64 = r.try_get(1)?;
                    let mut c: Counts = [0; daily::NCOLS];
                    for (i, v) in c.iter_mut().enumerate() {
                        *v = r.try_get(i + 2)?;
                    }
                    sums.push((unit, pi.max(0) as usize, c));
                }
                Ok(sums)
            },
            async { Ok(mq.build_query_as::<(String, i64)>().fetch_all(p).await?) },
            async {
                Ok(match dq.as_mut() {
                    Some(q) => q.build_query_as::<(String, i64)>().fetch_all(p).await?,
                    None => Vec::new(),
                })
            },
            async {
                Ok(match turnaround {
                    Turnarounds::Read => tq.build_query_as::<(String, i64, String)>().fetch_all(p).await?,
                    Turnarounds::Skip => Vec::new(),
                })
            },
            async {
                Ok(match nq.as_mut() {
                    Some(q) => q.build_query_as::<(String, i64)>().fetch_all(p).await?,
                    None => Vec::new(),
                })
            },
        )?;
        overdue_before.extend(days_before);
        Ok(Daily { sums, overdue_before, turnaround, overdue_now })
    })
}

/// Whether `periods` (months or quarters, in order) make up exactly `year`.
fn tiles(periods: &[Period], year: &Period) -> bool {
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return false;
    };
    first.first_day == year.first_day
        && last.end_day == year.end_day
        && periods
            .iter()
            .all(|p| matches!(p.granularity, Granularity::Month | Granularity::Quarter))
        && periods.windows(2).all(|w| w[0].end_day == w[1].first_day)
}

/// A year's counters from those of the periods that make it up (see [`tiles`]):
/// every counter is a sum over months, the year's "both" columns included
/// (read for every period longer than a day, see `fetch_daily`). Without the
/// turnaround lists, which the sum is not made for.
fn summed_year(parts: &Daily) -> Daily {
    let mut sums: Vec<(String, usize, Counts)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (unit, _, c) in &parts.sums {
        let i = *index.entry(unit.as_str()).or_insert_with(|| {
            sums.push((unit.clone(), 0, [0; daily::NCOLS]));
            sums.len() - 1
        });
        for (total, v) in sums[i].2.iter_mut().zip(c) {
            *total += v;
        }
    }
    Daily {
        sums,
        overdue_before: parts.overdue_before.clone(),
        turnaround: Vec::new(),
        overdue_now: parts.overdue_now.clone(),
    }
}

/// Counter rows joined by SQLite: records split by U+001E, fields (unit, period,
/// then the `NCOLS` counters) by U+001F; no unit code or number holds either.
/// None when the text is not exactly that.
fn split_counts(joined: &str) -> Option<Vec<(String, usize, Counts)>> {
    if joined.is_empty() {
        return Some(Vec::new());
    }
    joined
        .split('\u{1e}')
        .map(|record| {
            let mut f = record.split('\u{1f}');
            let unit = f.next()?.to_string();
            let pi: i64 = f.next()?.parse().ok()?;
            let mut c: Counts = [0; daily::NCOLS];
            for v in c.iter_mut() {
                *v = f.next()?.parse().ok()?;
            }
            f.next().is_none().then_some((unit, pi.max(0) as usize, c))
        })
        .collect()
}

/// The figures (counts, rates and turnaround; no evidence lists) per requested unit
/// and period, from the daily counters: the same numbers `compute` counts from the
/// rows.
pub fn compute_daily(req: &Request<'_>, d: &Daily) -> Table {
    let np = req.periods.len();
    let nu = req.units.len();
    let Table { mut cells, .. } = req.empty_table();
    if np == 0 {
        return req.empty_table();
    }
    let targets_of = req.targets(
        d.sums
            .iter()
            .map(|(u, _, _)| u.as_str())
            .chain(d.overdue_before.iter().map(|(u, _)| u.as_str()))
            .chain(d.turnaround.iter().map(|(u, _, _)| u.as_str()))
            .chain(d.overdue_now.iter().map(|(u, _)| u.as_str())),
    );
    let targets = |unit: &str| -> Vec<usize> { targets_of.get(unit).cloned().unwrap_or_default() };
    let g = req.periods[0].granularity;
    let (both, both_ot) = daily::both_cols(g);
    // Overdue balance: before the first period, then each period's net change.
    let mut balance = vec![0i64; nu];
    let mut net = vec![0i64; nu * np];
    for (unit, n) in &d.overdue_before {
        for t in targets(unit) {
            balance[t] += n;
        }
    }
    for (unit, p, c) in &d.sums {
        let p = (*p).min(np - 1);
        let col = |k: Col| c[k as usize];
        let n = |k: Col| col(k).max(0) as u64;
        for t in targets(unit) {
            let f = &mut cells[t * np + p];
            f.received += n(Col::Received);
            f.due_to_sign += n(Col::DueToSign);
            f.signed_on_time += n(Col::SignedOnTime);
            f.signed += n(Col::Signed);
            f.due_to_finish += (col(Col::DtfDue) + col(Col::DtfHandled) - col(both)).max(0) as u64;
            f.handled_on_time +=
                (col(Col::OnTimeDue) + col(Col::OnTimeHandled) - col(both_ot)).max(0) as u64;
            f.handled += n(Col::Handled);
            f.one_time += n(Col::OneTime);
            f.returns += n(Col::Returns);
            f.extensions_requested += n(Col::ExtensionsRequested);
            f.extensions_approved += n(Col::ExtensionsApproved);
            f.verification_failures += n(Col::VerificationFailures);
            f.supervisions += n(Col::Supervisions);
            f.repeated_supervisions += n(Col::RepeatedSupervisions);
            f.satisfied += n(Col::Satisfied);
            f.basically_satisfied += n(Col::BasicallySatisfied);
            f.unsatisfied += n(Col::Unsatisfied);
            f.repeat_complaints += n(Col::RepeatComplaints);
            net[t * np + p] += col(Col::OverdueStart) - col(Col::OverdueEnd);
        }
    }
    for (unit, p, secs) in &d.turnaround {
        let p = (*p).clamp(0, np as i64 - 1) as usize;
        let values = daily::parse_list(secs);
        for t in targets(unit) {
            cells[t * np + p].turnaround_secs.extend_from_slice(&values);
        }
    }
    let mut now_overdue = vec![0i64; nu];
    for (unit, n) in &d.overdue_now {
        for t in targets(unit) {
            now_overdue[t] += n;
        }
    }
    let now = req.now;
    for t in 0..nu {
        let mut running = balance[t];
        for (p, period) in req.periods.iter().enumerate() {
            running += net[t * np + p];
            let overdue = if period.end > now {
                now_overdue[t]
            } else {
                running
            };
            cells[t * np + p].overdue_open = overdue.max(0) as u64;
        }
    }
    Table {
        units: req.units.clone(),
        periods: req.periods.clone(),
        cells,
    }
}

/// Figures with their evidence: the counts from the daily counters; for months,
/// quarters and years the evidence lists from `stats_evidence_monthly`, less the
/// items whose deadline has not passed yet; `overdue` (which depends on the end of
/// each period) and day periods from the rows that can carry evidence. Equal to
/// `compute` over every row (a test checks it). `overdue`: fill the overdue lists
/// (a profile that does not deduct for them need not read those rows).
pub async fn figures_with_evidence(
    pool: &Pool,
    scope: Option<&[String]>,
    req: &Request<'_>,
    overdue: bool,
    turnaround: Turnarounds,
) -> Result<Table, StoreError> {
    let mut tables =
        figures_with_evidence_of(pool, scope, &[req], overdue, Lists::ALL, turnaround).await?;
    Ok(tables.pop().unwrap_or_else(|| req.empty_table()))
}

/// [`figures_with_evidence`] for several requests at once (a year and its
/// quarters): the evidence lists of the months they cover are read and parsed
/// once, and serve every request. One table per request, in order. Of the
/// stored lists, months and longer periods get only those in `lists` (the
/// others stay empty); day periods get every list.
pub async fn figures_with_evidence_of(
    pool: &Pool,
    scope: Option<&[String]>,
    reqs: &[&Request<'_>],
    overdue: bool,
    lists: Lists,
    turnaround: Turnarounds,
) -> Result<Vec<Table>, StoreError> {
    // The months the month-based requests cover, and the earliest "now".
    let mut months: Option<(i64, i64)> = None;
    for req in reqs {
        if let (Some(first), Some(last)) = (req.periods.first(), req.periods.last()) {
            if first.granularity != Granularity::Day {
                let (s, e) = (
                    daily::month_number(first.first_day),
                    daily::month_number(last.end_day),
                );
                months = Some(months.map_or((s, e), |(a, b)| (a.min(s), b.max(e))));
            }
        }
    }
    let now = reqs.iter().map(|r| r.now).min().unwrap_or_else(Utc::now);
    if reqs.iter().any(|r| r.now != now) {
        return Err(StoreError::Corrupt(
            "requests read together must share their `now`".into(),
        ));
    }
    // A year read with the quarters or months that make it up is summed from
    // theirs: the counters, the overdue balance and the open count, three reads.
    let sum_of: Vec<Option<usize>> = reqs
        .iter()
        .enumerate()
        .map(|(j, req)| {
            let [year] = req.periods.as_slice() else {
                return None;
            };
            let summable = turnaround == Turnarounds::Skip && year.granularity == Granularity::Year;
            summable
                .then(|| reqs[..j].iter().position(|r| tiles(&r.periods, year)))
                .flatten()
        })
        .collect();
    // The reads are independent: run them at once, each on its own connection.
    let dailies = futures::future::try_join_all(reqs.iter().zip(&sum_of).map(|(req, sum)| {
        let read = sum.is_none();
        async move {
            if read {
                fetch_daily(pool, scope, &req.periods, req.now, turnaround).await
            } else {
                Ok(Daily::default())
            }
        }
    }));
    let evidence = async {
        match months {
            Some((s, e)) => fetch_evidence(pool, scope, s, e, now).await.map(Some),
            None => Ok(None),
        }
    };
    let started = std::time::Instant::now();
    let (mut dailies, evidence) = tokio::try_join!(dailies, evidence)?;
    for (j, sum) in sum_of.iter().enumerate() {
        if let Some(i) = *sum {
            dailies[j] = summed_year(&dailies[i]);
        }
    }
    let read = started.elapsed();
    // The tables from what was read: computing only, two tables on two cores.
    let build = |req: &Request<'_>, daily: &Daily| -> Table {
        let mut table = compute_daily(req, daily);
        let by_month = req
            .periods
            .first()
            .is_some_and(|p| p.granularity != Granularity::Day);
        if let (true, Some(evidence)) = (by_month, evidence.as_ref()) {
            fill_evidence(req, evidence, lists, &mut table);
        }
        table
    };
    let mut tables: Vec<Table> = match (reqs, dailies.as_slice()) {
        ([a, b], [da, db]) => {
            let (ta, tb) = crate::cpu::join(|| build(a, da), || build(b, db));
            vec![ta, tb]
        }
        _ => crate::cpu::run(|| {
            reqs.iter()
                .zip(&dailies)
                .map(|(req, daily)| build(req, daily))
                .collect()
        }),
    };
    tracing::debug!(
        read_ms = read.as_secs_f64() * 1e3,
        build_ms = (started.elapsed() - read).as_secs_f64() * 1e3,
        "figures with evidence"
    );
    for (req, table) in reqs.iter().zip(tables.iter_mut()) {
        let Some(first) = req.periods.first() else {
            continue;
        };
        let by_month = first.granularity != Granularity::Day;
        if !by_month || overdue {
            fill_from_rows(pool, scope, req, by_month, table).await?;
        }
    }
    Ok(tables)
}

/// The lists counted from the rows: `overdue` (which depends on the end of each
/// period) and, for day periods, every list.
async fn fill_from_rows(
    pool: &Pool,
    scope: Option<&[String]>,
    req: &Request<'_>,
    by_month: bool,
    table: &mut Table,
) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (req.periods.first(), req.periods.last()) else {
        return Ok(());
    };
    let (mut episodes, occurrences) =
        fetch_rows(pool, scope, first.start, last.end, Some(req.now)).await?;
    if by_month {
        // Only the overdue lists are wanted from the rows.
        episodes.retain(|e| e.handle_due.is_some());
    }
    let occurrences = if by_month { Vec::new() } else { occurrences };
    let evidence = compute(req, &episodes, &occurrences);
    for (c, e) in table.cells.iter_mut().zip(evidence.cells) {
        c.overdue = e.overdue;
        if !by_month {
            c.late_signs = e.late_signs;
            c.late_completions = e.late_completions;
            c.not_on_time = e.not_on_time;
            c.verification_failed = e.verification_failed;
            c.supervised_repeat = e.supervised_repeat;
            c.feedback_unsatisfied = e.feedback_unsatisfied;
            c.feedback_basic = e.feedback_basic;
            c.returned = e.returned;
            c.extension_approved = e.extension_approved;
        }
    }
    Ok(())
}

/// Fills the `wanted` evidence lists of a table of months, quarters or years
/// from the rows of `stats_evidence_monthly` (which may cover more months than
/// the table: those are skipped). The stored lists hold every item as if each
/// open deadline had passed; the episodes whose sign or handle deadline is still
/// ahead of `req.now` are taken out again.
fn fill_evidence(req: &Request<'_>, evidence: &EvidenceRows, wanted: Lists, table: &mut Table) {
    let EvidenceRows { lists, pending } = evidence;
    let np = req.periods.len();
    let bounds: Vec<i64> = req
        .periods
        .iter()
        .map(|p| daily::month_number(p.first_day))
        .collect();
    let (s, e) = (bounds[0], daily::month_number(req.periods[np - 1].end_day));
    let now = req.now.timestamp_micros();

    let targets_of = req.targets(
        lists
            .iter()
            .flat_map(|m| &m.lists)
            .map(|l| l.unit.as_str())
            .chain(pending.iter().map(|r| r.unit.as_str())),
    );
    let no_targets = Vec::new();
    let targets = |unit: &str| targets_of.get(unit).unwrap_or(&no_targets);
    // The period a month falls in.
    let period_of_month = |m: i64| bounds.partition_point(|&b| b <= m).saturating_sub(1);
    // Where each stored list goes: (cell, list, items).
    let mut parts: Vec<(usize, usize, &[Evidence])> = Vec::new();
    for l in lists.iter().flat_map(|m| &m.lists) {
        let Some(slot) = l.slot.filter(|&i| wanted.has(i)) else {
            continue;
        };
        if l.month < s || l.month >= e {
            continue;
        }
        let pi = period_of_month(l.month).min(np - 1);
        for &t in targets(&l.unit) {
            parts.push((t * np + pi, slot, &l.items));
        }
    }
    // Each cell's list gets its months' lists at once, in one allocation of the
    // right size. They are sorted lists: the stable sort merges them.
    parts.sort_unstable_by_key(|p| (p.0, p.1));
    for same in parts.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (cell, slot, _) = same[0];
        if let Some(v) = evidence_at(&mut table.cells[cell], slot) {
            v.reserve(same.iter().map(|p| p.2.len()).sum());
            for p in same {
                v.extend_from_slice(p.2);
            }
            v.sort();
            v.dedup();
        }
    }
    // The period (by month) an instant's day falls in.
    let period_of = |us: i64| -> Option<usize> {
        let m = daily::month_of_day(daily::day_of(us));
        (m >= s && m < e).then(|| bounds.partition_point(|&b| b <= m) - 1)
    };
    let mut remove: Vec<(usize, usize, Evidence)> = Vec::new();
    for r in pending {
        if let Some(due) = r.sign_due.filter(|&d| d >= now && wanted.has(LATE_SIGNS)) {
            let returned_first = r.left_at.is_some_and(|l| l < due);
            if let (false, Some(p)) = (returned_first, period_of(due - 1)) {
                let ev = Evidence {
                    ticket: uuid_of(&r.ticket),
                    position: r.sign_pos.unwrap_or(r.assign_pos),
                };
                for &t in targets(&r.unit) {
                    remove.push((t * np + p, LATE_SIGNS, ev));
                }
            }
        }
        if let Some(due) = r
            .handle_due
            .filter(|&d| d >= now && wanted.has(NOT_ON_TIME))
        {
            let still_with_unit = r.left_at.is_none() && r.closed_at.is_none();
            if let (true, Some(p)) = (still_with_unit, period_of(due - 1)) {
                let ev = Evidence {
                    ticket: uuid_of(&r.ticket),
                    position: r.assign_pos,
                };
                for &t in targets(&r.unit) {
                    remove.push((t * np + p, NOT_ON_TIME, ev));
                }
            }
        }
    }
    // Each list is filtered once (removing items one at a time shifted the rest of
    // the list each time: thousands of times for a year).
    remove.sort_unstable();
    remove.dedup();
    for group in remove.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
        let (cell, slot, _) = group[0];
        if let Some(v) = evidence_at(&mut table.cells[cell], slot) {
            remove_sorted(v, group.iter().map(|r| r.2));
        }
    }
}

// The slots (in `daily::EVIDENCE_LISTS`) of the two lists that pending deadlines
// take items out of; a test checks them against the names.
const LATE_SIGNS: usize = 0;
const NOT_ON_TIME: usize = 1;

/// Takes the items of `gone` out of `v`, both sorted: one pass over each.
fn remove_sorted(v: &mut Vec<Evidence>, gone: impl Iterator<Item = Evidence>) {
    let mut gone = gone.peekable();
    v.retain(|e| {
        while gone.next_if(|g| g < e).is_some() {}
        gone.peek() != Some(e)
    });
}

/// One stored list of a unit and month (an evidence list, or a township's report
/// list), parsed.
struct EvidenceList {
    unit: String,
    month: i64,
    /// One of `daily::EVIDENCE_LISTS`, or a report list (`daily::REPORT_PREFIX`).
    list: String,
    /// `list`'s index in `daily::EVIDENCE_LISTS` (None: a report list).
    slot: Option<usize>,
    items: Vec<Evidence>,
}

/// The rows behind a table's evidence lists (see [`fill_evidence`]).
struct EvidenceRows {
    /// The lists of the months asked for: every unit's, every list.
    lists: Vec<Arc<MonthLists>>,
    /// The episodes whose sign or handle deadline is still ahead of `now`.
    pending: Vec<PendingRow>,
}

/// Reads the lists of the months `[s, e)` and the episodes whose deadline is still
/// ahead of `now` (two reads at once).
async fn fetch_evidence(
    pool: &Pool,
    scope: Option<&[String]>,
    s: i64,
    e: i64,
    now: DateTime<Utc>,
) -> Result<EvidenceRows, StoreError> {
    let now = now.timestamp_micros();
    let pending = fetch_pending(pool, scope, now);
    let (lists, pending) = tokio::try_join!(fetch_month_lists(pool, s, e), pending)?;
    Ok(EvidenceRows { lists, pending })
}

/// Every list of one month, parsed, as the projection wrote them under one
/// revision (`stats_evidence_revs`).
struct MonthLists {
    lists: Vec<EvidenceList>,
}

/// Months whose parsed lists are kept (a year's lists of a city district parse to
/// a few MB; three years fit).
const MONTH_CACHE_MONTHS: usize = 36;

/// How long a month's parsed lists are used before they are read again even when
/// its revision has not changed (behind the request that finds them this old: the
/// staleness is bounded by this and one read). A bound on staleness should some
/// writer change the lists without a new revision: an instance of a release
/// before migration 0006, still running during a rolling upgrade.
const MONTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

type MonthCache = lru::LruCache<(i64, i64), (std::time::Instant, Arc<MonthLists>)>;

/// Parsed months by (month, revision). The revision is random per write, so the
/// months of different databases (tests open many in one process) never collide.
static MONTHS: LazyLock<Mutex<MonthCache>> = LazyLock::new(|| {
    Mutex::new(lru::LruCache::new(
        std::num::NonZeroUsize::new(MONTH_CACHE_MONTHS).unwrap_or(std::num::NonZeroUsize::MIN),
    ))
});

/// A new revision for a month's lists (written by the projection, see
/// `stats_evidence_revs`).
pub fn new_revision() -> i64 {
    Uuid::new_v4().as_u64_pair().0 as i64
}

/// The lists of the months `[s, e)`, every unit's and every list: the months whose
/// revision this process has parsed already come from memory, the others are read
/// (and kept, if they have a revision). A month's lists and its revision are
/// written in one transaction and the revision is read first, so a kept month is
/// never older than the revision it is kept under.
async fn fetch_month_lists(
    pool: &Pool,
    s: i64,
    e: i64,
) -> Result<Vec<Arc<MonthLists>>, StoreError> {
    let revs: Vec<(i64, i64)> = on_pool!(pool, p, Db => {
        let mut q = QueryBuilder::<Db>::new("SELECT month, rev FROM stats_evidence_revs WHERE month >= ");
        q.push_bind(s).push(" AND month < ").push_bind(e);
        q.build_query_as().fetch_all(p).await?
    });
    let rev_of: HashMap<i64, i64> = revs.into_iter().collect();
    let mut out = Vec::new();
    let mut to_read = Vec::new();
    let mut stale = Vec::new();
    {
        let mut cache = MONTHS.lock().unwrap_or_else(|p| p.into_inner());
        for month in s..e {
            let hit = rev_of.get(&month).and_then(|rev| cache.get(&(month, *rev)));
            match hit {
                Some((at, lists)) => {
                    if at.elapsed() >= MONTH_CACHE_TTL {
                        stale.push(month);
                    }
                    out.push(lists.clone());
                }
                None => to_read.push(month),
            }
        }
    }
    // Kept past their time but at the same revision: answered from memory and
    // read again behind this request, so the read (100 ms for a year) does not
    // fall on a request every minute. One refresh at a time.
    if !stale.is_empty() && !REFRESHING.swap(true, std::sync::atomic::Ordering::AcqRel) {
        let (pool, rev_of) = (pool.clone(), rev_of.clone());
        // Moved into the task: cleared however it ends, dropped unpolled included.
        let refreshing = Refreshing;
        tokio::spawn(async move {
            let _refreshing = refreshing;
            if let Err(e) = read_months(&pool, &stale, &rev_of).await {
                tracing::warn!(error = %e, "re-reading the kept evidence lists failed; the next request reads them");
                let mut cache = MONTHS.lock().unwrap_or_else(|p| p.into_inner());
                for month in &stale {
                    if let Some(rev) = rev_of.get(month) {
                        cache.pop(&(*month, *rev));
                    }
                }
            }
        });
    }
    if !to_read.is_empty() {
        out.extend(read_months(pool, &to_read, &rev_of).await?);
    }
    Ok(out)
}

/// A refresh of kept months is running (`fetch_month_lists`).
static REFRESHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held by the refresh: clears `REFRESHING` when dropped.
struct Refreshing;

impl Drop for Refreshing {
    fn drop(&mut self) {
        REFRESHING.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Reads and parses these months' lists, and keeps each month that has a
/// revision in `rev_of` under it.
async fn read_months(
    pool: &Pool,
    months: &[i64],
    rev_of: &HashMap<i64, i64>,
) -> Result<Vec<Arc<MonthLists>>, StoreError> {
    let rows: Vec<(String, i64, String, String)> = on_pool!(pool, p, Db => {
        // The rows as they are (a few hundred a month): a GROUP BY would sort them
        // and copy every item once more.
        let mut q = QueryBuilder::<Db>::new(
            "SELECT unit, month, list, items FROM stats_evidence_monthly WHERE month IN (",
        );
        let mut sep = q.separated(", ");
        for m in months {
            sep.push_bind(*m);
        }
        q.push(")");
        q.build_query_as().fetch_all(p).await?
    });
    let mut by_month: HashMap<i64, Vec<EvidenceList>> = HashMap::new();
    for (unit, month, list, items) in rows {
        if items.is_empty() {
            continue;
        }
        let items = items.split(',').filter_map(parse_item).collect();
        by_month.entry(month).or_default().push(EvidenceList {
            unit,
            month,
            slot: daily::list_slot(&list),
            list,
            items,
        });
    }
    let read_at = std::time::Instant::now();
    let mut cache = MONTHS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(months.len());
    for month in months {
        let lists = Arc::new(MonthLists {
            lists: by_month.remove(month).unwrap_or_default(),
        });
        if let Some(rev) = rev_of.get(month) {
            cache.put((*month, *rev), (read_at, lists.clone()));
        }
        out.push(lists);
    }
    Ok(out)
}

/// The episodes whose sign or handle deadline is still ahead of `now` (µs): their
/// span reaches past now.
async fn fetch_pending(
    pool: &Pool,
    scope: Option<&[String]>,
    now: i64,
) -> Result<Vec<PendingRow>, StoreError> {
    Ok(match pool {
        Pool::Postgres(p) => {
            pending_query::<sqlx::Postgres>(PENDING_COLUMNS, scope, now)
                .build_query_as()
                .fetch_all(p)
                .await?
        }
        Pool::Sqlite(p) => match fetch_pending_joined(p, scope, now).await? {
            Some(rows) => rows,
            None => {
                // Tests run debug builds: there, a text that does not split fails.
                debug_assert!(
                    false,
                    "the pending episodes did not split from their joined text"
                );
                tracing::warn!(
                    "the pending episodes did not split from their joined text; read as rows"
                );
                pending_query::<sqlx::Sqlite>(PENDING_COLUMNS, scope, now)
                    .build_query_as()
                    .fetch_all(p)
                    .await?
            }
        },
    })
}

/// sqlx hands SQLite's rows over one at a time, each value copied: for a year's
/// 1,500 pending episodes that was the slowest of the appraisal's reads. One
/// joined text instead (as the rebuild reads the log), split here. None: it did
/// not split (see [`split_pending`]).
async fn fetch_pending_joined(
    p: &sqlx::SqlitePool,
    scope: Option<&[String]>,
    now: i64,
) -> Result<Option<Vec<PendingRow>>, StoreError> {
    // `||`, not `concat_ws`, which leaves out empty values as well as NULLs;
    // `ifnull` on every field, or a NULL would drop the whole record.
    const JOINED: &str = "SELECT group_concat(ifnull(ticket, '') || char(31) || ifnull(unit, '') \
         || char(31) || ifnull(assign_pos, '') || char(31) || ifnull(sign_due, '') \
         || char(31) || ifnull(sign_pos, '') || char(31) || ifnull(left_at, '') \
         || char(31) || ifnull(handle_due, '') || char(31) || ifnull(closed_at, ''), char(30))";
    let joined: Option<String> = pending_query::<sqlx::Sqlite>(JOINED, scope, now)
        .build_query_scalar()
        .fetch_one(p)
        .await?;
    Ok(split_pending(joined.as_deref().unwrap_or("")))
}

fn pending_query<'a, DB: sqlx::Database>(
    select: &str,
    scope: Option<&'a [String]>,
    now: i64,
) -> QueryBuilder<'a, DB>
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut pq = QueryBuilder::<DB>::new(select);
    pq.push(" FROM stats_episodes WHERE span_end >= ")
        .push_bind(now)
        .push(" AND ((signed_at IS NULL AND sign_due >= ")
        .push_bind(now)
        .push(") OR (handled_at IS NULL AND handle_due >= ")
        .push_bind(now)
        // Implied by the above; the form of `stats_episodes_open`'s WHERE, so the
        // read uses that index alone.
        .push(")) AND (signed_at IS NULL OR handled_at IS NULL)");
    if let Some(units) = scope {
        push_units!(pq, units);
    }
    pq
}

const PENDING_COLUMNS: &str =
    "SELECT ticket, unit, assign_pos, sign_due, sign_pos, left_at, handle_due, closed_at";

/// Pending episodes joined by SQLite: records split by U+001E, fields (as
/// `PENDING_COLUMNS`, NULL as empty) by U+001F; neither occurs in a ticket id, a
/// unit code or a number. None when the text is not exactly that.
fn split_pending(joined: &str) -> Option<Vec<PendingRow>> {
    if joined.is_empty() {
        return Some(Vec::new());
    }
    let num = |s: &str| -> Option<Option<i64>> {
        if s.is_empty() {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    joined
        .split('\u{1e}')
        .map(|record| {
            let f: Vec<&str> = record.split('\u{1f}').collect();
            let [
                ticket,
                unit,
                assign_pos,
                sign_due,
                sign_pos,
                left_at,
                handle_due,
                closed_at,
            ] = f.as_slice()
            else {
                return None;
            };
            Some(PendingRow {
                ticket: ticket.to_string(),
                unit: unit.to_string(),
                assign_pos: assign_pos.parse().ok()?,
                sign_due: num(sign_due)?,
                sign_pos: num(sign_pos)?,
                left_at: num(left_at)?,
                handle_due: num(handle_due)?,
                closed_at: num(closed_at)?,
            })
        })
        .collect()
}

/// An episode whose sign or handle deadline may still be ahead.
#[derive(sqlx::FromRow, Debug, PartialEq)]
struct PendingRow {
    ticket: String,
    unit: String,
    assign_pos: i64,
    sign_due: Option<i64>,
    sign_pos: Option<i64>,
    left_at: Option<i64>,
    handle_due: Option<i64>,
    closed_at: Option<i64>,
}

/// A figure's evidence list by the name the lists are stored under.
/// The list at `slot` of `daily::EVIDENCE_LISTS`.
fn evidence_at(f: &mut Figures, slot: usize) -> Option<&mut Vec<Evidence>> {
    Some(match slot {
        0 => &mut f.late_signs,
        1 => &mut f.not_on_time,
        2 => &mut f.late_completions,
        3 => &mut f.verification_failed,
        4 => &mut f.supervised_repeat,
        5 => &mut f.feedback_unsatisfied,
        6 => &mut f.feedback_basic,
        7 => &mut f.returned,
        8 => &mut f.extension_approved,
        _ => return None,
    })
}

/// The units with any figure in the table's data: listed by the stats endpoint.
pub fn units_with_figures(d: &Daily) -> std::collections::HashSet<&str> {
    let mut seen = std::collections::HashSet::new();
    for (u, _, c) in &d.sums {
        if c.iter().any(|&n| n != 0) {
            seen.insert(u.as_str());
        }
    }
    for (u, n) in d.overdue_before.iter().chain(&d.overdue_now) {
        if *n != 0 {
            seen.insert(u.as_str());
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `evidence_at` follows `daily::EVIDENCE_LISTS`: slot i is the field the
    /// profiles name by the i-th name.
    #[test]
    fn evidence_slots_are_the_stored_lists_in_order() {
        use crate::appraisal::profile::EvidenceMetric;
        for (i, name) in daily::EVIDENCE_LISTS.iter().enumerate() {
            let mut f = Figures::default();
            let item = Evidence {
                ticket: Uuid::from_u128(7),
                position: i as i64,
            };
            evidence_at(&mut f, i).expect("a slot").push(item);
            for m in EvidenceMetric::ALL {
                let want: &[Evidence] = if m.as_str() == *name { &[item] } else { &[] };
                assert_eq!(
                    m.evidence(&f),
                    want,
                    "slot {i} ({name}), metric {}",
                    m.as_str()
                );
            }
            assert_eq!(daily::list_slot(name), Some(i));
        }
        assert!(evidence_at(&mut Figures::default(), daily::EVIDENCE_LISTS.len()).is_none());
        assert_eq!(
            (LATE_SIGNS, NOT_ON_TIME),
            (
                daily::list_slot("late_signs").unwrap_or(99),
                daily::list_slot("not_on_time").unwrap_or(99),
            )
        );
    }

    /// Nearest rank by sorting: the definition the selection must match.
    fn by_sorting(secs: &[i64]) -> Turnaround {
        let mut v = secs.to_vec();
        v.sort_unstable();
        let k = |q: f64| ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        let h = |s: i64| round(s as f64 / 3600.0, 2);
        Turnaround {
            mean: Some(round(
                v.iter().sum::<i64>() as f64 / 3600.0 / v.len() as f64,
                2,
            )),
            median: Some(h(v[k(0.5) - 1])),
            p90: Some(h(v[k(0.9) - 1])),
        }
    }

    #[test]
    fn turnaround_of_nothing_is_empty() {
        assert_eq!(turnaround(&[]).median, None);
        let one = turnaround(&[7200]);
        assert_eq!(
            (one.mean, one.median, one.p90),
            (Some(2.0), Some(2.0), Some(2.0))
        );
    }

    #[test]
    fn counter_rows_split_from_their_joined_text() {
        let row = |unit: &str, p: i64, base: i64| {
            let mut f = vec![unit.to_string(), p.to_string()];
            f.extend((0..daily::NCOLS as i64).map(|i| (base + i).to_string()));
            f.join("\u{1f}")
        };
        let joined = [row("hg", 0, 0), row("", 3, -5)].join("\u{1e}");
        let sums = split_counts(&joined).expect("splits");
        assert_eq!(sums.len(), 2);
        assert_eq!((sums[0].0.as_str(), sums[0].1), ("hg", 0));
        assert_eq!(sums[0].2[daily::NCOLS - 1], daily::NCOLS as i64 - 1);
        assert_eq!((sums[1].0.as_str(), sums[1].1, sums[1].2[0]), ("", 3, -5));
        assert_eq!(split_counts(""), Some(Vec::new()));
        // A counter too few or too many, or one that is not a number.
        let short = row("hg", 0, 0)
            .rsplit_once('\u{1f}')
            .map(|(a, _)| a.to_string())
            .expect("fields");
        assert_eq!(split_counts(&short), None);
        assert_eq!(split_counts(&format!("{}\u{1f}9", row("hg", 0, 0))), None);
        assert_eq!(
            split_counts(&row("hg", 0, 0).replacen("\u{1f}1\u{1f}", "\u{1f}x\u{1f}", 1)),
            None
        );
    }

    #[test]
    fn pending_rows_split_from_their_joined_text() {
        let joined = "t1\u{1f}hg\u{1f}5\u{1f}100\u{1f}\u{1f}\u{1f}200\u{1f}\u{1e}t2\u{1f}sj\u{1f}9\u{1f}\u{1f}\u{1f}7\u{1f}\u{1f}300";
        let rows = split_pending(joined).expect("splits");
        assert_eq!(
            rows,
            vec![
                PendingRow {
                    ticket: "t1".into(),
                    unit: "hg".into(),
                    assign_pos: 5,
                    sign_due: Some(100),
                    sign_pos: None,
                    left_at: None,
                    handle_due: Some(200),
                    closed_at: None,
                },
                PendingRow {
                    ticket: "t2".into(),
                    unit: "sj".into(),
                    assign_pos: 9,
                    sign_due: None,
                    sign_pos: None,
                    left_at: Some(7),
                    handle_due: None,
                    closed_at: Some(300),
                },
            ]
        );
        assert_eq!(split_pending(""), Some(Vec::new()));
        // A field too few or too many, or a number that is not one: read the rows.
        assert_eq!(
            split_pending("t1\u{1f}hg\u{1f}5\u{1f}1\u{1f}2\u{1f}3\u{1f}4"),
            None
        );
        assert_eq!(
            split_pending("t1\u{1f}hg\u{1f}5\u{1f}1\u{1f}2\u{1f}3\u{1f}4\u{1f}5\u{1f}6"),
            None
        );
        assert_eq!(
            split_pending("t1\u{1f}hg\u{1f}x\u{1f}\u{1f}\u{1f}\u{1f}\u{1f}"),
            None
        );
    }

    /// The joined read on a real SQLite: NULLs, empty and odd values come back as
    /// the rows have them.
    #[tokio::test]
    async fn pending_episodes_read_joined_as_the_rows_have_them() {
        // One connection: each connection to ":memory:" is a database of its own.
        let p = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("memory");
        sqlx::query(
            "CREATE TABLE stats_episodes (ticket TEXT, unit TEXT, assign_pos INTEGER, \
             sign_due INTEGER, sign_pos INTEGER, left_at INTEGER, handle_due INTEGER, \
             closed_at INTEGER, signed_at INTEGER, handled_at INTEGER, span_end INTEGER)",
        )
        .execute(&p)
        .await
        .expect("table");
        let open = super::super::facts::OPEN;
        for (t, u, sd, sp, la, hd, ca, sa) in [
            ("a", "hg", Some(500), None, None, Some(900), None, None),
            ("b", "", Some(600), Some(3), Some(10), None, None, None),
            ("c", "sj", None, None, None, Some(700), Some(0), Some(1)),
            ("d", "gone", Some(50), None, None, Some(60), None, None),
        ] {
            sqlx::query(
                "INSERT INTO stats_episodes VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, NULL, $9)",
            )
            .bind(t)
            .bind(u)
            .bind(sd)
            .bind(sp)
            .bind(la)
            .bind(hd)
            .bind(ca)
            .bind(sa)
            .bind(open)
            .execute(&p)
            .await
            .expect("row");
        }
        let mut joined = fetch_pending_joined(&p, None, 100)
            .await
            .expect("reads")
            .expect("splits");
        let mut rows: Vec<PendingRow> = pending_query::<sqlx::Sqlite>(PENDING_COLUMNS, None, 100)
            .build_query_as()
            .fetch_all(&p)
            .await
            .expect("rows");
        joined.sort_by(|a, b| a.ticket.cmp(&b.ticket));
        rows.sort_by(|a, b| a.ticket.cmp(&b.ticket));
        assert_eq!(rows.len(), 3, "d's deadlines are behind");
        assert_eq!(joined, rows);
        let scope = ["sj".to_string()];
        let only = fetch_pending_joined(&p, Some(&scope), 100)
            .await
            .expect("reads")
            .expect("splits");
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].closed_at, Some(0));
        let none = fetch_pending_joined(&p, None, 10_000)
            .await
            .expect("reads")
            .expect("splits");
        assert!(none.is_empty());
    }

    proptest! {
        /// Evidence orders as its stored text ("ticket@position" by ticket, then
        /// position), whatever bytes the tickets differ in.
        #[test]
        fn evidence_orders_as_its_ticket_text_then_position(
            a in any::<[u8; 16]>(), b in any::<[u8; 16]>(), same in any::<bool>(),
            pa in 0i64..1000, pb in 0i64..1000,
        ) {
            let (ta, tb) = (Uuid::from_bytes(a), if same { Uuid::from_bytes(a) } else { Uuid::from_bytes(b) });
            let (x, y) = (Evidence { ticket: ta, position: pa }, Evidence { ticket: tb, position: pb });
            let by_text = ta.hyphenated().to_string().cmp(&tb.hyphenated().to_string()).then(pa.cmp(&pb));
            prop_assert_eq!(x.cmp(&y), by_text);
            prop_assert_eq!(x.partial_cmp(&y), Some(by_text));
        }

        /// Taking the pending items out in one merge leaves what removing each did.
        #[test]
        fn removing_sorted_items_in_one_pass(
            items in proptest::collection::btree_set((0u128..40, 0i64..5), 0..60),
            gone in proptest::collection::btree_set((0u128..40, 0i64..5), 0..30),
        ) {
            let ev = |(t, p): &(u128, i64)| Evidence { ticket: Uuid::from_u128(*t), position: *p };
            let v: Vec<Evidence> = items.iter().map(ev).collect();
            let g: Vec<Evidence> = gone.iter().map(ev).collect();
            let mut merged = v.clone();
            remove_sorted(&mut merged, g.iter().copied());
            let expected: Vec<Evidence> = v.iter().copied().filter(|e| !g.contains(e)).collect();
            prop_assert_eq!(merged, expected);
        }

        #[test]
        fn turnaround_selects_the_nearest_ranks(secs in proptest::collection::vec(0i64..2_000_000, 1..300)) {
            prop_assert_eq!(turnaround(&secs), by_sorting(&secs));
        }
    }
}

//! The figures and what they are computed from: the rows read, the requests,
//! the tables of figures and their evidence, and the items of the stats endpoint.
//! These are the types the appraisal (`crate::appraisal`) imports; no I/O here.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::org::Org;
use crate::projections::daily::Counts;
use crate::projections::facts::Kind;
use crate::projections::periods::Period;

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
    pub(super) fn one_time(&self) -> bool {
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
    pub(super) fn targets<'u>(
        &self,
        units: impl Iterator<Item = &'u str>,
    ) -> HashMap<String, Vec<usize>> {
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
                    if let Some(&i) = index.get(a)
                        && !t.contains(&i)
                    {
                        t.push(i);
                    }
                }
            }
            out.insert(unit.to_string(), t);
        }
        out
    }

    /// A table of empty figures for every requested unit and period.
    pub(super) fn empty_table(&self) -> Table {
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
    /// One report per `accepted` occurrence row, less those a `report_voided` row
    /// takes back (closed as a duplicate, invalid or withdrawn; others are left out).
    pub fn from_rows(rows: &[OccurrenceRow]) -> Vec<AreaReport> {
        let voided: std::collections::HashSet<(&str, i64)> = rows
            .iter()
            .filter(|o| o.kind == Kind::ReportVoided.as_str())
            .map(|o| (o.ticket.as_str(), o.position))
            .collect();
        rows.iter()
            .filter(|o| o.kind == Kind::Accepted.as_str())
            .filter(|o| !voided.contains(&(o.ticket.as_str(), o.position)))
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

/// Turnaround summary in hours (two decimals): mean, median and p90 by nearest rank.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Turnaround {
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub p90: Option<f64>,
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
    /// True when the row rolls up units listed beside it (a township's row
    /// includes its agencies' figures): never add it to theirs.
    pub subtotal: bool,
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

/// Whether [`fetch_daily`](super::fetch_daily) reads the turnaround seconds (the
/// median and p90 need every value: the largest part of a long period's read). The
/// appraisal does not use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turnarounds {
    Read,
    Skip,
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

/// One stored list of a unit and month (an evidence list, or a township's report
/// list), parsed.
pub(super) struct EvidenceList {
    pub(super) unit: String,
    pub(super) month: i64,
    /// One of `daily::EVIDENCE_LISTS`, or a report list (`daily::REPORT_PREFIX`).
    pub(super) list: String,
    /// `list`'s index in `daily::EVIDENCE_LISTS` (None: a report list).
    pub(super) slot: Option<usize>,
    pub(super) items: Vec<Evidence>,
}

/// The rows behind a table's evidence lists (see `compute::fill_evidence`).
pub(super) struct EvidenceRows {
    /// The lists of the months asked for: every unit's, every list.
    pub(super) lists: Vec<Arc<MonthLists>>,
    /// The episodes whose sign or handle deadline is still ahead of `now`.
    pub(super) pending: Vec<PendingRow>,
}

/// Every list of one month, parsed, as the projection wrote them under one
/// revision (`stats_evidence_revs`).
pub(super) struct MonthLists {
    pub(super) lists: Vec<EvidenceList>,
}

/// An episode whose sign or handle deadline may still be ahead.
#[derive(sqlx::FromRow, Debug, PartialEq)]
pub(super) struct PendingRow {
    pub(super) ticket: String,
    pub(super) unit: String,
    pub(super) assign_pos: i64,
    pub(super) sign_due: Option<i64>,
    pub(super) sign_pos: Option<i64>,
    pub(super) left_at: Option<i64>,
    pub(super) handle_due: Option<i64>,
    pub(super) closed_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Evidence orders as its stored text ("ticket@position" by ticket, then
        /// position), whatever bytes the tickets differ in: the first, the last,
        /// or none (`shared` leading bytes of `b` are `a`'s, as UUIDv7 ids made in
        /// the same millisecond share their first six).
        #[test]
        fn evidence_orders_as_its_ticket_text_then_position(
            a in any::<[u8; 16]>(), mut b in any::<[u8; 16]>(), shared in 0usize..=16,
            pa in 0i64..1000, pb in 0i64..1000,
        ) {
            b[..shared].copy_from_slice(&a[..shared]);
            let (ta, tb) = (Uuid::from_bytes(a), Uuid::from_bytes(b));
            let (x, y) = (Evidence { ticket: ta, position: pa }, Evidence { ticket: tb, position: pb });
            let by_text = ta.hyphenated().to_string().cmp(&tb.hyphenated().to_string()).then(pa.cmp(&pb));
            prop_assert_eq!(x.cmp(&y), by_text);
            prop_assert_eq!(x.partial_cmp(&y), Some(by_text));
        }
    }
}

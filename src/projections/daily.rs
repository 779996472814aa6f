//! Daily counters: what each episode and occurrence adds to its unit's figures,
//! by business day, so that a period's figures are sums over a few hundred rows
//! instead of a count over every episode that touches the period.
//!
//! The projection keeps `stats_daily` (one row per unit and day, one column per
//! [`Col`]) and `stats_turnaround` (the turnaround seconds of the episodes handled
//! that day, for the median and p90) up to date by subtracting what a ticket's
//! episodes contributed before an event and adding what they contribute after it.
//! Everything here is pure.
//!
//! Two figures are not plain sums and are recovered exactly:
//!
//! - *due to finish* counts an episode once in a period that holds both its
//!   deadline and its handling. The day of the handling also carries "both in the
//!   same day / month / quarter / year" columns, and a period of that granularity
//!   subtracts them: due + handled − both.
//! - *overdue at the end of a period* is a running total: an episode starts being
//!   overdue on the day of its deadline and stops on the day it is resolved
//!   (handled, returned or closed), so the overdue count at the start of day D is
//!   the sum of starts minus stops over the days before D. For a period that has
//!   not ended yet the figure is "overdue now", read from the open episodes.

pub mod parts;

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use super::facts::{self, Episode, Kind, Occurrence, TicketFacts};
use super::periods::Granularity;
use crate::sla::calendar::business_date;

/// The counters, in the order of `stats_daily`'s columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Col {
    Received,
    DueToSign,
    SignedOnTime,
    Signed,
    /// Handle deadline that day (counted as due to finish).
    DtfDue,
    OnTimeDue,
    /// Handled that day (counted as due to finish).
    DtfHandled,
    OnTimeHandled,
    /// Handled that day, with the deadline in the same day / month / quarter / year.
    BothDay,
    BothMonth,
    BothQuarter,
    BothYear,
    OnTimeBothDay,
    OnTimeBothMonth,
    OnTimeBothQuarter,
    OnTimeBothYear,
    Handled,
    OneTime,
    TurnaroundSecs,
    OverdueStart,
    OverdueEnd,
    Returns,
    ExtensionsRequested,
    ExtensionsApproved,
    VerificationFailures,
    Supervisions,
    RepeatedSupervisions,
    Satisfied,
    BasicallySatisfied,
    Unsatisfied,
    RepeatComplaints,
}

pub const NCOLS: usize = 31;

/// Column names of `stats_daily`, by [`Col`].
pub const COLUMNS: [&str; NCOLS] = [
    "received",
    "due_to_sign",
    "signed_on_time",
    "signed",
    "dtf_due",
    "on_time_due",
    "dtf_handled",
    "on_time_handled",
    "both_day",
    "both_month",
    "both_quarter",
    "both_year",
    "on_time_both_day",
    "on_time_both_month",
    "on_time_both_quarter",
    "on_time_both_year",
    "handled",
    "one_time",
    "turnaround_secs",
    "overdue_start",
    "overdue_end",
    "returns",
    "extensions_requested",
    "extensions_approved",
    "verification_failures",
    "supervisions",
    "repeated_supervisions",
    "satisfied",
    "basically_satisfied",
    "unsatisfied",
    "repeat_complaints",
];

/// The "both" columns of a granularity: (due to finish, handled on time).
pub fn both_cols(g: Granularity) -> (Col, Col) {
    match g {
        Granularity::Day => (Col::BothDay, Col::OnTimeBothDay),
        Granularity::Month => (Col::BothMonth, Col::OnTimeBothMonth),
        Granularity::Quarter => (Col::BothQuarter, Col::OnTimeBothQuarter),
        Granularity::Year => (Col::BothYear, Col::OnTimeBothYear),
    }
}

/// One unit's counters for one day.
pub type Counts = [i64; NCOLS];

/// A business day as a number: days since 1970-01-01 (Asia/Shanghai dates).
pub fn day_number(d: NaiveDate) -> i64 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days()
}

/// The business day of an instant in microseconds.
pub fn day_of(us: i64) -> i64 {
    day_number(business_date(facts::instant(us)))
}

/// The date of a day number.
pub fn date_of(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .unwrap_or_default()
        .checked_add_signed(chrono::Duration::days(day))
        .unwrap_or_default()
}

/// The month of a day number, as a number: year × 12 + month − 1.
pub fn month_of_day(day: i64) -> i64 {
    month_number(date_of(day))
}

/// The first day of a month number (None outside chrono's range).
pub fn first_day_of_month(month: i64) -> Option<NaiveDate> {
    let year = i32::try_from(month.div_euclid(12)).ok()?;
    NaiveDate::from_ymd_opt(year, month.rem_euclid(12) as u32 + 1, 1)
}

/// The month of a date as a number: year × 12 + month − 1.
pub fn month_number(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

fn same_period(g: Granularity, a: i64, b: i64) -> bool {
    let (a, b) = (date_of(a), date_of(b));
    match g {
        Granularity::Day => a == b,
        Granularity::Month => a.year() == b.year() && a.month() == b.month(),
        Granularity::Quarter => a.year() == b.year() && (a.month() - 1) / 3 == (b.month() - 1) / 3,
        Granularity::Year => a.year() == b.year(),
    }
}

/// Changes to the counters and turnaround lists, keyed by (unit, day).
#[derive(Default, Debug)]
pub struct Delta {
    pub counts: HashMap<(String, i64), Counts>,
    /// Turnaround seconds added (+1) or removed (−1) per (unit, day).
    pub turnaround: HashMap<(String, i64), Vec<(i64, i64)>>,
    /// Evidence items (`ticket:position`) added or removed per (unit, month, list),
    /// the list named as the appraisal names it (`late_signs`, ...). Items are
    /// stored as if every deadline still open had passed; a query takes out the
    /// ones whose deadline is still ahead of it (see `stats::fetch_evidence`).
    pub evidence: HashMap<EvidenceKey, Vec<(String, i64)>>,
}

/// (unit, month, list name): evidence is kept by month only.
pub type EvidenceKey = (String, i64, Cow<'static, str>);

/// The list of the grid or hotline reports of one category accepted in a township
/// (the area rules of the appraisal): `report:{source}:{category}`, kept under the
/// township's code.
pub fn report_list(source: &str, category: &str) -> String {
    format!("{REPORT_PREFIX}{source}:{category}")
}

/// The prefix of the report lists' names.
pub const REPORT_PREFIX: &str = "report:";

/// A report list's (source, category), from its name.
pub fn parse_report_list(list: &str) -> Option<(&str, &str)> {
    list.strip_prefix(REPORT_PREFIX)?.split_once(':')
}

/// The evidence lists kept per unit and month (all but `overdue`, which depends on
/// the end of the period asked for).
pub const EVIDENCE_LISTS: [&str; 9] = [
    "late_signs",
    "not_on_time",
    "late_completions",
    "verification_failed",
    "supervised_repeat",
    "feedback_unsatisfied",
    "feedback_basic",
    "returned",
    "extension_approved",
];

/// Which of the stored evidence lists ([`EVIDENCE_LISTS`], by index) a reader
/// wants: the others are not copied, sorted or filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lists(u16);

impl Lists {
    pub const ALL: Lists = Lists((1 << EVIDENCE_LISTS.len()) - 1);
    pub const NONE: Lists = Lists(0);

    /// These and the list named `name` (a name that is not a stored list, such
    /// as `overdue`, adds nothing).
    pub fn with(self, name: &str) -> Lists {
        match list_slot(name) {
            Some(i) => Lists(self.0 | 1 << i),
            None => self,
        }
    }

    pub fn has(self, slot: usize) -> bool {
        slot < EVIDENCE_LISTS.len() && self.0 & (1 << slot) != 0
    }
}

/// A stored list's index in [`EVIDENCE_LISTS`].
pub fn list_slot(name: &str) -> Option<usize> {
    EVIDENCE_LISTS.iter().position(|l| *l == name)
}

/// An evidence item as stored: `ticket:position`.
pub fn item(ticket: &uuid::Uuid, position: i64) -> String {
    format!("{ticket}:{position}")
}

impl Delta {
    fn add(&mut self, unit: &str, day: i64, col: Col, n: i64) {
        let c = self
            .counts
            .entry((unit.to_string(), day))
            .or_insert([0; NCOLS]);
        c[col as usize] += n;
    }

    fn evidence(&mut self, unit: &str, day: i64, list: &'static str, item: String, n: i64) {
        self.evidence_in(unit, day, Cow::Borrowed(list), item, n);
    }

    /// Evidence is kept by month only: keyed by month from the start, so no pass
    /// over every item is needed to sum days into months.
    fn evidence_in(&mut self, unit: &str, day: i64, list: Cow<'static, str>, item: String, n: i64) {
        self.evidence
            .entry((unit.to_string(), month_of_day(day), list))
            .or_default()
            .push((item, n));
    }

    /// What one episode of `ticket` contributes, times `sign` (+1 to add, −1 to
    /// take away). The same rules as `stats::compute`, which counts episode rows.
    pub fn episode(&mut self, ticket: &uuid::Uuid, e: &Episode, sign: i64) {
        let u = e.unit.as_str();
        self.add(u, day_of(e.assigned_at), Col::Received, sign);
        if let Some(due) = e.sign_due {
            let returned_first = e.left_at.is_some_and(|l| l < due);
            if !returned_first {
                let d = day_of(due - 1);
                self.add(u, d, Col::DueToSign, sign);
                if e.signed_at.is_some_and(|s| s <= due) {
                    self.add(u, d, Col::SignedOnTime, sign);
                } else {
                    // Signed late, or not signed (late once the deadline passes).
                    let pos = e.sign_pos.unwrap_or(e.assign_pos);
                    self.evidence(u, d, "late_signs", item(ticket, pos), sign);
                }
            }
        }
        if let Some(s) = e.signed_at {
            self.add(u, day_of(s), Col::Signed, sign);
        }
        let due = e.handle_due;
        let due_counts = facts::due_counts(due, e.left_at, e.closed_at);
        let on_time = facts::finished_on_time(e.handled_at, e.handled_due, due);
        let ot = i64::from(on_time) * sign;
        let due_day = due.filter(|_| due_counts).map(|d| day_of(d - 1));
        // Not on time, as far as known once every deadline has passed: handled
        // late, or not handled and still with the unit. Listed on the deadline's
        // day and the handling's; a period lists an item once.
        let not_on_time = match e.handled_at {
            Some(_) => !on_time,
            None => due.is_some() && e.left_at.is_none() && e.closed_at.is_none(),
        };
        let not_on_time_item = item(ticket, e.handle_pos.unwrap_or(e.assign_pos));
        if let Some(dd) = due_day {
            self.add(u, dd, Col::DtfDue, sign);
            self.add(u, dd, Col::OnTimeDue, ot);
            if not_on_time {
                self.evidence(u, dd, "not_on_time", not_on_time_item.clone(), sign);
            }
        }
        if let Some(h) = e.handled_at {
            let hd = day_of(h);
            self.add(u, hd, Col::DtfHandled, sign);
            self.add(u, hd, Col::OnTimeHandled, ot);
            if not_on_time {
                self.evidence(u, hd, "not_on_time", not_on_time_item.clone(), sign);
            }
            if e.handled_due.is_some_and(|d| h > d) {
                let pos = e.handle_pos.unwrap_or(e.assign_pos);
                self.evidence(u, hd, "late_completions", item(ticket, pos), sign);
            }
            if let Some(dd) = due_day {
                for g in [
                    Granularity::Day,
                    Granularity::Month,
                    Granularity::Quarter,
                    Granularity::Year,
                ] {
                    if same_period(g, dd, hd) {
                        let (both, both_ot) = both_cols(g);
                        self.add(u, hd, both, sign);
                        self.add(u, hd, both_ot, ot);
                    }
                }
            }
            let secs = e.turnaround_secs.unwrap_or(0);
            self.add(u, hd, Col::Handled, sign);
            self.add(u, hd, Col::TurnaroundSecs, secs * sign);
            if e.one_time() {
                self.add(u, hd, Col::OneTime, sign);
            }
            self.turnaround
                .entry((u.to_string(), hd))
                .or_default()
                .push((secs, sign));
        }
        // Overdue at the start of day D when day(due) < D <= day(resolved − 1µs).
        if let Some(h) = due {
            let resolved = [e.handled_at, e.left_at, e.closed_at]
                .into_iter()
                .flatten()
                .min();
            let start = day_of(h);
            match resolved {
                None => self.add(u, start, Col::OverdueStart, sign),
                Some(r) => {
                    let end = day_of(r - 1);
                    if start < end {
                        self.add(u, start, Col::OverdueStart, sign);
                        self.add(u, end, Col::OverdueEnd, sign);
                    }
                }
            }
        }
    }

    /// What a ticket's facts contribute, times `sign`.
    pub fn ticket(&mut self, f: &TicketFacts, sign: i64) {
        for e in &f.episodes {
            self.episode(&f.ticket, e, sign);
        }
    }

    /// What an occurrence adds.
    pub fn occurrence(&mut self, o: &Occurrence) {
        let col = match o.kind {
            Kind::Accepted | Kind::ReportVoided => {
                // Listed for the area rules: by township, source and category; a
                // report closed as a duplicate, invalid or withdrawn leaves its list
                // again (its `ReportVoided` mirrors the `Accepted`).
                let list = report_list(&o.source, &o.category);
                let it = item(&o.ticket, o.position);
                let sign = if o.kind == Kind::Accepted { 1 } else { -1 };
                self.evidence_in(&o.unit, day_of(o.at), Cow::Owned(list), it, sign);
                return;
            }
            Kind::RepeatComplaint => Col::RepeatComplaints,
            Kind::Returned => Col::Returns,
            Kind::ExtensionRequested => Col::ExtensionsRequested,
            Kind::ExtensionApproved => Col::ExtensionsApproved,
            Kind::VerificationFailed => Col::VerificationFailures,
            Kind::Supervised => Col::Supervisions,
            Kind::SupervisedRepeat => Col::RepeatedSupervisions,
            Kind::FeedbackSatisfied => Col::Satisfied,
            Kind::FeedbackBasic => Col::BasicallySatisfied,
            Kind::FeedbackUnsatisfied => Col::Unsatisfied,
        };
        let day = day_of(o.at);
        self.add(&o.unit, day, col, 1);
        let list = match o.kind {
            Kind::Returned => "returned",
            Kind::ExtensionApproved => "extension_approved",
            Kind::VerificationFailed => "verification_failed",
            Kind::SupervisedRepeat => "supervised_repeat",
            Kind::FeedbackUnsatisfied => "feedback_unsatisfied",
            Kind::FeedbackBasic => "feedback_basic",
            _ => return,
        };
        self.evidence(&o.unit, day, list, item(&o.ticket, o.position), 1);
    }

    /// The same changes summed per month (`stats_monthly`): keyed by (unit, month).
    /// The evidence (kept by month already) moves to the monthly delta.
    pub fn monthly(&mut self) -> Delta {
        let mut m = Delta::default();
        for ((unit, day), c) in &self.counts {
            let e = m
                .counts
                .entry((unit.clone(), month_of_day(*day)))
                .or_insert([0; NCOLS]);
            for (a, b) in e.iter_mut().zip(c) {
                *a += b;
            }
        }
        for ((unit, day), v) in &self.turnaround {
            m.turnaround
                .entry((unit.clone(), month_of_day(*day)))
                .or_default()
                .extend_from_slice(v);
        }
        m.evidence = std::mem::take(&mut self.evidence);
        m.prune();
        m
    }

    /// Drops the entries that cancel out (an event that changed nothing counted).
    pub fn prune(&mut self) {
        self.counts.retain(|_, c| c.iter().any(|&n| n != 0));
        for v in self.turnaround.values_mut() {
            let mut net: HashMap<i64, i64> = HashMap::new();
            for &(s, n) in v.iter() {
                *net.entry(s).or_default() += n;
            }
            let mut flat: Vec<(i64, i64)> = net.into_iter().filter(|&(_, n)| n != 0).collect();
            flat.sort_unstable();
            *v = flat;
        }
        self.turnaround.retain(|_, v| !v.is_empty());
        for v in self.evidence.values_mut() {
            let mut net: HashMap<String, i64> = HashMap::new();
            for (item, n) in v.drain(..) {
                *net.entry(item).or_default() += n;
            }
            let mut flat: Vec<(String, i64)> = net.into_iter().filter(|(_, n)| *n != 0).collect();
            flat.sort_unstable();
            *v = flat;
        }
        self.evidence.retain(|_, v| !v.is_empty());
    }
}

/// A stored turnaround list: seconds, sorted, comma-separated.
pub fn parse_list(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|x| x.parse().ok()).collect()
}

pub fn format_list(v: &[i64]) -> String {
    let mut out = String::with_capacity(v.len() * 7);
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&x.to_string());
    }
    out
}

/// Applies (seconds, ±count) changes to a sorted list.
pub fn apply_list(list: &mut Vec<i64>, changes: &[(i64, i64)]) {
    for &(secs, n) in changes {
        if n > 0 {
            for _ in 0..n {
                let at = list.partition_point(|&x| x < secs);
                list.insert(at, secs);
            }
        } else {
            for _ in 0..(-n) {
                if let Ok(at) = list.binary_search(&secs) {
                    list.remove(at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_follow_shanghai_dates() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(date_of(day_number(d)), d);
        // 2026-09-30T16:00:00Z is 2026-10-01 00:00 in Shanghai.
        let us = chrono::DateTime::parse_from_rfc3339("2026-09-30T16:00:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(date_of(day_of(us)), d);
        assert_eq!(date_of(day_of(us - 1)), d.pred_opt().unwrap());
        assert_eq!(month_of_day(day_number(d)), 2026 * 12 + 9);
    }

    #[test]
    fn item_lists_keep_sorted_multisets() {
        let apply_items =
            |stored: &str, changes: &[(String, i64)]| parts::apply(stored, changes).join(",");
        let s = apply_items(
            "b:2,a:1",
            &[("c:3".into(), 1), ("a:1".into(), 1), ("b:2".into(), -1)],
        );
        assert_eq!(s, "a:1,a:1,c:3");
        assert_eq!(
            apply_items(&s, &[("a:1".into(), -2), ("x:9".into(), -1)]),
            "c:3"
        );
        assert_eq!(apply_items("", &[]), "");
    }

    #[test]
    fn lists_keep_sorted_multisets() {
        let mut v = parse_list("5,9");
        apply_list(&mut v, &[(7, 1), (5, -1), (9, 2)]);
        assert_eq!(format_list(&v), "7,9,9,9");
        apply_list(&mut v, &[(9, -3), (1, -1)]);
        assert_eq!(v, vec![7]);
        assert!(parse_list("").is_empty());
    }

    #[test]
    fn an_episode_taken_away_cancels_out() {
        let e = Episode {
            seq: 1,
            unit: "u".into(),
            assigned_at: 1_790_000_000_000_000,
            sign_due: Some(1_790_100_000_000_000),
            signed_at: Some(1_790_050_000_000_000),
            handle_due: Some(1_790_500_000_000_000),
            handled_at: Some(1_790_900_000_000_000),
            handled_due: Some(1_790_500_000_000_000),
            turnaround_secs: Some(3600),
            ..Episode::default()
        };
        let mut d = Delta::default();
        let t = uuid::Uuid::nil();
        d.episode(&t, &e, 1);
        assert!(!d.counts.is_empty());
        d.episode(&t, &e, -1);
        d.prune();
        assert!(
            d.counts.is_empty() && d.turnaround.is_empty() && d.evidence.is_empty(),
            "{d:?}"
        );
    }
}

//! The pure arithmetic of the statistics: rows or daily counters in, tables of
//! figures out, and the evidence lists fitted to the periods asked for. No I/O:
//! everything here takes what `read` (and `cache`) returned.

use std::collections::HashMap;

use crate::org::Org;
use crate::projections::daily::{self, Col, Counts, Lists};
use crate::projections::facts::{self, Kind};
use crate::projections::periods::{Granularity, Period};

use super::model::{
    Daily, EpisodeRow, Evidence, EvidenceRows, Figures, OccurrenceRow, Request, StatsItem, Table,
    Turnaround, ratio, round, uuid_of,
};

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
        if due_counts && let Some(p) = due.and_then(|d| period_of(d - 1)) {
            dtf_periods.push(p);
        }
        if let Some(p) = e.handled_at.and_then(period_of)
            && !dtf_periods.contains(&p)
        {
            dtf_periods.push(p);
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
                Kind::Accepted | Kind::ReportVoided => {}
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
            subtotal: false,
        }
    }
}

/// Whether `periods` (months or quarters, in order) make up exactly `year`.
pub(super) fn tiles(periods: &[Period], year: &Period) -> bool {
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
pub(super) fn summed_year(parts: &Daily) -> Daily {
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

/// Fills the `wanted` evidence lists of a table of months, quarters or years
/// from the rows of `stats_evidence_monthly` (which may cover more months than
/// the table: those are skipped). The stored lists hold every item as if each
/// open deadline had passed; the episodes whose sign or handle deadline is still
/// ahead of `req.now` are taken out again.
pub(super) fn fill_evidence(
    req: &Request<'_>,
    evidence: &EvidenceRows,
    wanted: Lists,
    table: &mut Table,
) {
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
    use uuid::Uuid;

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

    proptest! {
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

//! The figures of a whole range (`granularity=total`): one period from the first
//! day to the last, counted from the episode and occurrence rows (the per-ticket
//! facts), not summed from the counters of its months. A ticket due in one month
//! and handled in the next is due to finish once; the on-time rate is the range's
//! on-time episodes over its due ones; the turnaround summary is taken over every
//! episode handled in the range; overdue open is judged at the end of the range
//! (or now, if sooner). The counters cannot give this for any range: they know
//! "due and handled in the same day, month, quarter or year", not in any range.

use chrono::{DateTime, NaiveDate, Utc};

use super::compute::compute;
use super::model::{Figures, Request, Table};
use super::read::{fetch_episodes, occurrence_counts};
use crate::org::Org;
use crate::projections::facts::Kind;
use crate::projections::periods::{Granularity, Period};
use crate::sla::calendar::start_of_day;
use crate::store::{Pool, StoreError};

/// The period from `from` to `to` (both days included), labelled `from/to` (an
/// ISO 8601 interval of dates). Its granularity is not used by `compute`.
pub fn range(from: NaiveDate, to: NaiveDate) -> Period {
    let end_day = to.succ_opt().unwrap_or(to);
    Period {
        label: format!("{}/{}", from.format("%Y-%m-%d"), to.format("%Y-%m-%d")),
        granularity: Granularity::Day,
        first_day: from,
        end_day,
        start: start_of_day(from),
        end: start_of_day(end_day),
    }
}

/// The figures of `unit` (rolled up over its subtree) over `period`, then of every
/// unit beneath it with any figure in the range, each rolled up over its own
/// subtree; in the order of the organisation, `unit` first.
pub async fn total(
    pool: &Pool,
    org: &Org,
    unit: &str,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Table, StoreError> {
    let subtree: Vec<String> = org.subtree(unit).into_iter().map(str::to_string).collect();
    let scope = (org.root().code != unit).then_some(subtree.as_slice());
    let (episodes, occurrences) = tokio::try_join!(
        fetch_episodes(pool, scope, period.start, period.end, None),
        occurrence_counts(pool, scope, period.start, period.end),
    )?;
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for u in episodes
        .iter()
        .map(|e| e.unit.as_str())
        .chain(occurrences.iter().map(|(u, _, _)| u.as_str()))
    {
        if seen.insert(u) {
            seen.extend(org.ancestors(u));
        }
    }
    let units: Vec<String> = std::iter::once(unit.to_string())
        .chain(
            subtree
                .iter()
                .filter(|u| u.as_str() != unit && seen.contains(u.as_str()))
                .cloned(),
        )
        .collect();
    let req = Request {
        org,
        units,
        own_only: false,
        periods: vec![period],
        now,
    };
    let mut table = crate::cpu::run(|| compute(&req, &episodes, &[]));
    add_occurrences(&req, &occurrences, &mut table);
    // A unit whose rows count for nothing in the range (an episode that spans it
    // without a figure) is left out, as the periods' answer leaves it out.
    let empty = Figures::default();
    let keep: Vec<bool> = table
        .cells
        .iter()
        .enumerate()
        .map(|(i, f)| i == 0 || !same_counts(f, &empty))
        .collect();
    let mut units = Vec::new();
    let mut cells = Vec::new();
    for ((u, c), k) in table.units.into_iter().zip(table.cells).zip(keep) {
        if k {
            units.push(u);
            cells.push(c);
        }
    }
    Ok(Table {
        units,
        periods: table.periods,
        cells,
    })
}

/// Adds the occurrences counted per unit and kind to the units they count for
/// (each unit's own and its requested ancestors'), as `compute` counts them one by one.
fn add_occurrences(req: &Request<'_>, counts: &[(String, String, i64)], table: &mut Table) {
    let targets = req.targets(counts.iter().map(|(u, _, _)| u.as_str()));
    for (unit, kind, n) in counts {
        let (Some(kind), Some(ts)) = (Kind::parse(kind), targets.get(unit)) else {
            continue;
        };
        let n = (*n).max(0) as u64;
        for &t in ts {
            let c = &mut table.cells[t];
            match kind {
                Kind::Accepted | Kind::ReportVoided => {}
                Kind::RepeatComplaint => c.repeat_complaints += n,
                Kind::Returned => c.returns += n,
                Kind::ExtensionRequested => c.extensions_requested += n,
                Kind::ExtensionApproved => c.extensions_approved += n,
                Kind::VerificationFailed => c.verification_failures += n,
                Kind::Supervised => c.supervisions += n,
                Kind::SupervisedRepeat => c.repeated_supervisions += n,
                Kind::FeedbackSatisfied => c.satisfied += n,
                Kind::FeedbackBasic => c.basically_satisfied += n,
                Kind::FeedbackUnsatisfied => c.unsatisfied += n,
            }
        }
    }
}

/// Whether two figures have the same counts (the evidence lists aside).
fn same_counts(a: &Figures, b: &Figures) -> bool {
    let counts = |f: &Figures| {
        [
            f.received,
            f.due_to_sign,
            f.signed,
            f.signed_on_time,
            f.due_to_finish,
            f.handled,
            f.handled_on_time,
            f.overdue_open,
            f.one_time,
            f.returns,
            f.extensions_requested,
            f.extensions_approved,
            f.verification_failures,
            f.supervisions,
            f.repeated_supervisions,
            f.satisfied,
            f.basically_satisfied,
            f.unsatisfied,
            f.repeat_complaints,
        ]
    };
    counts(a) == counts(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_its_days_in_beijing() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let p = range(d(7, 1), d(12, 31));
        assert_eq!(p.label, "2026-07-01/2026-12-31");
        assert_eq!(p.start.to_rfc3339(), "2026-06-30T16:00:00+00:00");
        assert_eq!(p.end.to_rfc3339(), "2026-12-31T16:00:00+00:00");
    }
}

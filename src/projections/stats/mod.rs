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
//!
//! The files:
//! - `model.rs`: the figures, their evidence, the requests, the tables and the rows
//!   they are counted from (the types the appraisal imports);
//! - `compute.rs`: the pure arithmetic, rows or counters in and figures out (no I/O);
//! - `read.rs`: the SQL, on either engine;
//! - `cache.rs`: the parsed evidence lists of each month, kept by revision;
//! - `total.rs`: the figures of a whole range (`granularity=total`), from the rows;
//! - this file: the entry points that read and compute together
//!   ([`figures_with_evidence`], [`figures_with_evidence_of`], [`area_reports`]),
//!   and the re-exports callers use.
//!
//! The open and overdue ticket gauges are set from the same rows by
//! `projections::gauges`.

mod cache;
mod compute;
pub mod model;
mod read;
mod total;

use chrono::{DateTime, Utc};

use super::daily::{self, Lists};
use super::facts::Kind;
use super::periods::{Granularity, Period};
use crate::store::{Pool, StoreError};

pub use cache::new_revision;
pub use compute::{compute, compute_daily, turnaround, units_with_figures};
pub use model::{
    AreaReport, Daily, EpisodeRow, Evidence, Figures, OccurrenceRow, Request, StatsItem, Table,
    Turnaround, Turnarounds, parse_item, ratio, round, uuid_of,
};
pub use read::{fetch, fetch_daily, occurrences, overdue_tickets};
pub use total::{range, total};

use cache::fetch_month_lists;
use compute::{fill_evidence, summed_year, tiles};
use model::EvidenceRows;
use read::{fetch_pending, fetch_rows};

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
        // A voided report mirrors its acceptance (same time, unit and category).
        let kinds = [Kind::Accepted, Kind::ReportVoided];
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
        if let (Some(first), Some(last)) = (req.periods.first(), req.periods.last())
            && first.granularity != Granularity::Day
        {
            let (s, e) = (
                daily::month_number(first.first_day),
                daily::month_number(last.end_day),
            );
            months = Some(months.map_or((s, e), |(a, b)| (a.min(s), b.max(e))));
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

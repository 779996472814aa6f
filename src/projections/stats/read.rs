//! The SQL of the statistics: the episode and occurrence rows, the daily and
//! monthly counters, the pending episodes, the overdue list and the stored
//! evidence lists, on either engine (`on_pool!`). On SQLite some reads come back
//! as one joined text, split here (`split_counts`, `split_pending`).

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use sqlx::Row;

use super::model::{Daily, EpisodeRow, OccurrenceRow, PendingRow, Turnarounds};
use crate::projections::daily::{self, Col, Counts};
use crate::projections::facts::{self, Kind};
use crate::projections::periods::{Granularity, Period};
use crate::projections::unit_stats::on_pool;
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
pub(super) async fn fetch_rows(
    pool: &Pool,
    scope: Option<&[String]>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    evidence_at: Option<DateTime<Utc>>,
) -> Result<(Vec<EpisodeRow>, Vec<OccurrenceRow>), StoreError> {
    let (s, e) = (start.timestamp_micros(), end.timestamp_micros());
    let episodes = fetch_episodes(pool, scope, start, end, evidence_at).await?;
    on_pool!(pool, p, Db => {
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

/// The episodes that can count in `[start, end)` (assigned before its end, their
/// span reaching its start) for these units (all when None); with `evidence_at`,
/// only those that were late or overdue at some point before it.
pub(super) async fn fetch_episodes(
    pool: &Pool,
    scope: Option<&[String]>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    evidence_at: Option<DateTime<Utc>>,
) -> Result<Vec<EpisodeRow>, StoreError> {
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
        Ok(q.build_query_as().fetch_all(p).await?)
    })
}

/// The occurrences in `[start, end)` counted per unit and kind (all units when
/// `scope` is None), but acceptances: what a whole range's figures need of them
/// (`total`), a few hundred rows where the occurrences are tens of thousands.
pub(super) async fn occurrence_counts(
    pool: &Pool,
    scope: Option<&[String]>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    let (s, e) = (start.timestamp_micros(), end.timestamp_micros());
    on_pool!(pool, p, Db => {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT unit, kind, CAST(COUNT(*) AS BIGINT) FROM stats_occurrences WHERE at >= ",
        );
        q.push_bind(s).push(" AND at < ").push_bind(e).push(" AND kind <> 'accepted'");
        if let Some(units) = scope {
            push_units!(q, units);
        }
        q.push(" GROUP BY unit, kind");
        Ok(q.build_query_as().fetch_all(p).await?)
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
        q.push_bind(facts::OPEN)
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
            q.push_bind(facts::OPEN).push(" AND handle_due < ").push_bind(now.timestamp_micros());
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

/// The episodes whose sign or handle deadline is still ahead of `now` (µs): their
/// span reaches past now.
pub(super) async fn fetch_pending(
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
) -> QueryBuilder<DB>
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

/// The revision of each month in `[s, e)` that has one: (month, revision), as
/// `stats_evidence_revs` holds them (see `cache::fetch_month_lists`).
pub(super) async fn month_revisions(
    pool: &Pool,
    s: i64,
    e: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let revs: Vec<(i64, i64)> = on_pool!(pool, p, Db => {
        let mut q = QueryBuilder::<Db>::new("SELECT month, rev FROM stats_evidence_revs WHERE month >= ");
        q.push_bind(s).push(" AND month < ").push_bind(e);
        q.build_query_as().fetch_all(p).await?
    });
    Ok(revs)
}

/// The stored parts of these months' lists: (unit, month, list, part, items),
/// unparsed and in no order (see `cache::read_months`, which puts each list's
/// parts together in the order of their bounds, `daily::parts`).
pub(super) async fn month_list_rows(
    pool: &Pool,
    months: &[i64],
) -> Result<Vec<(String, i64, String, String, String)>, StoreError> {
    let rows: Vec<(String, i64, String, String, String)> = on_pool!(pool, p, Db => {
        // The rows as they are (a few thousand a month): an ORDER BY would order
        // the bounds by the database's collation, not as the service does (bytes),
        // and a GROUP BY would copy every item once more.
        let mut q = QueryBuilder::<Db>::new(
            "SELECT unit, month, list, part, items FROM stats_evidence_monthly WHERE month IN (",
        );
        let mut sep = q.separated(", ");
        for m in months {
            sep.push_bind(*m);
        }
        q.push(")");
        q.build_query_as().fetch_all(p).await?
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let open = facts::OPEN;
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
}

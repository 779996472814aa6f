//! The appraisal's events as the scoring and the appraisal routes read them: the
//! ledger (entries, withdrawals, submissions, grades) folded from the log, and the
//! frozen bulletins. No read model: the log's partial indexes `events_appraisal` and
//! `events_bulletins` (migration 0010) find these events, and the queries below use
//! exactly their predicates (written out, not bound, so the planner can match them).
//!
//! These reads are of committed events, not of the gap-safe feed: an entry whose
//! append has answered is in the next read, which is what the person who made it
//! expects. A bulletin pins the position it was computed at instead
//! ([`last_event_at_or_below`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::appraisal::ledger::{AppraisalEvent, Ledger, Recorded};
use crate::store::sqlite::{parse_time, parse_uuid};
use crate::store::{Pool, StoreError};

/// The predicate of the partial index `events_appraisal` (migration 0010).
const LEDGER_TYPES: &str = "event_type IN ('AppraisalEntryRecorded', 'AppraisalEntryWithdrawn', \
     'AppraisalYearSubmitted', 'AppraisalYearReopened', 'AppraisalGradeRecorded')";

/// The predicate of the partial index `events_bulletins`.
const BULLETIN_TYPE: &str = "event_type = 'AppraisalBulletinPublished'";

/// The ledger's events query on this engine (with `upto`: only positions at or
/// below it), for the EXPLAIN test too.
pub fn ledger_sql(pool: &Pool, upto: bool) -> String {
    let (cols, bound) = match pool {
        Pool::Postgres(_) => (
            "position, stream_id::text, event_type, data::text, \
             COALESCE(metadata->>'actor', ''), to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            "$1",
        ),
        Pool::Sqlite(_) => (
            "position, stream_id, event_type, data, \
             COALESCE(json_extract(metadata, '$.actor'), ''), occurred_at",
            "?",
        ),
    };
    let upto = if upto {
        format!(" AND position <= {bound}")
    } else {
        String::new()
    };
    format!("SELECT {cols} FROM events WHERE {LEDGER_TYPES}{upto} ORDER BY position")
}

type LedgerRow = (i64, String, String, String, String, String);

/// The appraisal events of the log (bulletins aside), decoded, in log order; with
/// `upto`, only those at or below that position.
pub async fn ledger_events(pool: &Pool, upto: Option<i64>) -> Result<Vec<Recorded>, StoreError> {
    let sql = ledger_sql(pool, upto.is_some());
    let rows: Vec<LedgerRow> = crate::store::on_pool!(pool, |p| {
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
        let q = match upto {
            Some(u) => q.bind(u),
            None => q,
        };
        q.fetch_all(p).await.map_err(StoreError::classify)?
    });
    rows.into_iter()
        .map(|(position, stream, event_type, data, actor, at)| {
            let data: Value = serde_json::from_str(&data)
                .map_err(|e| StoreError::Corrupt(format!("event {position}: bad json: {e}")))?;
            let event = match AppraisalEvent::from_parts(&event_type, &data) {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    return Err(StoreError::Corrupt(format!(
                        "event {position} ({event_type}) cannot be read: {e}"
                    )));
                }
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "event {position}: {event_type} is not an appraisal event"
                    )));
                }
            };
            Ok(Recorded {
                position,
                stream: parse_uuid(&stream)?,
                event,
                actor,
                at: parse_time(&at)?,
            })
        })
        .collect()
}

/// The ledger folded from the log (at or below `upto` when given).
pub async fn ledger(pool: &Pool, upto: Option<i64>) -> Result<Ledger, StoreError> {
    Ok(Ledger::fold(&ledger_events(pool, upto).await?))
}

/// A bulletin as its list shows it: the small fields, read out of the payload by
/// the engine (the frozen answer itself is not read).
#[derive(Clone, Debug, PartialEq)]
pub struct BulletinHead {
    pub id: Uuid,
    pub period: String,
    pub unit: Option<String>,
    pub profile: String,
    pub position: i64,
    pub position_hash: String,
    pub published_at: DateTime<Utc>,
    pub actor: String,
}

/// The bulletin list's query on this engine (with `period`: only that period's).
pub fn bulletins_sql(pool: &Pool, period: bool) -> String {
    let (cols, bound) = match pool {
        Pool::Postgres(_) => (
            "stream_id::text, data->>'period', data->>'unit', COALESCE(data->>'profile', ''), \
             (data->>'position')::bigint, COALESCE(data->>'position_hash', ''), \
             to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), COALESCE(metadata->>'actor', '')",
            ("data->>'period'", "$1"),
        ),
        Pool::Sqlite(_) => (
            "stream_id, json_extract(data, '$.period'), json_extract(data, '$.unit'), \
             COALESCE(json_extract(data, '$.profile'), ''), json_extract(data, '$.position'), \
             COALESCE(json_extract(data, '$.position_hash'), ''), occurred_at, \
             COALESCE(json_extract(metadata, '$.actor'), '')",
            ("json_extract(data, '$.period')", "?"),
        ),
    };
    let filter = if period {
        format!(" AND {} = {}", bound.0, bound.1)
    } else {
        String::new()
    };
    format!("SELECT {cols} FROM events WHERE {BULLETIN_TYPE}{filter} ORDER BY position")
}

type HeadRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    String,
    String,
    String,
);

fn head_from_row(r: HeadRow) -> Result<BulletinHead, StoreError> {
    let (id, period, unit, profile, position, position_hash, at, actor) = r;
    Ok(BulletinHead {
        id: parse_uuid(&id)?,
        period: period.unwrap_or_default(),
        unit,
        profile,
        position: position.unwrap_or(0),
        position_hash,
        published_at: parse_time(&at)?,
        actor,
    })
}

/// The bulletins published (of `period` when given), in log order.
pub async fn bulletins(pool: &Pool, period: Option<&str>) -> Result<Vec<BulletinHead>, StoreError> {
    let sql = bulletins_sql(pool, period.is_some());
    let rows: Vec<HeadRow> = crate::store::on_pool!(pool, |p| {
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
        let q = match period {
            Some(v) => q.bind(v),
            None => q,
        };
        q.fetch_all(p).await.map_err(StoreError::classify)?
    });
    rows.into_iter().map(head_from_row).collect()
}

/// One bulletin: its head and its whole payload (with the frozen answer).
pub async fn bulletin(pool: &Pool, id: Uuid) -> Result<Option<(BulletinHead, Value)>, StoreError> {
    let head = bulletins_sql(pool, false).replace(" ORDER BY position", "");
    let sql = match pool {
        Pool::Postgres(_) => format!(
            "{} AND stream_id = $1::uuid LIMIT 1",
            head.replacen("SELECT ", "SELECT data::text, ", 1)
        ),
        Pool::Sqlite(_) => format!(
            "{} AND stream_id = ? LIMIT 1",
            head.replacen("SELECT ", "SELECT data, ", 1)
        ),
    };
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        Option<i64>,
        String,
        String,
        String,
    );
    let id_text = id.to_string();
    let found: Option<Row> =
        crate::store::on_pool!(pool, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(&id_text)
            .fetch_optional(p)
            .await
            .map_err(StoreError::classify)?);
    let Some((data, sid, period, unit, profile, position, hash, at, actor)) = found else {
        return Ok(None);
    };
    let head = head_from_row((sid, period, unit, profile, position, hash, at, actor))?;
    let data = serde_json::from_str(&data)
        .map_err(|e| StoreError::Corrupt(format!("bulletin {id}: bad json: {e}")))?;
    Ok(Some((head, data)))
}

/// The last event at or below `position` (the feed's horizon): its position and
/// hash; None for an empty log.
pub async fn last_event_at_or_below(
    pool: &Pool,
    position: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    let sql = match pool {
        Pool::Postgres(_) => {
            "SELECT position, hash FROM events WHERE position <= $1 ORDER BY position DESC LIMIT 1"
        }
        Pool::Sqlite(_) => {
            "SELECT position, hash FROM events WHERE position <= ? ORDER BY position DESC LIMIT 1"
        }
    };
    Ok(crate::store::on_pool!(pool, |p| sqlx::query_as(sql)
        .bind(position)
        .fetch_optional(p)
        .await
        .map_err(StoreError::classify)?))
}

/// The highest position committed and visible now (0 for an empty log). On
/// PostgreSQL a lower position may still commit after it: compare the feed's
/// horizon before trusting everything below it.
pub async fn max_position(pool: &Pool) -> Result<i64, StoreError> {
    let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
    Ok(crate::store::on_pool!(pool, |p| sqlx::query_scalar(sql)
        .fetch_one(p)
        .await
        .map_err(StoreError::classify)?))
}

/// The query plan of `sql` (one text per row), for the tests that check the
/// partial indexes are used: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on
/// PostgreSQL (sequential scans off, so a table too small to bother still shows
/// whether the index can serve).
pub async fn explain(pool: &Pool, sql: &str) -> Result<Vec<String>, StoreError> {
    match pool {
        Pool::Postgres(p) => {
            let mut tx = p.begin().await.map_err(StoreError::classify)?;
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::classify)?;
            let rows: Vec<(String,)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(StoreError::classify)?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        }
        Pool::Sqlite(p) => {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(p)
                    .await
                    .map_err(StoreError::classify)?;
            Ok(rows.into_iter().map(|r| r.3).collect())
        }
    }
}

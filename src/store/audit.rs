//! The log as `yiwang verify` reads it, on either engine, inside one read snapshot
//! ([`Snap`]): the events a page at a time or by stream, as stored and before
//! anything is parsed ([`StoredRow`]); the tally the appends kept and the density
//! of positions; the streams stored answers name. The checks themselves are in
//! `verify/`; the ticket views' reads in `repo/audit.rs`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::store::either;
use crate::store::{Pool, StoreError};

/// An event row as stored, before anything is parsed.
pub struct StoredRow {
    pub position: i64,
    pub stream_id: String,
    pub version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub data: String,
    pub metadata: String,
    pub occurred_at: Result<DateTime<Utc>, String>,
    pub recorded_at: Result<DateTime<Utc>, String>,
    pub prev_hash: String,
    pub hash: String,
}

fn parse_time(s: String) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| s)
}

const PG_COLUMNS: &str = "position, stream_id::text AS stream_id, version, event_type, schema_version, \
     data::text AS data, metadata::text AS metadata, occurred_at, recorded_at, prev_hash, hash";
const SQLITE_COLUMNS: &str = "position, stream_id, version, event_type, schema_version, data, metadata, \
     occurred_at, recorded_at, prev_hash, hash";

/// An event row of either engine; `time` reads a time column (PostgreSQL's are
/// typed, SQLite's text that may not parse).
fn stored_row<R: sqlx::Row>(
    r: &R,
    time: impl Fn(&R, &str) -> Result<Result<DateTime<Utc>, String>, sqlx::Error>,
) -> Result<StoredRow, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredRow {
        position: r.try_get("position")?,
        stream_id: r.try_get("stream_id")?,
        version: r.try_get("version")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get("schema_version")?,
        data: r.try_get("data")?,
        metadata: r.try_get("metadata")?,
        occurred_at: time(r, "occurred_at")?,
        recorded_at: time(r, "recorded_at")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn pg_row(r: &sqlx::postgres::PgRow) -> Result<StoredRow, sqlx::Error> {
    stored_row(r, |r, c| Ok(Ok(sqlx::Row::try_get(r, c)?)))
}

fn sqlite_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredRow, sqlx::Error> {
    stored_row(r, |r, c| Ok(parse_time(sqlx::Row::try_get(r, c)?)))
}

/// The rows a query fetched, each read by `row`.
fn stored_rows<R>(
    fetched: Result<Vec<R>, sqlx::Error>,
    row: fn(&R) -> Result<StoredRow, sqlx::Error>,
) -> Result<Vec<StoredRow>, StoreError> {
    let rows = fetched.map_err(StoreError::classify)?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

/// One read snapshot of the database: every read of a verification sees the same
/// committed state, while appends go on.
pub enum Snap {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    Lite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Snap {
    pub async fn begin(pool: &Pool) -> Result<Snap, StoreError> {
        Ok(match pool {
            Pool::Postgres(p) => {
                let mut t = p.begin().await.map_err(StoreError::classify)?;
                // Read only and without an xid: the snapshot holds back neither
                // appends nor the gap-safe feed.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *t)
                    .await
                    .map_err(StoreError::classify)?;
                Snap::Pg(t)
            }
            Pool::Sqlite(p) => Snap::Lite(p.begin().await.map_err(StoreError::classify)?),
        })
    }

    pub async fn end(self) {
        let _ = either!(self, Snap::Pg | Snap::Lite, t => t.rollback().await);
    }

    pub async fn horizon(&mut self) -> Result<i64, StoreError> {
        match self {
            Snap::Pg(t) => crate::store::postgres::horizon(&mut **t).await,
            Snap::Lite(t) => crate::store::sqlite::horizon(&mut **t).await,
        }
        .map_err(StoreError::classify)
    }

    /// Up to `limit` rows after `after`, in position order.
    pub async fn read_page(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredRow>, StoreError> {
        match self {
            Snap::Pg(t) => stored_rows(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {PG_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
                )))
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **t)
                .await,
                pg_row,
            ),
            Snap::Lite(t) => stored_rows(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SQLITE_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
                )))
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **t)
                .await,
                sqlite_row,
            ),
        }
    }

    /// The events of `ids`, by stream and version.
    pub async fn streams(&mut self, ids: &[Uuid]) -> Result<Vec<StoredRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Snap::Pg(t) => stored_rows(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {PG_COLUMNS} FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, version"
                )))
                .bind(ids)
                .fetch_all(&mut **t)
                .await,
                pg_row,
            ),
            Snap::Lite(t) => {
                let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                stored_rows(
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SQLITE_COLUMNS} FROM events \
                         WHERE stream_id IN (SELECT value FROM json_each(?)) ORDER BY stream_id, version"
                    )))
                    .bind(Value::from(list).to_string())
                    .fetch_all(&mut **t)
                    .await,
                    sqlite_row,
                )
            }
        }
    }

    /// The rows of the log tally (table `log_tally`): events, streams, digest and,
    /// on SQLite, where positions are dense from.
    pub async fn tally_rows(&mut self) -> Result<Vec<TallyRow>, StoreError> {
        either!(self, Snap::Pg | Snap::Lite, t => {
            sqlx::query_as("SELECT events, streams, digest, dense_after FROM log_tally")
                .fetch_all(&mut **t)
                .await
        })
        .map_err(StoreError::classify)
    }

    /// On SQLite, how many events lie after position `dense_after` and the highest
    /// position (`dense_after` without any): the two agree when positions run
    /// without a hole. None on PostgreSQL, whose positions are sparse.
    pub async fn density(&mut self, dense_after: i64) -> Result<Option<(i64, i64)>, StoreError> {
        let Snap::Lite(t) = self else {
            return Ok(None);
        };
        let (count, max): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(MAX(position), ?1) FROM events WHERE position > ?1",
        )
        .bind(dense_after)
        .fetch_one(&mut **t)
        .await
        .map_err(StoreError::classify)?;
        Ok(Some((count, max)))
    }

    /// On SQLite, the first position after `dense_after` (and below `max`) that no
    /// event holds. None on PostgreSQL.
    pub async fn first_hole(
        &mut self,
        dense_after: i64,
        max: i64,
    ) -> Result<Option<i64>, StoreError> {
        let Snap::Lite(t) = self else {
            return Ok(None);
        };
        let hole: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(p) FROM (SELECT ?1 + 1 AS p WHERE NOT EXISTS (SELECT 1 FROM events WHERE position = ?1 + 1) \
             UNION ALL SELECT e.position + 1 FROM events e WHERE e.position > ?1 AND e.position < ?2 \
             AND NOT EXISTS (SELECT 1 FROM events f WHERE f.position = e.position + 1))",
        )
        .bind(dense_after)
        .bind(max)
        .fetch_one(&mut **t)
        .await
        .map_err(StoreError::classify)?;
        Ok(hole)
    }

    /// Streams that stored first answers name and that have no event (at most 1000).
    pub async fn streams_without_events(&mut self) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = match self {
            Snap::Pg(t) => sqlx::query_scalar(
                "SELECT DISTINCT k.stream_id::text FROM idempotency_keys k \
                 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = k.stream_id) LIMIT 1000",
            )
            .fetch_all(&mut **t)
            .await,
            Snap::Lite(t) => sqlx::query_scalar(
                "SELECT DISTINCT k.stream_id FROM idempotency_keys k \
                 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = k.stream_id) LIMIT 1000",
            )
            .fetch_all(&mut **t)
            .await,
        }
        .map_err(StoreError::classify)?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }
}

/// One row of the log tally: events, streams, digest, dense_after.
pub type TallyRow = (i64, i64, i64, Option<i64>);

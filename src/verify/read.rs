//! The SQL of a verification, on either engine, inside one read snapshot: the log a
//! page at a time, the views and their streams, the tally the appends kept, and the
//! streams stored answers name.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Link, Problem, ProblemKind, StoredView, ViewHead};
use crate::store::hash::Tally;
use crate::store::{Pool, RecordedEvent, StoreError};

/// An event row as stored, before anything is parsed.
pub(super) struct StoredRow {
    pub(super) position: i64,
    pub(super) stream_id: String,
    pub(super) version: i64,
    pub(super) event_type: String,
    pub(super) schema_version: i32,
    pub(super) data: String,
    pub(super) metadata: String,
    pub(super) occurred_at: Result<DateTime<Utc>, String>,
    pub(super) recorded_at: Result<DateTime<Utc>, String>,
    pub(super) prev_hash: String,
    pub(super) hash: String,
}

impl StoredRow {
    /// Parses and hashes the row; what cannot be read is a problem of its content.
    pub(super) fn into_link(self) -> (Result<Uuid, String>, Link) {
        let stream = Uuid::parse_str(&self.stream_id).map_err(|_| self.stream_id.clone());
        let mut link = Link {
            position: self.position,
            version: self.version,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
            content: None,
        };
        let parsed = (|| -> Result<RecordedEvent, String> {
            let data: Value = serde_json::from_str(&self.data)
                .map_err(|e| format!("its data is not valid JSON ({e})"))?;
            let metadata: Value = serde_json::from_str(&self.metadata)
                .map_err(|e| format!("its metadata is not valid JSON ({e})"))?;
            Ok(RecordedEvent {
                position: self.position,
                stream_id: stream.clone().unwrap_or_default(),
                version: self.version,
                event_type: self.event_type,
                schema_version: self.schema_version,
                data,
                metadata,
                occurred_at: self
                    .occurred_at
                    .map_err(|t| format!("its occurred_at {t:?} is not a time"))?,
                recorded_at: self
                    .recorded_at
                    .map_err(|t| format!("its recorded_at {t:?} is not a time"))?,
                prev_hash: self.prev_hash,
                hash: self.hash,
            })
        })();
        match parsed {
            Ok(e) => link.content = Link::of(&e).content,
            Err(what) => link.content = Some(format!("unreadable: {what}")),
        }
        (stream, link)
    }
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

fn pg_row(r: &sqlx::postgres::PgRow) -> Result<StoredRow, sqlx::Error> {
    use sqlx::Row;
    Ok(StoredRow {
        position: r.try_get("position")?,
        stream_id: r.try_get("stream_id")?,
        version: r.try_get("version")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get("schema_version")?,
        data: r.try_get("data")?,
        metadata: r.try_get("metadata")?,
        occurred_at: Ok(r.try_get("occurred_at")?),
        recorded_at: Ok(r.try_get("recorded_at")?),
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn sqlite_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredRow, sqlx::Error> {
    use sqlx::Row;
    Ok(StoredRow {
        position: r.try_get("position")?,
        stream_id: r.try_get("stream_id")?,
        version: r.try_get("version")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get("schema_version")?,
        data: r.try_get("data")?,
        metadata: r.try_get("metadata")?,
        occurred_at: parse_time(r.try_get("occurred_at")?),
        recorded_at: parse_time(r.try_get("recorded_at")?),
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

type ViewTuple = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
);

/// A view row as read, its co-units as the engine stores them.
type ViewRowOf<C> = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
    C,
);

/// One read snapshot of the database: every read of a verification sees the same
/// committed state, while appends go on.
pub(super) enum Snap {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    Lite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Snap {
    pub(super) async fn begin(pool: &Pool) -> Result<Snap, StoreError> {
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

    pub(super) async fn end(self) {
        let _ = match self {
            Snap::Pg(t) => t.rollback().await,
            Snap::Lite(t) => t.rollback().await,
        };
    }

    pub(super) async fn horizon(&mut self) -> Result<i64, StoreError> {
        match self {
            Snap::Pg(t) => crate::store::postgres::horizon(&mut **t).await,
            Snap::Lite(t) => crate::store::sqlite::horizon(&mut **t).await,
        }
        .map_err(StoreError::classify)
    }

    /// Up to `limit` rows after `after`, in position order.
    pub(super) async fn read_page(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredRow>, StoreError> {
        Ok(match self {
            Snap::Pg(t) => sqlx::query(&format!(
                "SELECT {PG_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
            ))
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?
            .iter()
            .map(pg_row)
            .collect::<Result<_, _>>()?,
            Snap::Lite(t) => sqlx::query(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
            ))
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?
            .iter()
            .map(sqlite_row)
            .collect::<Result<_, _>>()?,
        })
    }

    /// The events of `ids`, by stream and version.
    pub(super) async fn streams(&mut self, ids: &[Uuid]) -> Result<Vec<StoredRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match self {
            Snap::Pg(t) => sqlx::query(&format!(
                "SELECT {PG_COLUMNS} FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, version"
            ))
            .bind(ids)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?
            .iter()
            .map(pg_row)
            .collect::<Result<_, _>>()?,
            Snap::Lite(t) => {
                let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                sqlx::query(&format!(
                    "SELECT {SQLITE_COLUMNS} FROM events \
                     WHERE stream_id IN (SELECT value FROM json_each(?)) ORDER BY stream_id, version"
                ))
                .bind(Value::from(list).to_string())
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?
                .iter()
                .map(sqlite_row)
                .collect::<Result<_, _>>()?
            }
        })
    }

    /// Every ticket view's (version, head hash).
    pub(super) async fn view_heads(&mut self) -> Result<HashMap<Uuid, ViewHead>, StoreError> {
        let rows: Vec<(String, i64, String)> = match self {
            Snap::Pg(t) => sqlx::query_as("SELECT id::text, version, head_hash FROM ticket_view")
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?,
            Snap::Lite(t) => sqlx::query_as("SELECT id, version, head_hash FROM ticket_view")
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|(id, version, head_hash)| {
                Some((Uuid::parse_str(&id).ok()?, ViewHead { version, head_hash }))
            })
            .collect())
    }

    /// Up to `limit` view rows after the id `after`, in id order: (the id as
    /// stored, the row when its id is a UUID).
    pub(super) async fn view_page(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, Option<StoredView>)>, StoreError> {
        let (rows, co): (Vec<ViewTuple>, Vec<Result<Vec<String>, String>>) = match self {
            Snap::Pg(t) => {
                let rows: Vec<ViewRowOf<Vec<String>>> = sqlx::query_as(
                    "SELECT id::text, number, state, unit, centre, category, grid, version, doc, \
                     head_hash, co_units FROM ticket_view WHERE ($1::uuid IS NULL OR id > $1::uuid) \
                     ORDER BY id LIMIT $2",
                )
                .bind(after.and_then(|a| Uuid::parse_str(a).ok()))
                .bind(limit)
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?;
                rows.into_iter()
                    .map(|r| ((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9), Ok(r.10)))
                    .unzip()
            }
            Snap::Lite(t) => {
                let rows: Vec<ViewRowOf<String>> = sqlx::query_as(
                    "SELECT id, number, state, unit, centre, category, grid, version, doc, \
                     head_hash, co_units FROM ticket_view WHERE (?1 IS NULL OR id > ?1) \
                     ORDER BY id LIMIT ?2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?;
                rows.into_iter()
                    .map(|r| {
                        let co = serde_json::from_str::<Vec<String>>(&r.10)
                            .map_err(|_| format!("{:?} (not a list of units)", r.10));
                        ((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9), co)
                    })
                    .unzip()
            }
        };
        Ok(rows
            .into_iter()
            .zip(co)
            .map(|(r, co_units)| {
                let view = Uuid::parse_str(&r.0).ok().map(|id| StoredView {
                    id,
                    number: r.1,
                    state: r.2,
                    unit: r.3,
                    centre: r.4,
                    category: r.5,
                    grid: r.6,
                    co_units,
                    version: r.7,
                    doc: r.8,
                    head_hash: r.9,
                });
                (r.0, view)
            })
            .collect())
    }

    /// The tally the appends kept against the recount `log`; on SQLite also the
    /// density of positions.
    pub(super) async fn tally_problems(&mut self, log: &Tally) -> Result<Vec<Problem>, StoreError> {
        let rows: Vec<(i64, i64, i64, Option<i64>)> = match self {
            Snap::Pg(t) => {
                sqlx::query_as("SELECT events, streams, digest, dense_after FROM log_tally")
                    .fetch_all(&mut **t)
                    .await
            }
            Snap::Lite(t) => {
                sqlx::query_as("SELECT events, streams, digest, dense_after FROM log_tally")
                    .fetch_all(&mut **t)
                    .await
            }
        }
        .map_err(StoreError::classify)?;
        let whole = |detail: String| Problem {
            kind: ProblemKind::Uncounted,
            stream: Uuid::nil(),
            version: 0,
            position: None,
            detail,
        };
        let mut out = Vec::new();
        if rows.iter().any(|r| r.0 < 0) {
            out.push(whole(
                "the log tally was never counted (its seeding marker is still there): open the \
                 database with `yiwang migrate` to count it"
                    .into(),
            ));
            return Ok(out);
        }
        let mut kept = Tally::default();
        for (events, streams, digest, _) in &rows {
            kept.merge(Tally {
                events: *events,
                streams: *streams,
                digest: *digest,
            });
        }
        if kept != *log {
            let mut what = Vec::new();
            if kept.events != log.events {
                what.push(format!(
                    "{} events where the appends counted {}",
                    log.events, kept.events
                ));
            }
            if kept.streams != log.streams {
                what.push(format!(
                    "{} streams where the appends counted {}",
                    log.streams, kept.streams
                ));
            }
            if kept.digest != log.digest {
                what.push(format!(
                    "a digest of positions {} where the appends made {}",
                    log.digest, kept.digest
                ));
            }
            out.push(whole(format!(
                "the log does not match the tally its appends kept: it holds {}: events were deleted, \
                 put in or moved outside the service",
                what.join(", ")
            )));
        }
        if let Snap::Lite(t) = self {
            let dense_after = rows.iter().filter_map(|r| r.3).max().unwrap_or(0);
            let (count, max): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(MAX(position), ?1) FROM events WHERE position > ?1",
            )
            .bind(dense_after)
            .fetch_one(&mut **t)
            .await
            .map_err(StoreError::classify)?;
            if count != max - dense_after {
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
                out.push(Problem {
                    kind: ProblemKind::Reordered,
                    stream: Uuid::nil(),
                    version: 0,
                    position: hole,
                    detail: format!(
                        "positions after {dense_after} have holes: {count} events up to position {max}{}: \
                         an event was deleted, or put in at a chosen position",
                        hole.map(|h| format!(", the first missing at {h}"))
                            .unwrap_or_default()
                    ),
                });
            }
        }
        Ok(out)
    }

    /// Streams that stored first answers name and that have no event (at most 1000).
    pub(super) async fn streams_without_events(&mut self) -> Result<Vec<Uuid>, StoreError> {
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

//! The PostgreSQL event store: many service instances, no global append lock.
//!
//! ## Reading by position without skipping (the sequence-gap hazard)
//! Positions come from a sequence, and sequence values are handed out before the
//! transactions that hold them commit. A reader that simply follows positions can see
//! position 6 committed while position 5 is still in flight, advance its checkpoint
//! to 6 and never see 5. The fix here needs no lock:
//!
//! 1. An append first makes sure its transaction has an xid (`pg_current_xact_id()`),
//!    then takes its positions from the sequence in a separate statement.
//! 2. Each inserted row records `tx_horizon`, the `xmax` of the INSERT statement's
//!    snapshot: the first xid not yet assigned when that statement began. Any
//!    transaction that took a smaller position took it earlier, after getting its xid,
//!    so its xid is below `tx_horizon`.
//! 3. A reader returns events in position order and stops at the first one whose
//!    `tx_horizon` is above its own snapshot's `xmin` (the oldest xid still running):
//!    until every transaction below the horizon has finished, something before that
//!    position may still commit. Once they have, all earlier positions are either
//!    visible or were rolled back and never will be.
//!
//! `tests/store_gaps.rs` holds one append open, commits a later one, and checks that
//! the feed does not pass the open one; a reader that follows the sequence fails it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, PgPool, Row};
use tokio::sync::watch;
use uuid::Uuid;

use super::hash::{GENESIS, event_hash};
use super::*;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("schema/postgres");

pub struct PgStore {
    pool: PgPool,
    appended: watch::Sender<i64>,
}

impl PgStore {
    pub async fn open(url: &str, migrate: bool) -> anyhow::Result<PgStore> {
        let opts: PgConnectOptions = url.parse()?;
        let opts = opts.log_statements(tracing::log::LevelFilter::Trace);
        let max = std::env::var("YIWANG_PG_POOL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            // Fail fast when the database is down: commands answer 503 instead of hanging.
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts);
        if migrate {
            MIGRATOR.run(&pool).await?;
        }
        let (appended, _) = watch::channel(0);
        Ok(PgStore { pool, appended })
    }

    pub fn pg_pool(&self) -> &PgPool {
        &self.pool
    }
}

const EVENT_COLUMNS: &str = "position, stream_id, version, event_type, schema_version, data, metadata, \
     occurred_at, recorded_at, prev_hash, hash";

fn event_from_row(r: &PgRow) -> Result<RecordedEvent, sqlx::Error> {
    Ok(RecordedEvent {
        position: r.try_get("position")?,
        stream_id: r.try_get("stream_id")?,
        version: r.try_get("version")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get("schema_version")?,
        data: r.try_get("data")?,
        metadata: r.try_get("metadata")?,
        occurred_at: r.try_get("occurred_at")?,
        recorded_at: r.try_get("recorded_at")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn view_from_row(r: &PgRow) -> Result<TicketViewRow, sqlx::Error> {
    Ok(TicketViewRow {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        state: r.try_get("state")?,
        unit: r.try_get("unit")?,
        centre: r.try_get("centre")?,
        category: r.try_get("category")?,
        grid: r.try_get("grid")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        doc: r.try_get("doc")?,
    })
}

fn constraint(e: &sqlx::Error) -> Option<&str> {
    e.as_database_error().and_then(|d| d.constraint())
}

#[async_trait]
impl EventStore for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn append(&self, req: AppendRequest) -> Result<Appended, StoreError> {
        let recorded_at = truncate_micros(Utc::now());
        let metadata =
            serde_json::to_value(&req.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await.map_err(StoreError::classify)?;

        // Step 1: the xid, and the stream's head. See the module comment.
        let head = sqlx::query(
            "SELECT pg_current_xact_id()::text AS xid, h.version, h.hash FROM (SELECT 1) one \
             LEFT JOIN LATERAL (SELECT version, hash FROM events WHERE stream_id = $1 \
             ORDER BY version DESC LIMIT 1) h ON true",
        )
        .bind(req.stream_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::classify)?;
        let actual: i64 = head.try_get::<Option<i64>, _>("version")?.unwrap_or(0);
        if actual != req.expected_version {
            return Err(StoreError::Conflict {
                stream: req.stream_id,
                expected: req.expected_version,
                actual,
            });
        }
        let mut prev: String = head
            .try_get::<Option<String>, _>("hash")?
            .unwrap_or_else(|| GENESIS.to_string());

        // The key first: a concurrent retry with the same key waits here on the
        // unique index until this transaction ends, then fails cleanly.
        if let Some(k) = &req.idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, stream_id) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&k.scope)
            .bind(&k.key)
            .bind(&k.request_hash)
            .bind(k.status as i32)
            .bind(&k.body)
            .bind(k.stream_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| match constraint(&e) {
                Some("idempotency_keys_pkey") => StoreError::DuplicateKey,
                _ => StoreError::classify(e),
            })?;
        }

        // Step 2: positions, in a statement after the xid exists.
        let mut positions: Vec<i64> =
            sqlx::query_scalar("SELECT nextval('events_position_seq') FROM generate_series(1, $1)")
                .bind(req.events.len() as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::classify)?;
        positions.sort_unstable();

        // Step 3: the rows; tx_horizon is taken from this statement's snapshot.
        let mut version = req.expected_version;
        for (e, position) in req.events.iter().zip(&positions) {
            version += 1;
            let occurred_at = truncate_micros(e.occurred_at);
            let hash = event_hash(
                &prev,
                req.stream_id,
                version,
                &e.event_type,
                e.schema_version,
                &e.data,
                &metadata,
                occurred_at,
                recorded_at,
            );
            sqlx::query(
                "INSERT INTO events (position, stream_id, version, event_type, schema_version, data, \
                 metadata, occurred_at, recorded_at, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(position)
            .bind(req.stream_id)
            .bind(version)
            .bind(&e.event_type)
            .bind(e.schema_version)
            .bind(&e.data)
            .bind(&metadata)
            .bind(occurred_at)
            .bind(recorded_at)
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(|err| match constraint(&err) {
                Some("events_stream_version_key") => StoreError::Conflict {
                    stream: req.stream_id,
                    expected: req.expected_version,
                    actual: req.expected_version + 1,
                },
                _ => StoreError::classify(err),
            })?;
            prev = hash;
        }

        if let Some(c) = &req.contact {
            sqlx::query("INSERT INTO contacts (id, name, phone) VALUES ($1, $2, $3)")
                .bind(c.id)
                .bind(&c.name)
                .bind(&c.phone)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::classify)?;
        }

        if let Some(v) = &req.view {
            sqlx::query(
                "INSERT INTO ticket_view (id, number, state, unit, centre, category, grid, version, \
                 created_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, unit = EXCLUDED.unit, \
                 centre = EXCLUDED.centre, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, \
                 doc = EXCLUDED.doc WHERE ticket_view.version < EXCLUDED.version",
            )
            .bind(v.id)
            .bind(&v.number)
            .bind(&v.state)
            .bind(&v.unit)
            .bind(&v.centre)
            .bind(&v.category)
            .bind(&v.grid)
            .bind(v.version)
            .bind(v.created_at)
            .bind(v.updated_at)
            .bind(&v.doc)
            .execute(&mut *tx)
            .await
            .map_err(|e| match constraint(&e) {
                Some("ticket_view_number_key") => StoreError::DuplicateNumber,
                _ => StoreError::classify(e),
            })?;
        }

        tx.commit().await.map_err(StoreError::classify)?;
        let last = positions.last().copied().unwrap_or(0);
        self.appended.send_if_modified(|p| {
            let newer = last > *p;
            if newer {
                *p = last;
            }
            newer
        });
        Ok(Appended {
            first_position: positions.first().copied().unwrap_or(0),
            last_position: last,
            version,
        })
    }

    async fn read_stream(&self, stream: Uuid) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version"
        ))
        .bind(stream)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
    }

    async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}, tx_horizon <= pg_snapshot_xmin(pg_current_snapshot()) AS settled \
             FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            // Stop, don't skip: an unsettled event means an earlier position may
            // still commit.
            if !r.try_get::<bool, _>("settled")? {
                break;
            }
            out.push(event_from_row(r)?);
        }
        Ok(out)
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, body, stream_id FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        row.map(|r| {
            Ok(IdempotencyRecord {
                scope: scope.to_string(),
                key: key.to_string(),
                request_hash: r.try_get("request_hash")?,
                status: r.try_get::<i32, _>("status")? as u16,
                body: r.try_get("body")?,
                stream_id: r.try_get("stream_id")?,
            })
        })
        .transpose()
    }

    async fn ticket_view(&self, id: Uuid) -> Result<Option<TicketViewRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM ticket_view WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::classify)?;
        Ok(row.as_ref().map(view_from_row).transpose()?)
    }

    async fn list_tickets(&self, q: &TicketQuery) -> Result<Vec<TicketViewRow>, StoreError> {
        let (before_at, before_id): (Option<DateTime<Utc>>, Option<Uuid>) = q.before.unzip();
        let rows = sqlx::query(
            "SELECT * FROM ticket_view WHERE ($1::text IS NULL OR state = $1) \
             AND ($2::text IS NULL OR unit = $2) \
             AND ($3::text[] IS NULL OR unit = ANY($3) OR centre = ANY($3) OR grid = ANY($3)) \
             AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) \
             ORDER BY created_at DESC, id DESC LIMIT $6",
        )
        .bind(&q.state)
        .bind(&q.unit)
        .bind(&q.within)
        .bind(before_at)
        .bind(before_id)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        Ok(rows.iter().map(view_from_row).collect::<Result<_, _>>()?)
    }

    async fn contact(&self, id: Uuid) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query("SELECT id, name, phone FROM contacts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::classify)?;
        row.map(|r| {
            Ok(Contact {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                phone: r.try_get("phone")?,
            })
        })
        .transpose()
    }

    async fn next_ticket_serial(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT nextval('ticket_serial_seq')")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::classify)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    fn pool(&self) -> Pool {
        Pool::Postgres(self.pool.clone())
    }

    fn appended(&self) -> watch::Receiver<i64> {
        self.appended.subscribe()
    }
}

//! The PostgreSQL event store: many service instances, no global append lock.
//!
//! ## Reading by position without skipping (the sequence-gap hazard)
//! If positions came from a sequence, they would be handed out before the
//! transactions holding them commit: a reader could see position 6 committed while 5
//! is still in flight, move its checkpoint to 6 and never see 5. Locking appends into
//! one file would fix that at the price of all concurrency.
//!
//! Instead a position is derived from the appending transaction's own xid:
//! `position = (xid << 10) + index`, the index counting the events of the append
//! (at most [`MAX_EVENTS_PER_APPEND`]). A reader then returns events only below
//! `pg_snapshot_xmin(pg_current_snapshot()) << 10`: every transaction with an xid
//! under the snapshot's xmin has finished, so every position under that bound is
//! final: either visible now or rolled back and never to appear. Anything that
//! commits later belongs to a transaction with an xid at or above xmin, so its
//! position is above everything already returned. No lock, no waiting on gaps.
//!
//! The cost: an event becomes readable once every transaction that got its xid
//! earlier (in any database of the cluster) has ended, so a long-running writing
//! transaction delays the feed (not appends). Positions are sparse and large (xids
//! times 1024) but stay below 2^53, so JSON clients read them exactly for as long as
//! the cluster uses fewer than 2^43 xids.
//!
//! `tests/store` holds one transaction open, commits a later one, and checks that the
//! feed does not pass the open one; a reader that follows positions blindly fails it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{ConnectOptions, PgPool, Row};
use tokio::sync::watch;
use uuid::Uuid;

use super::*;

/// Events one append may carry (the low bits of a position).
pub const MAX_EVENTS_PER_APPEND: usize = 1 << POSITION_SHIFT;
const POSITION_SHIFT: u32 = 10;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("schema/postgres");

pub struct PgStore {
    pool: PgPool,
    appended: watch::Sender<i64>,
    appender: super::pg_append::Queue,
}

impl PgStore {
    pub async fn open(url: &str, migrate: bool) -> anyhow::Result<PgStore> {
        let opts = connect_options(url)?;
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
        if migrate
            && pending_migrations(&pool)
                .await
                .map_err(|e| connect_error(url, e))?
        {
            MIGRATOR.run(&pool).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot apply the pending migrations ({e}); the service's role may not change \
                     the schema: run `yiwang migrate` as the database owner first (README: Operations, \
                     PostgreSQL roles)"
                )
            })?;
        }
        let (appended, _) = watch::channel(0);
        // Up to a few statements in flight at once, each carrying a batch formed
        // while the others were (`pg_append::lead`).
        let writers = std::env::var("YIWANG_PG_WRITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4);
        let appender = super::pg_append::start(pool.clone(), writers, appended.clone());
        Ok(PgStore {
            pool,
            appended,
            appender,
        })
    }

    pub fn pg_pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The connection options of a PostgreSQL URL: sqlx's parsing, which reads libpq's
/// `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from the URL (and the `PG…`
/// variables), kept whole. sqlx is built with rustls and the system's certificate
/// store; when a verifying mode (`verify-ca`, `verify-full`) names no CA of its own,
/// Mozilla's roots, compiled in, are trusted as well, so that a managed service with
/// a public CA verifies from an image without a certificate store too. A URL's
/// `sslrootcert` means that CA (with the system's store), as a private CA needs.
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let opts: PgConnectOptions = url.parse().map_err(|e| {
        anyhow::anyhow!(
            "cannot read the PostgreSQL URL {}: {e}",
            crate::config::redact_url(url)
        )
    })?;
    let root = url_param(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"]);
    if root.as_deref() == Some("system") {
        anyhow::bail!(
            "sslrootcert=system is not understood here: leave sslrootcert out to trust the \
             system's certificate store and Mozilla's roots, or name a CA file"
        );
    }
    // sqlx reads the file at the first connection, with an error that names no file.
    // (sqlx also takes the PEM text itself in place of a path.)
    if let Some(path) = root.as_ref().filter(|r| !r.contains("-----BEGIN"))
        && let Err(e) = std::fs::metadata(path)
    {
        anyhow::bail!("sslrootcert={path} in the PostgreSQL URL: cannot read it ({e})");
    }
    let verifies = matches!(
        opts.get_ssl_mode(),
        PgSslMode::VerifyCa | PgSslMode::VerifyFull
    );
    if verifies && root.is_none() && std::env::var_os("PGSSLROOTCERT").is_none() {
        return Ok(opts.ssl_root_cert_from_pem(MOZILLA_ROOTS.clone()));
    }
    Ok(opts)
}

/// The first connection's failure, for an operator: which server, and for a TLS
/// failure what to check. sqlx's message only (its source repeats it).
fn connect_error(url: &str, e: sqlx::Error) -> anyhow::Error {
    let tls = matches!(e, sqlx::Error::Tls(_)) || e.to_string().contains("certificate");
    let hint = if tls {
        " (TLS: verify-full needs the host name the server's certificate names, and a \
         private CA needs its certificate as sslrootcert=/path/ca.pem in the URL; README: \
         Configuration)"
    } else {
        ""
    };
    anyhow::anyhow!(
        "cannot connect to PostgreSQL at {}: {e}{hint}",
        crate::config::redact_url(url)
    )
}

/// Mozilla's root certificates (`webpki-root-certs`) as one PEM bundle.
static MOZILLA_ROOTS: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    use base64::Engine;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            // Base64 is ASCII, so any slice of it is UTF-8.
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
});

/// The value of the first of `names` in a URL's query string, percent-decoded.
fn url_param(url: &str, names: &[&str]) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        names.contains(&k).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a migration of this build is not yet recorded as applied (or the
/// database has none recorded). When all are, `open` leaves the migrator alone: it
/// would begin with `CREATE TABLE IF NOT EXISTS _sqlx_migrations`, which a role
/// without CREATE on the schema (the service's, deploy/postgres/roles.sql) may not
/// run even when the table exists. A recorded migration whose checksum differs, or
/// one this build does not know, counts as pending too, so that the migrator
/// refuses the database with its own message.
async fn pending_migrations(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            // No table yet (a fresh database): everything is pending.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
    // A recorded migration this build does not know (a later release's) is left to
    // the migrator too, which refuses the database with its own message.
    let ours: std::collections::HashSet<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    if applied.iter().any(|(v, _)| !ours.contains(v)) {
        return Ok(true);
    }
    let known: std::collections::HashMap<i64, Vec<u8>> = applied.into_iter().collect();
    Ok(MIGRATOR
        .iter()
        .any(|m| known.get(&m.version) != Some(&m.checksum.to_vec())))
}

/// The gap-safe feed's horizon on PostgreSQL: the highest position that nothing
/// still running can commit at or below. Every transaction with an xid below the
/// snapshot's xmin has ended, so every position below `xmin << 10` is final (see the
/// module comment); an append in flight has a position at or above it.
pub async fn horizon<'e, E: sqlx::PgExecutor<'e>>(e: E) -> Result<i64, sqlx::Error> {
    let h: i64 = sqlx::query_scalar(
        "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 10) - 1",
    )
    .fetch_one(e)
    .await?;
    Ok(h.max(0))
}

const EVENT_COLUMNS: &str = "position, stream_id, version, event_type, schema_version, data, metadata, \
     occurred_at, recorded_at, prev_hash, hash";

/// The feed's query: events after `$1`, at most `$2`, and none at or past the
/// position of the oldest transaction still running (it could yet commit a lower
/// position than one already visible).
fn feed_query(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM events WHERE position > $1 \
         AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT}) \
         ORDER BY position LIMIT $2"
    )
}

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

#[async_trait]
impl EventStore for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn append(&self, req: AppendRequest) -> Result<Appended, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.appender
            .send((req, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the appenders have stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the appenders have stopped".into()))?
    }

    async fn read_stream(&self, stream: Uuid) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version"
        )))
        .bind(stream)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
    }

    async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(feed_query(EVENT_COLUMNS)))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::classify)?;
        Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
    }

    async fn read_all_raw(&self, after: i64, limit: i64) -> Result<Vec<RawEvent>, StoreError> {
        let rows: Vec<(i64, Uuid, String, i32, DateTime<Utc>, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(feed_query(
                "position, stream_id, event_type, schema_version, occurred_at, data::text",
            )))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::classify)?;
        Ok(rows
            .into_iter()
            .map(
                |(position, stream_id, event_type, schema_version, occurred_at, data)| RawEvent {
                    position,
                    stream_id,
                    event_type,
                    schema_version,
                    occurred_at,
                    data,
                },
            )
            .collect())
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, body, stream_id, version FROM idempotency_keys \
             WHERE scope = $1 AND key = $2",
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
                version: r.try_get("version")?,
            })
        })
        .transpose()
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

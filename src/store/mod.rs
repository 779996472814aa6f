//! The event store seam: one trait, a PostgreSQL and a SQLite implementation.
//!
//! An append is optimistic (an expected stream version; a conflict is an error), carries
//! the idempotency record and the read models to write in the same transaction (its
//! [`ViewHandler`]s: the ticket view and the contact details, defined in `repo/`), and
//! chains each event's hash to the previous event of its stream. `read_all` is gap-safe: it never returns a position while an earlier one may
//! still commit (see `postgres.rs` for how that is done without a global lock).

pub mod audit;
pub mod batching;
pub mod dump;
pub mod hash;
mod pg_append;
pub mod postgres;
pub mod sqlite;
pub mod view;

pub use pg_append::{RETRIED_ONE_BY_ONE, append_statement, statements_retried_one_by_one};
pub use view::{PgPart, PgValue, ViewHandler};

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Who did it and why: stored with every event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: String,
    pub role: String,
    pub unit: Option<String>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    pub request_id: Option<String>,
}

/// An event about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub occurred_at: DateTime<Utc>,
}

/// An event as the store holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream_id: Uuid,
    pub version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Value,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

/// The parts of an event a projection rebuild needs, with the payload as the JSON
/// text the store holds (decoded once, straight into the event type).
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    pub position: i64,
    pub stream_id: Uuid,
    pub event_type: String,
    /// The payload's schema version: decode with `TicketEvent::from_json_parts`,
    /// which upcasts an older one.
    pub schema_version: i32,
    pub occurred_at: DateTime<Utc>,
    pub data: String,
}

/// What answers the retries of an idempotent command: its first status, and either
/// the first answer's body or the stream version the command left, from which the
/// answer is rendered again (the ticket commands since migration 0016: a ticket's
/// answer is its state at that version, so the log holds it already).
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotencyRecord {
    /// Whose key it is (the user): two users never share a key space.
    pub scope: String,
    pub key: String,
    /// Hash of method, path and body: the same key with another body is refused.
    pub request_hash: String,
    pub status: u16,
    /// The first answer, kept whole: the commands whose answer is no ticket (the
    /// appraisal's), and every record written before migration 0016. None: the
    /// answer is rendered from `stream_id` at `version`.
    pub body: Option<String>,
    pub stream_id: Uuid,
    /// The stream's version once the command was applied; None in the records
    /// written before migration 0016 (their `body` answers). The store writes it
    /// as given: the caller knows it (its expected version plus its events).
    pub version: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct AppendRequest {
    pub stream_id: Uuid,
    /// The stream's version the events were decided against (0: a new stream).
    pub expected_version: i64,
    /// The hash of the event at `expected_version`, when the caller knows it (from
    /// the ticket view); the store checks it against the head instead of reading it
    /// first. None: the store reads the head.
    pub prev_hash: Option<String>,
    pub events: Vec<NewEvent>,
    pub metadata: Metadata,
    pub idempotency: Option<IdempotencyRecord>,
    /// The read models written in the same transaction, in this order, after the
    /// events (see [`view`]).
    pub views: Vec<Arc<dyn ViewHandler>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub first_position: i64,
    pub last_position: i64,
    pub version: i64,
    /// The hash of the last event appended: the stream's new head.
    pub head_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream} is at version {actual}, not the expected {expected}")]
    Conflict {
        stream: Uuid,
        expected: i64,
        actual: i64,
    },
    #[error("idempotency key already used")]
    DuplicateKey,
    /// A view handler refused the request: a unique value of its read model is
    /// taken (the handler names the refusal; see [`PgPart::refusals`]).
    #[error("{0}")]
    Refused(&'static str),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// An event this build cannot read: its schema version is newer than the code
    /// knows (a later release wrote it). Readers stop on it rather than skip it.
    #[error("{0}")]
    Unreadable(String),
    /// The latest verification found the stream tampered with: the app appends
    /// nothing more to it (see `verify::Integrity`).
    #[error("stream {0} failed verification: it is frozen")]
    Tampered(Uuid),
}

impl StoreError {
    pub(crate) fn classify(e: sqlx::Error) -> StoreError {
        if transient(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e)
        }
    }
}

/// Whether a database error says "the database cannot serve this now" rather than
/// "this is wrong": unreachable, restarting, out of connections, out of space,
/// read-only, locked past the busy timeout. A command that meets one is answered
/// 503 and may be retried with the same Idempotency-Key; anything else is a 500.
///
/// PostgreSQL: SQLSTATE classes 08 (connection exception), 53 (insufficient
/// resources: disk full, out of memory, too many connections), 57 (operator
/// intervention: shutdown, crash recovery) and 58 (system error: I/O). SQLite: the
/// primary result codes BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL and CANTOPEN.
pub fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| transient_code(&c)),
        _ => false,
    }
}

fn transient_code(code: &str) -> bool {
    const SQLITE: [i64; 7] = [5, 6, 7, 8, 10, 13, 14];
    // A SQLSTATE has five characters; SQLite's (extended) result codes are
    // numbers below 10,000.
    if code.len() == 5 {
        return ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c));
    }
    code.parse::<i64>()
        .is_ok_and(|n| SQLITE.contains(&(n & 0xff)))
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// "postgres" or "sqlite".
    fn engine(&self) -> &'static str;

    /// Appends atomically with the idempotency record and the request's views.
    async fn append(&self, req: AppendRequest) -> Result<Appended, StoreError>;

    async fn read_stream(&self, stream: Uuid) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events after `after` in position order, never past a position that an
    /// uncommitted transaction could still fill in.
    async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The same feed as `read_all` (same horizon), only the parts a projection
    /// folds, the payload left as text.
    async fn read_all_raw(&self, after: i64, limit: i64) -> Result<Vec<RawEvent>, StoreError>;

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// The feed's head: the gap-safe horizon ([`feed_horizon`]) on this store's pool.
    async fn feed_horizon(&self) -> Result<i64, StoreError> {
        feed_horizon(&self.pool()).await
    }

    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Wakes when this process appended; carries the last appended position.
    /// (Other instances' appends are found by polling the feed.)
    fn appended(&self) -> tokio::sync::watch::Receiver<i64>;

    /// The engine's pool, for the read models and reference data of `repo/`.
    fn pool(&self) -> Pool;
}

/// The engine-specific pool, for `repo/` (the tables next to the log).
#[derive(Clone, Debug)]
pub enum Pool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Pool {
    /// What a projection's transaction runs first, if anything. Its rows and its
    /// checkpoint commit together and are derived from a log that is durable
    /// already, so on PostgreSQL its commit need not wait for the WAL to reach
    /// the disk (`synchronous_commit = off` for that transaction alone): a crash
    /// may lose the last fraction of a second of projection batches, rows and
    /// checkpoint together, and the runner folds those events again from the
    /// log. The commands' own transactions keep waiting for the disk. SQLite
    /// sets durability per connection, not per transaction: None.
    pub fn derived_tx(&self) -> Option<&'static str> {
        match self {
            Pool::Postgres(_) => Some("SET LOCAL synchronous_commit = off"),
            Pool::Sqlite(_) => None,
        }
    }
}

/// Runs the same expression on either variant of a two-engine enum, with `$t`
/// bound to the variant's transaction (or pool): `either!(tx, Tx::Postgres |
/// Tx::Sqlite, t => t.commit().await)`.
macro_rules! either {
    ($value:expr, $a:path | $b:path, $t:ident => $body:expr) => {
        match $value {
            $a($t) => $body,
            $b($t) => $body,
        }
    };
}
pub(crate) use either;

/// [`either!`] on a [`Pool`]: `on_pool!(pool, |p| sqlx::query(sql).bind(x).execute(p)
/// .await?)` runs the same body on either engine's pool (a query's executor type
/// differs by engine, so a plain closure cannot take either). `?` and `return` act in
/// the calling function, as in a written-out match.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        $crate::store::either!(
            $pool,
            $crate::store::Pool::Postgres | $crate::store::Pool::Sqlite,
            $p => $body
        )
    };
}
pub(crate) use on_pool;

pub type Store = Arc<dyn EventStore>;

/// The gap-safe feed's horizon: the highest position at or below which nothing can
/// still commit (PostgreSQL: below the oldest running transaction's xid; SQLite:
/// the highest position, one writer committing in order). Starting the feed after
/// it skips nothing; an anchor taken at it stays true for ever.
pub async fn feed_horizon(pool: &Pool) -> Result<i64, StoreError> {
    match pool {
        Pool::Postgres(p) => postgres::horizon(p).await,
        Pool::Sqlite(p) => sqlite::horizon(p).await,
    }
    .map_err(StoreError::classify)
}

/// Whether the log holds at least `n` events (counts no further than `n`).
pub async fn holds_at_least(pool: &Pool, n: i64) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM (SELECT 1 FROM events LIMIT $1) AS head";
    let (k,): (i64,) = on_pool!(pool, |p| sqlx::query_as(sql).bind(n).fetch_one(p).await?);
    Ok(k >= n)
}

/// How many events the log holds (for progress bars).
pub async fn count_events(pool: &Pool) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM events";
    let (n,): (i64,) = on_pool!(pool, |p| sqlx::query_as(sql).fetch_one(p).await?);
    Ok(n)
}

/// Opens (creating the SQLite file if needed) and migrates the store for `url`.
pub async fn open(url: &str, migrate: bool) -> anyhow::Result<Store> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url, migrate).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, migrate).await?))
    } else {
        anyhow::bail!("unsupported database URL {url:?}: use postgres://… or sqlite://PATH")
    }
}

/// A payload or metadata as the compact JSON text the log keeps, byte for byte what
/// `Value::to_string` writes, in a buffer that starts at 128 bytes rather than
/// growing from empty one doubling at a time (both engines' appends).
pub fn json_text(v: &Value) -> String {
    // A Value's keys are strings and its numbers finite: writing it cannot fail.
    serde_json::to_string(v).expect("a JSON value serializes")
}

/// Times are stored to the microsecond (PostgreSQL's precision) so that the hash of
/// an event computed before insert equals the hash recomputed from what was read.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::transient_code;

    #[test]
    fn transient_codes_are_the_cannot_serve_now_ones() {
        // PostgreSQL: connection lost, disk full, shutting down, I/O error.
        for c in [
            "08006", "08001", "53100", "53300", "57P01", "57P03", "58030",
        ] {
            assert!(transient_code(c), "{c}");
        }
        // PostgreSQL: unique violation, syntax error, serialization failure.
        for c in ["23505", "42601", "40001"] {
            assert!(!transient_code(c), "{c}");
        }
        // SQLite: BUSY, READONLY, IOERR_WRITE (778), FULL, CANTOPEN.
        for c in ["5", "8", "778", "13", "14"] {
            assert!(transient_code(c), "{c}");
        }
        // SQLite: CONSTRAINT_UNIQUE (2067), generic ERROR, CORRUPT.
        for c in ["2067", "1", "11", "x"] {
            assert!(!transient_code(c), "{c}");
        }
    }
}

//! The SQLite event store: the embedded default, one process.
//!
//! SQLite has one writer at a time, so instead of many connections queueing on the
//! file lock, all appends go to one writer task that batches whatever is waiting
//! into a single `BEGIN IMMEDIATE … COMMIT` (group commit). Each request runs in its
//! own SAVEPOINT, so one refused request (a version conflict, a reused idempotency
//! key) rolls back alone; every request in the batch is answered only after the
//! COMMIT that holds it is durable (WAL, `synchronous=FULL`).
//! A request's view handlers (`store::view`) write in its SAVEPOINT, after its
//! events.
//!
//! Readers use a separate pool; WAL gives them a consistent snapshot, and since
//! positions are assigned under the write lock and commit in order, following
//! positions cannot skip an event.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::batching::{self, Pacer};
use super::hash::{GENESIS, TALLY_MODULUS, Tally, event_hash, rfc3339};
use super::*;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("schema/sqlite");

/// The trigger of `schema/sqlite/0008_integrity.sql` that refuses an event whose
/// version is not its stream's head + 1, as its text stands there: `yiwang restore`
/// drops it for the length of its transaction (an archive is loaded as it is, a
/// damaged log included) and creates it again from this text.
pub const VERSION_TRIGGER: &str = "CREATE TRIGGER events_version_follows_head BEFORE INSERT ON events
WHEN NEW.version IS NOT COALESCE((SELECT MAX(version) FROM events WHERE stream_id = NEW.stream_id), 0) + 1
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only: a new event''s version must be its stream''s last version + 1');
END";

/// Most requests one COMMIT carries.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Appended, StoreError>>;

pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<(AppendRequest, Reply)>,
    appended: watch::Sender<i64>,
}

/// Connection options shared by the writer and the readers.
pub fn connect_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit is on disk when it returns, so an acknowledged command
        // survives power loss, not only a process crash.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        // An `INSERT OR REPLACE` deletes the row it replaces; only with recursive
        // triggers on does that delete fire `events_no_delete` (schema 0001, 0008).
        .pragma("recursive_triggers", "ON")
        // sqlx hands each row from SQLite's thread to ours through a channel of
        // this many rows; at the default of 50 a statistics read of thousands of
        // rows is mostly thread switches.
        .row_buffer_size(1024);
    Ok(opts)
}

impl SqliteStore {
    pub async fn open(url: &str, migrate: bool) -> anyhow::Result<SqliteStore> {
        let opts = connect_options(url)?;
        if let Some(dir) = opts.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let readers = std::env::var("YIWANG_SQLITE_READERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8);
        let pool = SqlitePoolOptions::new()
            .max_connections(readers)
            .acquire_timeout(Duration::from_secs(5))
            .after_release(|conn, _| {
                Box::pin(async move {
                    // A transaction whose COMMIT or ROLLBACK failed (a full disk, an
                    // I/O error) can leave the connection inside a transaction that
                    // holds the write lock, and every writer after it "locked" for
                    // good. The ping lets a queued rollback run first; a connection
                    // still in a transaction after it is closed, which ends it.
                    conn.ping().await?;
                    let in_transaction = conn.is_in_transaction();
                    if in_transaction {
                        tracing::warn!("closing a database connection left inside a transaction");
                    }
                    Ok(!in_transaction)
                })
            })
            .connect_with(opts.clone())
            .await?;
        if migrate {
            MIGRATOR.run(&pool).await?;
        }
        seed_tally(&pool).await?;
        let conn = SqliteConnection::connect_with(&opts).await?;
        let (tx, rx) = mpsc::channel(4096);
        let (appended, _) = watch::channel(0);
        tokio::spawn(writer(conn, rx, appended.clone()));
        Ok(SqliteStore {
            pool,
            writer: tx,
            appended,
        })
    }

    pub fn sqlite_pool(&self) -> &SqlitePool {
        &self.pool
    }
}

async fn writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<(AppendRequest, Reply)>,
    appended: watch::Sender<i64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut pacer = Pacer::new(batching::linger_from_env(batching::SQLITE_LINGER));
    let batches = batching::BATCH_REQUESTS.with_label_values(&["sqlite"]);
    let seconds = batching::BATCH_SECONDS.with_label_values(&["sqlite"]);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The next batch forms while this one's COMMIT is on its way to the disk
        // (the requests queue meanwhile). With `YIWANG_APPEND_LINGER` set, one
        // that finds the writer free and is smaller than batches have lately been
        // waits a little for the rest of its usual company: a fraction of what a
        // batch takes to write, so that one fsync and one copy of each page
        // changed serve more commands. Off by default: the writer is the
        // bottleneck, and the wait idled it (`batching::SQLITE_LINGER`).
        let linger = pacer.linger();
        let usual = pacer.usual_size().min(MAX_BATCH);
        if !linger.is_zero() && batch.len() < usual {
            let due = tokio::time::Instant::now() + linger;
            while batch.len() < usual {
                let room = MAX_BATCH - batch.len();
                let more = rx.recv_many(&mut batch, room);
                match tokio::time::timeout_at(due, more).await {
                    Ok(n) if n > 0 => {}
                    // The queue has closed (write what is here) or time is up.
                    _ => break,
                }
            }
        }
        let started = tokio::time::Instant::now();
        let requests = batch.len();
        batches.observe(requests as f64);
        let mut results = Vec::with_capacity(batch.len());
        let begun = sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await;
        let outcome = match begun {
            Err(e) => Err(e),
            Ok(_) => {
                let mut fatal = None;
                for (req, _) in &batch {
                    match in_savepoint(&mut conn, req).await {
                        // Out of space, I/O error, out of memory, busy: SQLite may
                        // have rolled the whole transaction back already, and the
                        // requests after this one would then run (and commit) outside
                        // it. Nothing of the batch is kept; every caller hears 503.
                        Err(StoreError::Unavailable(m)) => {
                            fatal = Some(m);
                            break;
                        }
                        Err(StoreError::Database(e)) if super::transient(&e) => {
                            fatal = Some(e.to_string());
                            break;
                        }
                        r => results.push(r),
                    }
                }
                match fatal {
                    Some(m) => Err(sqlx::Error::Protocol(m)),
                    None => sqlx::query("COMMIT").execute(&mut conn).await.map(|_| ()),
                }
            }
        };
        match outcome {
            Ok(()) => {
                let last = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok().map(|a| a.last_position))
                    .max();
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    let _ = reply.send(result);
                }
                if let Some(last) = last {
                    appended.send_if_modified(|p| {
                        let newer = last > *p;
                        if newer {
                            *p = last;
                        }
                        newer
                    });
                }
            }
            Err(e) => {
                // Nothing of this batch is durable: undo and tell every caller.
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                tracing::error!(error = %e, "sqlite append batch failed");
                let msg = e.to_string();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(StoreError::Unavailable(msg.clone())));
                }
            }
        }
        let took = started.elapsed();
        pacer.observe(requests, took);
        seconds.observe(took.as_secs_f64());
    }
}

async fn in_savepoint(
    conn: &mut SqliteConnection,
    req: &AppendRequest,
) -> Result<Appended, StoreError> {
    // A failure to set, roll back to or release the savepoint means the
    // transaction itself is in doubt: Unavailable, which aborts the batch.
    let doubt = |e: sqlx::Error| StoreError::Unavailable(e.to_string());
    sqlx::query("SAVEPOINT req")
        .execute(&mut *conn)
        .await
        .map_err(doubt)?;
    let r = append_one(conn, req).await.map_err(|e| match e {
        StoreError::Database(e) => StoreError::classify(e),
        other => other,
    });
    if r.is_err() {
        sqlx::query("ROLLBACK TO req")
            .execute(&mut *conn)
            .await
            .map_err(doubt)?;
    }
    sqlx::query("RELEASE req")
        .execute(&mut *conn)
        .await
        .map_err(doubt)?;
    r
}

pub(crate) fn unique_violation(e: &sqlx::Error, table_col: &str) -> bool {
    // SQLite names no constraint; its message names the columns.
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() && d.message().contains(table_col))
}

async fn append_one(
    conn: &mut SqliteConnection,
    req: &AppendRequest,
) -> Result<Appended, StoreError> {
    let stream = req.stream_id.to_string();
    let head = sqlx::query(
        "SELECT version, hash FROM events WHERE stream_id = ? ORDER BY version DESC LIMIT 1",
    )
    .bind(&stream)
    .fetch_optional(&mut *conn)
    .await?;
    let (actual, mut prev) = match head {
        Some(r) => (
            r.try_get::<i64, _>("version")?,
            r.try_get::<String, _>("hash")?,
        ),
        None => (0, GENESIS.to_string()),
    };
    if actual != req.expected_version || req.prev_hash.as_ref().is_some_and(|h| *h != prev) {
        return Err(StoreError::Conflict {
            stream: req.stream_id,
            expected: req.expected_version,
            actual,
        });
    }
    if let Some(k) = &req.idempotency {
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, stream_id, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.scope)
        .bind(&k.key)
        .bind(&k.request_hash)
        .bind(k.status as i64)
        .bind(&k.body)
        .bind(k.stream_id.to_string())
        .bind(k.version)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if unique_violation(&e, "idempotency_keys") {
                StoreError::DuplicateKey
            } else {
                StoreError::Database(e)
            }
        })?;
    }
    let recorded_at = truncate_micros(Utc::now());
    let metadata =
        serde_json::to_value(&req.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let metadata_text = super::json_text(&metadata);
    let mut version = req.expected_version;
    let mut first = 0;
    let mut last = 0;
    let mut tally = Tally::default();
    for e in &req.events {
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
        let position: i64 = sqlx::query_scalar(
            "INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata, \
             occurred_at, recorded_at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING position",
        )
        .bind(&stream)
        .bind(version)
        .bind(&e.event_type)
        .bind(e.schema_version)
        .bind(super::json_text(&e.data))
        .bind(&metadata_text)
        .bind(rfc3339(occurred_at))
        .bind(rfc3339(recorded_at))
        .bind(&prev)
        .bind(&hash)
        .fetch_one(&mut *conn)
        .await?;
        if first == 0 {
            first = position;
        }
        last = position;
        prev = hash;
        tally.add(position, &stream, version);
    }
    // The log tally (one writer: slot 0), in the request's savepoint with its events.
    sqlx::query(
        "INSERT INTO log_tally (slot, events, streams, digest) VALUES (0, ?, ?, ?) \
         ON CONFLICT (slot) DO UPDATE SET events = events + excluded.events, \
         streams = streams + excluded.streams, digest = (digest + excluded.digest) % ?",
    )
    .bind(tally.events)
    .bind(tally.streams)
    .bind(tally.digest)
    .bind(TALLY_MODULUS)
    .execute(&mut *conn)
    .await?;
    let appended = Appended {
        first_position: first,
        last_position: last,
        version,
        head_hash: prev,
    };
    // The request's read models, in its savepoint with its events.
    for view in &req.views {
        view.write_sqlite(conn, &appended).await?;
    }
    Ok(appended)
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad time {s:?}: {e}")))
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad uuid {s:?}: {e}")))
}

fn parse_json(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad json: {e}")))
}

/// The events of `read_all_raw`'s joined text: events separated by U+001E, their
/// fields (position, stream, type, schema version, time, payload) by U+001F. No
/// field yiwang writes holds either: uuids, type names, integers and RFC 3339 times
/// do not, and JSON text never holds a raw control character. None when the text
/// is not exactly that (at most `limit` events, positions rising past `after`,
/// every field readable); the caller then reads the rows one by one.
fn split_raw_events(joined: &str, after: i64, limit: i64) -> Option<Vec<RawEvent>> {
    let mut events = Vec::with_capacity(usize::try_from(limit).ok()?.min(1 << 16));
    let mut last = after;
    for record in joined.split('\u{1e}') {
        let mut f = record.splitn(6, '\u{1f}');
        let position: i64 = f.next()?.parse().ok()?;
        let stream_id = Uuid::parse_str(f.next()?).ok()?;
        let event_type = f.next()?.to_string();
        let schema_version: i32 = f.next()?.parse().ok()?;
        let occurred_at = parse_time(f.next()?).ok()?;
        let data = f.next()?;
        if position <= last || data.contains('\u{1f}') {
            return None;
        }
        last = position;
        events.push(RawEvent {
            position,
            stream_id,
            event_type,
            schema_version,
            occurred_at,
            data: data.to_string(),
        });
    }
    (events.len() as i64 <= limit).then_some(events)
}

const EVENT_COLUMNS: &str = "position, stream_id, version, event_type, schema_version, data, metadata, \
     occurred_at, recorded_at, prev_hash, hash";

fn event_from_row(r: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        position: r.try_get("position")?,
        stream_id: parse_uuid(r.try_get("stream_id")?)?,
        version: r.try_get("version")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get("schema_version")?,
        data: parse_json(r.try_get("data")?)?,
        metadata: parse_json(r.try_get("metadata")?)?,
        occurred_at: parse_time(r.try_get("occurred_at")?)?,
        recorded_at: parse_time(r.try_get("recorded_at")?)?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn append(&self, req: AppendRequest) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send((req, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    async fn read_stream(&self, stream: Uuid) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ? ORDER BY version"
        )))
        .bind(stream.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn read_all_raw(&self, after: i64, limit: i64) -> Result<Vec<RawEvent>, StoreError> {
        // The whole batch as one text (see `split_raw_events`): a rebuild reads a
        // million events, and sqlx hands each row from SQLite's thread to ours on
        // its own, which cost about 9 µs of CPU a row, several times the read.
        let joined: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(concat_ws(char(31), position, stream_id, event_type, \
             schema_version, occurred_at, data), char(30) ORDER BY position) \
             FROM (SELECT position, stream_id, event_type, schema_version, occurred_at, data \
             FROM events WHERE position > ? ORDER BY position LIMIT ?)",
        )
        .bind(after)
        .bind(limit)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        let Some(joined) = joined else {
            return Ok(Vec::new());
        };
        if let Some(events) = split_raw_events(&joined, after, limit) {
            return Ok(events);
        }
        // A batch the split cannot read (a row edited outside yiwang to hold a
        // separator): row by row, so each field is read as stored.
        let rows: Vec<(i64, String, String, i32, String, String)> = sqlx::query_as(
            "SELECT position, stream_id, event_type, schema_version, occurred_at, data FROM events \
             WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::classify)?;
        rows.into_iter()
            .map(
                |(position, stream_id, event_type, schema_version, occurred_at, data)| {
                    Ok(RawEvent {
                        position,
                        stream_id: parse_uuid(&stream_id)?,
                        event_type,
                        schema_version,
                        occurred_at: parse_time(&occurred_at)?,
                        data,
                    })
                },
            )
            .collect()
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, body, stream_id, version FROM idempotency_keys \
             WHERE scope = ? AND key = ?",
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
                status: r.try_get::<i64, _>("status")? as u16,
                body: r.try_get("body")?,
                stream_id: parse_uuid(r.try_get("stream_id")?)?,
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
        Pool::Sqlite(self.pool.clone())
    }

    fn appended(&self) -> watch::Receiver<i64> {
        self.appended.subscribe()
    }
}

/// Seeds the log tally of a database migrated to 0008 while it held events (the
/// migration left the marker `events = -1`: SQLite cannot hash in SQL): counts the
/// log as it stands, and records where its positions are dense from (0 when they
/// run 1, 2, … without a hole, else past the highest). Runs before the writer
/// starts; another process that seeded first leaves nothing to do.
async fn seed_tally(pool: &SqlitePool) -> anyhow::Result<()> {
    use futures::TryStreamExt;
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'log_tally'",
    )
    .fetch_one(pool)
    .await?;
    if exists == 0 {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let marked: Option<i64> =
        sqlx::query_scalar("SELECT events FROM log_tally WHERE slot = 0 AND events < 0")
            .fetch_optional(&mut *tx)
            .await?;
    if marked.is_none() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    let mut max = 0;
    {
        let mut rows = sqlx::query_as::<_, (i64, String, i64)>(
            "SELECT position, stream_id, version FROM events ORDER BY position",
        )
        .fetch(&mut *tx);
        while let Some((position, stream, version)) = rows.try_next().await? {
            tally.add(position, &stream, version);
            max = position;
        }
    }
    let dense_after = if tally.events == max { 0 } else { max };
    sqlx::query(
        "UPDATE log_tally SET events = ?, streams = ?, digest = ?, dense_after = ? WHERE slot = 0",
    )
    .bind(tally.events)
    .bind(tally.streams)
    .bind(tally.digest)
    .bind(dense_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        events = tally.events,
        secs = started.elapsed().as_secs_f64(),
        "seeded the log tally from the event log"
    );
    Ok(())
}

/// The gap-safe feed's horizon on SQLite: the highest position (one writer, so
/// every committed event is visible in position order).
pub async fn horizon<'e, E: sqlx::SqliteExecutor<'e>>(e: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(e)
        .await
}

#[cfg(test)]
mod tests {
    use super::split_raw_events;

    const ID: &str = "0190a7a4-1c2b-7d3e-8f40-123456789abc";

    fn record(position: i64, data: &str) -> String {
        format!(
            "{position}\u{1f}{ID}\u{1f}TicketCommented\u{1f}1\u{1f}2026-10-08T09:00:00+08:00\u{1f}{data}"
        )
    }

    #[test]
    fn a_joined_batch_splits_into_its_events() {
        let joined = [record(7, r#"{"text":"a\u001fb"}"#), record(9, "{}")].join("\u{1e}");
        let events = split_raw_events(&joined, 5, 10).expect("readable");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].position, 7);
        assert_eq!(events[0].stream_id.to_string(), ID);
        assert_eq!(events[0].event_type, "TicketCommented");
        assert_eq!(events[0].schema_version, 1);
        assert_eq!(
            events[0].occurred_at.to_rfc3339(),
            "2026-10-08T01:00:00+00:00"
        );
        // An escaped separator in JSON is six characters of text, kept as stored.
        assert_eq!(events[0].data, r#"{"text":"a\u001fb"}"#);
        assert_eq!(events[1].position, 9);
        assert_eq!(events[1].data, "{}");
    }

    #[test]
    fn a_batch_it_cannot_read_exactly_is_refused_for_the_row_by_row_read() {
        // A raw separator inside a payload (only an edit outside yiwang puts one
        // there): the fields would shift.
        let raw = [record(7, "{\"x\":\u{1f}1}"), record(8, "{}")].join("\u{1e}");
        assert!(split_raw_events(&raw, 5, 10).is_none());
        let raw = [record(7, "{\"x\":\u{1e}1}"), record(8, "{}")].join("\u{1e}");
        assert!(split_raw_events(&raw, 5, 10).is_none());
        // Positions must rise past `after`, and no more than `limit` events.
        let joined = [record(7, "{}"), record(7, "{}")].join("\u{1e}");
        assert!(split_raw_events(&joined, 5, 10).is_none());
        assert!(split_raw_events(&record(5, "{}"), 5, 10).is_none());
        let joined = [record(7, "{}"), record(8, "{}")].join("\u{1e}");
        assert!(split_raw_events(&joined, 5, 1).is_none());
        assert!(split_raw_events(&joined, 5, 2).is_some());
    }
}

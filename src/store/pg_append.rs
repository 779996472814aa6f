//! Appends on PostgreSQL, with group commit.
//!
//! Commands that arrive together are written by one statement in one transaction:
//! one round trip and one commit for the batch instead of one per command. The
//! statement checks each request's stream head against the version and hash it was
//! decided on; a request whose head moved writes nothing and is answered with a
//! conflict while the others go through. A request whose idempotency key is
//! already stored writes nothing either and is answered `DuplicateKey` (the key's
//! insert is `ON CONFLICT DO NOTHING`, so no key aborts the statement). What the
//! statement cannot sort out per request (a unique violation from a concurrent
//! append to the same stream elsewhere) aborts the whole statement, and the batch
//! is then retried one request at a time so each gets its own answer. Every
//! request is answered only after the transaction holding it has committed.
//!
//! The read models written with the events (the requests' view handlers: the
//! ticket view, a new ticket's contact) are part of the same statement: each
//! handler's [`PgPart`] adds a CTE that writes its rows, unnested from one array
//! per column, for the requests that go through ([`append_statement`]). A batch
//! is one statement whatever views it carries (see `store::view` for why).
//!
//! Batches are formed by one leader task and written by up to `writers`
//! statements at once, each on a connection of its own ([`lead`]): the next batch
//! forms while the last one's statement and COMMIT are in flight, and goes out
//! when that ends or when it has waited a fraction of what a batch takes to write
//! (`store::batching`).
//!
//! Positions: `(xid << 10) + n`, n counting the events of the statement, so a batch
//! carries at most [`MAX_EVENTS_PER_APPEND`] events (see the module comment of
//! `postgres.rs` for why positions come from the xid).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::batching::{self, Pacer};
use super::hash::{GENESIS, event_hash};
use super::postgres::MAX_EVENTS_PER_APPEND;
use super::{AppendRequest, Appended, PgPart, PgValue, StoreError, truncate_micros};

pub type Reply = oneshot::Sender<Result<Appended, StoreError>>;
pub type Queue = mpsc::Sender<(AppendRequest, Reply)>;

/// Most requests one statement carries.
const MAX_BATCH: usize = 128;

/// Statements that aborted and were written again one request at a time (each
/// a transaction and a commit of its own: the requests behind it wait). One
/// counter per process, registered with every `Metrics` registry.
pub static RETRIED_ONE_BY_ONE: std::sync::LazyLock<prometheus::IntCounter> =
    std::sync::LazyLock::new(|| {
        prometheus::IntCounter::new(
            "yiwang_append_statements_retried_total",
            "Batched PostgreSQL append statements that aborted (a race with another writer) and were written again one request at a time",
        )
        .expect("static metric definition is valid")
    });

/// How many batched statements this process has had to write again one request
/// at a time since it started.
pub fn statements_retried_one_by_one() -> u64 {
    RETRIED_ONE_BY_ONE.get()
}

/// Starts the append leader on `pool`, with up to `writers` statements in
/// flight at once; returns the queue it serves.
pub fn start(pool: PgPool, writers: usize, appended: watch::Sender<i64>) -> Queue {
    let (tx, rx) = mpsc::channel::<(AppendRequest, Reply)>(8192);
    let pacer = Pacer::new(batching::linger_from_env(batching::PG_LINGER));
    tokio::spawn(lead(pool, writers.max(1), rx, appended, pacer));
    tx
}

/// A statement in flight: gives its writer's slot back to the leader when it
/// ends, even by a panic (the leader would otherwise wait on it for ever).
struct InFlight {
    slot: i64,
    requests: usize,
    started: Instant,
    done: mpsc::UnboundedSender<(i64, usize, Duration)>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let _ = self
            .done
            .send((self.slot, self.requests, self.started.elapsed()));
    }
}

/// The leader: one task forms the batches, and each goes out as a statement of its
/// own task, on a connection of the pool, up to `writers` at once (pipelining:
/// the next batch forms while the last one's statement and COMMIT are in flight).
///
/// A batch goes out when a writer is free and
/// - no statement is in flight (an idle database waits for no one: a lone
///   command is written at once), or
/// - it holds [`MAX_BATCH`] requests, or
/// - its first request has waited [`Pacer::linger`] (a fraction of what a batch
///   takes to write): a slow statement does not hold up the commands behind it for
///   longer than that, they go out beside it; or
/// - the queue has closed.
///
/// Otherwise it keeps forming until the statement in flight ends. Four writers
/// that each took whatever was waiting the moment they were free carried 2.5–3.1
/// commands a statement at 16 clients; forming behind the statement in flight
/// fills them with what arrives meanwhile.
async fn lead(
    pool: PgPool,
    writers: usize,
    mut rx: mpsc::Receiver<(AppendRequest, Reply)>,
    appended: watch::Sender<i64>,
    mut pacer: Pacer,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(i64, usize, Duration)>();
    // Each writer's row of the log tally: its own, so that statements in flight
    // (of this instance and of others) never wait on one another's row lock.
    let mut free: Vec<i64> = (0..writers).map(|_| rand::random()).collect();
    let mut in_flight = 0usize;
    let mut batch: Vec<(AppendRequest, Reply)> = Vec::with_capacity(MAX_BATCH);
    // When the forming batch got its first request.
    let mut since = Instant::now();
    let mut open = true;
    let batches = batching::BATCH_REQUESTS.with_label_values(&["postgres"]);
    let seconds = batching::BATCH_SECONDS.with_label_values(&["postgres"]);
    loop {
        let go = in_flight == 0
            || batch.len() >= MAX_BATCH
            || Instant::now() >= since + pacer.linger()
            || !open;
        if !batch.is_empty()
            && go
            && let Some(slot) = free.pop()
        {
            let group = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
            in_flight += 1;
            batches.observe(group.len() as f64);
            let guard = InFlight {
                slot,
                requests: group.len(),
                started: Instant::now(),
                done: done_tx.clone(),
            };
            let (pool, appended) = (pool.clone(), appended.clone());
            tokio::spawn(async move {
                let _guard = guard;
                write(&pool, slot, group, &appended).await;
            });
            continue;
        }
        if !open && batch.is_empty() {
            // Statements still in flight answer their callers on their own.
            return;
        }
        // Wake at the linger's end only when that can send the batch.
        let wait = !batch.is_empty() && !free.is_empty() && in_flight > 0;
        let due = since + pacer.linger();
        let room = MAX_BATCH.saturating_sub(batch.len());
        tokio::select! {
            n = rx.recv_many(&mut batch, room), if open && room > 0 => {
                if n == 0 {
                    open = false;
                } else if batch.len() == n {
                    since = Instant::now();
                }
            }
            Some((slot, requests, took)) = done_rx.recv() => {
                free.push(slot);
                in_flight -= 1;
                pacer.observe(requests, took);
                seconds.observe(took.as_secs_f64());
            }
            _ = tokio::time::sleep_until(due), if wait => {}
        }
    }
}

/// Writes a batch and answers every request in it.
async fn write(
    pool: &PgPool,
    slot: i64,
    batch: Vec<(AppendRequest, Reply)>,
    appended: &watch::Sender<i64>,
) {
    // One request per stream and per idempotency key in a statement (the unique
    // indexes would abort it otherwise), and a bounded number of events; the rest
    // wait for the next round.
    let mut streams = HashSet::new();
    let mut keys = HashSet::new();
    let mut events = 0;
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for (req, reply) in batch {
        let key = req
            .idempotency
            .as_ref()
            .map(|k| (k.scope.clone(), k.key.clone()));
        let fits = events + req.events.len() <= MAX_EVENTS_PER_APPEND
            && !streams.contains(&req.stream_id)
            && key.as_ref().is_none_or(|k| !keys.contains(k));
        if fits {
            events += req.events.len();
            streams.insert(req.stream_id);
            if let Some(k) = key {
                keys.insert(k);
            }
            now.push((req, reply));
        } else {
            later.push((req, reply));
        }
    }
    write_group(pool, slot, now, appended).await;
    for one in later {
        write_group(pool, slot, vec![one], appended).await;
    }
}

async fn write_group(
    pool: &PgPool,
    slot: i64,
    group: Vec<(AppendRequest, Reply)>,
    appended: &watch::Sender<i64>,
) {
    let reqs: Vec<&AppendRequest> = group.iter().map(|(r, _)| r).collect();
    match statement(pool, slot, &reqs).await {
        Ok(results) => {
            if let Some(last) = results
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|a| a.last_position))
                .max()
            {
                appended.send_if_modified(|p| {
                    let newer = last > *p;
                    if newer {
                        *p = last;
                    }
                    newer
                });
            }
            for ((_, reply), result) in group.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(StoreError::Unavailable(m)) => {
            for (_, reply) in group {
                let _ = reply.send(Err(StoreError::Unavailable(m.clone())));
            }
        }
        Err(e) if group.len() == 1 => {
            if let Some((_, reply)) = group.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        // Someone's unique violation aborted the statement: sort it out one by one.
        // A key or a stream version already committed does not abort it (see
        // `dup` and `ok` in the statement); one written by a transaction still
        // open when the statement began does: a race between two writers.
        Err(_) => {
            RETRIED_ONE_BY_ONE.inc();
            for one in group {
                Box::pin(write_group(pool, slot, vec![one], appended)).await;
            }
        }
    }
}

fn constraint(e: &sqlx::Error) -> Option<&str> {
    e.as_database_error().and_then(|d| d.constraint())
}

/// The per-request columns of the statement.
#[derive(Default)]
struct Columns {
    stream: Vec<Uuid>,
    expected: Vec<i64>,
    prev: Vec<String>,
    metadata: Vec<String>,
    k_scope: Vec<Option<String>>,
    k_key: Vec<Option<String>>,
    k_hash: Vec<Option<String>>,
    k_status: Vec<Option<i32>>,
    k_body: Vec<Option<String>>,
    k_version: Vec<Option<i64>>,
    /// Each request's new head (the hash of its last event).
    head_hash: Vec<String>,
    // Per event.
    e_req: Vec<i32>,
    e_version: Vec<i64>,
    e_type: Vec<String>,
    e_schema: Vec<i32>,
    e_data: Vec<String>,
    e_occurred: Vec<DateTime<Utc>>,
    e_prev: Vec<String>,
    e_hash: Vec<String>,
}

/// The batched append. Each request's head is checked against what it was decided
/// on (`ok`); its idempotency key is then inserted with `ON CONFLICT DO NOTHING`,
/// and only the requests whose key went in (`go`) write events and views (the
/// parts of their [`ViewHandler`]s, see [`append_statement`]). A key already
/// stored (a replay) refuses its own request, not the batch.
///
/// No step reads a table by anything but an index lookup the plan cannot avoid
/// (the key's own unique index, the stream's head by its index): the statement is
/// prepared once per connection and its generic plan kept, often while the tables
/// are still small. An earlier form looked stored keys up with `EXISTS`; planned
/// on a young table it became a hash join over a sequential scan of every key,
/// kept for the life of the connection, and the statement grew slower with every
/// command (`a_generic_plan_of_the_append_scans_no_table` holds this).
///
/// `tally` adds the events written to the log tally (`schema/postgres/0008`), in
/// the writer's own row (`$20`, its slot), in the same statement as the events.
const APPEND_HEAD: &str = "WITH req AS ( \
           SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                $7::text[], $8::int[], $9::text[], $21::bigint[]) \
             WITH ORDINALITY AS r(stream_id, expected, prev, metadata, k_scope, k_key, k_hash, k_status, k_body, \
                                  k_version, idx)), \
         head AS ( \
           SELECT r.idx, COALESCE(h.version, 0) AS version, COALESCE(h.hash, $19) AS hash FROM req r \
           LEFT JOIN LATERAL (SELECT version, hash FROM events e WHERE e.stream_id = r.stream_id \
                              ORDER BY version DESC LIMIT 1) h ON true), \
         ok AS (SELECT r.* FROM req r JOIN head h ON h.idx = r.idx WHERE h.version = r.expected AND h.hash = r.prev), \
         k AS ( \
           INSERT INTO idempotency_keys (scope, key, request_hash, status, body, stream_id, version) \
           SELECT k_scope, k_key, k_hash, k_status, k_body, stream_id, k_version FROM ok WHERE k_scope IS NOT NULL \
           ON CONFLICT (scope, key) DO NOTHING RETURNING scope, key), \
         go AS (SELECT o.* FROM ok o WHERE o.k_scope IS NULL \
                OR EXISTS (SELECT 1 FROM k WHERE k.scope = o.k_scope AND k.key = o.k_key)), \
         evs AS ( \
           SELECT t.*, row_number() OVER (ORDER BY t.ord) AS n \
           FROM unnest($10::int[], $11::bigint[], $12::text[], $13::int[], $14::text[], $15::timestamptz[], \
                       $16::text[], $17::text[]) \
             WITH ORDINALITY AS t(req_idx, version, event_type, schema_version, data, occurred_at, prev_hash, hash, ord) \
           WHERE t.req_idx IN (SELECT idx FROM go)), \
         ins AS ( \
           INSERT INTO events (position, stream_id, version, event_type, schema_version, data, metadata, \
                               occurred_at, recorded_at, prev_hash, hash) \
           SELECT (pg_current_xact_id()::text::bigint << 10) + (e.n - 1), o.stream_id, e.version, e.event_type, \
                  e.schema_version, e.data::json, o.metadata::json, e.occurred_at, $18, e.prev_hash, e.hash \
           FROM evs e JOIN go o ON o.idx = e.req_idx \
           RETURNING position, stream_id, version), \
         tally AS ( \
           INSERT INTO log_tally (slot, events, streams, digest) \
           SELECT $20, COUNT(*), COUNT(*) FILTER (WHERE i.version = 1), \
                  (SUM(('x' || left(encode(sha256(convert_to(i.position::text || ':' || i.stream_id::text \
                        || ':' || i.version::text, 'UTF8')), 'hex'), 14))::bit(56)::bigint::numeric) \
                   % 4611686018427387904)::bigint \
           FROM ins i HAVING COUNT(*) > 0 \
           ON CONFLICT (slot) DO UPDATE SET events = log_tally.events + EXCLUDED.events, \
             streams = log_tally.streams + EXCLUDED.streams, \
             digest = ((log_tally.digest::numeric + EXCLUDED.digest) % 4611686018427387904)::bigint)";

/// The parameters of [`APPEND_HEAD`]; the parts' arrays follow.
const HEAD_PARAMS: usize = 21;

/// The answer of the statement: per request, its head, the positions written and
/// whether its key was a replay.
const APPEND_TAIL: &str = " SELECT h.idx, h.version AS actual, MIN(i.position) AS first, MAX(i.position) AS last, \
                (h.idx IN (SELECT idx FROM ok) AND h.idx NOT IN (SELECT idx FROM go)) AS dup \
         FROM head h JOIN req r ON r.idx = h.idx LEFT JOIN ins i ON i.stream_id = r.stream_id \
         GROUP BY h.idx, h.version ORDER BY h.idx";

/// The batched append statement for a batch whose view handlers have these parts
/// (in the order of their `rows` names, each once), and its number of parameters.
/// Each part's rows are one array per column (after the request index), kept only
/// for the requests that write (`go`), and written by the part's own statement as a
/// CTE of this one: the batch stays one statement and one round trip whatever its
/// views.
pub fn append_statement(parts: &[&PgPart]) -> (String, usize) {
    let mut sql = String::from(APPEND_HEAD);
    let mut n = HEAD_PARAMS;
    for part in parts {
        n += 1;
        let mut arrays = format!("${n}::int[]");
        let mut names = String::from("req_idx");
        for (name, ty) in part.columns {
            n += 1;
            arrays.push_str(&format!(", ${n}::{ty}[]"));
            names.push_str(", ");
            names.push_str(name);
        }
        sql.push_str(&format!(
            ", {rows} AS (SELECT p.* FROM unnest({arrays}) AS p({names}) \
             WHERE p.req_idx IN (SELECT idx FROM go)), {rows}_w AS ({write})",
            rows = part.rows,
            write = part.write,
        ));
    }
    sql.push_str(APPEND_TAIL);
    (sql, n)
}

/// The rows of one part in a batch, transposed into one array per column.
struct PartRows {
    part: &'static PgPart,
    req: Vec<i32>,
    columns: Vec<Column>,
}

/// One column of a part: the values of its rows, typed for the bind.
enum Column {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<String>>),
    BigInt(Vec<Option<i64>>),
    Time(Vec<Option<DateTime<Utc>>>),
}

impl PartRows {
    fn new(part: &'static PgPart) -> PartRows {
        let columns = part
            .columns
            .iter()
            .map(|(_, ty)| match *ty {
                "uuid" => Column::Uuid(Vec::new()),
                "bigint" => Column::BigInt(Vec::new()),
                "timestamptz" => Column::Time(Vec::new()),
                _ => Column::Text(Vec::new()),
            })
            .collect();
        PartRows {
            part,
            req: Vec::new(),
            columns,
        }
    }

    /// Adds the row of request `idx` (from 1).
    fn push(&mut self, idx: i32, row: Vec<PgValue>) -> Result<(), StoreError> {
        if row.len() != self.columns.len() {
            return Err(StoreError::Corrupt(format!(
                "a row of {} has {} values, not {}",
                self.part.rows,
                row.len(),
                self.columns.len()
            )));
        }
        self.req.push(idx);
        for (column, value) in self.columns.iter_mut().zip(row) {
            match (column, value) {
                (Column::Uuid(c), PgValue::Uuid(v)) => c.push(v),
                (Column::Text(c), PgValue::Text(v)) => c.push(v),
                (Column::BigInt(c), PgValue::BigInt(v)) => c.push(v),
                (Column::Time(c), PgValue::Time(v)) => c.push(v),
                (_, v) => {
                    return Err(StoreError::Corrupt(format!(
                        "a row of {} has a value of the wrong type: {v:?}",
                        self.part.rows
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Reads the head of a stream whose caller did not know it.
async fn head_hash(pool: &PgPool, stream: Uuid, version: i64) -> Result<String, StoreError> {
    let h: Option<String> =
        sqlx::query_scalar("SELECT hash FROM events WHERE stream_id = $1 AND version = $2")
            .bind(stream)
            .bind(version)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::classify)?;
    Ok(h.unwrap_or_else(|| GENESIS.to_string()))
}

async fn statement(
    pool: &PgPool,
    slot: i64,
    reqs: &[&AppendRequest],
) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
    let recorded_at = truncate_micros(Utc::now());
    let mut c = Columns::default();
    let mut parts: Vec<PartRows> = Vec::new();
    for (i, req) in reqs.iter().enumerate() {
        if req.events.is_empty() || req.events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::Corrupt(format!(
                "an append carries 1 to {MAX_EVENTS_PER_APPEND} events, not {}",
                req.events.len()
            )));
        }
        let prev = match &req.prev_hash {
            Some(h) => h.clone(),
            None if req.expected_version == 0 => GENESIS.to_string(),
            None => head_hash(pool, req.stream_id, req.expected_version).await?,
        };
        let metadata =
            serde_json::to_value(&req.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut link = prev.clone();
        for (j, e) in req.events.iter().enumerate() {
            let version = req.expected_version + 1 + j as i64;
            let occurred_at = truncate_micros(e.occurred_at);
            let hash = event_hash(
                &link,
                req.stream_id,
                version,
                &e.event_type,
                e.schema_version,
                &e.data,
                &metadata,
                occurred_at,
                recorded_at,
            );
            c.e_req.push(i as i32 + 1);
            c.e_version.push(version);
            c.e_type.push(e.event_type.clone());
            c.e_schema.push(e.schema_version);
            c.e_data.push(super::json_text(&e.data));
            c.e_occurred.push(occurred_at);
            c.e_prev.push(std::mem::replace(&mut link, hash.clone()));
            c.e_hash.push(hash);
        }
        c.stream.push(req.stream_id);
        c.expected.push(req.expected_version);
        c.prev.push(prev);
        c.metadata.push(super::json_text(&metadata));
        let k = req.idempotency.as_ref();
        c.k_scope.push(k.map(|k| k.scope.clone()));
        c.k_key.push(k.map(|k| k.key.clone()));
        c.k_hash.push(k.map(|k| k.request_hash.clone()));
        c.k_status.push(k.map(|k| k.status as i32));
        c.k_body.push(k.and_then(|k| k.body.clone()));
        c.k_version.push(k.and_then(|k| k.version));
        for view in &req.views {
            let part = view.pg_part();
            let rows = match parts.iter_mut().find(|p| std::ptr::eq(p.part, part)) {
                Some(rows) => rows,
                None => {
                    parts.push(PartRows::new(part));
                    parts.last_mut().expect("just pushed")
                }
            };
            rows.push(i as i32 + 1, view.pg_row(&link))?;
        }
        c.head_hash.push(link);
    }

    parts.sort_by_key(|p| p.part.rows);
    let (sql, _) = append_statement(&parts.iter().map(|p| p.part).collect::<Vec<_>>());
    // Built from this module's constants and parameter numbers, never from input.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&c.stream)
        .bind(&c.expected)
        .bind(&c.prev)
        .bind(&c.metadata)
        .bind(&c.k_scope) // $5
        .bind(&c.k_key)
        .bind(&c.k_hash)
        .bind(&c.k_status)
        .bind(&c.k_body)
        .bind(&c.e_req) // $10
        .bind(&c.e_version)
        .bind(&c.e_type)
        .bind(&c.e_schema)
        .bind(&c.e_data)
        .bind(&c.e_occurred) // $15
        .bind(&c.e_prev)
        .bind(&c.e_hash)
        .bind(recorded_at)
        .bind(GENESIS)
        .bind(slot) // $20
        .bind(&c.k_version);
    for p in &parts {
        query = query.bind(&p.req);
        for column in &p.columns {
            query = match column {
                Column::Uuid(v) => query.bind(v),
                Column::Text(v) => query.bind(v),
                Column::BigInt(v) => query.bind(v),
                Column::Time(v) => query.bind(v),
            };
        }
    }
    let rows = query.fetch_all(pool).await.map_err(|e| {
        let refused = constraint(&e).and_then(|name| {
            parts.iter().find_map(|p| {
                p.part
                    .refusals
                    .iter()
                    .find(|(c, _)| *c == name)
                    .map(|(_, why)| *why)
            })
        });
        match (constraint(&e), refused) {
            (_, Some(why)) => StoreError::Refused(why),
            (Some("events_stream_version_key"), _) if reqs.len() == 1 => StoreError::Conflict {
                stream: reqs[0].stream_id,
                expected: reqs[0].expected_version,
                actual: reqs[0].expected_version + 1,
            },
            _ => StoreError::classify(e),
        }
    })?;

    let mut out = Vec::with_capacity(reqs.len());
    for (req, row) in reqs.iter().zip(&rows) {
        let first: Option<i64> = row.try_get("first")?;
        let last: Option<i64> = row.try_get("last")?;
        let dup: bool = row.try_get("dup")?;
        out.push(match (first, last) {
            _ if dup => Err(StoreError::DuplicateKey),
            (Some(first), Some(last)) => Ok(Appended {
                first_position: first,
                last_position: last,
                version: req.expected_version + req.events.len() as i64,
                head_hash: c.head_hash[out.len()].clone(),
            }),
            _ => Err(StoreError::Conflict {
                stream: req.stream_id,
                expected: req.expected_version,
                actual: row.try_get("actual")?,
            }),
        });
    }
    if out.len() != reqs.len() {
        return Err(StoreError::Corrupt(
            "the append statement lost a request".into(),
        ));
    }
    Ok(out)
}

//! The `unit_stats` projection: folds the feed into `stats_tickets` (each ticket's
//! facts), `stats_episodes` and `stats_occurrences` (see `facts.rs`), and advances
//! its checkpoint in the same transaction.
//!
//! The SQL is the same on both engines (times are BIGINT microseconds, ids text);
//! the `on_pool!` macro writes it once for each engine's types.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::daily::{self, Delta};
use super::facts::{self, Context, Input, Occurrence, TicketFacts};
use super::{Batch, Projection};

mod evidence;
use crate::appraisal::ledger::is_appraisal_event;
use crate::domain::{DecodeError, TicketEvent};
use crate::org::OrgHandle;
use crate::sla::calendar::Calendar;
use crate::store::{Pool, RawEvent, RecordedEvent, Store, StoreError};

pub const NAME: &str = "unit_stats";

/// Rows per multi-row INSERT: under both engines' bound-parameter limits
/// (episodes have 24 columns; SQLite allows 32,766 parameters, PostgreSQL 65,535).
const CHUNK: usize = 1000;

/// Tickets whose facts are kept in memory between batches, so a ticket's next
/// event needs no read (the rest are read from `stats_tickets`), when the whole log
/// is folded again (`yiwang replay`): a ticket's events are spread over days of the
/// log, and a year of a district's tickets (some 125,000) fit.
pub const REBUILD_CACHE: usize = 200_000;

/// The same for a runner keeping up with live commands (`yiwang serve`): the
/// tickets moving now, about two months of a district's (a seeded year is some
/// 125,000 tickets; a ticket's facts are 0.67 kB as stored JSON on average). At the
/// rebuild's size a serve's cache grew with every ticket it folded, for months; a
/// miss costs a share of one read per batch (the batch's missing tickets together).
pub const LIVE_CACHE: usize = 20_000;

/// Rows per INSERT into `stats_daily` (33 columns).
const DAILY_CHUNK: usize = 900;

/// Events read per query by a rebuild (its reader runs one batch ahead of the fold).
const REBUILD_BATCH: i64 = 20_000;

/// The secondary indexes of the projection's tables (as `0002_projections.sql`
/// and `0005_area_report_lists.sql` make them): a rebuild drops them, inserts every row, and makes them again once,
/// which is several times cheaper than maintaining them row by row.
const INDEXES: [(&str, &str); 5] = [
    (
        "stats_episodes_open",
        "CREATE INDEX stats_episodes_open ON stats_episodes (span_end, unit, handle_due, sign_due, signed_at, handled_at, left_at, closed_at, ticket, assign_pos, sign_pos) \
         WHERE signed_at IS NULL OR handled_at IS NULL",
    ),
    (
        "stats_episodes_unit",
        "CREATE INDEX stats_episodes_unit ON stats_episodes (unit, span_end)",
    ),
    (
        "stats_episodes_span",
        "CREATE INDEX stats_episodes_span ON stats_episodes (span_end, assigned_at)",
    ),
    (
        "stats_occurrences_unit",
        "CREATE INDEX stats_occurrences_unit ON stats_occurrences (unit, at)",
    ),
    (
        "stats_occurrences_at",
        "CREATE INDEX stats_occurrences_at ON stats_occurrences (at)",
    ),
];

/// The projection's tables.
const TABLES: [&str; 9] = [
    "stats_tickets",
    "stats_episodes",
    "stats_occurrences",
    "stats_daily",
    "stats_turnaround",
    "stats_monthly",
    "stats_turnaround_monthly",
    "stats_evidence_monthly",
    "stats_evidence_revs",
];

/// How `write` moves the checkpoint.
#[derive(Clone, Copy)]
enum Mode {
    /// Only from this position (compare and set); rows are upserted.
    From(i64),
    /// A rebuild: every row is replaced and the checkpoint set outright.
    Replace,
}

/// Runs the same block on either engine, with `$db` naming the engine's type and
/// `$p` its pool.
macro_rules! on_pool {
    ($pool:expr, $p:ident, $db:ident => $body:block) => {
        match $pool {
            Pool::Postgres($p) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
            Pool::Sqlite($p) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// Gives `execute_chunks!`'s builder its signature: a chunk of `items` in, a
/// statement borrowing from that chunk out.
fn chunk_builder<'a, T, DB: sqlx::Database, F>(_items: &'a [T], build: F) -> F
where
    F: Fn(&'a [T]) -> QueryBuilder<DB>,
{
    build
}

/// Executes one multi-row statement per chunk of `$items`, each built by
/// `$build(chunk) -> QueryBuilder`, on `$conn`. The next chunk's statement is
/// built while the database runs the current one: `join!` polls the execution
/// first, which hands the statement to the connection (SQLite's worker thread,
/// PostgreSQL's socket) before it waits, and then builds the next chunk on this
/// thread. Built one after the other, building and running took turns, each
/// waiting for the other (about a third of a rebuild's writing, on SQLite).
macro_rules! execute_chunks {
    ($conn:expr, $table:expr, $items:expr, $size:expr, $build:expr) => {{
        let timer = std::time::Instant::now();
        let items = &$items[..];
        let build = chunk_builder(items, $build);
        let mut chunks = items.chunks($size);
        let mut current = chunks.next().map(&build);
        while let Some(mut q) = current {
            let (done, next) = tokio::join!(q.build().execute(&mut *$conn), async {
                chunks.next().map(&build)
            });
            done?;
            current = next;
        }
        tracing::debug!(
            table = $table,
            rows = items.len(),
            ms = timer.elapsed().as_millis() as u64,
            "unit_stats wrote a table"
        );
    }};
}

pub struct UnitStats {
    pool: Pool,
    org: OrgHandle,
    calendar: Calendar,
    cache: Mutex<lru::LruCache<Uuid, TicketFacts>>,
}

impl UnitStats {
    /// The projection, keeping the facts of up to [`REBUILD_CACHE`] tickets.
    pub fn new(pool: Pool, org: OrgHandle, calendar: Calendar) -> UnitStats {
        Self::with_cache(pool, org, calendar, REBUILD_CACHE)
    }

    /// The projection, keeping the facts of up to `tickets` tickets (at least one).
    pub fn with_cache(pool: Pool, org: OrgHandle, calendar: Calendar, tickets: usize) -> UnitStats {
        let cap = std::num::NonZeroUsize::new(tickets).unwrap_or(std::num::NonZeroUsize::MIN);
        UnitStats {
            pool,
            org,
            calendar,
            cache: Mutex::new(lru::LruCache::new(cap)),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Uuid, TicketFacts>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The facts of these tickets, from memory or `stats_tickets`.
    async fn load(&self, ids: &HashSet<Uuid>) -> Result<HashMap<Uuid, TicketFacts>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let mut cache = self.cache();
            for id in ids {
                match cache.get(id) {
                    Some(f) => {
                        found.insert(*id, f.clone());
                    }
                    None => missing.push(id.to_string()),
                }
            }
        }
        for chunk in missing.chunks(CHUNK) {
            let rows: Vec<(String,)> = on_pool!(&self.pool, p, Db => {
                let mut q = QueryBuilder::<Db>::new("SELECT doc FROM stats_tickets WHERE ticket IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await?
            });
            for (doc,) in rows {
                let f: TicketFacts = serde_json::from_str(&doc)
                    .map_err(|e| StoreError::Corrupt(format!("stats_tickets doc: {e}")))?;
                found.insert(f.ticket, f);
            }
        }
        Ok(found)
    }

    /// Writes the changed facts and the new occurrences and moves the checkpoint
    /// to `to`, in one transaction. False: the checkpoint was not at `from` (another
    /// process applied this batch), nothing written.
    async fn write(
        &self,
        mode: Mode,
        to: i64,
        changed: &[&TicketFacts],
        occurrences: &[Occurrence],
        delta: &mut Delta,
    ) -> Result<bool, StoreError> {
        let now = facts::micros(chrono::Utc::now());
        let derived = self.pool.derived_tx();
        on_pool!(&self.pool, p, Db => {
            let mut tx = p.begin().await?;
            if let Some(sql) = derived {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            match mode {
                Mode::From(from) => {
                    let moved = sqlx::query(
                        "UPDATE projection_checkpoints SET position = $1, updated_at = $2 WHERE name = $3 AND position = $4",
                    )
                    .bind(to)
                    .bind(now)
                    .bind(NAME)
                    .bind(from)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if moved != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                Mode::Replace => {
                    for t in TABLES {
                        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}"))).execute(&mut *tx).await?;
                    }
                    for (name, _) in INDEXES {
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}"))).execute(&mut *tx).await?;
                    }
                    sqlx::query(
                        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
                    )
                    .bind(NAME)
                    .bind(to)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            execute_chunks!(tx, "stats_tickets", changed, CHUNK, |chunk| {
                let mut q = QueryBuilder::<Db>::new("INSERT INTO stats_tickets (ticket, doc) ");
                q.push_values(chunk, |mut b, f| {
                    // Plain structs of strings and numbers: serializing cannot fail.
                    let doc = serde_json::to_string(f).expect("facts serialize");
                    b.push_bind(f.ticket.to_string()).push_bind(doc);
                });
                q.push(" ON CONFLICT (ticket) DO UPDATE SET doc = excluded.doc");
                q
            });
            let episodes: Vec<(&TicketFacts, &facts::Episode)> = changed
                .iter()
                .flat_map(|f| f.episodes.iter().map(move |e| (*f, e)))
                .collect();
            execute_chunks!(tx, "stats_episodes", episodes, CHUNK, |chunk| {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO stats_episodes (ticket, seq, unit, category, assigned_at, assign_pos, \
                     sign_due, signed_at, sign_pos, left_at, return_pos, handle_due, handled_at, \
                     handle_pos, handled_due, turnaround_secs, closed_at, reworks, ext_requested, \
                     ext_approved, after_return, span_end) ",
                );
                q.push_values(chunk, |mut b, (f, e)| {
                    b.push_bind(f.ticket.to_string())
                        .push_bind(e.seq)
                        .push_bind(e.unit.as_str())
                        .push_bind(f.category.as_str())
                        .push_bind(e.assigned_at)
                        .push_bind(e.assign_pos)
                        .push_bind(e.sign_due)
                        .push_bind(e.signed_at)
                        .push_bind(e.sign_pos)
                        .push_bind(e.left_at)
                        .push_bind(e.return_pos)
                        .push_bind(e.handle_due)
                        .push_bind(e.handled_at)
                        .push_bind(e.handle_pos)
                        .push_bind(e.handled_due)
                        .push_bind(e.turnaround_secs)
                        .push_bind(e.closed_at)
                        .push_bind(e.reworks)
                        .push_bind(e.ext_requested)
                        .push_bind(e.ext_approved)
                        .push_bind(i32::from(e.after_return))
                        .push_bind(e.span_end());
                });
                q.push(
                    " ON CONFLICT (ticket, seq) DO UPDATE SET unit = excluded.unit, \
                     category = excluded.category, assigned_at = excluded.assigned_at, \
                     assign_pos = excluded.assign_pos, sign_due = excluded.sign_due, \
                     signed_at = excluded.signed_at, sign_pos = excluded.sign_pos, \
                     left_at = excluded.left_at, return_pos = excluded.return_pos, \
                     handle_due = excluded.handle_due, handled_at = excluded.handled_at, \
                     handle_pos = excluded.handle_pos, handled_due = excluded.handled_due, \
                     turnaround_secs = excluded.turnaround_secs, closed_at = excluded.closed_at, \
                     reworks = excluded.reworks, ext_requested = excluded.ext_requested, \
                     ext_approved = excluded.ext_approved, after_return = excluded.after_return, \
                     span_end = excluded.span_end",
                );
                q
            });
            execute_chunks!(tx, "stats_occurrences", occurrences, CHUNK, |chunk| {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO stats_occurrences (position, kind, ticket, unit, at, category, source) ",
                );
                q.push_values(chunk, |mut b, o| {
                    b.push_bind(o.position)
                        .push_bind(o.kind.as_str())
                        .push_bind(o.ticket.to_string())
                        .push_bind(o.unit.as_str())
                        .push_bind(o.at)
                        .push_bind(o.category.as_str())
                        .push_bind(o.source.as_str());
                });
                q.push(" ON CONFLICT (position, kind) DO NOTHING");
                q
            });
            // The same changes by day and by month.
            let monthly = delta.monthly();
            for (counts_table, lists_table, key, delta) in [
                ("stats_daily", "stats_turnaround", "day", &*delta),
                ("stats_monthly", "stats_turnaround_monthly", "month", &monthly),
            ] {
            let mut counts: Vec<(&(String, i64), &daily::Counts)> = delta.counts.iter().collect();
            counts.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let add_all = daily::COLUMNS
                .iter()
                .map(|c| format!("{c} = {counts_table}.{c} + excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            execute_chunks!(tx, counts_table, counts, DAILY_CHUNK, |chunk| {
                let mut q = QueryBuilder::<Db>::new(format!(
                    "INSERT INTO {counts_table} (unit, {key}, {}) ",
                    daily::COLUMNS.join(", ")
                ));
                q.push_values(chunk, |mut b, ((unit, day), c)| {
                    b.push_bind(unit.as_str()).push_bind(*day);
                    for v in c.iter() {
                        b.push_bind(*v);
                    }
                });
                q.push(format!(" ON CONFLICT ({key}, unit) DO UPDATE SET ")).push(&add_all);
                q
            });
            // Turnaround lists: read the ones this batch changes, change, write back.
            let mut keys: Vec<&(String, i64)> = delta.turnaround.keys().collect();
            keys.sort_unstable();
            let mut lists: HashMap<(String, i64), Vec<i64>> = HashMap::new();
            if let Mode::From(_) = mode {
                for chunk in keys.chunks(CHUNK) {
                    let mut q = QueryBuilder::<Db>::new(format!(
                        "SELECT unit, {key}, secs FROM {lists_table} WHERE ({key}, unit) IN (VALUES "
                    ));
                    let mut sep = q.separated(", ");
                    for (unit, day) in chunk {
                        sep.push("(")
                            .push_bind_unseparated(*day)
                            .push_unseparated(", ")
                            .push_bind_unseparated(unit.as_str())
                            .push_unseparated(")");
                    }
                    q.push(")");
                    let rows: Vec<(String, i64, String)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    for (unit, day, secs) in rows {
                        lists.insert((unit, day), daily::parse_list(&secs));
                    }
                }
            }
            let written: Vec<(&(String, i64), String)> = keys
                .iter()
                .map(|k| {
                    let mut list = lists.remove(*k).unwrap_or_default();
                    daily::apply_list(&mut list, &delta.turnaround[*k]);
                    (*k, daily::format_list(&list))
                })
                .collect();
            execute_chunks!(tx, lists_table, written, CHUNK, |chunk| {
                let mut q = QueryBuilder::<Db>::new(format!("INSERT INTO {lists_table} (unit, {key}, secs) "));
                q.push_values(chunk, |mut b, ((unit, day), secs)| {
                    b.push_bind(unit.as_str()).push_bind(*day).push_bind(secs.as_str());
                });
                q.push(format!(" ON CONFLICT ({key}, unit) DO UPDATE SET secs = excluded.secs"));
                q
            });
            }
            evidence::write_evidence!(tx, Db, mode, monthly);
            if let Mode::Replace = mode {
                let timer = std::time::Instant::now();
                for (_, create) in INDEXES {
                    sqlx::query(create).execute(&mut *tx).await?;
                }
                tracing::debug!(ms = timer.elapsed().as_millis() as u64, "unit_stats made the indexes");
            }
            let timer = std::time::Instant::now();
            tx.commit().await?;
            tracing::debug!(ms = timer.elapsed().as_millis() as u64, "unit_stats committed");
        });
        Ok(true)
    }

    /// Folds the whole feed in memory (333 MB peak for 1,000,000 events with the
    /// evidence and report lists, see BENCHMARKS.md) and writes each table once. A reader task fetches the next
    /// batch while this one is folded.
    async fn rebuild_all(
        &self,
        store: &Store,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        self.forget();
        let (send, mut recv) = tokio::sync::mpsc::channel::<Result<Vec<RawEvent>, StoreError>>(2);
        let reader_store = store.clone();
        let reader = tokio::spawn(async move {
            let mut after = 0;
            loop {
                let batch = reader_store.read_all_raw(after, REBUILD_BATCH).await;
                let done = match &batch {
                    Ok(b) => match b.last() {
                        Some(e) => {
                            after = e.position;
                            false
                        }
                        None => true,
                    },
                    Err(_) => true,
                };
                if done {
                    if batch.is_err() {
                        let _ = send.send(batch).await;
                    }
                    break;
                }
                if send.send(batch).await.is_err() {
                    break;
                }
            }
        });
        let org = self.org.get();
        let mut all: HashMap<Uuid, TicketFacts> = HashMap::new();
        let mut occurrences = Vec::new();
        let (mut last, mut count) = (0i64, 0u64);
        while let Some(batch) = recv.recv().await {
            let batch = batch?;
            for e in &batch {
                last = e.position;
                // The appraisal's own events (entries, grades, bulletins): not a
                // ticket's, nothing to count, nothing to warn about.
                if is_appraisal_event(&e.event_type) {
                    continue;
                }
                let ev = match TicketEvent::from_json_parts(
                    &e.event_type,
                    e.schema_version,
                    &e.data,
                ) {
                    Ok(ev) => ev,
                    Err(err @ DecodeError::TooNew { .. }) => return Err(too_new(e.position, err)),
                    Err(err) => {
                        tracing::warn!(position = e.position, r#type = %e.event_type, error = %err, "unit_stats skips an event it cannot read");
                        continue;
                    }
                };
                let current = all.remove(&e.stream_id);
                let next = facts::apply(
                    current,
                    e.stream_id,
                    &Input {
                        position: e.position,
                        occurred_at: e.occurred_at,
                        event: &ev,
                    },
                    &Ctx {
                        calendar: &self.calendar,
                        org: &org,
                        loaded: &all,
                    },
                    &mut occurrences,
                );
                if let Some(f) = next {
                    all.insert(e.stream_id, f);
                }
            }
            count += batch.len() as u64;
            progress(count);
        }
        reader
            .await
            .map_err(|e| StoreError::Corrupt(format!("the rebuild's reader failed: {e}")))?;
        let timer = std::time::Instant::now();
        // Tickets in a fixed order, so a rebuild writes the same rows the same way.
        let mut facts: Vec<&TicketFacts> = all.values().collect();
        facts.sort_by_key(|f| f.ticket);
        let mut delta = Delta::default();
        for f in &facts {
            delta.ticket(f, 1);
        }
        for o in &occurrences {
            delta.occurrence(o);
        }
        delta.prune();
        tracing::debug!(
            ms = timer.elapsed().as_millis() as u64,
            "unit_stats counted the rebuild's rows"
        );
        self.write(Mode::Replace, last, &facts, &occurrences, &mut delta)
            .await?;
        self.tidy_after_rebuild().await;
        Ok(count)
    }
}

impl UnitStats {
    /// On PostgreSQL, vacuums and analyzes the tables a rebuild has just replaced.
    /// The rebuild deletes every row and inserts them again in one transaction (so
    /// readers keep the old figures until it commits): it leaves as many dead
    /// rows as live ones, no visibility map and no planner statistics until
    /// autovacuum comes by. Until then the year's appraisal read its open
    /// episodes through the heap, not the covering index. A failure is only
    /// logged: autovacuum will do the same later.
    async fn tidy_after_rebuild(&self) {
        let Pool::Postgres(p) = &self.pool else {
            return;
        };
        let timer = std::time::Instant::now();
        // VACUUM runs outside a transaction block: the simple protocol, on its own.
        let sql = format!("VACUUM (ANALYZE) {}", TABLES.join(", "));
        match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(p)
            .await
        {
            Ok(_) => tracing::debug!(
                ms = timer.elapsed().as_millis() as u64,
                "unit_stats vacuumed its tables"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "vacuuming the rebuilt statistics failed; autovacuum will"
            ),
        }
    }
}

/// An event of a schema version newer than this build reads (a later release,
/// running alongside, wrote it): the projection stops on it, neither skipping it
/// (the figures would silently miss it) nor misreading it. The round fails and is
/// retried, so the projection stays behind (`/readyz`: degraded) until the
/// instance runs a release that reads it.
fn too_new(position: i64, err: DecodeError) -> StoreError {
    StoreError::Unreadable(format!(
        "unit_stats stops at the event at position {position}: {err}"
    ))
}

/// What the fold asks of the world, answered from the batch's loaded facts.
struct Ctx<'a> {
    calendar: &'a Calendar,
    org: &'a crate::org::Org,
    loaded: &'a HashMap<Uuid, TicketFacts>,
}

impl Context for Ctx<'_> {
    fn calendar(&self) -> &Calendar {
        self.calendar
    }
    fn township_of(&self, grid: &str) -> Option<String> {
        self.org.township_of(grid).map(str::to_string)
    }
    fn unit_of_ticket(&self, ticket: Uuid) -> Option<String> {
        self.loaded.get(&ticket).and_then(|f| f.last_unit.clone())
    }
}

#[async_trait]
impl Projection for UnitStats {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn checkpoint(&self) -> Result<i64, StoreError> {
        read_checkpoint(&self.pool, NAME).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.forget();
        crate::repo::projections::reset(&self.pool, &TABLES, NAME).await
    }

    fn forget(&self) {
        self.cache().clear();
    }

    async fn rebuild(
        &self,
        store: &Store,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        self.rebuild_all(store, progress).await
    }

    async fn apply(&self, from: i64, events: Vec<RecordedEvent>) -> Result<Batch, StoreError> {
        let to = events.last().map_or(from, |e| e.position);
        let count = events.len();
        // Decode first: the tickets the batch touches, and the earlier tickets that
        // repeat complaints point at.
        let mut decoded = Vec::with_capacity(events.len());
        let mut ids = HashSet::new();
        for mut e in events {
            if is_appraisal_event(&e.event_type) {
                continue;
            }
            let data = e.data.take();
            let ev = match TicketEvent::from_parts(&e.event_type, e.schema_version, &data) {
                Ok(ev) => ev,
                Err(err @ DecodeError::TooNew { .. }) => return Err(too_new(e.position, err)),
                Err(err) => {
                    // Not a ticket event this build knows: the statistics skip it.
                    tracing::warn!(position = e.position, r#type = %e.event_type, error = %err, "unit_stats skips an event it cannot read");
                    continue;
                }
            };
            ids.insert(e.stream_id);
            if let TicketEvent::TicketAccepted(a) = &ev
                && let Some(r) = a.related_to
            {
                ids.insert(r);
            }
            decoded.push((e.position, e.stream_id, e.occurred_at, ev));
        }
        let mut loaded = self.load(&ids).await?;
        // What the loaded tickets count before the batch is taken away, and what
        // they count after it added back (an unchanged ticket cancels out).
        let mut delta = Delta::default();
        for f in loaded.values() {
            delta.ticket(f, -1);
        }
        let org = self.org.get();
        let mut occurrences = Vec::new();
        let mut changed: HashSet<Uuid> = HashSet::new();
        for (position, stream, occurred_at, ev) in &decoded {
            let current = loaded.remove(stream);
            let next = facts::apply(
                current,
                *stream,
                &Input {
                    position: *position,
                    occurred_at: *occurred_at,
                    event: ev,
                },
                &Ctx {
                    calendar: &self.calendar,
                    org: &org,
                    loaded: &loaded,
                },
                &mut occurrences,
            );
            if let Some(f) = next {
                loaded.insert(*stream, f);
                changed.insert(*stream);
            }
        }
        let changed_facts: Vec<&TicketFacts> =
            changed.iter().filter_map(|id| loaded.get(id)).collect();
        for f in loaded.values() {
            delta.ticket(f, 1);
        }
        for o in &occurrences {
            delta.occurrence(o);
        }
        delta.prune();
        let ok = self
            .write(
                Mode::From(from),
                to,
                &changed_facts,
                &occurrences,
                &mut delta,
            )
            .await;
        match ok {
            Ok(true) => {
                let mut cache = self.cache();
                for id in &changed {
                    if let Some(f) = loaded.remove(id) {
                        cache.put(*id, f);
                    }
                }
                Ok(Batch {
                    applied: true,
                    events: count,
                    to,
                })
            }
            Ok(false) => {
                self.forget();
                Ok(Batch {
                    applied: false,
                    events: 0,
                    to: from,
                })
            }
            Err(e) => {
                self.forget();
                Err(e)
            }
        }
    }
}

/// A projection's checkpoint (creating its row at 0 the first time).
pub async fn read_checkpoint(pool: &Pool, name: &str) -> Result<i64, StoreError> {
    crate::repo::projections::read_checkpoint(pool, name, facts::micros(chrono::Utc::now())).await
}

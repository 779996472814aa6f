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

use super::facts::{self, Context, Input, Occurrence, TicketFacts};
use super::{Batch, Projection};
use crate::domain::TicketEvent;
use crate::org::OrgHandle;
use crate::sla::calendar::Calendar;
use crate::store::{Pool, RecordedEvent, StoreError};

pub const NAME: &str = "unit_stats";

/// Rows per multi-row INSERT: under both engines' bound-parameter limits
/// (episodes have 24 columns; SQLite allows 32,766 parameters, PostgreSQL 65,535).
const CHUNK: usize = 1000;

/// Tickets whose facts are kept in memory between batches, so a ticket's next
/// event needs no read (the rest are read from `stats_tickets`).
const CACHE: usize = 200_000;

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

pub struct UnitStats {
    pool: Pool,
    org: OrgHandle,
    calendar: Calendar,
    cache: Mutex<lru::LruCache<Uuid, TicketFacts>>,
}

impl UnitStats {
    pub fn new(pool: Pool, org: OrgHandle, calendar: Calendar) -> UnitStats {
        // A non-zero literal: the conversion cannot fail.
        let cap = std::num::NonZeroUsize::new(CACHE).expect("non-zero capacity");
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
    /// from `from` to `to`, in one transaction. False: the checkpoint was not at
    /// `from` (another process applied this batch), nothing written.
    async fn write(
        &self,
        from: i64,
        to: i64,
        changed: &[&TicketFacts],
        occurrences: &[Occurrence],
    ) -> Result<bool, StoreError> {
        let now = facts::micros(chrono::Utc::now());
        let docs: Vec<(String, String)> = changed
            .iter()
            .map(|f| {
                // Plain structs of strings and numbers: serializing cannot fail.
                let doc = serde_json::to_string(f).expect("facts serialize");
                (f.ticket.to_string(), doc)
            })
            .collect();
        let episodes: Vec<(String, &facts::Episode, &str)> = changed
            .iter()
            .flat_map(|f| {
                f.episodes
                    .iter()
                    .map(move |e| (f.ticket.to_string(), e, f.category.as_str()))
            })
            .collect();
        on_pool!(&self.pool, p, Db => {
            let mut tx = p.begin().await?;
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
            for chunk in docs.chunks(CHUNK) {
                let mut q = QueryBuilder::<Db>::new("INSERT INTO stats_tickets (ticket, doc) ");
                q.push_values(chunk, |mut b, (id, doc)| {
                    b.push_bind(id.as_str()).push_bind(doc.as_str());
                });
                q.push(" ON CONFLICT (ticket) DO UPDATE SET doc = excluded.doc");
                q.build().execute(&mut *tx).await?;
            }
            for chunk in episodes.chunks(CHUNK) {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO stats_episodes (ticket, seq, unit, category, assigned_at, assign_pos, \
                     sign_due, signed_at, sign_pos, left_at, return_pos, handle_due, handled_at, \
                     handle_pos, handled_due, turnaround_secs, closed_at, reworks, ext_requested, \
                     ext_approved, after_return, span_end) ",
                );
                q.push_values(chunk, |mut b, (id, e, category)| {
                    b.push_bind(id.as_str())
                        .push_bind(e.seq)
                        .push_bind(e.unit.as_str())
                        .push_bind(*category)
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
                q.build().execute(&mut *tx).await?;
            }
            for chunk in occurrences.chunks(CHUNK) {
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
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }
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
        on_pool!(&self.pool, p, Db => {
            let mut tx = p.begin().await?;
            for t in ["stats_tickets", "stats_episodes", "stats_occurrences"] {
                sqlx::query(&format!("DELETE FROM {t}")).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE name = $1")
                .bind(NAME)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    fn forget(&self) {
        self.cache().clear();
    }

    async fn apply(&self, from: i64, events: Vec<RecordedEvent>) -> Result<Batch, StoreError> {
        let to = events.last().map_or(from, |e| e.position);
        let count = events.len();
        // Decode first: the tickets the batch touches, and the earlier tickets that
        // repeat complaints point at.
        let mut decoded = Vec::with_capacity(events.len());
        let mut ids = HashSet::new();
        for mut e in events {
            let data = e.data.take();
            let ev = match TicketEvent::from_parts(&e.event_type, &data) {
                Ok(ev) => ev,
                Err(err) => {
                    // Not a ticket event this build knows: the statistics skip it.
                    tracing::warn!(position = e.position, r#type = %e.event_type, error = %err, "unit_stats skips an event it cannot read");
                    continue;
                }
            };
            ids.insert(e.stream_id);
            if let TicketEvent::TicketAccepted(a) = &ev {
                if let Some(r) = a.related_to {
                    ids.insert(r);
                }
            }
            decoded.push((e.position, e.stream_id, e.occurred_at, ev));
        }
        let mut loaded = self.load(&ids).await?;
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
        let ok = self.write(from, to, &changed_facts, &occurrences).await;
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
    let now = facts::micros(chrono::Utc::now());
    on_pool!(pool, p, Db => {
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(p)
        .await?;
        let (pos,): (i64,) =
            sqlx::query_as("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_one(p)
                .await?;
        Ok(pos)
    })
}

//! The ticket view: one row per ticket, the folded ticket and the columns the queues
//! filter on, written in the same transaction as the ticket's events (it is the
//! append's [`ViewHandler`]); the ticket queue's reads; the ticket serial numbers.

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::store::hash::rfc3339;
use crate::store::sqlite::{parse_time, parse_uuid, unique_violation};
use crate::store::{Appended, PgPart, PgValue, Pool, StoreError, ViewHandler};

mod list;
pub mod search;

pub use list::{count_tickets, list_tickets, page_with_total, ticket_by_number};

/// The refusal of an append whose new ticket's number another process took
/// ([`StoreError::Refused`]).
pub const NUMBER_TAKEN: &str = "a ticket with this number already exists";

/// The ticket-view row written in the same transaction as the events.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketViewRow {
    pub id: Uuid,
    pub number: String,
    pub state: String,
    pub unit: Option<String>,
    pub centre: String,
    pub category: String,
    pub grid: Option<String>,
    pub co_units: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The earliest open deadline ([`crate::domain::Ticket::overdue_from`]).
    pub due_at: Option<DateTime<Utc>>,
    /// The folded ticket as JSON text.
    pub doc: String,
    /// The hash of the stream's last event; the append fills it in (from what the
    /// store appended). It lets the next command chain its events without reading
    /// the stream's head.
    pub head_hash: String,
}

/// Filter for the ticket queue.
#[derive(Clone, Debug, Default)]
pub struct TicketQuery {
    pub state: Option<String>,
    pub unit: Option<String>,
    /// Only tickets whose unit, centre, grid or a co-unit is one of these (the caller's
    /// subtree); None: all. (Co-units are read from the document only when it has any.)
    pub within: Option<Vec<String>>,
    /// Keyset cursor: tickets created before this (created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
    /// Only tickets of this category.
    pub category: Option<String>,
    /// Only tickets in one of these states.
    pub states: Option<Vec<String>>,
    /// Only tickets created at or after this.
    pub created_from: Option<DateTime<Utc>>,
    /// Only tickets whose number, title, description or address contains this
    /// (see `search`).
    pub text: Option<String>,
    /// Only tickets overdue at this instant (an open deadline before it).
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only tickets whose lead unit is one of these.
    pub units: Option<Vec<String>>,
    pub sort: Sort,
    /// With a sort other than [`Sort::NewestFirst`]: tickets skipped.
    pub offset: i64,
}

/// The order of the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Newest first (`-created`), paged by keyset (`before`).
    #[default]
    NewestFirst,
    /// Oldest first (`created`).
    OldestFirst,
    /// Earliest open deadline first, so the most overdue first (`deadline`);
    /// tickets without one after, oldest first.
    Deadline,
}

/// The view row's part of the batched PostgreSQL append (see `store::view`).
pub static VIEW_PART: PgPart = PgPart {
    rows: "ticket_view_rows",
    columns: &[
        ("id", "uuid"),
        ("number", "text"),
        ("state", "text"),
        ("unit", "text"),
        ("centre", "text"),
        ("category", "text"),
        ("grid", "text"),
        ("version", "bigint"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("doc", "text"),
        ("head_hash", "text"),
        ("due_at", "timestamptz"),
        // The co-units as a JSON array (arrays of arrays do not unnest).
        ("co", "text"),
    ],
    write: "INSERT INTO ticket_view (id, number, state, unit, centre, category, grid, version, created_at, \
                                     updated_at, doc, head_hash, co_units, due_at) \
            SELECT id, number, state, unit, centre, category, grid, version, created_at, \
                   updated_at, doc, head_hash, ARRAY(SELECT json_array_elements_text(co::json)), due_at \
            FROM ticket_view_rows \
            ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, unit = EXCLUDED.unit, \
              centre = EXCLUDED.centre, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, \
              doc = EXCLUDED.doc, head_hash = EXCLUDED.head_hash, co_units = EXCLUDED.co_units, \
              due_at = EXCLUDED.due_at \
            WHERE ticket_view.version < EXCLUDED.version",
    refusals: &[("ticket_view_number_key", NUMBER_TAKEN)],
};

#[async_trait]
impl ViewHandler for TicketViewRow {
    async fn write_sqlite(
        &self,
        conn: &mut SqliteConnection,
        appended: &Appended,
    ) -> Result<(), StoreError> {
        let v = self;
        sqlx::query(
            "INSERT INTO ticket_view (id, number, state, unit, centre, category, grid, version, created_at, \
             updated_at, doc, head_hash, co_units, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, unit = excluded.unit, \
             centre = excluded.centre, version = excluded.version, updated_at = excluded.updated_at, \
             doc = excluded.doc, head_hash = excluded.head_hash, co_units = excluded.co_units, \
             due_at = excluded.due_at \
             WHERE ticket_view.version < excluded.version",
        )
        .bind(v.id.to_string())
        .bind(&v.number)
        .bind(&v.state)
        .bind(&v.unit)
        .bind(&v.centre)
        .bind(&v.category)
        .bind(&v.grid)
        .bind(v.version)
        .bind(rfc3339(v.created_at))
        .bind(rfc3339(v.updated_at))
        .bind(&v.doc)
        .bind(&appended.head_hash)
        .bind(serde_json::Value::from(v.co_units.clone()).to_string())
        .bind(v.due_at.map(rfc3339))
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if unique_violation(&e, "ticket_view.number") {
                StoreError::Refused(NUMBER_TAKEN)
            } else {
                StoreError::Database(e)
            }
        })?;
        Ok(())
    }

    fn pg_part(&self) -> &'static PgPart {
        &VIEW_PART
    }

    fn pg_row(&self, head_hash: &str) -> Vec<PgValue> {
        let v = self;
        vec![
            PgValue::Uuid(Some(v.id)),
            PgValue::Text(Some(v.number.clone())),
            PgValue::Text(Some(v.state.clone())),
            PgValue::Text(v.unit.clone()),
            PgValue::Text(Some(v.centre.clone())),
            PgValue::Text(Some(v.category.clone())),
            PgValue::Text(v.grid.clone()),
            PgValue::BigInt(Some(v.version)),
            PgValue::Time(Some(v.created_at)),
            PgValue::Time(Some(v.updated_at)),
            PgValue::Text(Some(v.doc.clone())),
            PgValue::Text(Some(head_hash.to_string())),
            PgValue::Time(v.due_at),
            PgValue::Text(Some(
                serde_json::Value::from(v.co_units.clone()).to_string(),
            )),
        ]
    }
}

fn view_from_sqlite_row(r: &SqliteRow) -> Result<TicketViewRow, StoreError> {
    Ok(TicketViewRow {
        id: parse_uuid(r.try_get("id")?)?,
        number: r.try_get("number")?,
        state: r.try_get("state")?,
        unit: r.try_get("unit")?,
        centre: r.try_get("centre")?,
        category: r.try_get("category")?,
        grid: r.try_get("grid")?,
        co_units: serde_json::from_str(r.try_get("co_units")?)
            .map_err(|e| StoreError::Corrupt(format!("co_units: {e}")))?,
        version: r.try_get("version")?,
        created_at: parse_time(r.try_get("created_at")?)?,
        updated_at: parse_time(r.try_get("updated_at")?)?,
        due_at: r
            .try_get::<Option<&str>, _>("due_at")?
            .map(parse_time)
            .transpose()?,
        doc: r.try_get("doc")?,
        head_hash: r.try_get("head_hash")?,
    })
}

fn view_from_pg_row(r: &PgRow) -> Result<TicketViewRow, sqlx::Error> {
    Ok(TicketViewRow {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        state: r.try_get("state")?,
        unit: r.try_get("unit")?,
        centre: r.try_get("centre")?,
        category: r.try_get("category")?,
        grid: r.try_get("grid")?,
        co_units: r.try_get("co_units")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        due_at: r.try_get("due_at")?,
        doc: r.try_get("doc")?,
        head_hash: r.try_get("head_hash")?,
    })
}

/// One ticket's view row.
pub async fn ticket_view(pool: &Pool, id: Uuid) -> Result<Option<TicketViewRow>, StoreError> {
    match pool {
        Pool::Postgres(p) => {
            let row = sqlx::query("SELECT * FROM ticket_view WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            Ok(row.as_ref().map(view_from_pg_row).transpose()?)
        }
        Pool::Sqlite(p) => {
            let row = sqlx::query("SELECT * FROM ticket_view WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            row.as_ref().map(view_from_sqlite_row).transpose()
        }
    }
}

/// Serials per block on PostgreSQL; must equal the sequence's INCREMENT BY.
const SERIAL_BLOCK: i64 = 100;

/// The ticket serial numbers this process hands out (the `NNNNNN` of
/// `YYYYMMDD-NNNNNN`). One per process, shared by everything that creates tickets.
pub enum Serials {
    /// Blocks of [`SERIAL_BLOCK`] from the sequence `ticket_serial_seq`: [next, end).
    Postgres {
        pool: sqlx::PgPool,
        block: tokio::sync::Mutex<(i64, i64)>,
    },
    /// Counting on from the highest number in the log.
    Sqlite { pool: SqlitePool, serial: AtomicI64 },
}

impl Serials {
    /// The serials of the store on `pool`; on SQLite they continue from the
    /// highest ticket number in the log.
    pub async fn open(pool: &Pool) -> Serials {
        match pool {
            Pool::Postgres(p) => Serials::Postgres {
                pool: p.clone(),
                block: tokio::sync::Mutex::new((0, 0)),
            },
            Pool::Sqlite(p) => {
                let max_serial = max_serial(p).await.unwrap_or(None);
                Serials::Sqlite {
                    pool: p.clone(),
                    serial: AtomicI64::new(max_serial.unwrap_or(0)),
                }
            }
        }
    }

    /// The next ticket serial number.
    pub async fn next(&self) -> Result<i64, StoreError> {
        match self {
            Serials::Postgres { pool, block } => {
                let mut block = block.lock().await;
                if block.0 >= block.1 {
                    let start: i64 = sqlx::query_scalar("SELECT nextval('ticket_serial_seq')")
                        .fetch_one(pool)
                        .await
                        .map_err(StoreError::classify)?;
                    *block = (start, start + SERIAL_BLOCK);
                }
                block.0 += 1;
                Ok(block.0 - 1)
            }
            // Several processes on one file each count from what they last saw; a
            // clash is refused by the unique number and resynchronised in `resync`.
            // One process owns the SQLite file; the unique number in ticket_view
            // refuses a clash should a second process write to it too.
            Serials::Sqlite { serial, .. } => Ok(serial.fetch_add(1, Ordering::Relaxed) + 1),
        }
    }

    /// After an append refused with [`NUMBER_TAKEN`]: another process on this
    /// SQLite file took the number, so continue after the highest one in the log
    /// (the caller decides the ticket again). PostgreSQL's sequence never clashes.
    pub async fn resync(&self) {
        if let Serials::Sqlite { pool, serial } = self
            && let Ok(Some(max)) = max_serial(pool).await
        {
            serial.fetch_max(max, Ordering::Relaxed);
        }
    }
}

/// The highest ticket serial in the log (SQLite).
async fn max_serial(pool: &SqlitePool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MAX(CAST(substr(json_extract(data, '$.number'), 10) AS INTEGER)) \
         FROM events WHERE event_type = 'TicketAccepted'",
    )
    .fetch_one(pool)
    .await
}

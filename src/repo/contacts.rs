//! Reporters' contact details are personal data (DESIGN §4): they live in the
//! `contacts` table, outside the event log (an event holds only the contact's id),
//! so that they can be erased after the retention period without touching the log.
//!
//! Erasing sets `name` and `phone` to NULL and stamps `purged_at`; the row stays, so
//! the reference in the log still resolves (to "no contact details").
//!
//! The answer to a ticket's creation is kept as its idempotency record (replayed to a
//! client that retries) and repeats the reporter's contact as the creator saw it. A
//! retry comes within minutes, never after a retention period, so the purge deletes
//! idempotency records older than the same cutoff as well.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use crate::store::on_pool;
use crate::store::{Appended, PgPart, PgValue, Pool, StoreError, ViewHandler, hash::rfc3339};

/// A reporter's contact details: personal data, kept out of the event log. Written
/// with the event that names it (the append's [`ViewHandler`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: Uuid,
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// The contact's part of the batched PostgreSQL append (see `store::view`).
pub static CONTACT_PART: PgPart = PgPart {
    rows: "contact_rows",
    columns: &[("id", "uuid"), ("name", "text"), ("phone", "text")],
    write: "INSERT INTO contacts (id, name, phone) SELECT id, name, phone FROM contact_rows",
    refusals: &[],
};

#[async_trait]
impl ViewHandler for Contact {
    async fn write_sqlite(
        &self,
        conn: &mut SqliteConnection,
        _appended: &Appended,
    ) -> Result<(), StoreError> {
        let c = self;
        sqlx::query("INSERT INTO contacts (id, name, phone) VALUES (?, ?, ?)")
            .bind(c.id.to_string())
            .bind(&c.name)
            .bind(&c.phone)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    fn pg_part(&self) -> &'static PgPart {
        &CONTACT_PART
    }

    fn pg_row(&self, _head_hash: &str) -> Vec<PgValue> {
        vec![
            PgValue::Uuid(Some(self.id)),
            PgValue::Text(self.name.clone()),
            PgValue::Text(self.phone.clone()),
        ]
    }
}

/// A contact's details (None: no such contact).
pub async fn contact(pool: &Pool, id: Uuid) -> Result<Option<Contact>, StoreError> {
    match pool {
        Pool::Postgres(p) => {
            let row = sqlx::query("SELECT id, name, phone FROM contacts WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
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
        Pool::Sqlite(p) => {
            let row = sqlx::query("SELECT name, phone FROM contacts WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            row.map(|r| {
                Ok(Contact {
                    id,
                    name: r.try_get("name")?,
                    phone: r.try_get("phone")?,
                })
            })
            .transpose()
        }
    }
}

/// What one purge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Contacts whose name and phone were erased.
    pub contacts: u64,
    /// Idempotency records (stored answers to old requests) deleted.
    pub idempotency_records: u64,
}

/// Erases the name and phone of every contact created before `cutoff` and not yet
/// purged, and deletes idempotency records older than `cutoff`. Never touches the
/// events table. Running it again erases nothing more.
///
/// A record written before migration 0016 holds its answer whole, a creation's with
/// the reporter's contact in it; a ticket command's record since then holds no body
/// (a retry renders the answer from the log, the contact read from `contacts`), so
/// it keeps no copy of personal data. The records go at the same age all the same:
/// a retry is a matter of minutes, not of a year.
pub async fn purge_created_before(
    pool: &Pool,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Purged, StoreError> {
    let cutoff = rfc3339(cutoff);
    let now = rfc3339(now);
    // PostgreSQL compares timestamptz; SQLite's times are RFC 3339 text written by
    // two clocks (SQLite's own default with milliseconds, ours with microseconds), so
    // they are compared as times, not text.
    let (erase, forget) = match pool {
        Pool::Postgres(_) => (
            "UPDATE contacts SET name = NULL, phone = NULL, purged_at = $2::timestamptz \
             WHERE created_at < $1::timestamptz AND purged_at IS NULL",
            "DELETE FROM idempotency_keys WHERE created_at < $1::timestamptz",
        ),
        Pool::Sqlite(_) => (
            "UPDATE contacts SET name = NULL, phone = NULL, purged_at = ?2 \
             WHERE julianday(created_at) < julianday(?1) AND purged_at IS NULL",
            "DELETE FROM idempotency_keys WHERE julianday(created_at) < julianday(?1)",
        ),
    };
    let out = on_pool!(pool, |p| {
        let mut tx = p.begin().await.map_err(StoreError::classify)?;
        let contacts = sqlx::query(erase)
            .bind(&cutoff)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let idempotency_records = sqlx::query(forget)
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Purged {
            contacts,
            idempotency_records,
        }
    });
    Ok(out)
}

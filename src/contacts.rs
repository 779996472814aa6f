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

use chrono::{DateTime, Utc};

use crate::store::{Pool, StoreError, hash::rfc3339};

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
pub async fn purge_created_before(
    pool: &Pool,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Purged, StoreError> {
    let cutoff = rfc3339(cutoff);
    let now = rfc3339(now);
    let out = match pool {
        Pool::Postgres(p) => {
            let mut tx = p.begin().await.map_err(StoreError::classify)?;
            let contacts = sqlx::query(
                "UPDATE contacts SET name = NULL, phone = NULL, purged_at = $2::timestamptz \
                 WHERE created_at < $1::timestamptz AND purged_at IS NULL",
            )
            .bind(&cutoff)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let idempotency_records =
                sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1::timestamptz")
                    .bind(&cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            tx.commit().await?;
            Purged {
                contacts,
                idempotency_records,
            }
        }
        Pool::Sqlite(p) => {
            // Times are RFC 3339 text written by two clocks (SQLite's own default with
            // milliseconds, ours with microseconds): compare them as times, not text.
            let mut tx = p.begin().await.map_err(StoreError::classify)?;
            let contacts = sqlx::query(
                "UPDATE contacts SET name = NULL, phone = NULL, purged_at = ?2 \
                 WHERE julianday(created_at) < julianday(?1) AND purged_at IS NULL",
            )
            .bind(&cutoff)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let idempotency_records = sqlx::query(
                "DELETE FROM idempotency_keys WHERE julianday(created_at) < julianday(?1)",
            )
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Purged {
                contacts,
                idempotency_records,
            }
        }
    };
    Ok(out)
}

//! The projections' own bookkeeping: the leases that say which process runs a
//! projection (`projection_leases`), the checkpoints (`projection_checkpoints`:
//! read and reset here; a batch moves its checkpoint in its own transaction, in
//! `crate::projections::unit_stats`), and the reads of the metric gauges.

use crate::store::on_pool;
use crate::store::{Pool, StoreError};

/// Takes or renews `owner`'s lease on projection `name` until `expires` (µs since
/// the epoch): it goes through when `owner` holds it already, when it expired before
/// `now`, or when `force`. The number of rows written: 1 taken, 0 held by another.
pub async fn take_lease(
    pool: &Pool,
    name: &str,
    owner: &str,
    expires: i64,
    now: i64,
    force: bool,
) -> Result<u64, StoreError> {
    let sql = "INSERT INTO projection_leases (name, owner, expires_at) VALUES ($1, $2, $3) \
               ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
               WHERE projection_leases.owner = excluded.owner OR projection_leases.expires_at < $4 OR $5";
    Ok(on_pool!(pool, |p| sqlx::query(sql)
        .bind(name)
        .bind(owner)
        .bind(expires)
        .bind(now)
        .bind(force)
        .execute(p)
        .await?
        .rows_affected()))
}

/// Gives `owner`'s lease on `name` up at once.
pub async fn release_lease(pool: &Pool, name: &str, owner: &str) -> Result<(), StoreError> {
    let sql = "UPDATE projection_leases SET expires_at = 0 WHERE name = $1 AND owner = $2";
    on_pool!(pool, |p| {
        sqlx::query(sql).bind(name).bind(owner).execute(p).await?;
    });
    Ok(())
}

/// Who holds the lease on `name` at `now` (µs since the epoch), if anyone does.
pub async fn lease_holder(pool: &Pool, name: &str, now: i64) -> Result<Option<String>, StoreError> {
    let sql = "SELECT owner FROM projection_leases WHERE name = $1 AND expires_at >= $2";
    let row: Option<(String,)> = on_pool!(pool, |p| {
        sqlx::query_as(sql)
            .bind(name)
            .bind(now)
            .fetch_optional(p)
            .await?
    });
    Ok(row.map(|r| r.0))
}

/// Per unit, its open episodes (`span_end = open`) and how many of them are
/// overdue at `now` (µs since the epoch): the open and overdue ticket gauges.
pub async fn open_and_overdue(
    pool: &Pool,
    now: i64,
    open: i64,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let sql = "SELECT unit, COUNT(*), SUM(CASE WHEN handle_due < $1 OR (signed_at IS NULL AND sign_due < $1) THEN 1 ELSE 0 END) \
               FROM stats_episodes WHERE span_end = $2 AND (signed_at IS NULL OR handled_at IS NULL) GROUP BY unit";
    Ok(on_pool!(pool, |p| {
        sqlx::query_as(sql)
            .bind(now)
            .bind(open)
            .fetch_all(p)
            .await?
    }))
}

/// Projection `name`'s checkpoint, creating its row at 0 (stamped `now`, µs since
/// the epoch) the first time.
pub async fn read_checkpoint(pool: &Pool, name: &str, now: i64) -> Result<i64, StoreError> {
    let insert = "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2) \
                  ON CONFLICT (name) DO NOTHING";
    let select = "SELECT position FROM projection_checkpoints WHERE name = $1";
    let (pos,): (i64,) = on_pool!(pool, |p| {
        sqlx::query(insert).bind(name).bind(now).execute(p).await?;
        sqlx::query_as(select).bind(name).fetch_one(p).await?
    });
    Ok(pos)
}

/// Empties a projection's `tables` and sets its checkpoint to 0, in one
/// transaction.
pub async fn reset(pool: &Pool, tables: &[&str], name: &str) -> Result<(), StoreError> {
    let checkpoint = "UPDATE projection_checkpoints SET position = 0 WHERE name = $1";
    on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        for t in tables {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}")))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(checkpoint).bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
    });
    Ok(())
}

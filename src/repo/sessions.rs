//! The `sessions` table: signed-in browsers, each stored as the SHA-256 of its
//! cookie and of its CSRF token. What a session means (its lifetime, idle time and
//! refusals) is `crate::auth::session`'s. Times are unix seconds.

use crate::store::on_pool;
use crate::store::{Pool, StoreError};

/// A session that is not revoked, with the user it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub csrf_hash: String,
    pub user_name: String,
    pub role: String,
    pub unit: String,
    pub locked: bool,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

const COLUMNS: &str = "s.id, s.csrf_hash, s.user_name, u.role, u.unit, u.locked, \
                       s.last_seen_at, s.expires_at \
                       FROM sessions s JOIN users u ON u.user_name = s.user_name";

/// Stores a new session.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    pool: &Pool,
    id: &str,
    session_hash: &str,
    csrf_hash: &str,
    user: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO sessions (id, session_hash, csrf_hash, user_name, created_at, last_seen_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $5, $6)";
    on_pool!(pool, |p| {
        sqlx::query(sql)
            .bind(id)
            .bind(session_hash)
            .bind(csrf_hash)
            .bind(user)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await
            .map_err(StoreError::classify)?;
    });
    Ok(())
}

/// The live (not revoked) session whose cookie has this hash.
pub async fn live_by_hash(
    pool: &Pool,
    session_hash: &str,
) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} WHERE s.session_hash = $1 AND s.revoked_at IS NULL");
    Ok(on_pool!(pool, |p| sqlx::query_as::<_, SessionRow>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(session_hash)
    .fetch_optional(p)
    .await
    .map_err(StoreError::classify)?))
}

/// The live session with this id (a live event stream checks it now and then).
pub async fn live_by_id(pool: &Pool, id: &str) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} WHERE s.id = $1 AND s.revoked_at IS NULL");
    Ok(on_pool!(pool, |p| sqlx::query_as::<_, SessionRow>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(id)
    .fetch_optional(p)
    .await
    .map_err(StoreError::classify)?))
}

/// Records that the session was used at `now`.
pub async fn touch(pool: &Pool, id: &str, now: i64) -> Result<(), StoreError> {
    let sql = "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2";
    on_pool!(pool, |p| {
        sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(p)
            .await
            .map_err(StoreError::classify)?;
    });
    Ok(())
}

/// Revokes the session with this id at `now`; the number revoked (0 or 1).
pub async fn revoke(pool: &Pool, id: &str, now: i64) -> Result<u64, StoreError> {
    let sql = "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    Ok(on_pool!(pool, |p| sqlx::query(sql)
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map_err(StoreError::classify)?
        .rows_affected()))
}

/// Revokes every live session of a user (a new password, a lock); how many.
pub async fn revoke_user(pool: &Pool, user: &str, now: i64) -> Result<u64, StoreError> {
    let sql = "UPDATE sessions SET revoked_at = $2 WHERE user_name = $1 AND revoked_at IS NULL";
    Ok(on_pool!(pool, |p| sqlx::query(sql)
        .bind(user)
        .bind(now)
        .execute(p)
        .await
        .map_err(StoreError::classify)?
        .rows_affected()))
}

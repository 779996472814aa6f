//! The tables of password sign-in: `users` (a person's role, unit and password
//! hash), `sign_in_failures` (the lock-out's count per user name) and `sessions`
//! (signed-in browsers, stored as the SHA-256 of their cookie). What they mean is
//! `crate::auth::password`'s and `crate::auth::session`'s. Times are unix seconds;
//! the SQL is the same on both engines.

use crate::store::on_pool;
use crate::store::{Pool, StoreError};

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub user_name: String,
    pub role: String,
    pub unit: String,
    pub password_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub locked: bool,
    pub device_id: Option<String>,
}

const USER_COLUMNS: &str =
    "user_name, role, unit, password_hash, created_at, updated_at, locked, device_id";

/// Adds a user; false if one with this name exists (nothing changed).
pub async fn insert(
    pool: &Pool,
    user: &str,
    role: &str,
    unit: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO users (user_name, role, unit, password_hash, created_at, updated_at, locked) \
               VALUES ($1, $2, $3, $4, $5, $5, FALSE) ON CONFLICT (user_name) DO NOTHING";
    let n = on_pool!(pool, |p| sqlx::query(sql)
        .bind(user)
        .bind(role)
        .bind(unit)
        .bind(password_hash)
        .bind(now)
        .execute(p)
        .await
        .map_err(StoreError::classify)?
        .rows_affected());
    Ok(n == 1)
}

/// The user with this name.
pub async fn get(pool: &Pool, user: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_name = $1");
    Ok(on_pool!(pool, |p| sqlx::query_as::<_, UserRow>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(user)
    .fetch_optional(p)
    .await
    .map_err(StoreError::classify)?))
}

/// Every user, by name.
pub async fn list(pool: &Pool) -> Result<Vec<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY user_name");
    Ok(on_pool!(pool, |p| sqlx::query_as::<_, UserRow>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .fetch_all(p)
    .await
    .map_err(StoreError::classify)?))
}

/// Runs `sql`, an UPDATE of one column of `users` that binds the user name as $1,
/// the column's new value as $2 and `updated_at` as $3; false if there is no such
/// user.
async fn update_user<'a, T>(
    pool: &Pool,
    sql: &'static str,
    user: &'a str,
    value: T,
    now: i64,
) -> Result<bool, StoreError>
where
    T: 'a
        + sqlx::Encode<'a, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + sqlx::Encode<'a, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + Send,
{
    let n = on_pool!(pool, |p| sqlx::query(sql)
        .bind(user)
        .bind(value)
        .bind(now)
        .execute(p)
        .await
        .map_err(StoreError::classify)?
        .rows_affected());
    Ok(n == 1)
}

/// Sets a user's password hash; false if there is no such user.
pub async fn set_password(
    pool: &Pool,
    user: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE user_name = $1";
    update_user(pool, sql, user, password_hash, now).await
}

/// Locks or unlocks a user (`yiwang user lock|unlock`); false if there is no such
/// user.
pub async fn set_locked(
    pool: &Pool,
    user: &str,
    locked: bool,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET locked = $2, updated_at = $3 WHERE user_name = $1";
    update_user(pool, sql, user, locked, now).await
}

/// Binds a user to a device (`Some`) or forgets its device (`None`); false if there
/// is no such user.
pub async fn set_device(
    pool: &Pool,
    user: &str,
    device_id: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET device_id = $2, updated_at = $3 WHERE user_name = $1";
    update_user(pool, sql, user, device_id, now).await
}

/// Until when sign-ins for this user name are refused, if they are.
pub async fn locked_until(pool: &Pool, user: &str) -> Result<Option<i64>, StoreError> {
    let sql = "SELECT locked_until FROM sign_in_failures WHERE user_name = $1";
    let row: Option<(Option<i64>,)> = on_pool!(pool, |p| sqlx::query_as(sql)
        .bind(user)
        .fetch_optional(p)
        .await
        .map_err(StoreError::classify)?);
    Ok(row.and_then(|(t,)| t))
}

/// Counts a failed sign-in for this user name at `now`: a window older than
/// `window` seconds starts again at 1. Returns the failures of the window so far.
pub async fn count_failure(
    pool: &Pool,
    user: &str,
    now: i64,
    window: i64,
) -> Result<i64, StoreError> {
    let sql = "INSERT INTO sign_in_failures (user_name, failures, window_start) VALUES ($1, 1, $2) \
               ON CONFLICT (user_name) DO UPDATE SET \
                 failures = CASE WHEN sign_in_failures.window_start <= $2 - $3 THEN 1 \
                                 ELSE sign_in_failures.failures + 1 END, \
                 window_start = CASE WHEN sign_in_failures.window_start <= $2 - $3 THEN $2 \
                                     ELSE sign_in_failures.window_start END \
               RETURNING CAST(failures AS BIGINT)";
    let (n,): (i64,) = on_pool!(pool, |p| sqlx::query_as(sql)
        .bind(user)
        .bind(now)
        .bind(window)
        .fetch_one(p)
        .await
        .map_err(StoreError::classify)?);
    Ok(n)
}

/// Refuses sign-ins for this user name until `until`, and starts its count again.
pub async fn lock_out(pool: &Pool, user: &str, until: i64) -> Result<(), StoreError> {
    let sql = "UPDATE sign_in_failures SET locked_until = $2, failures = 0 WHERE user_name = $1";
    on_pool!(pool, |p| {
        sqlx::query(sql)
            .bind(user)
            .bind(until)
            .execute(p)
            .await
            .map_err(StoreError::classify)?;
    });
    Ok(())
}

/// Forgets the failures and the lock-out of this user name (a good sign-in,
/// `yiwang user unlock`).
pub async fn clear_failures(pool: &Pool, user: &str) -> Result<(), StoreError> {
    let sql = "DELETE FROM sign_in_failures WHERE user_name = $1";
    on_pool!(pool, |p| {
        sqlx::query(sql)
            .bind(user)
            .execute(p)
            .await
            .map_err(StoreError::classify)?;
    });
    Ok(())
}

//! The `tokens` table: bearer tokens, stored as the SHA-256 of the secret. What a
//! token means (its actor, expiry and refusal) is `crate::auth`'s.

use chrono::{DateTime, Utc};

use crate::store::on_pool;
use crate::store::{Pool, StoreError};

/// A live token found by its hash: id, user, role, unit, and when it expires.
pub type TokenRow = (String, String, String, String, Option<DateTime<Utc>>);

/// A row of [`list`]: id, user, role, unit, created, revoked and expires (text).
pub type ListedToken = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// Stores a new token. `now` and `expires_at` are RFC 3339.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    pool: &Pool,
    id: &str,
    token_hash: &str,
    user: &str,
    role: &str,
    unit: &str,
    now: &str,
    expires_at: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO tokens (id, token_hash, user_name, role, unit, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    // PostgreSQL takes the two times as text cast to timestamptz; SQLite stores the text.
    let sql = match pool {
        Pool::Postgres(_) => sql
            .replace("$6", "$6::timestamptz")
            .replace("$7", "$7::timestamptz"),
        Pool::Sqlite(_) => sql.to_string(),
    };
    on_pool!(pool, |p| {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .bind(token_hash)
            .bind(user)
            .bind(role)
            .bind(unit)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await?;
    });
    Ok(())
}

/// The token with this hash, unless revoked.
pub async fn live_by_hash(pool: &Pool, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
    let sql = "SELECT id, user_name, role, unit, expires_at FROM tokens \
               WHERE token_hash = $1 AND revoked_at IS NULL";
    Ok(match pool {
        Pool::Postgres(p) => {
            let row: Option<TokenRow> = sqlx::query_as(sql)
                .bind(token_hash)
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            row
        }
        Pool::Sqlite(p) => {
            let row: Option<(String, String, String, String, Option<String>)> = sqlx::query_as(sql)
                .bind(token_hash)
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            row.map(|(id, user, role, unit, exp)| (id, user, role, unit, parse_time(exp)))
        }
    })
}

/// A stored SQLite time (RFC 3339). One that does not parse counts as already
/// past: a damaged expiry refuses the token rather than making it eternal.
fn parse_time(stored: Option<String>) -> Option<DateTime<Utc>> {
    stored.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    })
}

/// Whether the token with this id is not revoked, and when it expires; None: no
/// such token.
pub async fn state(
    pool: &Pool,
    token_id: &str,
) -> Result<Option<(bool, Option<DateTime<Utc>>)>, StoreError> {
    let sql = "SELECT revoked_at IS NULL, expires_at FROM tokens WHERE id = $1";
    Ok(match pool {
        Pool::Postgres(p) => sqlx::query_as(sql)
            .bind(token_id)
            .fetch_optional(p)
            .await
            .map_err(StoreError::classify)?,
        Pool::Sqlite(p) => {
            let row: Option<(bool, Option<String>)> = sqlx::query_as(sql)
                .bind(token_id)
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            row.map(|(live, exp)| (live, parse_time(exp)))
        }
    })
}

/// Every token, oldest first.
pub async fn list(pool: &Pool) -> Result<Vec<ListedToken>, StoreError> {
    let sql = "SELECT id, user_name, role, unit, created_at::text AS created_at, revoked_at::text AS revoked_at, \
               to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS expires_at \
               FROM tokens ORDER BY created_at";
    Ok(match pool {
        Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await?,
        Pool::Sqlite(p) => {
            let sql = sql.replace("::text", "").replace(
                "to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                "expires_at",
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(p)
                .await?
        }
    })
}

/// Revokes the live token with this id at `now` (RFC 3339); the number of tokens
/// revoked (0 or 1).
pub async fn revoke(pool: &Pool, id: &str, now: &str) -> Result<u64, StoreError> {
    Ok(match pool {
        Pool::Postgres(p) => sqlx::query(
            "UPDATE tokens SET revoked_at = $2::timestamptz WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected(),
        Pool::Sqlite(p) => {
            sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected()
        }
    })
}

//! The `attachments` table: who uploaded which photo (the files themselves are on
//! disk, by SHA-256; see `crate::attachments`).

use chrono::{DateTime, Utc};

use crate::store::{Pool, StoreError, hash::rfc3339};

/// Records that `user` uploaded the photo `hash` (again: nothing changes).
pub async fn insert(
    pool: &Pool,
    hash: &str,
    content_type: &str,
    size: i64,
    user: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match pool {
        Pool::Postgres(p) => {
            sqlx::query(
                "INSERT INTO attachments (hash, content_type, size, uploaded_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash, uploaded_by) DO NOTHING",
            )
            .bind(hash)
            .bind(content_type)
            .bind(size)
            .bind(user)
            .bind(now)
            .execute(p)
            .await
            .map_err(StoreError::classify)?;
        }
        Pool::Sqlite(p) => {
            sqlx::query(
                "INSERT INTO attachments (hash, content_type, size, uploaded_by, created_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (hash, uploaded_by) DO NOTHING",
            )
            .bind(hash)
            .bind(content_type)
            .bind(size)
            .bind(user)
            .bind(rfc3339(now))
            .execute(p)
            .await
            .map_err(StoreError::classify)?;
        }
    }
    Ok(())
}

/// The content type and size of the photo `hash`: uploaded by `user`, or by
/// anyone (None).
pub async fn find(
    pool: &Pool,
    hash: &str,
    user: Option<&str>,
) -> Result<Option<(String, i64)>, StoreError> {
    Ok(match pool {
        Pool::Postgres(p) => sqlx::query_as(
            "SELECT content_type, size FROM attachments \
             WHERE hash = $1 AND ($2::text IS NULL OR uploaded_by = $2) LIMIT 1",
        )
        .bind(hash)
        .bind(user)
        .fetch_optional(p)
        .await
        .map_err(StoreError::classify)?,
        Pool::Sqlite(p) => sqlx::query_as(
            "SELECT content_type, size FROM attachments \
             WHERE hash = ?1 AND (?2 IS NULL OR uploaded_by = ?2) LIMIT 1",
        )
        .bind(hash)
        .bind(user)
        .fetch_optional(p)
        .await
        .map_err(StoreError::classify)?,
    })
}

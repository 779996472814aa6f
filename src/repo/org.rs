//! The stored organisation document (`reference_data`, kind `org`): the text as it
//! was loaded and where from. Parsing and validating it is `crate::org`'s.

use crate::store::on_pool;
use crate::store::{Pool, StoreError};

/// Stores `text` (loaded from `source`) as the current organisation document,
/// replacing the one before; `now` is the load time (RFC 3339).
pub async fn save(pool: &Pool, text: &str, source: &str, now: &str) -> Result<(), StoreError> {
    let sql = "INSERT INTO reference_data (kind, source, doc, loaded_at) VALUES ('org', $1, $2, $3) \
               ON CONFLICT (kind) DO UPDATE SET source = EXCLUDED.source, doc = EXCLUDED.doc, loaded_at = EXCLUDED.loaded_at";
    match pool {
        Pool::Postgres(p) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.replace("$3", "$3::timestamptz")))
                .bind(source)
                .bind(text)
                .bind(now)
                .execute(p)
                .await?;
        }
        Pool::Sqlite(p) => {
            sqlx::query(sql)
                .bind(source)
                .bind(text)
                .bind(now)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}

/// The stored organisation document as `(source, text)`, or None when none was
/// loaded yet.
pub async fn current(pool: &Pool) -> Result<Option<(String, String)>, StoreError> {
    let sql = "SELECT source, doc FROM reference_data WHERE kind = 'org'";
    Ok(on_pool!(pool, |p| sqlx::query_as(sql)
        .fetch_optional(p)
        .await?))
}

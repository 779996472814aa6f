//! Users, bearer tokens and roles. Tokens are random, shown once, stored as SHA-256.
//! What each role may do lives in [`policy`].

pub mod policy;

use crate::store::{Pool, StoreError, hash::rfc3339};
use chrono::Utc;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    GridWorker,
    HotlineAgent,
    Dispatcher,
    Handler,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::GridWorker,
        Role::HotlineAgent,
        Role::Dispatcher,
        Role::Handler,
        Role::Analyst,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::GridWorker => "grid_worker",
            Role::HotlineAgent => "hotline_agent",
            Role::Dispatcher => "dispatcher",
            Role::Handler => "handler",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub token_id: String,
    pub user: String,
    pub role: Role,
    pub unit: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub role: String,
    pub unit: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Recently resolved tokens, so a request does not cost a database round trip to
/// authenticate. A revoked token stops working within [`TokenCache::TTL`].
#[derive(Default)]
pub struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Actor, std::time::Instant)>>,
}

impl TokenCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(10);
    const MAX_ENTRIES: usize = 10_000;

    pub async fn authenticate(
        &self,
        pool: &Pool,
        token: &str,
    ) -> Result<Option<Actor>, StoreError> {
        let key = hash_token(token);
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((actor, at)) = entries.get(&key) {
                if at.elapsed() < Self::TTL {
                    return Ok(Some(actor.clone()));
                }
            }
        }
        let found = authenticate(pool, token).await?;
        if let Some(actor) = &found {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (actor.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token and returns (id, secret token). The secret is never stored.
pub async fn create_token(
    pool: &Pool,
    user: &str,
    role: Role,
    unit: &str,
) -> Result<(String, String), StoreError> {
    let mut id_bytes = [0u8; 6];
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut id_bytes);
    rand::rng().fill_bytes(&mut secret);
    let id = hex::encode(id_bytes);
    let token = format!("yw_{id}_{}", hex::encode(secret));
    let now = rfc3339(Utc::now());
    let sql = "INSERT INTO tokens (id, token_hash, user_name, role, unit, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    match pool {
        Pool::Postgres(p) => {
            sqlx::query(&sql.replace("$6", "$6::timestamptz"))
                .bind(&id)
                .bind(hash_token(&token))
                .bind(user)
                .bind(role.as_str())
                .bind(unit)
                .bind(&now)
                .execute(p)
                .await?;
        }
        Pool::Sqlite(p) => {
            sqlx::query(sql)
                .bind(&id)
                .bind(hash_token(&token))
                .bind(user)
                .bind(role.as_str())
                .bind(unit)
                .bind(&now)
                .execute(p)
                .await?;
        }
    }
    Ok((id, token))
}

/// Resolves a presented bearer token to its actor; None for unknown or revoked.
pub async fn authenticate(pool: &Pool, token: &str) -> Result<Option<Actor>, StoreError> {
    let h = hash_token(token);
    let sql =
        "SELECT id, user_name, role, unit FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL";
    type Row4 = (String, String, String, String);
    let row: Option<Row4> = match pool {
        Pool::Postgres(p) => sqlx::query_as(sql).bind(&h).fetch_optional(p).await,
        Pool::Sqlite(p) => sqlx::query_as(sql).bind(&h).fetch_optional(p).await,
    }
    .map_err(StoreError::classify)?;
    Ok(row.and_then(|(token_id, user, role, unit)| {
        Role::parse(&role).map(|role| Actor {
            token_id,
            user,
            role,
            unit,
        })
    }))
}

pub async fn list_tokens(pool: &Pool) -> Result<Vec<TokenInfo>, StoreError> {
    let sql = "SELECT id, user_name, role, unit, created_at::text AS created_at, revoked_at::text AS revoked_at \
               FROM tokens ORDER BY created_at";
    type Row6 = (String, String, String, String, String, Option<String>);
    let rows: Vec<Row6> = match pool {
        Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await?,
        Pool::Sqlite(p) => {
            sqlx::query_as(&sql.replace("::text", ""))
                .fetch_all(p)
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(id, user, role, unit, created_at, revoked_at)| TokenInfo {
            id,
            user,
            role,
            unit,
            created_at,
            revoked_at,
        })
        .collect())
}

/// Revokes a token by id; false if no live token has that id.
pub async fn revoke_token(pool: &Pool, id: &str) -> Result<bool, StoreError> {
    let now = rfc3339(Utc::now());
    let n = match pool {
        Pool::Postgres(p) => sqlx::query(
            "UPDATE tokens SET revoked_at = $2::timestamptz WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(&now)
        .execute(p)
        .await?
        .rows_affected(),
        Pool::Sqlite(p) => {
            sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(&now)
                .execute(p)
                .await?
                .rows_affected()
        }
    };
    Ok(n == 1)
}

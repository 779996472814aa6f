//! Users, bearer tokens and roles. Tokens are random, shown once, stored as SHA-256.
//! What each role may do lives in [`policy`]. People sign in with a password
//! ([`password`]) and then hold a session ([`session`]), the same actor a token is.

pub mod appraisal;
pub mod password;
pub mod policy;
pub mod session;

use crate::store::{Pool, StoreError, hash::rfc3339};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A role of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    GridWorker,
    HotlineAgent,
    Dispatcher,
    Handler,
    Analyst,
    /// 考核员: records the appraisal's entries, closes a township's year, publishes
    /// bulletins; a district appraiser also reopens years and records grades.
    Appraiser,
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::GridWorker,
        Role::HotlineAgent,
        Role::Dispatcher,
        Role::Handler,
        Role::Analyst,
        Role::Appraiser,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::GridWorker => "grid_worker",
            Role::HotlineAgent => "hotline_agent",
            Role::Dispatcher => "dispatcher",
            Role::Handler => "handler",
            Role::Analyst => "analyst",
            Role::Appraiser => "appraiser",
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
    /// When the token stops working; None: never (`token create` without
    /// `--expires-in`).
    pub expires_at: Option<String>,
}

/// Why a presented token is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such token, or it was revoked.
    Unknown,
    /// It expired at this instant.
    Expired(DateTime<Utc>),
}

impl Refused {
    /// The detail of the 401 answer.
    pub fn message(&self) -> String {
        match self {
            Refused::Unknown => "the token is unknown or revoked".into(),
            Refused::Expired(at) => format!(
                "the token expired at {}; ask an administrator for a new one (yiwang token create … --expires-in …)",
                rfc3339(*at)
            ),
        }
    }
}

/// The longest `token create --expires-in` accepts: a typo such as `9000d` is
/// refused rather than made a token for decades. (Without `--expires-in` a token
/// does not expire: service accounts, the load harness.)
pub const MAX_EXPIRES_IN: chrono::Duration = chrono::Duration::days(365);

/// `--expires-in`: a whole number and a unit, `s`, `m`, `h` or `d` (`90d`, `12h`,
/// `30m`), from 1 s to [`MAX_EXPIRES_IN`].
pub fn parse_expires_in(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a duration: a whole number and a unit, s, m, h or d (90d, 12h, 30m)"
        )
    };
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let d = match unit {
        's' => chrono::Duration::try_seconds(n),
        'm' => chrono::Duration::try_minutes(n),
        'h' => chrono::Duration::try_hours(n),
        'd' => chrono::Duration::try_days(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    if d <= chrono::Duration::zero() {
        return Err(format!("{text:?}: a token must live at least 1 s"));
    }
    if d > MAX_EXPIRES_IN {
        return Err(format!(
            "{text:?} is longer than the 365 days a token may live; leave --expires-in out for a token that does not expire"
        ));
    }
    Ok(d)
}

/// Recently resolved tokens, so a request does not cost a database round trip to
/// authenticate. A revoked token stops working within the cache's time to live
/// ([`TokenCache::TTL`] unless set otherwise); an expired one at once.
pub struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Cached>>,
    ttl_millis: std::sync::atomic::AtomicU64,
}

struct Cached {
    actor: Actor,
    at: std::time::Instant,
    expires_at: Option<DateTime<Utc>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            entries: Default::default(),
            ttl_millis: std::sync::atomic::AtomicU64::new(Self::TTL.as_millis() as u64),
        }
    }
}

impl TokenCache {
    /// The default time to live of an entry; a live SSE stream re-checks its token
    /// as often.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(10);
    const MAX_ENTRIES: usize = 10_000;

    /// How long a resolved token is trusted without asking the database again.
    pub fn ttl(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ttl_millis.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sets [`TokenCache::ttl`] (tests shorten it; 10 s otherwise).
    pub fn set_ttl(&self, ttl: std::time::Duration) {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.ttl_millis
            .store(millis, std::sync::atomic::Ordering::Relaxed);
    }

    pub async fn authenticate(
        &self,
        pool: &Pool,
        token: &str,
    ) -> Result<Result<Actor, Refused>, StoreError> {
        let key = hash_token(token);
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = entries.get(&key)
                && c.at.elapsed() < self.ttl()
            {
                return Ok(match c.expires_at {
                    Some(at) if at <= Utc::now() => Err(Refused::Expired(at)),
                    _ => Ok(c.actor.clone()),
                });
            }
        }
        let found = lookup(pool, token).await?;
        if let Some((actor, expires_at)) = &found {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Cached {
                    actor: actor.clone(),
                    at: std::time::Instant::now(),
                    expires_at: *expires_at,
                },
            );
        }
        Ok(judge(found))
    }
}

/// A found token's actor, unless it has expired.
fn judge(found: Option<(Actor, Option<DateTime<Utc>>)>) -> Result<Actor, Refused> {
    match found {
        None => Err(Refused::Unknown),
        Some((_, Some(at))) if at <= Utc::now() => Err(Refused::Expired(at)),
        Some((actor, _)) => Ok(actor),
    }
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token that does not expire and returns (id, secret token).
pub async fn create_token(
    pool: &Pool,
    user: &str,
    role: Role,
    unit: &str,
) -> Result<(String, String), StoreError> {
    create_token_expiring(pool, user, role, unit, None).await
}

/// Creates a token that stops working at `expires_at` (None: never) and returns
/// (id, secret token). The secret is never stored.
pub async fn create_token_expiring(
    pool: &Pool,
    user: &str,
    role: Role,
    unit: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(String, String), StoreError> {
    let mut id_bytes = [0u8; 6];
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut id_bytes);
    rand::rng().fill_bytes(&mut secret);
    let id = hex::encode(id_bytes);
    let token = format!("yw_{id}_{}", hex::encode(secret));
    let now = rfc3339(Utc::now());
    let expires_at = expires_at.map(rfc3339);
    crate::repo::tokens::insert(
        pool,
        &id,
        &hash_token(&token),
        user,
        role.as_str(),
        unit,
        &now,
        expires_at.as_deref(),
    )
    .await?;
    Ok((id, token))
}

/// Resolves a presented bearer token to its actor; refused when unknown, revoked
/// or expired.
pub async fn authenticate(pool: &Pool, token: &str) -> Result<Result<Actor, Refused>, StoreError> {
    Ok(judge(lookup(pool, token).await?))
}

/// A token that is not revoked, with when it expires.
async fn lookup(
    pool: &Pool,
    token: &str,
) -> Result<Option<(Actor, Option<DateTime<Utc>>)>, StoreError> {
    let row = crate::repo::tokens::live_by_hash(pool, &hash_token(token)).await?;
    Ok(row.and_then(|(token_id, user, role, unit, expires_at)| {
        Role::parse(&role).map(|role| {
            (
                Actor {
                    token_id,
                    user,
                    role,
                    unit,
                },
                expires_at,
            )
        })
    }))
}

/// Whether the token with this id still works (neither revoked nor expired), asked
/// of the database: what a live SSE stream checks now and then.
pub async fn still_valid(pool: &Pool, token_id: &str) -> Result<Result<(), Refused>, StoreError> {
    if let Some(id) = token_id.strip_prefix(session::ACTOR_PREFIX) {
        return Ok(session::still_valid(pool, id)
            .await?
            .map_err(|_| Refused::Unknown));
    }
    let row = crate::repo::tokens::state(pool, token_id).await?;
    Ok(match row {
        Some((true, Some(at))) if at <= Utc::now() => Err(Refused::Expired(at)),
        Some((true, _)) => Ok(()),
        _ => Err(Refused::Unknown),
    })
}

pub async fn list_tokens(pool: &Pool) -> Result<Vec<TokenInfo>, StoreError> {
    let rows = crate::repo::tokens::list(pool).await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, user, role, unit, created_at, revoked_at, expires_at)| TokenInfo {
                id,
                user,
                role,
                unit,
                created_at,
                revoked_at,
                expires_at,
            },
        )
        .collect())
}

/// Revokes a token by id; false if no live token has that id.
pub async fn revoke_token(pool: &Pool, id: &str) -> Result<bool, StoreError> {
    let now = rfc3339(Utc::now());
    let n = crate::repo::tokens::revoke(pool, id, &now).await?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_takes_a_number_and_a_unit_up_to_a_year() {
        assert_eq!(parse_expires_in("90d"), Ok(chrono::Duration::days(90)));
        assert_eq!(parse_expires_in("12h"), Ok(chrono::Duration::hours(12)));
        assert_eq!(parse_expires_in(" 30m "), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_expires_in("45s"), Ok(chrono::Duration::seconds(45)));
        assert_eq!(parse_expires_in("365d"), Ok(chrono::Duration::days(365)));
        for bad in [
            "",
            "d",
            "90",
            "1.5h",
            "-3d",
            "0m",
            "10w",
            "90 days",
            "366d",
            "9999999999999d",
        ] {
            assert!(parse_expires_in(bad).is_err(), "{bad:?}");
        }
        assert!(parse_expires_in("366d").unwrap_err().contains("365 days"));
    }
}

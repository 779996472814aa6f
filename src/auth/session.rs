//! Sessions: what a browser holds after a password sign-in. The cookie's value is
//! random (`ys_<id>_<secret>`) and stored as its SHA-256, like a token; each
//! session has a CSRF token (stored hashed too) that its state-changing requests
//! must echo in `X-CSRF-Token`. A session ends when signed out, [`LIFETIME`] after
//! sign-in, after [`IDLE`] without a request, or when its user is locked or gets a
//! new password. The actor (role, unit) is read from the user at each request.
//!
//! Lock-out: [`MAX_FAILURES`] wrong passwords for one user name within
//! [`FAILURE_WINDOW`] refuse that name for [`LOCK_OUT`], whether or not such a user
//! exists, so the refusal tells nothing about which names exist.

use rand::RngCore;

use super::{Actor, Role, hash_token, password};
use crate::repo::{sessions, users};
use crate::store::{Pool, StoreError};

/// The session cookie (`HttpOnly; Secure; SameSite=Strict; Path=/`).
pub const SESSION_COOKIE: &str = "yw_session";
/// The CSRF token, readable by the pages' scripts (not `HttpOnly`).
pub const CSRF_COOKIE: &str = "yw_csrf";
/// A grid worker's device (人机格): set at the first sign-in, kept for years.
pub const DEVICE_COOKIE: &str = "yw_device";
/// The header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The prefix of a session's `Actor::token_id` (`session:<id>`).
pub const ACTOR_PREFIX: &str = "session:";

/// How long a session lasts at most (seconds): a working day and a half.
pub const LIFETIME: i64 = 12 * 3600;
/// How long a session lasts without a request (seconds).
pub const IDLE: i64 = 3600;
/// Wrong passwords for one user name, within [`FAILURE_WINDOW`], before a lock-out.
pub const MAX_FAILURES: i64 = 5;
/// The window in which failures count (seconds).
pub const FAILURE_WINDOW: i64 = 15 * 60;
/// How long a lock-out lasts (seconds).
pub const LOCK_OUT: i64 = 15 * 60;
/// A session's last use is written at most this often (seconds).
const TOUCH_EVERY: i64 = 60;

/// A session made by a sign-in: the cookie's value and the CSRF token are shown
/// once, to the browser.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub actor: Actor,
    /// The session cookie's value.
    pub secret: String,
    pub csrf_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// A device id to set in [`DEVICE_COOKIE`]: a grid worker's first device.
    pub new_device: Option<String>,
}

/// Why a sign-in is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInRefused {
    /// The name or the password is wrong (the two are not told apart).
    Wrong,
    /// Too many failures for this name: refused for this many more seconds.
    LockedOut { retry_after: i64 },
    /// An administrator locked the account (told only after a right password).
    Locked,
    /// A grid worker bound to another device (told only after a right password).
    OtherDevice,
}

/// Why a presented session cookie is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionRefused {
    /// Unknown, signed out, or revoked (new password, lock).
    Ended,
    Expired,
    Idle,
}

impl SessionRefused {
    /// The detail of the 401 answer.
    pub fn message(&self) -> String {
        match self {
            SessionRefused::Ended => {
                "the session has ended (signed out, or the account was locked or given a new password); sign in again".into()
            }
            SessionRefused::Expired => format!(
                "the session ended {} hours after sign-in; sign in again",
                LIFETIME / 3600
            ),
            SessionRefused::Idle => format!(
                "the session ended after {} minutes without use; sign in again",
                IDLE / 60
            ),
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn random_hex<const N: usize>() -> String {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether a presented device id is one the service could have made.
fn valid_device(d: &str) -> bool {
    d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a user name and password and opens a session. `device`: the device
/// cookie the browser presented, if any.
pub async fn sign_in(
    pool: &Pool,
    user_name: &str,
    password_text: &str,
    device: Option<&str>,
) -> Result<Result<NewSession, SignInRefused>, StoreError> {
    let now = now();
    if let Some(until) = users::locked_until(pool, user_name).await?
        && until > now
    {
        return Ok(Err(SignInRefused::LockedOut {
            retry_after: until - now,
        }));
    }
    let user = users::get(pool, user_name).await?;
    if !password::verify_user(user.as_ref(), password_text).await {
        let failures = users::count_failure(pool, user_name, now, FAILURE_WINDOW).await?;
        if failures >= MAX_FAILURES {
            users::lock_out(pool, user_name, now + LOCK_OUT).await?;
            return Ok(Err(SignInRefused::LockedOut {
                retry_after: LOCK_OUT,
            }));
        }
        return Ok(Err(SignInRefused::Wrong));
    }
    // verify_user is false without a user: this is the user that matched.
    let Some(user) = user else {
        return Ok(Err(SignInRefused::Wrong));
    };
    if user.locked {
        return Ok(Err(SignInRefused::Locked));
    }
    let Some(role) = Role::parse(&user.role) else {
        return Ok(Err(SignInRefused::Locked));
    };
    let device = device.filter(|d| valid_device(d));
    let mut new_device = None;
    if role == Role::GridWorker {
        match (&user.device_id, device) {
            (Some(bound), Some(d)) if bound == d => {}
            (Some(_), _) => return Ok(Err(SignInRefused::OtherDevice)),
            (None, d) => {
                let d = d.map_or_else(random_hex::<16>, str::to_string);
                users::set_device(pool, &user.user_name, Some(&d), now).await?;
                new_device = Some(d);
            }
        }
    }
    users::clear_failures(pool, user_name).await?;
    let id = random_hex::<6>();
    let secret = format!("ys_{id}_{}", random_hex::<32>());
    let csrf_token = random_hex::<32>();
    let expires_at = now + LIFETIME;
    sessions::insert(
        pool,
        &id,
        &hash_token(&secret),
        &hash_token(&csrf_token),
        &user.user_name,
        now,
        expires_at,
    )
    .await?;
    Ok(Ok(NewSession {
        actor: Actor {
            token_id: format!("{ACTOR_PREFIX}{id}"),
            user: user.user_name,
            role,
            unit: user.unit,
        },
        secret,
        csrf_token,
        expires_at,
        new_device,
    }))
}

/// A live session: its actor and the hash of its CSRF token.
#[derive(Clone, Debug)]
pub struct LiveSession {
    pub id: String,
    pub actor: Actor,
    csrf_hash: String,
}

impl LiveSession {
    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && hash_token(presented) == self.csrf_hash
    }
}

fn judge(row: Option<sessions::SessionRow>, now: i64) -> Result<LiveSession, SessionRefused> {
    let row = row.ok_or(SessionRefused::Ended)?;
    if row.locked {
        return Err(SessionRefused::Ended);
    }
    if row.expires_at <= now {
        return Err(SessionRefused::Expired);
    }
    if row.last_seen_at + IDLE <= now {
        return Err(SessionRefused::Idle);
    }
    let role = Role::parse(&row.role).ok_or(SessionRefused::Ended)?;
    Ok(LiveSession {
        actor: Actor {
            token_id: format!("{ACTOR_PREFIX}{}", row.id),
            user: row.user_name,
            role,
            unit: row.unit,
        },
        id: row.id,
        csrf_hash: row.csrf_hash,
    })
}

/// Resolves a presented session cookie, and records its use.
pub async fn authenticate(
    pool: &Pool,
    cookie: &str,
) -> Result<Result<LiveSession, SessionRefused>, StoreError> {
    let now = now();
    let row = sessions::live_by_hash(pool, &hash_token(cookie)).await?;
    let last_seen = row.as_ref().map(|r| r.last_seen_at);
    let judged = judge(row, now);
    if let (Ok(s), Some(seen)) = (&judged, last_seen)
        && now - seen >= TOUCH_EVERY
    {
        sessions::touch(pool, &s.id, now).await?;
    }
    Ok(judged)
}

/// Whether the session with this id still works (a live event stream asks).
pub async fn still_valid(pool: &Pool, id: &str) -> Result<Result<(), SessionRefused>, StoreError> {
    let row = sessions::live_by_id(pool, id).await?;
    Ok(judge(row, now()).map(|_| ()))
}

/// Ends a session (sign-out).
pub async fn sign_out(pool: &Pool, id: &str) -> Result<(), StoreError> {
    sessions::revoke(pool, id, now()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(last_seen_at: i64, expires_at: i64, locked: bool) -> sessions::SessionRow {
        sessions::SessionRow {
            id: "abc".into(),
            csrf_hash: hash_token("csrf"),
            user_name: "li".into(),
            role: "dispatcher".into(),
            unit: "etdz".into(),
            locked,
            last_seen_at,
            expires_at,
        }
    }

    #[test]
    fn a_session_ends_at_its_lifetime_its_idle_time_or_a_lock() {
        let s = judge(Some(row(1000, 1000 + LIFETIME, false)), 1010).unwrap();
        assert_eq!(s.actor.token_id, "session:abc");
        assert!(s.csrf_matches("csrf"));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches("other"));
        assert_eq!(
            judge(Some(row(1000, 1000, false)), 1000).unwrap_err(),
            SessionRefused::Expired
        );
        assert_eq!(
            judge(Some(row(1000, 1_000_000, false)), 1000 + IDLE).unwrap_err(),
            SessionRefused::Idle
        );
        assert_eq!(
            judge(Some(row(1000, 1_000_000, true)), 1001).unwrap_err(),
            SessionRefused::Ended
        );
        assert_eq!(judge(None, 1).unwrap_err(), SessionRefused::Ended);
    }
}

//! Passwords: people sign in with a user name and a password (`yiwang user create`).
//! A password user is the same actor a bearer token is (a user name, a role, a
//! unit); sessions (`super::session`) carry it from there.
//!
//! Hashing: argon2id (RFC 9106) with the `argon2` crate's default parameters, m =
//! 19 MiB, t = 2, p = 1, which is the first of OWASP's recommended configurations
//! (Password Storage Cheat Sheet): about 20-40 ms of one core per sign-in here. The
//! PHC string keeps the salt (16 random bytes) and the parameters, so raising them
//! later leaves the stored hashes valid. A sign-in for a name that does not exist
//! verifies against a dummy hash, so it costs the same time as a wrong password.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

use super::Role;
use crate::repo::users::UserRow;
use crate::store::{Pool, StoreError};

/// The shortest password `user create` and `user passwd` accept (characters).
pub const MIN_LEN: usize = 10;
/// The longest (characters): a pasted file is a mistake, and hashing is bounded.
pub const MAX_LEN: usize = 256;

/// Why a new password is refused, in words for the person choosing it.
pub fn check_new(user: &str, password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!(
            "the password is {n} characters long; choose one of at least {MIN_LEN} (a few unrelated words make a good one)"
        ));
    }
    if n > MAX_LEN {
        return Err(format!(
            "the password is {n} characters long; at most {MAX_LEN} are taken"
        ));
    }
    if password.trim() != password {
        return Err("the password starts or ends with a space; leave those out".into());
    }
    if password.eq_ignore_ascii_case(user) {
        return Err("the password is the user name; choose another".into());
    }
    Ok(())
}

/// The argon2id PHC string of a password, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the stored PHC string; a stored string that does not
/// parse matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash no password is known for: what a sign-in for an unknown name is checked
/// against, so that it takes as long as one for a known name.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        // An argon2 failure here (none is known for a 48-character password and a
        // 16-byte salt) leaves an unparsable string, which matches nothing too.
        hash(&hex::encode(secret)).unwrap_or_default()
    })
}

/// Checks a password against a user (or, for a name without one, the dummy hash)
/// on a blocking thread: argon2 takes tens of milliseconds of CPU.
pub async fn verify_user(user: Option<&UserRow>, password: &str) -> bool {
    let stored = user.map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let known = user.is_some();
    let password = password.to_string();
    tokio::task::spawn_blocking(move || verify(&password, &stored) && known)
        .await
        .unwrap_or(false)
}

/// What `yiwang user create` may refuse besides the database.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hashed(password: &str) -> Result<String, UserError> {
    hash(password).map_err(|e| UserError::Refused(format!("the password cannot be hashed: {e}")))
}

/// Adds a password user. The unit is checked by the caller (the CLI, against the
/// organisation, as for a token).
pub async fn create_user(
    pool: &Pool,
    user: &str,
    role: Role,
    unit: &str,
    password: &str,
) -> Result<(), UserError> {
    check_new(user, password).map_err(UserError::Refused)?;
    let h = hashed(password)?;
    if !crate::repo::users::insert(pool, user, role.as_str(), unit, &h, now()).await? {
        return Err(UserError::Refused(format!(
            "a user {user:?} exists already; set a new password with yiwang user passwd --user {user}"
        )));
    }
    Ok(())
}

/// Sets a new password and signs the user out everywhere.
pub async fn set_password(pool: &Pool, user: &str, password: &str) -> Result<(), UserError> {
    check_new(user, password).map_err(UserError::Refused)?;
    let h = hashed(password)?;
    if !crate::repo::users::set_password(pool, user, &h, now()).await? {
        return Err(no_such_user(user));
    }
    crate::repo::sessions::revoke_user(pool, user, now()).await?;
    crate::repo::users::clear_failures(pool, user).await?;
    Ok(())
}

/// `yiwang user lock`: the user cannot sign in and is signed out everywhere.
pub async fn lock_user(pool: &Pool, user: &str) -> Result<(), UserError> {
    if !crate::repo::users::set_locked(pool, user, true, now()).await? {
        return Err(no_such_user(user));
    }
    crate::repo::sessions::revoke_user(pool, user, now()).await?;
    Ok(())
}

/// `yiwang user unlock`: lifts an administrator's lock and a lock-out after failed
/// sign-ins; with `forget_device`, the next sign-in binds a new device.
pub async fn unlock_user(pool: &Pool, user: &str, forget_device: bool) -> Result<(), UserError> {
    if !crate::repo::users::set_locked(pool, user, false, now()).await? {
        return Err(no_such_user(user));
    }
    crate::repo::users::clear_failures(pool, user).await?;
    if forget_device {
        crate::repo::users::set_device(pool, user, None, now()).await?;
    }
    Ok(())
}

fn no_such_user(user: &str) -> UserError {
    UserError::Refused(format!(
        "no user {user:?} (yiwang user list shows them; yiwang user create adds one)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterY", &a));
        assert!(!verify("anything", "not a hash"));
        assert!(!verify("anything", dummy_hash()));
    }

    #[test]
    fn short_and_odd_passwords_are_refused_with_a_reason() {
        assert!(
            check_new("li", "short")
                .unwrap_err()
                .contains("at least 10")
        );
        assert!(check_new("li", " padded password ").is_err());
        assert!(check_new("wangxiaoming", "WangXiaoMing").is_err());
        assert!(check_new("li", &"x".repeat(257)).is_err());
        assert!(check_new("li", "绿色网格员巡查一线").is_err());
        assert!(check_new("li", "绿色网格员巡查一线工作").is_ok());
    }
}

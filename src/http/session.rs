//! `POST /api/v1/session` (sign in with a user name and password) and `DELETE
//! /api/v1/session` (sign out), and the session cookie as a way to authenticate
//! `/api/v1` besides a bearer token ([`actor_from_cookie`], asked by the `Actor`
//! extractor when no bearer token came). Open311 reads its `api_key` only: no
//! cookie there.
//!
//! CSRF: the cookie is `SameSite=Strict`, and a request authenticated by it that
//! changes something (any method but GET, HEAD and OPTIONS) must also carry the
//! session's CSRF token in `X-CSRF-Token` (a synchronizer token: the service keeps
//! its hash and compares). The token is in the sign-in answer and in the readable
//! `yw_csrf` cookie, for a page loaded later. A bearer request needs none.

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Body;
use crate::app::SharedApp;
use crate::auth::session::{
    self, CSRF_COOKIE, CSRF_HEADER, DEVICE_COOKIE, LiveSession, SESSION_COOKIE, SignInRefused,
};
use crate::auth::{Actor, Role};
use crate::error::AppError;

pub fn router() -> Router<SharedApp> {
    Router::new().route("/api/v1/session", post(sign_in).delete(sign_out))
}

/// The value of the cookie `name` among the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The caller of a request that came without a bearer token: its session cookie,
/// with the CSRF check for a request that changes something.
pub async fn actor_from_cookie(app: &SharedApp, parts: &Parts) -> Result<Actor, AppError> {
    let value = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(|| {
        AppError::Unauthorized(
            "send a bearer token (Authorization: Bearer <token>, from yiwang token create …) \
             or sign in with a user name and password (POST /api/v1/session)"
                .into(),
        )
    })?;
    let live = session::authenticate(&app.store.pool(), value)
        .await?
        .map_err(|refused| AppError::Unauthorized(refused.message()))?;
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        check_csrf(&live, &parts.headers)?;
    }
    Ok(live.actor)
}

fn check_csrf(live: &LiveSession, headers: &HeaderMap) -> Result<(), AppError> {
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if live.csrf_matches(sent) {
        return Ok(());
    }
    let what = if sent.is_empty() {
        "without"
    } else {
        "with a wrong"
    };
    Err(AppError::Forbidden(format!(
        "this request came with the session cookie {what} X-CSRF-Token header; a request that \
         changes something must echo the session's CSRF token (the csrf_token of the sign-in \
         answer, also in the {CSRF_COOKIE} cookie) in X-CSRF-Token. Nothing was done."
    )))
}

/// A sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The user name (`yiwang user create --user`).
    #[schema(min_length = 1, max_length = 100)]
    user: String,
    #[schema(min_length = 1, max_length = 256)]
    password: String,
}

/// The session just opened (its cookie is in `Set-Cookie`).
#[derive(Serialize, ToSchema)]
pub struct Session {
    user: String,
    role: Role,
    unit: String,
    /// Echo it in `X-CSRF-Token` on every request of this session that changes
    /// something (also in the `yw_csrf` cookie).
    csrf_token: String,
    /// When the session ends at the latest (it ends sooner after an hour unused).
    expires_at: chrono::DateTime<chrono::Utc>,
}

fn set_cookie(name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    let text =
        format!("{name}={value}; Path=/; Max-Age={max_age}{http_only}; Secure; SameSite=Strict");
    // The values are hex and the service's own names: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A device cookie lasts ten years: it names the phone, not a session.
const DEVICE_MAX_AGE: i64 = 10 * 365 * 86_400;

#[utoipa::path(
    post, path = "/api/v1/session", tag = "session",
    summary = "Sign in with a user name and password",
    description = "Opens a session for a person made with `yiwang user create`. The answer sets \
        the `yw_session` cookie (`HttpOnly; Secure; SameSite=Strict; Path=/`), which then \
        authenticates `/api/v1` like a bearer token (not Open311), and the readable `yw_csrf` \
        cookie: a request with the cookie that changes something must echo `csrf_token` in \
        `X-CSRF-Token` (403 otherwise). Five wrong passwords for one user name within 15 \
        minutes refuse that name for 15 minutes (429 with Retry-After), whether the user \
        exists or not; a wrong user name and a wrong password get the same 401. A grid \
        worker's account is bound to the device of its first sign-in (the `yw_device` \
        cookie; 403 from another until `yiwang user unlock --forget-device`).",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the cookies are set", body = Session),
        (status = 401, description = "The user name or the password is wrong", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is locked, or bound to another device", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this user name: wait Retry-After seconds", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn sign_in(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    body: Body<SignIn>,
) -> Result<Response, AppError> {
    let SignIn { user, password } = body.value;
    if user.trim().is_empty() || user.chars().count() > 100 {
        return Err(AppError::invalid("user", "must be 1 to 100 characters"));
    }
    if password.is_empty() || password.chars().count() > crate::auth::password::MAX_LEN {
        return Err(AppError::invalid("password", "must be 1 to 256 characters"));
    }
    let device = cookie(&headers, DEVICE_COOKIE);
    let opened = session::sign_in(&app.store.pool(), user.trim(), &password, device).await?;
    let s = match opened {
        Ok(s) => s,
        Err(SignInRefused::Wrong) => {
            return Err(AppError::Unauthorized(
                "the user name or the password is wrong".into(),
            ));
        }
        Err(SignInRefused::LockedOut { retry_after }) => {
            let minutes = (retry_after + 59) / 60;
            return Err(AppError::RateLimited {
                message: format!(
                    "too many wrong passwords for this user name: signing in with it is refused \
                     for {minutes} more minute(s) (Retry-After); an administrator can lift this \
                     with yiwang user unlock"
                ),
                retry_after_secs: retry_after.max(1) as u64,
            });
        }
        Err(SignInRefused::Locked) => {
            return Err(AppError::Forbidden(
                "this account is locked; ask an administrator (yiwang user unlock)".into(),
            ));
        }
        Err(SignInRefused::OtherDevice) => {
            return Err(AppError::Forbidden(
                "this grid worker's account is bound to the device it first signed in on \
                 (人机格); sign in there, or ask an administrator to release it \
                 (yiwang user unlock --forget-device)"
                    .into(),
            ));
        }
    };
    let mut response = super::sorted_json(&Session {
        user: s.actor.user.clone(),
        role: s.actor.role,
        unit: s.actor.unit.clone(),
        csrf_token: s.csrf_token.clone(),
        expires_at: chrono::DateTime::from_timestamp(s.expires_at, 0).unwrap_or_default(),
    })?
    .into_response();
    let h = response.headers_mut();
    let life = session::LIFETIME;
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &s.secret, life, true),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(CSRF_COOKIE, &s.csrf_token, life, false),
    );
    if let Some(d) = &s.new_device {
        h.append(
            header::SET_COOKIE,
            set_cookie(DEVICE_COOKIE, d, DEVICE_MAX_AGE, true),
        );
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[utoipa::path(
    delete, path = "/api/v1/session", tag = "session",
    summary = "Sign out",
    description = "Ends the session of the `yw_session` cookie (it stops working at once) and \
        clears the cookies. With a live session the request must carry its `X-CSRF-Token`; \
        without one (already ended, no cookie) it only clears the cookies.",
    params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 403, description = "A live session without its X-CSRF-Token", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn sign_out(State(app): State<SharedApp>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(value) = cookie(&headers, SESSION_COOKIE)
        && let Ok(live) = session::authenticate(&app.store.pool(), value).await?
    {
        check_csrf(&live, &headers)?;
        session::sign_out(&app.store.pool(), &live.id).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, true));
    h.append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, "", 0, false));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; yw_csrf=abc"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("yw_session=ys_x_y"),
        );
        assert_eq!(cookie(&h, "yw_session"), Some("ys_x_y"));
        assert_eq!(cookie(&h, "yw_csrf"), Some("abc"));
        assert_eq!(cookie(&h, "yw_device"), None);
        assert_eq!(cookie(&h, "a"), Some("1"));
    }
}

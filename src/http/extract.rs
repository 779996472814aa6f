//! Extractors that answer in the service's own error format.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::app::SharedApp;
use crate::app::commands::{CommandMeta, parse_json};
use crate::auth::Actor;
use crate::error::AppError;

/// A JSON body parsed into `T`: a `Content-Type` other than `application/json` is a
/// 415 (see [`require_json`]), malformed JSON a 400, a missing or wrong field a 422
/// naming the field, a body over the limit a 413. Keeps the raw bytes for the
/// idempotency hash.
pub struct Body<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // RawBody checks the media type.
        let RawBody(raw) = RawBody::from_request(req, state).await?;
        let value = parse_json(&raw)?;
        Ok(Body { value, raw })
    }
}

/// A JSON command's body, unparsed: 415 unless it is sent as `application/json`
/// ([`require_json`], checked before the body is read); a body over the limit is a
/// 413 problem document (axum's `Bytes` answers it in plain text).
///
/// Order of the refusals of a command: extractors of the request's head run before
/// the body's, so a missing or bad token is a 401 before the media type is looked
/// at (a 415 tells nothing to a caller without a token); then 415, 413 and 400 for
/// the body; then the handler's own checks (the Idempotency-Key, the fields).
pub struct RawBody(pub Bytes);

impl<S> FromRequest<S> for RawBody
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge("the request body is over the 1 MiB limit".into())
            } else {
                AppError::BadRequest(format!("could not read the request body: {e}"))
            }
        })?;
        Ok(RawBody(raw))
    }
}

/// Commands take JSON only: `Content-Type: application/json`, with or without
/// parameters (`; charset=utf-8`), in any letter case. Anything else, or no
/// `Content-Type` at all, is a 415 saying what to send. (A body sent as `text/plain`
/// or a form is one a browser may send cross-site without a preflight; the bearer
/// token already prevents that, and this keeps it so should a cookie ever be
/// accepted.)
pub fn require_json(headers: &HeaderMap) -> Result<(), AppError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (first, second) = (values.next(), values.next());
    let sent = first.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = sent
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if second.is_none() && essence.is_some_and(|m| m.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    let had = match (&sent, second) {
        (None, _) => "no Content-Type".to_string(),
        (Some(_), Some(_)) => "several Content-Type headers".to_string(),
        (Some(v), None) => {
            let shown: String = v.chars().take(80).collect();
            format!("Content-Type {shown:?}")
        }
    };
    Err(AppError::UnsupportedMediaType(format!(
        "send the command's body as JSON with the header Content-Type: application/json \
         (this request had {had})"
    )))
}

/// `X-Request-Id` as a client may set it: 1 to 128 of `A-Z a-z 0-9 . _ : -`. The
/// request id is kept in every appended event's metadata, which is permanent, so
/// anything else (too long, spaces, other characters) is replaced by a fresh one
/// (`crate::http::screen_request_id`). The legacy import's ids (`import FILE:LINE`)
/// have a space, so a request over HTTP cannot pass for a line of an import.
pub fn is_valid_request_id(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The request id of a request (set or checked by the layers of `crate::http::app`),
/// or "" when it has none that passes [`is_valid_request_id`].
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .filter(|v| is_valid_request_id(v.as_bytes()))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Path parameters (axum's `Path`) whose rejection (such as percent-encoding that is
/// not UTF-8) is a 400 problem document rather than axum's plain text.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for AppError {
    fn from(e: PathRejection) -> AppError {
        AppError::BadRequest(format!("the path is not valid: {}", e.body_text()))
    }
}

impl<S> FromRequestParts<S> for Actor
where
    S: Send + Sync,
    SharedApp: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = SharedApp::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "send a bearer token: Authorization: Bearer <token> (yiwang token create …)"
                        .into(),
                )
            })?;
        app.tokens
            .authenticate(&app.store.pool(), token)
            .await?
            .map_err(|refused| AppError::Unauthorized(refused.message()))
    }
}

/// The facts of a command request besides its body.
pub fn command_meta(
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<CommandMeta, AppError> {
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::trim).unwrap_or(""))
        .ok_or_else(|| {
            AppError::BadRequest(
                "every command needs an Idempotency-Key header (a fresh UUID per command, reused on retry)".into(),
            )
        })?;
    if key.is_empty() || key.len() > 200 {
        return Err(AppError::invalid(
            "Idempotency-Key",
            "must be 1 to 200 visible ASCII characters",
        ));
    }
    // The legacy import's keys (`crate::import::line_key`): a request must not take
    // or squat on an import line's key, which would make the import skip the line.
    let import = crate::import::LINE_KEY_PREFIX;
    if key
        .get(..import.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(import))
    {
        return Err(AppError::invalid(
            "Idempotency-Key",
            "keys starting with \"import:\" belong to the legacy import (yiwang import); use a fresh UUID",
        ));
    }
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let s = v.to_str().unwrap_or("").trim();
            let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
            Some(s.parse::<i64>().map_err(|_| {
                AppError::invalid(
                    "If-Match",
                    "must be the ticket's ETag, a quoted version such as \"3\"",
                )
            })?)
        }
    };
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    let request_id = request_id(headers);
    Ok(CommandMeta {
        idempotency_key: key.to_string(),
        request_hash: hex::encode(h.finalize()),
        if_match,
        request_id,
    })
}

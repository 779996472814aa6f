//! Extractors that answer in the service's own error format.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::app::{CommandMeta, SharedApp};
use crate::auth::Actor;
use crate::error::AppError;

/// A JSON body parsed into `T`: malformed JSON is a 400, a missing or wrong field a
/// 422 naming the field, a body over the limit a 413. Keeps the raw bytes for the
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
        let RawBody(raw) = RawBody::from_request(req, state).await?;
        let value = parse_json(&raw)?;
        Ok(Body { value, raw })
    }
}

/// The body's bytes, unparsed; a body over the limit is a 413 problem document
/// (axum's `Bytes` answers it in plain text).
pub struct RawBody(pub Bytes);

impl<S> FromRequest<S> for RawBody
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
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

pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, AppError> {
    if raw.is_empty() {
        return Err(AppError::BadRequest("the request needs a JSON body".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(raw);
    let value = parse_value(de)?;
    // One JSON value and nothing after it (whitespace aside): `{...} {...}` is not a body.
    de.end()
        .map_err(|e| AppError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

fn parse_value<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, AppError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    // A missing field is reported on the enclosing object.
                    missing_field(&inner.to_string()).unwrap_or_else(|| "body".into())
                } else {
                    path
                };
                AppError::invalid(field, strip_position(&inner.to_string()))
            }
            _ => AppError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
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
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(CommandMeta {
        idempotency_key: key.to_string(),
        request_hash: hex::encode(h.finalize()),
        if_match,
        request_id,
    })
}

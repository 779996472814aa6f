//! Extractors that answer in the service's own error format.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::app::SharedApp;
use crate::app::commands::{CommandMeta, IfMatch, parse_json};
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
        // Without a bearer token: the session cookie of a password sign-in.
        let Some(token) = bearer_token(&parts.headers) else {
            return super::session::actor_from_cookie(&app, parts).await;
        };
        app.tokens
            .authenticate(&app.store.pool(), token)
            .await?
            .map_err(|refused| AppError::Unauthorized(refused.message()))
    }
}

/// The token of `Authorization: Bearer <token>`. The scheme's name is
/// case-insensitive (RFC 9110 §11.1: `bearer`, `BEARER` are the same scheme), and
/// one or more spaces may follow it. None without the header, with another scheme
/// or with no token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
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
    let if_match = if_match(headers)?;
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

/// The `If-Match` precondition of a command: None without the header or with `*` (a
/// command acts on a ticket that exists, so `*` always holds); else the versions of
/// its strong entity tags (`"3"`; a list `"3", "4"` matches either). A weak tag
/// (`W/"3"`) is kept out: strong comparison (RFC 9110 §13.1.1) never matches it, so
/// `If-Match: W/"3"` is a 412 whatever the version. A value that is no entity tag
/// (`3` unquoted) is a 422. Several header lines are one list.
pub fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, AppError> {
    let bad = || {
        AppError::invalid(
            "If-Match",
            "must be the ticket's ETag as it came, a quoted version such as \"3\" (or *)",
        )
    };
    let mut lines = Vec::new();
    for v in headers.get_all(header::IF_MATCH) {
        lines.push(v.to_str().map_err(|_| bad())?);
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let value = lines.join(", ");
    let value = value.trim_matches([' ', '\t']);
    if value == "*" {
        return Ok(None);
    }
    let tags = entity_tags(value).ok_or_else(bad)?;
    Ok(Some(IfMatch(
        tags.into_iter()
            .filter(|(weak, _)| !weak)
            .filter_map(|(_, tag)| version_tag(tag))
            .collect(),
    )))
}

/// The entity tags of a list (`"3", W/"4"`), each with whether it is weak; None if
/// the text is not such a list (RFC 9110 §8.8.3: `[W/]"<etagc>*"`, comma-separated).
pub fn entity_tags(value: &str) -> Option<Vec<(bool, &str)>> {
    let ows = |s: &str| s.trim_start_matches([' ', '\t']).len();
    let mut rest = value;
    let mut out = Vec::new();
    loop {
        rest = &rest[rest.len() - ows(rest)..];
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let inner = rest.strip_prefix('"')?;
        let end = inner.find('"')?;
        let tag = &inner[..end];
        if !tag.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
            return None;
        }
        out.push((weak, tag));
        rest = &inner[end + 1..];
        rest = &rest[rest.len() - ows(rest)..];
        if rest.is_empty() {
            return Some(out);
        }
        rest = rest.strip_prefix(',')?;
    }
}

/// The ticket version an entity tag's text names (the service's ETags are the
/// version in decimal), or None for a tag the service never gave.
pub fn version_tag(tag: &str) -> Option<i64> {
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tag.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(values: &[&str]) -> Result<Option<Vec<i64>>, String> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        if_match(&h)
            .map(|m| m.map(|m| m.0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn if_match_compares_strongly() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&["*"]), Ok(None));
        assert_eq!(parse(&["\"3\""]), Ok(Some(vec![3])));
        // Weak tags never match: none of their versions is kept.
        assert_eq!(parse(&["W/\"3\""]), Ok(Some(vec![])));
        assert_eq!(parse(&["W/\"3\", \"4\""]), Ok(Some(vec![4])));
        assert_eq!(parse(&["\"3\"", "\"5\""]), Ok(Some(vec![3, 5])));
        // A tag the service never gives matches nothing.
        assert_eq!(parse(&["\"abc\""]), Ok(Some(vec![])));
        assert_eq!(parse(&["\"+3\""]), Ok(Some(vec![])));
        for bad in [
            "3",
            "\"3",
            "w/\"3\"",
            "\"3\" \"4\"",
            "\"3\",",
            "*, \"3\"",
            "",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let token = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            bearer_token(&h).map(str::to_string)
        };
        for v in ["Bearer yw_x", "bearer yw_x", "BEARER  yw_x", "bEaReR yw_x "] {
            assert_eq!(token(v).as_deref(), Some("yw_x"), "{v:?}");
        }
        for v in ["Basic yw_x", "Bearer", "Bearer ", "Beareryw_x", "yw_x"] {
            assert_eq!(token(v), None, "{v:?}");
        }
    }
}

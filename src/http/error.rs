//! Errors as RFC 9457 problem documents, and the pages that document their types.
//!
//! Every problem has a `type` naming its kind, `/problems/{kind}` (the kinds are
//! [`TYPES`]), and that kind's fixed `title`; what happened this time is in
//! `detail`. The type is a URI reference with the full path, resolved against the
//! service that answered: the service serves each one (`GET /problems/{kind}`, a
//! short HTML page, no token needed), so a person who follows it reads what the
//! problem means and what to do, on whatever host the city runs it. Why not an
//! absolute `https://` URI: the project owns no domain that every deployment could
//! point at, and an absolute URI built from the request's `Host` would let a client
//! choose it. RFC 9457 §3.1.1 allows relative references and recommends, when they
//! are used, that they carry the full path, as these do. `docs/PROBLEMS.md` lists
//! the same table.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};

use crate::app::SharedApp;
use crate::error::AppError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` of a 503 that says nothing better (the database cannot serve just
/// now; the instance is not ready): long enough for a reconnect or a fail-over to
/// be under way, short enough that a person's retry is not kept waiting.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// One kind of problem: the `type` is `/problems/{slug}`.
pub struct ProblemType {
    pub slug: &'static str,
    /// The `code` of a problem of this type that says nothing more specific
    /// (`AppError::code`, and the problems built without an `AppError`).
    pub code: &'static str,
    pub status: u16,
    /// The same for every problem of the type (RFC 9457 §3.1.3).
    pub title: &'static str,
    /// What it means and what to do: the page `/problems/{slug}` and
    /// `docs/PROBLEMS.md`.
    pub about: &'static str,
}

impl ProblemType {
    /// The `type` member: `/problems/{slug}`.
    pub fn uri(&self) -> String {
        format!("/problems/{}", self.slug)
    }
}

/// The problem types, one constant each; [`TYPES`] lists them.
pub const BAD_REQUEST: ProblemType = ProblemType {
    slug: "bad-request",
    code: "bad_request",
    status: 400,
    title: "Malformed request",
    about: "The request could not be read: the body is not valid JSON, the Idempotency-Key \
            header of a command is missing, or the path is not valid. Fix the request as \
            `detail` says; nothing was recorded.",
};

pub const UNAUTHORIZED: ProblemType = ProblemType {
    slug: "unauthorized",
    code: "unauthorized",
    status: 401,
    title: "Authentication required",
    about: "No bearer token, or one that is unknown, expired or revoked. Send \
            `Authorization: Bearer <token>` with a token from `yiwang token create`.",
};

pub const FORBIDDEN: ProblemType = ProblemType {
    slug: "forbidden",
    code: "forbidden",
    status: 403,
    title: "Not allowed",
    about: "The token is valid but its role or unit may not do this (for example, a grid \
            worker reporting outside its grid, or a handler dispatching). `detail` says \
            which rule refused it; ask someone whose role may.",
};

pub const NOT_FOUND: ProblemType = ProblemType {
    slug: "not-found",
    code: "not_found",
    status: 404,
    title: "Not found",
    about: "No such route, or no such resource that this token may see: a ticket outside \
            the token's unit is answered as if it did not exist, so that its existence does \
            not leak.",
};

pub const METHOD_NOT_ALLOWED: ProblemType = ProblemType {
    slug: "method-not-allowed",
    code: "method_not_allowed",
    status: 405,
    title: "Method not allowed",
    about: "The route exists but not with this HTTP method. The `Allow` header lists the \
            methods it has.",
};

pub const NOT_ACCEPTABLE: ProblemType = ProblemType {
    slug: "not-acceptable",
    code: "not_acceptable",
    status: 406,
    title: "Not acceptable",
    about: "The Accept-Encoding header excludes the identity (`identity;q=0`, or `*;q=0`) \
            and accepts none of the codings the service sends (gzip, br, zstd). Accept one \
            of them, or drop the exclusion; nothing was run.",
};

pub const CONFLICT: ProblemType = ProblemType {
    slug: "conflict",
    code: "conflict",
    status: 409,
    title: "Conflicts with the current state",
    about: "The command is not allowed in the current state of what it acts on (a ticket \
            that is not in a state the action applies to, an appraisal year already \
            submitted, a request with the same Idempotency-Key still in flight). Reload \
            and decide again; nothing was recorded.",
};

pub const TAMPERED: ProblemType = ProblemType {
    slug: "tampered",
    code: "integrity.tampered",
    status: 409,
    title: "Frozen after a failed verification",
    about: "The latest verification of the event log found this ticket's records tampered \
            with (`code`: `integrity.tampered`). The ticket takes no commands and is not \
            shown until an operator has run `yiwang verify` and restored its records from \
            a backup; the other tickets are not affected.",
};

pub const PRECONDITION_FAILED: ProblemType = ProblemType {
    slug: "precondition-failed",
    code: "conflict.version",
    status: 412,
    title: "Precondition failed",
    about: "The If-Match header does not match the ticket's current ETag (strong \
            comparison, RFC 9110 §13.1.1: a weak tag `W/\"…\"` never matches), or the \
            ticket changed while the command ran. Reload the ticket and decide again.",
};

pub const PAYLOAD_TOO_LARGE: ProblemType = ProblemType {
    slug: "payload-too-large",
    code: "payload_too_large",
    status: 413,
    title: "Request body too large",
    about: "The body is over the limit (1 MiB for a JSON command; the attachment limit for \
            a photo). Send less.",
};

pub const UNSUPPORTED_MEDIA_TYPE: ProblemType = ProblemType {
    slug: "unsupported-media-type",
    code: "unsupported_media_type",
    status: 415,
    title: "Unsupported media type",
    about: "Commands take `Content-Type: application/json` (photos: \
            `multipart/form-data`). Send the body in the media type `detail` names.",
};

pub const VALIDATION: ProblemType = ProblemType {
    slug: "validation",
    code: "validation.field",
    status: 422,
    title: "Invalid field",
    about: "A field, query parameter or header is missing or invalid; `field` names it \
            (a body path such as `location.lat`, a parameter or a header name) and \
            `detail` says what it must be. Also: an Idempotency-Key reused with another \
            request.",
};

pub const RATE_LIMITED: ProblemType = ProblemType {
    slug: "rate-limited",
    code: "rate_limited",
    status: 429,
    title: "Too many requests",
    about: "Over a rate limit (per token, or per address without a valid token) or over \
            the cap of live event streams. Wait the seconds of the `Retry-After` header; \
            the request was not carried out.",
};

pub const INTERNAL: ProblemType = ProblemType {
    slug: "internal",
    code: "internal",
    status: 500,
    title: "Internal error",
    about: "A fault of the service; it has been logged with the request id (the \
            `X-Request-Id` header). Nothing was recorded. Report it with the request id.",
};

pub const UNAVAILABLE: ProblemType = ProblemType {
    slug: "unavailable",
    code: "unavailable",
    status: 503,
    title: "Service temporarily unavailable",
    about: "The database cannot serve just now, the request took longer than the \
            request timeout, or the instance is not ready (starting, or shutting down). \
            Retry after the seconds of the `Retry-After` header; a command retried with the \
            same Idempotency-Key is never applied twice.",
};

/// Every kind of problem the service answers, in status order.
pub const TYPES: &[ProblemType] = &[
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    NOT_ACCEPTABLE,
    CONFLICT,
    TAMPERED,
    PRECONDITION_FAILED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    RATE_LIMITED,
    INTERNAL,
    UNAVAILABLE,
];

/// The type of `slug` (one of [`TYPES`]).
pub fn problem_type(slug: &str) -> Option<&'static ProblemType> {
    TYPES.iter().find(|t| t.slug == slug)
}

fn type_of(e: &AppError) -> &'static ProblemType {
    match e {
        AppError::BadRequest(_) => &BAD_REQUEST,
        AppError::Unauthorized(_) => &UNAUTHORIZED,
        AppError::Forbidden(_) => &FORBIDDEN,
        AppError::NotFound(_) => &NOT_FOUND,
        AppError::MethodNotAllowed(_) => &METHOD_NOT_ALLOWED,
        AppError::Conflict(_) => &CONFLICT,
        AppError::Tampered(_) => &TAMPERED,
        AppError::PreconditionFailed(_) => &PRECONDITION_FAILED,
        AppError::PayloadTooLarge(_) => &PAYLOAD_TOO_LARGE,
        AppError::UnsupportedMediaType(_) => &UNSUPPORTED_MEDIA_TYPE,
        AppError::Invalid { .. } => &VALIDATION,
        AppError::TooManyRequests(_) | AppError::RateLimited { .. } => &RATE_LIMITED,
        AppError::Unavailable(_) => &UNAVAILABLE,
        AppError::Internal(_) => &INTERNAL,
        AppError::Coded(_, inner) => type_of(inner),
    }
}

impl AppError {
    /// The problem document's `title`: its type's.
    pub fn title(&self) -> &'static str {
        type_of(self).title
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let kind = type_of(&self);
        let code = self.code();
        let detail = match self.base() {
            // Log a server error once, here; the caller gets no internals.
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "an internal error occurred; it has been logged. Nothing was recorded.".to_string()
            }
            other => other.to_string(),
        };
        let mut extensions = Map::new();
        if let AppError::Invalid { field, .. } = self.base() {
            extensions.insert("field".into(), Value::String(field.clone()));
        }
        extensions.insert("code".into(), Value::String(code.into()));
        let mut resp = problem_response(kind, detail, extensions);
        if let AppError::RateLimited {
            retry_after_secs, ..
        } = self.base()
        {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from((*retry_after_secs).max(1)),
            );
        }
        resp
    }
}

/// The answer of a problem of type `kind`: its status, `application/problem+json`,
/// the members `type`, `title`, `status` and `detail` with `extensions` beside them
/// (`field`, `code`; `/readyz` adds `database`), and `Retry-After` on a 503 (and a
/// 429, 1 s, unless the caller sets another). For the edges that build a problem
/// without an `AppError` (readiness). Without a `code` among the extensions the
/// problem carries its type's default code: every problem has one.
pub fn problem_response(
    kind: &ProblemType,
    detail: impl Into<String>,
    extensions: Map<String, Value>,
) -> Response {
    let status = StatusCode::from_u16(kind.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let problem = Problem {
        kind: kind.uri(),
        title: kind.title.into(),
        status: kind.status,
        detail: detail.into(),
        field: None,
        code: kind.code.into(),
    };
    // A struct of strings and a number always serializes to an object; serde_json's
    // map keeps its keys in alphabetical order, as problems have always been written.
    let mut body = match serde_json::to_value(problem) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    body.extend(extensions);
    let mut resp = (status, Value::Object(body).to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    match kind.status {
        503 => {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
            );
        }
        429 => {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    resp
}

/// An RFC 9457 problem document: every error of `/api/v1`.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// The problem's kind, `/problems/{kind}`: a URI reference with the full path,
    /// resolved against the service, whose page documents it (no token needed).
    #[schema(schema_with = type_schema)]
    #[serde(rename = "type")]
    kind: String,
    /// The kind's title, the same for every problem of the type.
    title: String,
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What happened and what to do about it, in words a person can act on.
    detail: String,
    /// The offending field, on a 422 (a body path such as `location.lat`, a query
    /// parameter or a header name).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// A stable, machine-readable name of the problem, on every problem: a page
    /// translates it into the reader's language (`detail` is English). Either the
    /// default of the type (`forbidden`, `not_found`, `validation.field`,
    /// `conflict.version`, `integrity.tampered`…) or a more specific name whose
    /// first part is that default's (`lifecycle.invalid_transition` for an action
    /// the ticket's state does not allow). docs/PROBLEMS.md lists them; a client that
    /// does not know a code falls back on its first part, then on `detail`.
    #[schema(examples("not_found", "validation.field", "lifecycle.invalid_transition"))]
    code: String,
}

/// The schema of `Problem.type`: one of the type URIs.
fn type_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri-reference".into())))
        .enum_values(Some(TYPES.iter().map(|t| t.uri())))
        .examples([Value::String("/problems/not-found".into())])
}

/// `GET /problems` and `GET /problems/{kind}`: what each problem type means.
pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/problems", get(index_page))
        .route("/problems/{kind}", get(type_page))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `code spans` of the documentation text as HTML.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(s).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn html_page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · yiwang</title>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    );
    let mut r = html.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The text changes only with the binary.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    crate::web::page_headers(h, crate::web::CSP);
    r
}

async fn index_page() -> Response {
    let mut body = String::from(
        "<h1>Problem types</h1>\n<p>Every error of the yiwang API is an RFC 9457 \
         <code>application/problem+json</code> document whose <code>type</code> is one of \
         these.</p>\n<ul>\n",
    );
    for t in TYPES {
        body.push_str(&format!(
            "<li><a href=\"/problems/{0}\"><code>/problems/{0}</code></a> ({1}): {2}</li>\n",
            t.slug,
            t.status,
            escape(t.title)
        ));
    }
    body.push_str("</ul>\n");
    html_page("Problem types", &body)
}

async fn type_page(axum::extract::Path(kind): axum::extract::Path<String>) -> Response {
    let Some(t) = problem_type(&kind) else {
        return AppError::NotFound(format!(
            "no problem type {kind:?}; GET /problems lists them"
        ))
        .into_response();
    };
    let body = format!(
        "<h1>{title}</h1>\n<p>Type <code>/problems/{slug}</code>, status {status}, \
         default <code>code</code> <code>{code}</code>.</p>\n\
         <p>{about}</p>\n<p><a href=\"/problems\">All problem types</a></p>\n",
        title = escape(t.title),
        slug = t.slug,
        code = t.code,
        status = t.status,
        about = inline(t.about),
    );
    html_page(t.title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_code_keeps_the_kind() {
        let e = AppError::Conflict("not now".into()).with_code("lifecycle.invalid_transition");
        assert_eq!(e.code(), "lifecycle.invalid_transition");
        assert_eq!(e.status(), 409);
        assert_eq!(type_of(&e).slug, "conflict");
        assert_eq!(e.to_string(), "not now");
        let f = AppError::invalid("a.b", "bad").with_code("validation.field");
        assert!(matches!(f.base(), AppError::Invalid { field, .. } if field == "a.b"));
        assert_eq!(type_of(&f).slug, "validation");
    }

    #[test]
    fn every_error_has_its_type() {
        let errors = [
            AppError::BadRequest(String::new()),
            AppError::Unauthorized(String::new()),
            AppError::Forbidden(String::new()),
            AppError::NotFound(String::new()),
            AppError::MethodNotAllowed(String::new()),
            AppError::Conflict(String::new()),
            AppError::Tampered(String::new()),
            AppError::PreconditionFailed(String::new()),
            AppError::PayloadTooLarge(String::new()),
            AppError::UnsupportedMediaType(String::new()),
            AppError::invalid("f", "m"),
            AppError::TooManyRequests(String::new()),
            AppError::Unavailable(String::new()),
            AppError::Internal(anyhow::anyhow!("x")),
        ];
        for e in &errors {
            let t = type_of(e);
            assert_eq!(t.status, e.status(), "{}", t.slug);
            assert_eq!(t.code, e.code(), "{}: the type's default code", t.slug);
        }
        let mut slugs: Vec<&str> = TYPES.iter().map(|t| t.slug).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), TYPES.len(), "each slug once");
        // Every type is reachable from some error (none is documented for nothing),
        // but for the 406 that the encoding guard in front of the routes answers by
        // itself (`http::refuse_unacceptable_encoding`; tests/api/compression.rs).
        let mut codes: Vec<&str> = TYPES.iter().map(|t| t.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TYPES.len(), "each default code once");
        for t in TYPES.iter().filter(|t| t.slug != NOT_ACCEPTABLE.slug) {
            assert!(
                errors.iter().any(|e| type_of(e).slug == t.slug),
                "{} is never answered",
                t.slug
            );
        }
    }
}

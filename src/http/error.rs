//! Errors as RFC 9457 problem documents.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;

pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let detail = match &self {
            // Log a server error once, here; the caller gets no internals.
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "an internal error occurred; it has been logged. Nothing was recorded.".to_string()
            }
            other => other.to_string(),
        };
        let body = Problem {
            kind: "about:blank",
            title: self.title(),
            status: status.as_u16(),
            detail,
            field: match &self {
                AppError::Invalid { field, .. } => Some(field.clone()),
                _ => None,
            },
            code: self.code(),
        };
        let mut resp = (status, body.to_json()).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            AppError::TooManyRequests(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            AppError::RateLimited {
                retry_after_secs, ..
            } => {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                );
            }
            _ => {}
        }
        resp
    }
}

/// An RFC 9457 problem document: every error of `/api/v1`.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `title` and `status` say what went wrong.
    #[schema(example = "about:blank")]
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    /// What happened and what to do about it, in words a person can act on.
    detail: String,
    /// The offending field, on a 422 (a body path such as `location.lat`, a query
    /// parameter or a header name).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// What kind of refusal this is, where the status alone does not say:
    /// `integrity.tampered` (409): the verification of the event log found the
    /// ticket's records tampered with, and the ticket is frozen until an operator
    /// has dealt with it.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
}

impl Problem {
    /// The document's text, its members in alphabetical order (`code`, `detail`,
    /// `field`, `status`, `title`, `type`) as problems have always been written; the
    /// struct keeps the order of the OpenAPI document's properties.
    fn to_json(&self) -> String {
        // A struct of strings and a number always serializes.
        serde_json::to_value(self)
            .expect("a problem document serializes")
            .to_string()
    }
}

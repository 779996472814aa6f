//! The one error type of the service. Every variant maps to an HTTP status and an
//! RFC 9457 problem document; 5xx causes are logged once, where they are turned into
//! a response, and never shown to the caller.

use crate::auth::policy::{Forbidden, Refused};
use crate::domain::DomainError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method: a 405 whose `Allow` header (set by
    /// the router) lists the methods it has.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The ticket's (or the appraisal year's) state forbids the command.
    #[error("{0}")]
    Conflict(String),
    /// The latest verification of the log found this ticket's records tampered
    /// with: it is frozen (409, `code` `integrity.tampered`).
    #[error("{0}")]
    Tampered(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A field is missing or invalid.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    TooManyRequests(String),
    /// Over a rate or concurrency limit: a 429 whose `Retry-After` is
    /// `retry_after_secs` (whole seconds, at least 1).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// Another error with a code more specific than its kind's default (the
    /// problem document's `code`): `AppError::Conflict(..).with_code("lifecycle.invalid_transition")`.
    /// Everything else (status, type, detail, `field`) is the inner error's.
    #[error("{1}")]
    Coded(&'static str, Box<AppError>),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::MethodNotAllowed(_) => 405,
            AppError::Conflict(_) | AppError::Tampered(_) => 409,
            AppError::PreconditionFailed(_) => 412,
            AppError::PayloadTooLarge(_) => 413,
            AppError::UnsupportedMediaType(_) => 415,
            AppError::Invalid { .. } => 422,
            AppError::TooManyRequests(_) | AppError::RateLimited { .. } => 429,
            AppError::Unavailable(_) => 503,
            AppError::Internal(_) => 500,
            AppError::Coded(_, inner) => inner.status(),
        }
    }

    /// The same error with the more specific `code` (a dotted name whose first part
    /// is the kind's default code, as docs/PROBLEMS.md lists them).
    pub fn with_code(self, code: &'static str) -> AppError {
        AppError::Coded(code, Box::new(self.into_base()))
    }

    /// The error under any [`AppError::Coded`]: match on this to tell kinds apart.
    pub fn base(&self) -> &AppError {
        match self {
            AppError::Coded(_, inner) => inner.base(),
            other => other,
        }
    }

    /// [`AppError::base`], by value.
    pub fn into_base(self) -> AppError {
        match self {
            AppError::Coded(_, inner) => inner.into_base(),
            other => other,
        }
    }
}

impl AppError {
    /// The stable, machine-readable code of the problem document's `code` member,
    /// which every problem carries: the one given with [`AppError::with_code`], else
    /// the default of the error's kind (`forbidden`, `not_found`, `validation.field`…;
    /// docs/PROBLEMS.md lists them). Pages translate a problem by its code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Coded(code, _) => code,
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::Conflict(_) => "conflict",
            AppError::Tampered(_) => "integrity.tampered",
            AppError::PreconditionFailed(_) => "conflict.version",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Invalid { .. } => "validation.field",
            AppError::TooManyRequests(_) | AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, message } => AppError::invalid(field, message),
            DomainError::NotAllowed(m) => {
                AppError::Conflict(m).with_code("lifecycle.invalid_transition")
            }
            DomainError::NotFound => AppError::NotFound("no such ticket".into()),
            DomainError::AlreadyExists => {
                AppError::Conflict("the ticket already exists".into()).with_code("conflict.exists")
            }
        }
    }
}

impl From<Forbidden> for AppError {
    fn from(e: Forbidden) -> Self {
        AppError::Forbidden(e.0)
    }
}

impl From<Refused> for AppError {
    fn from(e: Refused) -> Self {
        match e {
            // The same words as a ticket that does not exist (App::load_for_command).
            Refused::Hidden(id) => AppError::NotFound(format!("no ticket {id}")),
            Refused::Forbidden(m) => AppError::Forbidden(m),
        }
    }
}

/// The 503 for a database that cannot serve now. A command cut off at its commit may
/// have been recorded; the same Idempotency-Key makes the retry safe either way.
fn unavailable(cause: &str) -> AppError {
    tracing::warn!(cause = %cause, "database unavailable");
    AppError::Unavailable(
        "the database is unreachable or cannot write just now; retry with the same Idempotency-Key (a command is never applied twice)".into(),
    )
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => unavailable(&m),
            StoreError::Database(e) if crate::store::transient(&e) => unavailable(&e.to_string()),
            StoreError::Conflict { .. } => AppError::PreconditionFailed(
                "the ticket changed while this command ran; reload it and retry".into(),
            ),
            StoreError::Tampered(id) => AppError::Tampered(format!(
                "ticket {id} is frozen: the verification of the event log found its records tampered \
                 with; an operator must run `yiwang verify` and restore them from a backup"
            )),
            other => AppError::Internal(other.into()),
        }
    }
}

//! The HTTP API (axum): one module per resource, each owning its routes; this module
//! merges them and adds what every request gets (request id, limits, metrics, logs).

pub mod appraisal;
pub mod appraisal_entries;
pub mod attachments;
pub mod cors;
pub mod error;
pub mod events;
pub mod extract;
pub mod limits;
pub mod me;
pub mod open311;
pub mod openapi;
pub mod ops;
pub mod org;
pub mod people;
pub mod server;
pub mod stats;
pub mod tickets;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::Value;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::store::RecordedEvent;

/// `value` as a JSON answer whose objects have their keys in alphabetical order.
/// The answers built with `json!` (whose maps sort their keys: serde_json without
/// `preserve_order`) have always been written so; their types declare the fields in
/// the order of the OpenAPI document's properties, and go through a `Value` to keep
/// the bytes.
pub fn sorted_json<T: Serialize>(value: &T) -> Result<axum::Json<Value>, AppError> {
    serde_json::to_value(value)
        .map(axum::Json)
        .map_err(|e| AppError::Internal(e.into()))
}

/// One event of the log (`http::event_json`).
#[derive(Serialize, ToSchema)]
pub struct Event<'a> {
    /// The global position: increasing, gap-safe, possibly sparse (PostgreSQL).
    position: i64,
    /// The ticket id.
    stream_id: uuid::Uuid,
    /// 1 for the stream's first event, then +1 per event.
    version: i64,
    /// TicketAccepted, TicketAssigned, TicketSigned, TicketReturned,
    /// ExtensionRequested, ExtensionDecided, TicketSupervised, TicketHandled,
    /// VerificationPassed, VerificationFailed, CitizenFeedbackRecorded,
    /// TicketCommented, TicketClosed, SlaWarning, SlaBreached (more may come).
    #[serde(rename = "type")]
    kind: &'a str,
    schema_version: i32,
    /// Business time: when it happened (an import keeps the legacy system's time).
    occurred_at: chrono::DateTime<chrono::Utc>,
    /// When the store appended it.
    recorded_at: chrono::DateTime<chrono::Utc>,
    /// The payload of the event type (schema_version says which shape).
    #[schema(value_type = Object)]
    data: &'a Value,
    /// Who and why: `actor`, `role`, `unit`, `correlation_id`, `causation_id`,
    /// `idempotency_key`, `request_id`.
    #[schema(value_type = Object)]
    metadata: &'a Value,
    /// SHA-256 chaining this event to the previous one of its stream (hex).
    hash: &'a str,
}

/// The event JSON of the public contract.
///
/// Decision (event schema versions, `domain/upcast.rs`): the events API (a ticket's
/// events, the catch-up feed and the live stream) hands out each event as stored,
/// with its stored `schema_version`; it does not pass the payload through the
/// upcasters. The hash covers the stored bytes, so only the stored payload lets a
/// client check or archive the log; the `schema_version` says which shape the
/// payload has; and an upcast payload could carry fields that no stored event, and
/// so no client, has ever seen. What the service derives from events (the ticket,
/// the statistics) is read through the upcasters.
pub fn event_json(e: &RecordedEvent) -> Event<'_> {
    Event {
        position: e.position,
        stream_id: e.stream_id,
        version: e.version,
        kind: &e.event_type,
        schema_version: e.schema_version,
        occurred_at: e.occurred_at,
        recorded_at: e.recorded_at,
        data: &e.data,
        metadata: &e.metadata,
        hash: &e.hash,
    }
}

impl Event<'_> {
    /// The event's JSON text, keys in alphabetical order (see [`sorted_json`]): the
    /// `data` of the live stream's messages.
    pub fn to_json(&self) -> String {
        // Numbers, strings, times and JSON values always serialize.
        serde_json::to_value(self)
            .expect("an event serializes")
            .to_string()
    }
}

/// A page of events.
#[derive(Serialize, ToSchema)]
pub struct EventList<'a> {
    pub items: Vec<Event<'a>>,
    /// The global feed: the position to pass as `after` next (it moves past events
    /// the caller may not see; null when the page is empty). A ticket's stream: null.
    pub next_cursor: Option<i64>,
}

/// A JSON response written into a buffer of about `size_hint` bytes. A large answer
/// (an appraisal's evidence, a month of a district's days: megabytes) is then not
/// copied again each time a growing buffer doubles.
pub fn json_sized<T: Serialize>(value: &T, size_hint: usize) -> Result<Response, AppError> {
    json_written(size_hint, |buf| serde_json::to_writer(buf, value))
}

/// A JSON answer that `write` puts into a buffer of `size_hint` bytes.
pub fn json_written(
    size_hint: usize,
    write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> Result<Response, AppError> {
    let write = || {
        let mut buf = Vec::with_capacity(size_hint);
        write(&mut buf).map(|()| buf)
    };
    // Megabytes take milliseconds: off the worker's other tasks (`cpu::run`).
    let buf = if size_hint >= 1 << 18 {
        let started = std::time::Instant::now();
        let buf = crate::cpu::run(write);
        tracing::debug!(
            ms = started.elapsed().as_secs_f64() * 1e3,
            "large JSON body written"
        );
        buf
    } else {
        write()
    }
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        buf,
    )
        .into_response())
}

/// The whole application with the default limits (the tests use it).
pub fn app(state: SharedApp) -> Router {
    app_with(state, limits::Settings::default())
}

/// The whole application with chosen request limits, used by `serve`. Serve it with
/// [`server::serve`] (as `yiwang serve` does) or
/// `into_make_service_with_connect_info::<SocketAddr>()`, so that the per-address
/// limit tells clients apart.
pub fn app_with(state: SharedApp, settings: limits::Settings) -> Router {
    app_with_edge(state, settings, Edge::default())
}

/// What `serve`'s flags choose for the edges beyond the limits: Open311's public
/// reads and jurisdiction, and the origins `/api/v1` answers reads from (CORS).
#[derive(Clone, Debug, Default)]
pub struct Edge {
    pub open311: open311::Settings,
    pub cors: cors::Settings,
}

/// The whole application with chosen limits and edge settings ([`Edge`]).
pub fn app_with_edge(state: SharedApp, settings: limits::Settings, edge: Edge) -> Router {
    let cors_layers = Arc::new(cors::Layers::new(&edge.cors));
    let request_id = HeaderName::from_static("x-request-id");
    let limited = limits::LimitState {
        app: state.clone(),
        limits: Arc::new(limits::Limits::new(settings)),
    };
    Router::new()
        .merge(tickets::router())
        .merge(attachments::router(&state))
        .merge(events::router())
        .merge(org::router())
        .merge(appraisal::router())
        .merge(appraisal_entries::router())
        .merge(stats::router())
        .merge(people::router())
        .merge(ops::router())
        .merge(openapi::router())
        .merge(open311::router(&state, edge.open311))
        .merge(me::router())
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(crate::app::commands::BODY_LIMIT))
        // Inside the rate limits: a refused request costs no timer.
        .layer(middleware::from_fn_with_state(
            limited.clone(),
            limits::bound_time,
        ))
        .layer(middleware::from_fn_with_state(
            limited.clone(),
            limits::rate_limit,
        ))
        .layer(Extension(limited.limits))
        // Outside the limits: a preflight costs no rate and no timer.
        .layer(middleware::from_fn_with_state(cors_layers, cors::layer))
        // Answers in gzip, br or zstd when the client accepts one. tower-http's
        // default predicate leaves out the live stream (`text/event-stream`), images
        // (the photos; not SVG) and bodies under 32 bytes. The body is compressed
        // as it is sent, after `observe` has timed the answer's making.
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // Outermost: a client's id that may not be kept is gone before one is set.
        .layer(middleware::from_fn(screen_request_id))
        .with_state(state)
}

/// Drops a client's `X-Request-Id` unless it is one value of 1 to 128 of
/// `[A-Za-z0-9._:-]` (`extract::is_valid_request_id`), so that `SetRequestIdLayer`
/// makes a fresh one: the id lands in the permanent event metadata and in every log
/// line, and the response's `X-Request-Id` is then the id that was kept.
async fn screen_request_id(mut req: Request, next: Next) -> Response {
    let name = HeaderName::from_static("x-request-id");
    let mut values = req.headers().get_all(&name).iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => true,
        (Some(v), None) => extract::is_valid_request_id(v.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(&name);
    }
    next.run(req).await
}

async fn not_found(method: Method, uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no route {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let mut r =
        AppError::BadRequest(format!("{method} is not allowed on {}", uri.path())).into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Request latency by route template and status.
async fn observe(State(app): State<SharedApp>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let elapsed: Duration = started.elapsed();
    app.metrics
        .http_requests
        .with_label_values(&[method.as_str(), route.as_str(), resp.status().as_str()])
        .observe(elapsed.as_secs_f64());
    resp
}

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
pub mod map;
pub mod me;
pub mod open311;
pub mod openapi;
pub mod ops;
pub mod org;
pub mod people;
pub mod server;
pub mod session;
pub mod similar;
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
    /// `serve --metrics-addr`: `/metrics` is served on a listener of its own
    /// ([`metrics_app`]) and not on the public port.
    pub metrics_elsewhere: bool,
    /// `serve --map-tiles`: the map's tile server (`map::Settings`).
    pub map: map::Settings,
}

/// The whole application with chosen limits and edge settings ([`Edge`]).
pub fn app_with_edge(state: SharedApp, settings: limits::Settings, edge: Edge) -> Router {
    let cors_layers = Arc::new(cors::Layers::new(&edge.cors));
    let ops = if edge.metrics_elsewhere {
        ops::router()
    } else {
        ops::router().merge(ops::metrics_router())
    };
    let request_id = HeaderName::from_static("x-request-id");
    let limited = limits::LimitState {
        app: state.clone(),
        limits: Arc::new(limits::Limits::new(settings)),
    };
    Router::new()
        .merge(tickets::router())
        .merge(similar::router())
        .merge(map::router(&edge.map))
        .merge(attachments::router(&state))
        .merge(events::router())
        .merge(org::router())
        .merge(appraisal::router())
        .merge(appraisal_entries::router())
        .merge(stats::router())
        .merge(people::router())
        .merge(ops)
        .merge(openapi::router())
        .merge(open311::router(&state, edge.open311))
        .merge(me::router())
        .merge(session::router())
        .merge(error::router())
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            map::tile_csp_state(&edge.map),
            map::tile_csp,
        ))
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
        // Before the handler runs: tower-http (0.7) answers a request that accepts no
        // coding with a 406 only after the handler has run (a command recorded).
        .layer(middleware::from_fn(refuse_unacceptable_encoding))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        // The span only, so that what a request logs names it; the one line per
        // request is `observe`'s access line (tower-http's own events would repeat
        // it at debug, with the latency as text).
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_request(())
                .on_response(())
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // Outermost: a client's id that may not be kept is gone before one is set.
        .layer(middleware::from_fn(screen_request_id))
        .with_state(state)
}

/// A 406 problem, before anything runs, for a request whose `Accept-Encoding`
/// excludes the identity (`identity;q=0`, or `*;q=0` without naming identity) and
/// accepts none of gzip, br and zstd: the compression layer would otherwise run the
/// handler and then turn its answer's status into a 406.
async fn refuse_unacceptable_encoding(req: Request, next: Next) -> Response {
    if accepts_some_encoding(req.headers()) {
        return next.run(req).await;
    }
    let detail = "Accept-Encoding excludes the identity and names none of the codings this service sends: gzip, br, zstd; accept one of them, or drop identity;q=0 (and *;q=0)";
    error::problem_response(&error::NOT_ACCEPTABLE, detail, serde_json::Map::new())
}

/// Whether some coding the service sends (identity, gzip, br, zstd) is acceptable
/// under `Accept-Encoding`, decided as tower-http 0.7's compression layer decides it
/// (`content_encoding::preferred_encoding_with_wildcard`, RFC 9110 §12.5.3): an
/// entry of another coding, or whose parameter is not a valid `q=`, is ignored;
/// without `*`, some listed coding with q > 0, or identity not listed with q = 0;
/// with `*` (the first valid one), each coding's first listed q, else the
/// wildcard's, and one of them > 0.
fn accepts_some_encoding(headers: &axum::http::HeaderMap) -> bool {
    const SENT: [&str; 4] = ["identity", "gzip", "br", "zstd"];
    let mut explicit: Vec<(&str, u16)> = Vec::new();
    let mut star: Option<u16> = None;
    for value in headers.get_all(axum::http::header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.splitn(2, ';');
            let coding = parts.next().unwrap_or("").trim();
            let q = match parts.next() {
                Some(q) => match qvalue(q.trim()) {
                    Some(q) => q,
                    None => continue,
                },
                None => 1000,
            };
            if coding == "*" {
                star = star.or(Some(q));
            } else if coding.eq_ignore_ascii_case("x-gzip") {
                explicit.push(("gzip", q));
            } else if let Some(c) = SENT.iter().find(|c| coding.eq_ignore_ascii_case(c)) {
                explicit.push((c, q));
            }
        }
    }
    match star {
        None => {
            explicit.iter().any(|(_, q)| *q > 0)
                || !explicit.iter().any(|(c, q)| *c == "identity" && *q == 0)
        }
        Some(star) => SENT.iter().any(|c| {
            explicit
                .iter()
                .find(|(e, _)| e == c)
                .map_or(star, |(_, q)| *q)
                > 0
        }),
    }
}

/// A q-value (`q=0` to `q=1`, at most three decimals, `q` in either case) in
/// thousandths, as tower-http parses it; None if it is not one.
fn qvalue(s: &str) -> Option<u16> {
    let v = s.strip_prefix("q=").or_else(|| s.strip_prefix("Q="))?;
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac
        .bytes()
        .zip([100u16, 10, 1])
        .map(|(b, f)| u16::from(b - b'0') * f)
        .sum::<u16>();
    let q = whole + frac;
    (q <= 1000).then_some(q)
}

/// `/metrics` alone, for the listener of `serve --metrics-addr`: no other route, no
/// limits, no access lines (a scraper every few seconds would fill the log);
/// compressed for a scraper that accepts it.
pub fn metrics_app(state: SharedApp) -> Router {
    ops::metrics_router()
        .fallback(not_found)
        .layer(CompressionLayer::new())
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

/// A 405 problem; the router adds the `Allow` header listing the route's methods.
async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> AppError {
    AppError::MethodNotAllowed(format!(
        "{method} is not allowed on {}; the Allow header lists the methods it has",
        uri.path()
    ))
}

/// Request latency by method, route template and status code, and the request's
/// access line (written when its body is finished, see [`Access`]).
async fn observe(State(app): State<SharedApp>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let access = Access {
        started,
        head: Duration::ZERO,
        method: method.clone(),
        route: route.clone(),
        // The path alone: a query may carry `access_token` or `api_key`.
        path: req.uri().path().to_string(),
        request_id: req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        status: 0,
        bytes: 0,
    };
    let resp = next.run(req).await;
    let elapsed: Duration = started.elapsed();
    app.metrics
        .http_requests
        .with_label_values(&[
            crate::metrics::method_label(&method),
            route.as_str(),
            resp.status().as_str(),
        ])
        .observe(elapsed.as_secs_f64());
    let access = Access {
        head: elapsed,
        status: resp.status().as_u16(),
        ..access
    };
    resp.map(|inner| {
        axum::body::Body::new(Counted {
            inner,
            access: Some(access),
        })
    })
}

/// One request's access line, at `info` on the target `yiwang::access`: `method`,
/// `route` (the matched template, `unmatched` for none), `path` (never the query),
/// `status`, `latency_ms` (until the response head was ready: what
/// `yiwang_http_request_duration_seconds` measures), `duration_ms` (until the body's
/// last byte was handed to the connection, or the client went away; the whole
/// life of a live stream), `bytes` (the body as sent, compressed if it was) and
/// `request_id`. Silence it with `RUST_LOG=info,yiwang::access=off`.
struct Access {
    started: Instant,
    head: Duration,
    method: Method,
    route: String,
    path: String,
    request_id: String,
    status: u16,
    bytes: u64,
}

impl Access {
    fn log(&self) {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        tracing::info!(
            target: "yiwang::access",
            method = self.method.as_str(),
            route = self.route.as_str(),
            path = self.path.as_str(),
            status = self.status,
            latency_ms = ms(self.head),
            duration_ms = ms(self.started.elapsed()),
            bytes = self.bytes,
            request_id = self.request_id.as_str(),
            "request"
        );
    }
}

/// A response body that counts its bytes and writes the access line once it is
/// done with: when it is dropped, which hyper does after the last frame (it may not
/// poll past a body that says it has ended) or when the client goes away.
struct Counted {
    inner: axum::body::Body,
    access: Option<Access>,
}

impl http_body::Body for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let (Some(data), Some(a)) = (frame.data_ref(), self.access.as_mut())
        {
            a.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(a) = self.access.take() {
            a.log();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_some_encoding;

    fn accepts(value: Option<&str>) -> bool {
        let mut h = axum::http::HeaderMap::new();
        if let Some(v) = value {
            h.insert(
                axum::http::header::ACCEPT_ENCODING,
                v.parse().expect("a header value"),
            );
        }
        accepts_some_encoding(&h)
    }

    #[test]
    fn a_request_is_refused_only_when_no_coding_the_service_sends_is_acceptable() {
        for ok in [
            None,
            Some(""),
            Some("gzip"),
            Some("identity"),
            Some("deflate"),
            Some("identity;q=0, gzip"),
            Some("identity;q=0, x-gzip"),
            Some("*;q=0, zstd;q=0.5"),
            Some("*;q=0, identity"),
            Some("*"),
            Some("identity;q=0, *"),
            Some("br;q=0, gzip;q=0"),
            Some("*;q=0.001"),
            Some("identity;q=nonsense"),
            Some("identity;q=0.0001, gzip;level=1"),
            Some("identity;q=0, gzip;q=0, gzip;q=1"),
        ] {
            assert!(accepts(ok), "{ok:?} leaves an acceptable coding");
        }
        for refused in [
            "identity;q=0",
            "*;q=0",
            "identity;q=0, deflate",
            "identity;Q=0.000, gzip;q=0, br;q=0, zstd;q=0",
            "identity;q=0, gzip;q=nonsense",
            "*;q=0, gzip;q=0",
            "identity;q=0, *;q=0, compress",
            "identity;q=0, gzip;level=1;q=1",
            "identity;q=0, gzip;q=1.5",
            "identity;q=0, *;q=1.0001",
        ] {
            assert!(!accepts(Some(refused)), "{refused:?} accepts nothing sent");
        }
    }
}

//! Operations endpoints: liveness, readiness, metrics. No token needed.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::app::SharedApp;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// `/metrics`: on the public port (`http::app_with`), or alone on the listener of
/// `serve --metrics-addr` (`http::metrics_app`).
pub fn metrics_router() -> Router<SharedApp> {
    Router::new().route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database.
const READY_PING: std::time::Duration = std::time::Duration::from_millis(900);

/// The process can serve: the database answers (503 otherwise, and no database
/// error text: the log has it). `degraded`, still 200, when a projection of this
/// process has stopped or when the latest verification of the log found tampering
/// (`integrity.findings`: how many problems). Tampering stays a 200 on purpose:
/// every instance shares the one log, so a 503 would take every instance out of
/// the load balancer at once and stop the whole service over what may be one
/// ticket. Instead each tampered ticket is frozen (409 `integrity.tampered`), the
/// others keep working, and the alert on `yiwang_verify_problems` calls an
/// operator.
///
/// From SIGTERM on (`server::Shutdown`), 503 at once with `Retry-After`, without
/// asking the database: the instance is going away, and load balancers should
/// send its traffic elsewhere while it finishes what it has.
async fn readyz(
    State(app): State<SharedApp>,
    shutdown: Option<axum::Extension<super::server::Shutdown>>,
) -> Response {
    if let Some(axum::Extension(s)) = shutdown.filter(|s| s.is_stopping()) {
        return not_ready(
            "the instance is shutting down: send requests to another one",
            json!({ "shutting_down": true }),
            s.retry_after_secs(),
        );
    }
    // A readiness probe must answer within its own timeout (a second, as
    // Kubernetes' default): a database that does not answer by then is down.
    let ping = tokio::time::timeout(READY_PING, app.store.ping())
        .await
        .unwrap_or_else(|_| {
            Err(crate::store::StoreError::Unavailable(format!(
                "no answer within {READY_PING:?}"
            )))
        });
    match ping {
        Ok(()) => {
            let (projections, stopped) = projection_states(&app);
            let findings = app.integrity.count();
            let status = if stopped || findings > 0 {
                "degraded"
            } else {
                "ready"
            };
            axum::Json(json!({
                "status": status, "database": "ok", "engine": app.store.engine(),
                "projections": projections,
                "integrity": { "findings": findings },
            }))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready(
                "the database is not reachable",
                json!({ "database": "unreachable" }),
                READY_RETRY_AFTER_SECS,
            )
        }
    }
}

/// When to ask `/readyz` again after the database did not answer.
const READY_RETRY_AFTER_SECS: u64 = 5;

/// A 503 problem+json from `/readyz`, with `Retry-After` and the members of
/// `extra` beside the standard ones.
fn not_ready(detail: &str, extra: serde_json::Value, retry_after_secs: u64) -> Response {
    let extensions = match extra {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let mut r = super::error::problem_response(&super::error::UNAVAILABLE, detail, extensions);
    // When to ask again: the drain's length on a shutdown, not the generic 2 s.
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// Each projection runner of this process: `running` (this instance holds the
/// lease and finished a round lately), `standby` (another instance runs it) or
/// `stopped` (this instance holds it but has not finished a round for
/// `projections::STALL`, or its last round failed). A stopped projection makes the
/// instance `degraded`, still ready for commands (taking it out of the load
/// balancer would not help the figures); the lag gauge alerts on it.
fn projection_states(app: &crate::app::App) -> (serde_json::Map<String, serde_json::Value>, bool) {
    let mut out = serde_json::Map::new();
    let mut stopped = false;
    for (name, s) in app.projections.snapshot() {
        let fresh = s
            .last_ok
            .is_some_and(|t| t.elapsed() < crate::projections::STALL);
        let state = if !fresh || s.last_error.is_some() {
            stopped = true;
            "stopped"
        } else if s.leader {
            "running"
        } else {
            "standby"
        };
        out.insert(
            name,
            json!({ "state": state, "checkpoint": s.checkpoint, "error": s.last_error }),
        );
    }
    (out, stopped)
}

/// The metrics in Prometheus' text format. Nothing here waits on the database but
/// the open and overdue ticket gauges, read again at most every
/// `projections::gauges::MAX_AGE` (and never for longer than two seconds); the pool
/// gauges are the pools' own counts.
async fn metrics(State(app): State<SharedApp>) -> Response {
    let pool = app.store.pool();
    if let Err(e) =
        crate::projections::gauges::refresh_if_stale(&pool, &app.metrics, app.now()).await
    {
        tracing::warn!(error = %e, "could not refresh the open/overdue ticket gauges");
    }
    set_pool_gauges(&pool, &app.metrics);
    for y in app.sla.calendar.missing_years_used() {
        app.metrics
            .calendar_missing_year
            .with_label_values(&[&y.to_string()])
            .set(1);
    }
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `yiwang_db_pool_connections{pool, state}` and `yiwang_db_pool_max_connections`
/// from the pool's counters (no query).
fn set_pool_gauges(pool: &crate::store::Pool, metrics: &crate::metrics::Metrics) {
    let (name, open, idle, max) = match pool {
        crate::store::Pool::Sqlite(p) => (
            "sqlite_readers",
            p.size(),
            p.num_idle(),
            p.options().get_max_connections(),
        ),
        crate::store::Pool::Postgres(p) => (
            "postgres",
            p.size(),
            p.num_idle(),
            p.options().get_max_connections(),
        ),
    };
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    let open = i64::from(open);
    let gauge = |state: &str, v: i64| {
        metrics
            .db_connections
            .with_label_values(&[name, state])
            .set(v);
    };
    // `size` and `num_idle` are read one after the other: a connection taken in
    // between could make idle exceed open for an instant.
    gauge("in_use", (open - idle).max(0));
    gauge("idle", idle.min(open));
    metrics
        .db_max_connections
        .with_label_values(&[name])
        .set(i64::from(max));
}

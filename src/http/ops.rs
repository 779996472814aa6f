//! Operations endpoints: liveness, readiness, metrics. No token needed.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::app::SharedApp;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers.
async fn readyz(State(app): State<SharedApp>) -> Response {
    match app.store.ping().await {
        Ok(()) => {
            axum::Json(json!({ "status": "ready", "database": "ok", "engine": app.store.engine() }))
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({
                    "type": "about:blank", "title": "Not ready", "status": 503,
                    "detail": "the database is not reachable", "database": "unreachable"
                })
                .to_string(),
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(super::error::PROBLEM_JSON),
            );
            r
        }
    }
}

async fn metrics(State(app): State<SharedApp>) -> Response {
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

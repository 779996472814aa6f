//! GET /api/v1/me: who the presented token is (the web pages ask it at sign-in).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::SharedApp;
use crate::auth::Actor;

pub fn router() -> Router<SharedApp> {
    Router::new().route("/api/v1/me", get(me))
}

/// `{user, role, unit, unit_name, unit_kind, centre}`: `centre` is true for a unit
/// that dispatches (the district and the townships), whose `dispatch_targets` the
/// desk offers.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "session",
    summary = "Who the token is",
    responses((status = 200, description = "The token's user, role and unit", body = crate::http::openapi::Me))
)]
async fn me(State(app): State<SharedApp>, actor: Actor) -> axum::Json<Value> {
    let org = app.org.get();
    let unit = org.unit(&actor.unit);
    axum::Json(json!({
        "user": actor.user,
        "role": actor.role.as_str(),
        "unit": actor.unit,
        "unit_name": unit.map(|u| u.name.as_str()),
        "unit_kind": unit.map(|u| u.kind.as_str()),
        "centre": org.is_centre(&actor.unit),
    }))
}

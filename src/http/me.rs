//! GET /api/v1/me: who the presented token is (the web pages ask it at sign-in).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::sorted_json;
use crate::app::SharedApp;
use crate::auth::{Actor, Role};
use crate::error::AppError;
use crate::org::UnitKind;

pub fn router() -> Router<SharedApp> {
    Router::new().route("/api/v1/me", get(me))
}

/// `{user, role, unit, unit_name, unit_kind, centre}`: `centre` is true for a unit
/// that dispatches (the district and the townships), whose `dispatch_targets` the
/// desk offers.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "session",
    summary = "Who the token is",
    responses((status = 200, description = "The token's user, role and unit", body = Me))
)]
async fn me(State(app): State<SharedApp>, actor: Actor) -> Result<axum::Json<Value>, AppError> {
    let org = app.org.get();
    let unit = org.unit(&actor.unit);
    sorted_json(&Me {
        user: &actor.user,
        role: actor.role,
        unit: &actor.unit,
        unit_name: unit.map(|u| u.name.as_str()),
        unit_kind: unit.map(|u| u.kind),
        centre: org.is_centre(&actor.unit),
    })
}

/// Who the presented token is (`http::me`). Written through `sorted_json`: keys in
/// alphabetical order, fields in the order of the document's properties.
#[derive(Serialize, ToSchema)]
#[schema(description = "Who the presented token is (`http::me`).")]
pub struct Me<'a> {
    user: &'a str,
    role: Role,
    unit: &'a str,
    /// Null when the unit is not in the organisation in force.
    unit_name: Option<&'a str>,
    unit_kind: Option<UnitKind>,
    /// True for a unit that dispatches (the district and the townships).
    centre: bool,
}

//! /api/v1/units and /api/v1/categories: the organisation and catalogue in force.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::ListPage;
use crate::app::SharedApp;
use crate::auth::Actor;
use crate::error::AppError;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/api/v1/units", get(list_units))
        .route("/api/v1/categories", get(list_categories))
}

#[derive(Deserialize)]
struct UnitParams {
    kind: Option<String>,
    parent: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/units", tag = "organisation",
    summary = "The organisation's units",
    params(
        ("kind" = Option<crate::org::UnitKind>, Query, description = "Only units of this kind"),
        ("parent" = Option<String>, Query, description = "Only the children of this unit"),
    ),
    responses(
        (status = 200, description = "The units in organisation order", body = crate::http::openapi::UnitList),
        (status = 422, description = "A bad parameter", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_units(
    State(app): State<SharedApp>,
    _actor: Actor,
    params: Result<Query<UnitParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<ListPage>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let org = app.org.get();
    let items = org
        .units()
        .iter()
        .filter(|u| p.kind.as_deref().is_none_or(|k| u.kind.as_str() == k))
        .filter(|u| p.parent.is_none() || u.parent == p.parent)
        .map(|u| {
            json!({
                "code": u.code, "name": u.name, "kind": u.kind.as_str(), "parent": u.parent,
                "agency_type": u.agency_type,
                "dispatch_targets": if org.is_centre(&u.code) { json!(org.dispatch_targets(&u.code)) } else { json!(null) },
            })
        })
        .collect();
    Ok(axum::Json(ListPage {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/categories", tag = "organisation",
    summary = "The category catalogue",
    responses((status = 200, description = "The categories with their routes and deadlines", body = crate::http::openapi::CategoryList))
)]
async fn list_categories(
    State(app): State<SharedApp>,
    _actor: Actor,
) -> Result<axum::Json<ListPage>, AppError> {
    let org = app.org.get();
    let items = org
        .categories()
        .iter()
        .map(|c| {
            let sla = |u: &str| {
                let s = org.sla_for(&c.code, u);
                json!({ "sign_days": s.sign_days, "handle": match s.handle {
                    crate::org::model::HandleDue::Days(d) => json!({"days": d}),
                    crate::org::model::HandleDue::Hours(h) => json!({"hours": h}),
                }})
            };
            json!({
                "code": c.code, "name": c.name, "group": c.group, "default_unit": c.default_unit,
                "routes": c.routes.iter().map(|r| json!({"area": r.area, "unit": r.unit})).collect::<Vec<_>>(),
                "sla": { "normal": sla("normal"), "urgent": sla("urgent"), "emergency": sla("emergency") },
            })
        })
        .collect();
    Ok(axum::Json(ListPage {
        items,
        next_cursor: None,
    }))
}

//! /api/v1/units and /api/v1/categories: the organisation and catalogue in force.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::sorted_json;
use crate::app::SharedApp;
use crate::auth::Actor;
use crate::error::AppError;
use crate::org::UnitKind;
use crate::org::model::HandleDue;

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
        (status = 200, description = "The units in organisation order", body = UnitList),
        (status = 422, description = "A bad parameter", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_units(
    State(app): State<SharedApp>,
    _actor: Actor,
    params: Result<Query<UnitParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    if let Some(k) = p.kind.as_deref()
        && !crate::org::UnitKind::ALL.iter().any(|u| u.as_str() == k)
    {
        return Err(AppError::invalid(
            "kind",
            "must be one of district, township, community, grid, department, agency",
        ));
    }
    let org = app.org.get();
    let items = org
        .units()
        .iter()
        .filter(|u| p.kind.as_deref().is_none_or(|k| u.kind.as_str() == k))
        .filter(|u| p.parent.is_none() || u.parent == p.parent)
        .map(|u| Unit {
            code: &u.code,
            name: &u.name,
            name_en: u.name_en.as_deref(),
            kind: u.kind,
            parent: u.parent.as_deref(),
            agency_type: u.agency_type.as_deref(),
            dispatch_targets: org
                .is_centre(&u.code)
                .then(|| org.dispatch_targets(&u.code)),
        })
        .collect();
    sorted_json(&UnitList {
        items,
        next_cursor: None,
    })
}

#[utoipa::path(
    get, path = "/api/v1/categories", tag = "organisation",
    summary = "The category catalogue",
    responses((status = 200, description = "The categories with their routes and deadlines", body = CategoryList))
)]
async fn list_categories(
    State(app): State<SharedApp>,
    _actor: Actor,
) -> Result<axum::Json<Value>, AppError> {
    let org = app.org.get();
    let items = org
        .categories()
        .iter()
        .map(|c| {
            let sla = |u: &str| {
                let s = org.sla_for(&c.code, u);
                CategorySla {
                    sign_days: s.sign_days,
                    handle: s.handle,
                }
            };
            Category {
                code: &c.code,
                name: &c.name,
                name_en: c.name_en.as_deref(),
                group: c.group.as_deref(),
                group_en: c.group_en.as_deref(),
                default_unit: c.default_unit.as_deref(),
                routes: c
                    .routes
                    .iter()
                    .map(|r| CategoryRoute {
                        area: &r.area,
                        unit: &r.unit,
                    })
                    .collect(),
                sla: CategorySlas {
                    normal: sla("normal"),
                    urgent: sla("urgent"),
                    emergency: sla("emergency"),
                },
            }
        })
        .collect();
    sorted_json(&CategoryList {
        items,
        next_cursor: None,
    })
}

// The answers. Their fields are in the order of the OpenAPI document's properties;
// they are written through `sorted_json`, keys in alphabetical order.

/// A unit of the organisation.
#[derive(Serialize, ToSchema)]
pub struct Unit<'a> {
    code: &'a str,
    name: &'a str,
    /// The English name from the organisation file; null when it gives none (a page
    /// in English then shows `name`).
    name_en: Option<&'a str>,
    kind: UnitKind,
    parent: Option<&'a str>,
    /// Agencies: judicial, enforcement, market, police, …
    agency_type: Option<&'a str>,
    /// Centres only: the units this centre may dispatch to.
    dispatch_targets: Option<Vec<&'a str>>,
}

/// The organisation's units.
#[derive(Serialize, ToSchema)]
pub struct UnitList<'a> {
    items: Vec<Unit<'a>>,
    /// Always null: one page.
    next_cursor: Option<String>,
}

/// "In township `area`, this category goes to `unit`."
#[derive(Serialize, ToSchema)]
pub struct CategoryRoute<'a> {
    area: &'a str,
    unit: &'a str,
}

/// The deadlines of one urgency.
#[derive(Serialize, ToSchema)]
pub struct CategorySla {
    /// Working days to sign for (签收) after dispatch.
    sign_days: u32,
    handle: HandleDue,
}

/// The deadlines of a category by urgency.
#[derive(Serialize, ToSchema)]
pub struct CategorySlas {
    normal: CategorySla,
    urgent: CategorySla,
    emergency: CategorySla,
}

/// A category of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct Category<'a> {
    code: &'a str,
    name: &'a str,
    /// The English name from the organisation file; null when it gives none (a page
    /// in English then shows `name`, never a name made from `code`).
    name_en: Option<&'a str>,
    group: Option<&'a str>,
    /// The English name of `group`; null when the file gives none.
    group_en: Option<&'a str>,
    /// The district department that receives the category when no route applies.
    default_unit: Option<&'a str>,
    routes: Vec<CategoryRoute<'a>>,
    sla: CategorySlas,
}

/// The category catalogue.
#[derive(Serialize, ToSchema)]
pub struct CategoryList<'a> {
    items: Vec<Category<'a>>,
    /// Always null: one page.
    next_cursor: Option<String>,
}

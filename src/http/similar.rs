//! `GET /api/v1/tickets/similar`: before the hotline creates a ticket (受理), the open
//! tickets of the same category near the reported point or in the same grid, created
//! in the last days, nearest first (issue 22, point 4). The intake page lists them to
//! link the new ticket to one (`related_to`) or to close one as its duplicate.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::sorted_json;
use crate::app::SharedApp;
use crate::app::similar::SimilarInput;
use crate::auth::Actor;
use crate::error::AppError;
use crate::views::ticket::render;

pub fn router() -> Router<SharedApp> {
    Router::new().route("/api/v1/tickets/similar", get(similar_tickets))
}

/// Default and bounds of `days`.
const DAYS: (u32, u32) = (7, 90);
/// Default and bounds of `radius_m`.
const RADIUS_M: (f64, f64) = (300.0, 5000.0);

#[derive(Deserialize)]
struct SimilarParams {
    category: Option<String>,
    lat: Option<String>,
    lon: Option<String>,
    grid: Option<String>,
    days: Option<String>,
    radius_m: Option<String>,
}

/// The similar open tickets, nearest first.
#[derive(Serialize, ToSchema)]
pub struct SimilarList {
    items: Vec<SimilarTicket>,
}

/// One similar ticket and how it matched.
#[derive(Serialize, ToSchema)]
pub struct SimilarTicket {
    /// Metres from `lat`/`lon` to the ticket's point, rounded; null when no point
    /// was asked or the ticket has none (then it matched by its grid).
    distance_m: Option<u32>,
    /// The ticket lies in the asked `grid`.
    same_grid: bool,
    /// The ticket (reporter not included).
    #[schema(value_type = crate::views::ticket::TicketJson)]
    ticket: Value,
}

fn number<T: std::str::FromStr>(
    name: &str,
    value: Option<&str>,
    what: &str,
) -> Result<Option<T>, AppError> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| AppError::invalid(name, format!("{v:?} is not {what}")))
        })
        .transpose()
}

/// The request checked: each bad parameter is named.
fn parse(app: &SharedApp, p: SimilarParams) -> Result<SimilarInput, AppError> {
    let org = app.org.get();
    let category = p
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            AppError::invalid(
                "category",
                "is required: the category of the new ticket (GET /api/v1/categories lists them)",
            )
        })?;
    if org.category(category).is_none() {
        return Err(AppError::invalid(
            "category",
            format!("unknown category {category:?}; GET /api/v1/categories lists them"),
        ));
    }
    let lat: Option<f64> = number("lat", p.lat.as_deref(), "a latitude in degrees")?;
    let lon: Option<f64> = number("lon", p.lon.as_deref(), "a longitude in degrees")?;
    if lat.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
        return Err(AppError::invalid("lat", "must be between -90 and 90"));
    }
    if lon.is_some_and(|v| !(-180.0..=180.0).contains(&v)) {
        return Err(AppError::invalid("lon", "must be between -180 and 180"));
    }
    let point = match (lat, lon) {
        (Some(a), Some(b)) => Some((a, b)),
        (None, None) => None,
        (Some(_), None) => return Err(AppError::invalid("lon", "is required with `lat`")),
        (None, Some(_)) => return Err(AppError::invalid("lat", "is required with `lon`")),
    };
    let grid = p
        .grid
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string);
    if let Some(g) = &grid
        && org.unit(g).is_none()
    {
        return Err(AppError::invalid(
            "grid",
            format!("unknown unit {g:?}; GET /api/v1/units?kind=grid lists the grids"),
        ));
    }
    if point.is_none() && grid.is_none() {
        return Err(AppError::invalid(
            "lat",
            "give a point (`lat` and `lon`) or a `grid`, or both",
        ));
    }
    let days =
        number::<u32>("days", p.days.as_deref(), "a whole number of days")?.unwrap_or(DAYS.0);
    if !(1..=DAYS.1).contains(&days) {
        return Err(AppError::invalid(
            "days",
            format!("must be between 1 and {}", DAYS.1),
        ));
    }
    let radius_m = number::<f64>("radius_m", p.radius_m.as_deref(), "a distance in metres")?
        .unwrap_or(RADIUS_M.0);
    if !(radius_m.is_finite() && radius_m >= 1.0 && radius_m <= RADIUS_M.1) {
        return Err(AppError::invalid(
            "radius_m",
            format!("must be between 1 and {} metres", RADIUS_M.1),
        ));
    }
    Ok(SimilarInput {
        category: category.to_string(),
        point,
        grid,
        days,
        radius_m,
    })
}

#[utoipa::path(
    get, path = "/api/v1/tickets/similar", tag = "tickets",
    summary = "Open tickets similar to a new one (受理前查重)",
    description = "Before the hotline creates a ticket: the open (not closed) tickets of \
        the same category created in the last `days` that lie within `radius_m` of the \
        point or in the same `grid`, as the token may see them, nearest first (those \
        matched by the grid alone after them, newest first); at most 20. Link the new \
        ticket to one with `related_to`, or close one as a duplicate.",
    params(
        ("category" = String, Query, description = "The category code of the new ticket"),
        ("lat" = Option<f64>, Query, description = "Latitude of the reported point (WGS 84 degrees), with `lon`"),
        ("lon" = Option<f64>, Query, description = "Longitude of the reported point, with `lat`"),
        ("grid" = Option<String>, Query, description = "The grid (unit code) of the reported place; a point or a grid is required"),
        ("days" = Option<u32>, Query, minimum = 1, maximum = 90, description = "Tickets created in the last this many days (default 7)"),
        ("radius_m" = Option<f64>, Query, minimum = 1, maximum = 5000, description = "Metres around the point (default 300)"),
    ),
    responses(
        (status = 200, description = "The similar open tickets, nearest first", body = SimilarList),
        (status = 422, description = "A bad parameter (`field` names it)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn similar_tickets(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<SimilarParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let input = parse(&app, p)?;
    let found = app.similar(&actor, &input).await?;
    let now = app.now();
    let items = found
        .iter()
        .map(|s| SimilarTicket {
            // At most half the Earth's circumference: fits a u32 in metres.
            distance_m: s.distance_m.map(|d| d.round() as u32),
            same_grid: s.same_grid,
            ticket: render(&s.ticket, now, None),
        })
        .collect();
    sorted_json(&SimilarList { items })
}

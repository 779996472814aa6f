//! GET /api/v1/stats/people: per person, the figures of the grid workers'
//! appraisal the townships run (28号: 基层为主) and of the handlers, from the
//! `people_stats` projection (`projections::people` says what each counts).

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::app::SharedApp;
use crate::auth::{Actor, Role};
use crate::error::AppError;
use crate::projections::daily::day_number;
use crate::projections::periods::{self, Granularity, Period};
use crate::repo::people::PersonRow;

pub fn router() -> Router<SharedApp> {
    Router::new().route("/api/v1/stats/people", get(people_stats))
}

#[derive(Deserialize)]
struct Params {
    unit: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The roles that read people's figures: the centres that run the grid workers'
/// appraisal and dispatch the handlers, their appraisers, analysts and admins.
const READERS: [Role; 4] = [
    Role::Dispatcher,
    Role::Appraiser,
    Role::Analyst,
    Role::Admin,
];

/// The figures of the people of a unit's subtree over a range of days.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PeopleAnswer {
    /// The unit asked for (default: the token's); people whose token unit lies in
    /// its subtree are listed.
    unit: String,
    unit_name: String,
    /// First and last business day (Asia/Shanghai), both included.
    from: NaiveDate,
    to: NaiveDate,
    /// Everyone who made a grid report in the range, by unit then person.
    grid_workers: Vec<GridWorkerFigures>,
    /// Everyone who reported a ticket handled in the range (a grid worker's fix on
    /// the spot included), by unit then person.
    handlers: Vec<HandlerFigures>,
}

/// A grid worker's reports (网格员: 上报, 有效上报, 自行处置).
#[derive(Serialize, utoipa::ToSchema)]
pub struct GridWorkerFigures {
    /// The user of the token that made the reports.
    person: String,
    /// The token's unit (a grid worker's grid).
    unit: String,
    unit_name: String,
    /// Grid reports accepted in the range (by the day of acceptance).
    reports: i64,
    /// Of those, the ones not closed as a duplicate or invalid.
    valid_reports: i64,
    /// Of those, the ones fixed on the spot by the reporter (`self_handled`).
    self_handled: i64,
    /// Of the person's fixes on the spot in the range, those whose result failed
    /// verification.
    verification_failures: i64,
}

/// A handler's handlings (办结).
#[derive(Serialize, utoipa::ToSchema)]
pub struct HandlerFigures {
    person: String,
    unit: String,
    unit_name: String,
    /// Handlings (`TicketHandled`) the person recorded in the range.
    handled: i64,
    /// Of those, at or before the handle deadline in force then (or with none).
    on_time: i64,
    /// on_time / handled × 100, to two decimals; null when nothing was handled.
    on_time_rate: Option<f64>,
    /// Of those, the ones whose result failed verification (返工).
    verification_failures: i64,
}

#[utoipa::path(
    get, path = "/api/v1/stats/people", tag = "statistics",
    summary = "Per-person figures: grid workers and handlers",
    description = "For the people whose token unit lies in `unit`'s subtree (default: the \
        token's unit), over the business days `from`..=`to`: each grid worker's grid \
        reports, valid reports (not closed as duplicate or invalid), reports fixed on \
        the spot and failed fixes; each handler's handlings, on time, and failed \
        verifications. Dispatchers, analysts and admins, for their own subtree.",
    params(
        ("unit" = Option<String>, Query, description = "A unit code (default: the token's unit)"),
        ("from" = Option<chrono::NaiveDate>, Query, description = "First day (default: the first of the month of `to`)"),
        ("to" = Option<chrono::NaiveDate>, Query, description = "Last day (default: today, Asia/Shanghai)"),
    ),
    responses(
        (status = 200, description = "The figures", body = PeopleAnswer),
        (status = 403, description = "The role may not read people's figures, or the unit is outside the token's", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad parameter (`field` names it)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn people_stats(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    if !READERS.contains(&actor.role) {
        return Err(AppError::Forbidden(format!(
            "the {} role may not read people's figures (dispatchers, appraisers, analysts and admins may)",
            actor.role.as_str()
        )));
    }
    let org = app.org.get();
    let unit = p.unit.clone().unwrap_or_else(|| actor.unit.clone());
    super::stats::check_scope(&org, &actor, &unit)?;
    let date = |field: &'static str, v: &Option<String>| -> Result<Option<NaiveDate>, AppError> {
        v.as_deref()
            .map(|s| {
                periods::parse_date(s).ok_or_else(|| {
                    AppError::invalid(field, format!("{s:?} is not a date; write YYYY-MM-DD"))
                })
            })
            .transpose()
    };
    let to = date("to", &p.to)?.unwrap_or_else(|| periods::today(app.now()));
    let from = date("from", &p.from)?
        .unwrap_or_else(|| Period::containing(Granularity::Month, to).first_day);
    if from > to {
        return Err(AppError::invalid("from", "must not be after `to`"));
    }
    let subtree: Vec<String> = org.subtree(&unit).into_iter().map(str::to_string).collect();
    let scope = (org.root().code != unit).then_some(subtree.as_slice());
    let rows =
        crate::repo::people::read(&app.store.pool(), scope, day_number(from), day_number(to))
            .await?;
    let name = |u: &str| org.unit(u).map(|d| d.name.clone()).unwrap_or_default();
    let grid_workers = rows
        .iter()
        .filter(|r| r.reports != 0)
        .map(|r: &PersonRow| GridWorkerFigures {
            person: r.person.clone(),
            unit: r.unit.clone(),
            unit_name: name(&r.unit),
            reports: r.reports,
            valid_reports: r.valid_reports,
            self_handled: r.self_handled,
            verification_failures: r.verification_failures,
        })
        .collect();
    let handlers = rows
        .iter()
        .filter(|r| r.handled != 0)
        .map(|r| HandlerFigures {
            person: r.person.clone(),
            unit: r.unit.clone(),
            unit_name: name(&r.unit),
            handled: r.handled,
            on_time: r.on_time,
            on_time_rate: (r.handled > 0)
                .then(|| (r.on_time as f64 * 10_000.0 / r.handled as f64).round() / 100.0),
            verification_failures: r.verification_failures,
        })
        .collect();
    let answer = PeopleAnswer {
        unit_name: name(&unit),
        unit,
        from,
        to,
        grid_workers,
        handlers,
    };
    Ok(super::sorted_json(&answer)?.into_response())
}

//! GET /api/v1/stats/units: unit SLA statistics per period, from the `unit_stats`
//! projection (JSON, or CSV with `Accept: text/csv`).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::app::SharedApp;
use crate::auth::{Actor, Role};
use crate::error::AppError;
use crate::org::Org;
use crate::projections::periods::{self, Granularity, Period};
use crate::projections::stats::{self, Request, StatsItem};

/// Periods one request may ask for (a year and a month of days).
pub const MAX_PERIODS: usize = 400;

pub fn router() -> Router<SharedApp> {
    Router::new().route("/api/v1/stats/units", get(unit_stats))
}

#[derive(Deserialize)]
struct Params {
    unit: Option<String>,
    from: Option<String>,
    to: Option<String>,
    granularity: Option<String>,
    /// `standard` (satisfied + basically satisfied) or `strict` (satisfied only).
    satisfaction: Option<String>,
}

/// Who may read figures, and of which unit: analysts, admins, dispatchers and
/// handlers, for their own unit's subtree.
pub fn check_scope(org: &Org, actor: &Actor, unit: &str) -> Result<(), AppError> {
    if matches!(actor.role, Role::GridWorker | Role::HotlineAgent) {
        return Err(AppError::Forbidden(format!(
            "the {} role may not read unit statistics",
            actor.role.as_str()
        ))
        .with_code("forbidden.role"));
    }
    if org.unit(unit).is_none() {
        return Err(AppError::invalid(
            "unit",
            format!("unknown unit {unit:?}; GET /api/v1/units lists them"),
        ));
    }
    if !org.is_within(unit, &actor.unit) {
        return Err(AppError::Forbidden(format!(
            "unit {unit} is outside your unit {}; ask for {} or a unit beneath it",
            actor.unit, actor.unit
        ))
        .with_code("forbidden.scope"));
    }
    Ok(())
}

/// Whether the client asked for CSV.
pub fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"))
}

/// A CSV body with its content type and a file name.
pub fn csv_response(body: Vec<u8>, filename: &str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[utoipa::path(
    get, path = "/api/v1/stats/units", tag = "statistics",
    summary = "Unit SLA statistics per period",
    description = "For `unit` (default: the token's) rolled up over its subtree, and for \
        every unit beneath it with figures, one item per period from `from` to `to` \
        (or one for the whole range: `granularity=total`). An item whose unit has other \
        listed units beneath it is their subtotal (`subtotal: true`): never add it to theirs. \
        `Accept: text/csv` gives the same as CSV. Analysts, admins, dispatchers and \
        handlers, for their own subtree.",
    params(
        ("unit" = Option<String>, Query, description = "A unit code (default: the token's unit)"),
        ("from" = Option<chrono::NaiveDate>, Query, description = "First day (default: the start of the period containing `to`)"),
        ("to" = Option<chrono::NaiveDate>, Query, description = "Last day (default: today, Asia/Shanghai)"),
        ("granularity" = Option<StatsGranularity>, Query, description = "Default `month`; at most 400 periods. `total`: one item per unit for the whole range from `from` to `to` (period `from/to`), each ticket counted once (a ticket due in one month and handled in the next is due to finish once), rates and turnaround over the range; overdue open at the end of the range (or now)"),
        ("satisfaction" = Option<SatisfactionMode>, Query, description = "Default `standard`"),
    ),
    responses(
        (status = 200, description = "The figures", content(
            (StatsList = "application/json"),
            (String = "text/csv"),
        )),
        (status = 403, description = "The role may not read statistics, or the unit is outside the token's", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad parameter (`field` names it)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn unit_stats(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let org = app.org.get();
    let unit = p.unit.clone().unwrap_or_else(|| actor.unit.clone());
    check_scope(&org, &actor, &unit)?;
    // `total`: one row per unit for the whole range (see `stats::total`).
    let whole = p.granularity.as_deref() == Some("total");
    let g = match p.granularity.as_deref() {
        None | Some("total") => Granularity::Month,
        Some(s) => Granularity::parse(s).ok_or_else(|| {
            AppError::invalid(
                "granularity",
                "must be one of day, month, quarter, year, total",
            )
        })?,
    };
    let satisfaction = match p.satisfaction.as_deref() {
        None => SatisfactionMode::Standard,
        Some(s) => SatisfactionMode::parse(s).ok_or_else(|| {
            AppError::invalid(
                "satisfaction",
                "must be standard (satisfied + basically satisfied) or strict (satisfied only)",
            )
        })?,
    };
    let strict = satisfaction == SatisfactionMode::Strict;
    let now = app.now();
    let today = periods::today(now);
    let date =
        |field: &'static str, v: &Option<String>| -> Result<Option<chrono::NaiveDate>, AppError> {
            v.as_deref()
                .map(|s| {
                    periods::parse_date(s).ok_or_else(|| {
                        AppError::invalid(field, format!("{s:?} is not a date; write YYYY-MM-DD"))
                    })
                })
                .transpose()
        };
    let to = date("to", &p.to)?.unwrap_or(today);
    let from = date("from", &p.from)?.unwrap_or(Period::containing(g, to).first_day);
    if from > to {
        return Err(AppError::invalid("from", "must not be after `to`"));
    }
    // Bounded: `from` and `to` may lie hundreds of thousands of years apart.
    let ps = if whole {
        vec![stats::range(from, to)]
    } else {
        periods::between_at_most(g, from, to, MAX_PERIODS + 1)
    };
    if ps.len() > MAX_PERIODS {
        return Err(AppError::invalid(
            "granularity",
            format!(
                "more than {MAX_PERIODS} periods asked for; at most {MAX_PERIODS} per request: use a coarser granularity or a shorter range"
            ),
        ));
    }
    let table = if whole {
        let period = ps
            .into_iter()
            .next()
            .ok_or_else(|| AppError::invalid("from", "no period in the range"))?;
        stats::total(&app.store.pool(), &org, &unit, period, now).await?
    } else {
        figures(&app, &org, &unit, ps, now).await?
    };
    // A row rolls up a subtree when another unit listed lies beneath its unit.
    let subtotal: Vec<bool> = table
        .units
        .iter()
        .map(|u| table.units.iter().any(|v| v != u && org.is_within(v, u)))
        .collect();
    let items: Vec<StatsItem> = table
        .units
        .iter()
        .enumerate()
        .flat_map(|(ui, u)| {
            let table = &table;
            let org = &org;
            let subtotal = subtotal[ui];
            table
                .periods
                .iter()
                .enumerate()
                .map(move |(pi, period)| StatsItem {
                    subtotal,
                    ..StatsItem::new(org, u, period, table.get(ui, pi), strict)
                })
        })
        .collect();
    if wants_csv(&headers) {
        return Ok(csv_response(to_csv(&items)?, "unit-stats.csv"));
    }
    // An item is about 1 KB of JSON.
    super::json_sized(
        &StatsList {
            items: &items,
            next_cursor: None,
        },
        items.len() * 1100 + 64,
    )
}

/// `granularity=` of the unit statistics: a period, or `total` (the whole range).
#[derive(Clone, Copy, PartialEq, Eq, Debug, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum StatsGranularity {
    Day,
    Month,
    Quarter,
    Year,
    Total,
}

/// `satisfaction=`: `standard` counts satisfied and basically satisfied, `strict`
/// satisfied only.
#[derive(Clone, Copy, PartialEq, Eq, Debug, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SatisfactionMode {
    Standard,
    Strict,
}

impl SatisfactionMode {
    pub fn parse(s: &str) -> Option<SatisfactionMode> {
        match s {
            "standard" => Some(SatisfactionMode::Standard),
            "strict" => Some(SatisfactionMode::Strict),
            _ => None,
        }
    }
}

/// Unit statistics: one item per unit and period.
///
/// Serialized straight from the items, in the order of its fields (a `json!` tree of
/// a month of days for a district would be tens of thousands of small maps built
/// only to be written).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(description = "Unit statistics: one item per unit and period.")]
pub struct StatsList<'a> {
    #[schema(value_type = Vec<StatsItem>)]
    items: &'a [StatsItem],
    /// Always null: one page.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<&'a str>,
}

/// The figures of `unit` (rolled up over its subtree) and of every unit beneath
/// it that has figures in the periods, each rolled up over its own subtree.
async fn figures(
    app: &crate::app::App,
    org: &Org,
    unit: &str,
    periods: Vec<Period>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<stats::Table, AppError> {
    if periods.is_empty() {
        return Err(AppError::invalid("from", "no period in the range"));
    }
    let subtree: Vec<String> = org.subtree(unit).into_iter().map(str::to_string).collect();
    let scope = (org.root().code != unit).then_some(subtree.as_slice());
    let daily = stats::fetch_daily(
        &app.store.pool(),
        scope,
        &periods,
        now,
        stats::Turnarounds::Read,
    )
    .await?;
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for u in stats::units_with_figures(&daily) {
        seen.insert(u);
        for a in org.ancestors(u) {
            seen.insert(a);
        }
    }
    let units: Vec<String> = std::iter::once(unit.to_string())
        .chain(
            subtree
                .iter()
                .filter(|u| u.as_str() != unit && seen.contains(u.as_str()))
                .cloned(),
        )
        .collect();
    Ok(stats::compute_daily(
        &Request {
            org,
            units,
            own_only: false,
            periods,
            now,
        },
        &daily,
    ))
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn to_csv(items: &[StatsItem]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "unit",
        "unit_name",
        "period",
        "received",
        "due_to_sign",
        "signed",
        "signed_on_time",
        "signed_on_time_rate",
        "due_to_finish",
        "handled",
        "handled_on_time",
        "on_time_rate",
        "overdue_open",
        "returns",
        "return_rate",
        "extensions_requested",
        "extensions_approved",
        "extension_rate",
        "verification_failures",
        "rework_rate",
        "supervisions",
        "repeated_supervisions",
        "one_time",
        "one_time_rate",
        "feedback",
        "satisfied",
        "basically_satisfied",
        "unsatisfied",
        "satisfaction_rate",
        "repeat_complaints",
        "turnaround_hours_mean",
        "turnaround_hours_median",
        "turnaround_hours_p90",
        "subtotal",
    ];
    let err = |e: csv::Error| AppError::Internal(e.into());
    w.write_record(header).map_err(err)?;
    for i in items {
        let n = |x: u64| x.to_string();
        w.write_record([
            i.unit.clone(),
            i.unit_name.clone(),
            i.period.clone(),
            n(i.received),
            n(i.due_to_sign),
            n(i.signed),
            n(i.signed_on_time),
            opt(i.signed_on_time_rate),
            n(i.due_to_finish),
            n(i.handled),
            n(i.handled_on_time),
            opt(i.on_time_rate),
            n(i.overdue_open),
            n(i.returns),
            opt(i.return_rate),
            n(i.extensions_requested),
            n(i.extensions_approved),
            opt(i.extension_rate),
            n(i.verification_failures),
            opt(i.rework_rate),
            n(i.supervisions),
            n(i.repeated_supervisions),
            n(i.one_time),
            opt(i.one_time_rate),
            n(i.feedback),
            n(i.satisfied),
            n(i.basically_satisfied),
            n(i.unsatisfied),
            opt(i.satisfaction_rate),
            n(i.repeat_complaints),
            opt(i.turnaround_hours.mean),
            opt(i.turnaround_hours.median),
            opt(i.turnaround_hours.p90),
            i.subtotal.to_string(),
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("csv: {e}")))
}

//! /api/v1/appraisal: appraisal scores (考核) by rule profile, as JSON or CSV, and
//! /api/v1/appraisal/profiles: the profiles this build ships.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::sorted_json;
use crate::app::SharedApp;
use crate::appraisal::profile::{self, DEFAULT, Profiles};
use crate::appraisal::{self, UnitAppraisal};
use crate::auth::{Actor, Role};
use crate::error::AppError;
use crate::projections::periods::{Granularity, Period};

pub fn router() -> Router<SharedApp> {
    // Check the shipped profiles now, when the service is built: a broken profile
    // stops it at startup with the file and field, rather than failing requests.
    // (They are compiled in and `the_shipped_profiles_parse` proves them valid.)
    if let Err(e) = profile::builtin() {
        panic!("{e}");
    }
    Router::new()
        .route("/api/v1/appraisal", get(get_appraisal))
        .route("/api/v1/appraisal/profiles", get(list_profiles))
}

fn profiles() -> Result<&'static Profiles, AppError> {
    profile::builtin().map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))
}

/// Roles that read appraisals (scores of units are for their managers and the units).
const READERS: [Role; 5] = crate::auth::appraisal::READERS;

#[derive(Deserialize)]
struct Params {
    period: Option<String>,
    profile: Option<String>,
    unit: Option<String>,
}

/// The answer of `GET /api/v1/appraisal` (its OpenAPI schema is `Appraisal`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Appraisal)]
pub(crate) struct AppraisalBody<'a> {
    /// The period's label: `2026-Q3`, `2026-09` or `2026`.
    period: &'a str,
    profile: &'a str,
    #[schema(value_type = Vec<UnitAppraisal>)]
    units: &'a [UnitAppraisal],
    /// When the scores were computed (a period in progress moves on).
    as_of: chrono::DateTime<chrono::Utc>,
}

const PERIOD_FORMS: &str = "a quarter (2026-Q3), a month (2026-09) or a year (2026)";

#[utoipa::path(
    get, path = "/api/v1/appraisal", tag = "statistics",
    summary = "Appraisal scores (考核)",
    description = "Every department and agency within `unit` scored by a rule profile, \
        with every deduction's evidence (ticket ids and event positions). \
        `Accept: text/csv`: one row per unit and deduction.",
    params(
        ("period" = String, Query, description = "A quarter (`2026-Q3`), a month (`2026-09`) or a year (`2026`)"),
        ("profile" = Option<String>, Query, description = "A profile name of `GET /api/v1/appraisal/profiles` (default `weihai-etdz-2020`)"),
        ("unit" = Option<String>, Query, description = "A unit code (default: the token's unit)"),
    ),
    responses(
        (status = 200, description = "The scores", content(
            (AppraisalBody = "application/json"),
            (String = "text/csv"),
        )),
        (status = 403, description = "The role may not read appraisals, or the unit is outside the token's", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing or bad period, an unknown profile or unit", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_appraisal(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    if !READERS.contains(&actor.role) {
        return Err(AppError::Forbidden(format!(
            "the {} role may not read appraisals (dispatchers, handlers, analysts, appraisers and admins may)",
            actor.role.as_str()
        )));
    }
    let period = match p.period.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(AppError::invalid(
                "period",
                format!("is required: {PERIOD_FORMS}"),
            ));
        }
        Some(s) => Period::parse(s)
            .filter(|p| p.granularity != Granularity::Day)
            .ok_or_else(|| {
                AppError::invalid(
                    "period",
                    format!("{s:?} is not a period; use {PERIOD_FORMS}"),
                )
            })?,
    };
    let profiles = profiles()?;
    let name = p
        .profile
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT);
    let profile = profiles.get(name).ok_or_else(|| {
        AppError::invalid(
            "profile",
            format!(
                "unknown profile {name:?}; the profiles are: {} (GET /api/v1/appraisal/profiles)",
                profiles.names().join(", ")
            ),
        )
    })?;
    let org = app.org.get();
    let root = match p.unit.as_deref().filter(|s| !s.is_empty()) {
        None => actor.unit.clone(),
        Some(u) => {
            if org.unit(u).is_none() {
                return Err(AppError::invalid(
                    "unit",
                    format!("no unit {u:?} in the organisation; GET /api/v1/units lists them"),
                ));
            }
            if !org.is_within(u, &actor.unit) {
                return Err(AppError::Forbidden(format!(
                    "unit {u} is outside {}, the unit of this token",
                    actor.unit
                )));
            }
            u.to_string()
        }
    };
    let units = appraisal::appraised_units(&org, &root);
    let scope_all = root == org.root().code;
    let now = app.now();
    let scores = appraisal::appraise_from_store(
        &app.store.pool(),
        &org,
        profile,
        &period,
        units,
        scope_all,
        now,
    )
    .await?;
    if wants_csv(&headers) {
        return csv_response(&period.label, &profile.name, &scores);
    }
    // About 70 bytes an evidence item and 600 a unit and deduction otherwise.
    let items: usize = scores
        .iter()
        .flat_map(|u| &u.deductions)
        .map(|d| d.evidence.len() * 70 + 300)
        .sum();
    let body = AppraisalBody {
        period: &period.label,
        profile: &profile.name,
        units: &scores,
        as_of: now,
    };
    super::json_written(items + scores.len() * 600 + 256, |out| body.write_json(out))
}

impl AppraisalBody<'_> {
    /// The body as its derived `Serialize` writes it, the units' evidence
    /// copied out by hand (`appraisal::json`).
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"period\":");
        serde_json::to_writer(&mut *out, self.period)?;
        out.extend_from_slice(b",\"profile\":");
        serde_json::to_writer(&mut *out, self.profile)?;
        out.extend_from_slice(b",\"units\":");
        appraisal::json::units(out, self.units)?;
        out.extend_from_slice(b",\"as_of\":");
        serde_json::to_writer(&mut *out, &self.as_of)?;
        out.push(b'}');
        Ok(())
    }
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// One row per unit and deduction (a unit without deductions: one row with the
/// deduction columns empty); evidence as `ticket@position;…`.
pub fn csv_text(
    period: &str,
    profile: &str,
    scores: &[UnitAppraisal],
) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "period",
        "profile",
        "unit",
        "unit_name",
        "base",
        "score",
        "rule",
        "count",
        "points",
        "evidence",
    ])?;
    for u in scores {
        let (base, score) = (u.base.to_string(), u.score.to_string());
        let head = [period, profile, &u.unit, &u.unit_name, &base, &score];
        if u.deductions.is_empty() {
            w.write_record(head.iter().copied().chain(["", "", "", ""]))?;
        }
        for d in &u.deductions {
            let evidence = d
                .evidence
                .iter()
                .map(|e| format!("{}@{}", e.ticket, e.position))
                .collect::<Vec<_>>()
                .join(";");
            let (count, points) = (d.count.to_string(), d.points.to_string());
            w.write_record(head.iter().copied().chain([
                d.rule.as_str(),
                &count,
                &points,
                &evidence,
            ]))?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    // Every field written is a str, so the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn csv_response(
    period: &str,
    profile: &str,
    scores: &[UnitAppraisal],
) -> Result<Response, AppError> {
    let text = csv_text(period, profile, scores).map_err(|e| AppError::Internal(e.into()))?;
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let name = format!("attachment; filename=\"appraisal-{profile}-{period}.csv\"");
    if let Ok(v) = HeaderValue::from_str(&name) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[utoipa::path(
    get, path = "/api/v1/appraisal/profiles", tag = "statistics",
    summary = "The appraisal rule profiles",
    responses((status = 200, description = "The profiles of this build", body = ProfileList))
)]
async fn list_profiles(_actor: Actor) -> Result<axum::Json<serde_json::Value>, AppError> {
    let items = profiles()?
        .all()
        .iter()
        .map(|p| Profile {
            name: &p.name,
            title: &p.title,
            description: &p.description,
            source: p.source.as_deref(),
            base: p.base,
            default: p.name == DEFAULT,
        })
        .collect();
    sorted_json(&ProfileList {
        items,
        next_cursor: None,
    })
}

/// An appraisal rule profile (written through `sorted_json`, keys in alphabetical
/// order; the fields are in the order of the document's properties).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(description = "An appraisal rule profile.")]
pub struct Profile<'a> {
    /// The value of `profile=`.
    name: &'a str,
    title: &'a str,
    description: &'a str,
    /// The document the rules come from.
    source: Option<&'a str>,
    base: f64,
    /// The profile used when `profile` is not given.
    default: bool,
}

/// The appraisal profiles of this build.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfileList<'a> {
    items: Vec<Profile<'a>>,
    /// Always null: one page.
    next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_by_hand_is_the_derived_serialization() {
        let unit = UnitAppraisal {
            unit: "hg".into(),
            base: 100.0,
            score: 97.5,
            deductions: vec![appraisal::Deduction {
                rule: "late_sign".into(),
                count: 1,
                points: -0.5,
                evidence: vec![crate::projections::stats::model::Evidence {
                    ticket: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_002a),
                    position: 42,
                }],
                section: "registration".into(),
                title: Some("按时签收".into()),
                rate: None,
                capped: false,
                uncapped_points: None,
            }],
            unit_name: "海港\"路\"".into(),
            kind: "department",
            agency_type: None,
            weight: Some(0.3),
            quarters: None,
            year_end_score: None,
            bonus: None,
        };
        let units = [unit.clone(), unit];
        let body = AppraisalBody {
            period: "2026-Q3",
            profile: "weihai-etdz-2020",
            units: &units,
            as_of: chrono::DateTime::from_timestamp(1_790_000_000, 123_456_000).expect("a time"),
        };
        assert_eq!(
            {
                let mut out = Vec::new();
                body.write_json(&mut out).expect("writes");
                String::from_utf8(out).expect("utf-8")
            },
            serde_json::to_string(&body).expect("serializes")
        );
    }
}

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
            // Within the token's unit; and a district department for a township's
            // appraiser, who gives the township's evaluation of it (49号 三(一)).
            let evaluates = actor.role == Role::Appraiser
                && crate::auth::appraisal::sees(&org, &actor, u, None);
            if !org.is_within(u, &actor.unit) && !evaluates {
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
    // What people entered (the log's appraisal events, folded).
    let ledger = crate::repo::appraisal::ledger(&app.store.pool(), None).await?;
    let scores = appraisal::appraise_from_store(
        &app.store.pool(),
        &org,
        profile,
        &period,
        units,
        scope_all,
        now,
        &ledger,
    )
    .await?;
    if wants_csv(&headers) {
        return csv_response(&period.label, &profile.name, &scores);
    }
    // About 70 bytes an evidence item and 600 a unit and deduction otherwise.
    let items: usize = scores
        .iter()
        .flat_map(|u| u.deductions.iter().chain(u.reference.iter().flatten()))
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

/// One row per unit and item (a unit without items: one row with the item
/// columns empty); evidence as `ticket@position;…` then `entry:id;…`. A
/// department's reference items are rows with `reference` true; its evaluations
/// are not repeated here (the JSON lists them). An empty score: none (no sheet, or
/// a department without evaluations for the period).
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
        "sheet",
        "base",
        "score",
        "bonus",
        "section",
        "rule",
        "manual",
        "reference",
        "count",
        "points",
        "evidence",
    ])?;
    let text = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for u in scores {
        let (base, score, bonus) = (text(u.base), text(u.score), text(u.bonus));
        let sheet = u.sheet.as_deref().unwrap_or_default();
        let head = [
            period,
            profile,
            &u.unit,
            &u.unit_name,
            sheet,
            &base,
            &score,
            &bonus,
        ];
        let items = u
            .deductions
            .iter()
            .map(|d| (d, false))
            .chain(u.reference.iter().flatten().map(|d| (d, true)));
        let mut any = false;
        for (d, reference) in items {
            any = true;
            let evidence = d
                .evidence
                .tickets
                .iter()
                .map(|e| format!("{}@{}", e.ticket, e.position))
                .chain(d.evidence.entries.iter().map(|e| format!("entry:{e}")))
                .collect::<Vec<_>>()
                .join(";");
            let (count, points) = (d.count.to_string(), d.points.to_string());
            w.write_record(head.iter().copied().chain([
                d.section.as_str(),
                d.rule.as_str(),
                if d.manual { "true" } else { "false" },
                if reference { "true" } else { "false" },
                &count,
                &points,
                &evidence,
            ]))?;
        }
        if !any {
            w.write_record(head.iter().copied().chain(["", "", "", "", "", "", ""]))?;
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
            default: p.name == DEFAULT,
            sheets: p.sheets.iter().map(sheet_view).collect(),
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
    /// The profile used when `profile` is not given.
    default: bool,
    /// One sheet per kind of unit: what is computed and what people enter.
    sheets: Vec<SheetView<'a>>,
}

/// A sheet (考核评价表) of a profile.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SheetView<'a> {
    /// `department`, `judicial`, `enforcement`, `market`: the ranking's `kind`.
    name: &'a str,
    title: &'a str,
    source: Option<&'a str>,
    /// The kinds of unit it scores: `department`, `agency`.
    kinds: Vec<&'static str>,
    /// Agencies only of these types (null: any agency).
    agency_types: Option<&'a [String]>,
    /// The full score.
    base: f64,
    /// The share in the unit's yearly appraisal.
    weight: Option<f64>,
    /// A year = mean(quarters) × quarter_weight + year-end × year_end_weight + bonus.
    yearly: Option<appraisal::profile::Yearly>,
    /// The score is the mean of this item's entries for a year.
    mean_of: Option<&'a str>,
    sections: Vec<SectionView<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SectionView<'a> {
    name: &'a str,
    title: &'a str,
    source: Option<&'a str>,
    /// Full points: the most the section deducts (null: bonus or reference).
    points: Option<f64>,
    /// 加减分: added after the weighting.
    bonus: bool,
    /// Shown, not counted.
    reference: bool,
    groups: Vec<GroupView<'a>>,
    items: Vec<ItemView<'a>>,
}

/// Items sharing a cap.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupView<'a> {
    name: &'a str,
    title: Option<&'a str>,
    cap: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemView<'a> {
    /// The item's code (`item` of an entry, `rule` of a deduction).
    code: &'a str,
    title: &'a str,
    cap: Option<f64>,
    group: Option<&'a str>,
    /// Entered by people; otherwise computed from tickets by `rule`.
    manual: bool,
    /// A computed item: the rule's kind (`tickets`, `rate_steps`, …).
    rule: Option<&'static str>,
    /// A counted manual item: the points of each case (`count` of an entry).
    points_each: Option<f64>,
    /// A free manual item: the range of its `points`.
    min: Option<f64>,
    max: Option<f64>,
    /// Entered for a year (`YYYY`) only.
    year_only: bool,
    /// The tickets named by this item's entries leave the computed item.
    except_tickets_of: Option<&'a str>,
}

fn sheet_view(s: &appraisal::Sheet) -> SheetView<'_> {
    use appraisal::ItemHow;
    SheetView {
        name: &s.name,
        title: &s.title,
        source: s.source.as_deref(),
        kinds: s.kinds.iter().map(|k| k.as_str()).collect(),
        agency_types: s.agency_types.as_deref(),
        base: s.base,
        weight: s.weight,
        yearly: s.yearly,
        mean_of: s.mean_of.as_deref(),
        sections: s
            .sections
            .iter()
            .map(|sec| SectionView {
                name: &sec.name,
                title: &sec.title,
                source: sec.source.as_deref(),
                points: sec.points,
                bonus: sec.bonus,
                reference: sec.reference,
                groups: sec
                    .groups
                    .iter()
                    .map(|g| GroupView {
                        name: &g.name,
                        title: g.title.as_deref(),
                        cap: g.cap,
                    })
                    .collect(),
                items: sec
                    .items
                    .iter()
                    .map(|i| {
                        let (rule, points_each, min, max) = match &i.how {
                            ItemHow::Rule(h) => (Some(h.kind()), None, None, None),
                            ItemHow::Counted { points_each } => {
                                (None, Some(*points_each), None, None)
                            }
                            ItemHow::Free { min, max } => (None, None, Some(*min), Some(*max)),
                        };
                        ItemView {
                            code: &i.code,
                            title: &i.title,
                            cap: i.cap,
                            group: i.group.as_deref(),
                            manual: i.is_manual(),
                            rule,
                            points_each,
                            min,
                            max,
                            year_only: i.year_only,
                            except_tickets_of: i.except_tickets_of.as_deref(),
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
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
            sheet: Some("enforcement".into()),
            base: Some(100.0),
            score: Some(97.5),
            deductions: vec![appraisal::Deduction {
                rule: "regulation.late_registration".into(),
                count: 1,
                points: -0.5,
                evidence: appraisal::EvidenceList {
                    tickets: vec![crate::projections::stats::model::Evidence {
                        ticket: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_002a),
                        position: 42,
                    }],
                    entries: vec![uuid::Uuid::from_u128(7)],
                },
                section: "regulation".into(),
                title: "按时签收".into(),
                rate: None,
                manual: false,
                capped: false,
                uncapped_points: None,
            }],
            unit_name: "海港\"路\"".into(),
            kind: "agency",
            agency_type: Some("enforcement".into()),
            weight: Some(0.6),
            quarters: None,
            year_end_score: None,
            bonus: Some(0.0),
            evaluations: None,
            reference: None,
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

//! The appraisal's ledger over HTTP: entries (录入) and their withdrawals, a
//! township's year (报送) and its reopening, departments' grades (等次), the ranking,
//! and the monthly bulletins (通报). The commands and their checks are
//! `app::appraisal`; every command takes an Idempotency-Key like a ticket's.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{Body, Path, command_meta};
use super::sorted_json;
use crate::app::appraisal::{
    BulletinBody, BulletinHeadJson, Drift, EntryBody, EntryJson, GradeBody, Ranking, ReopenBody,
    SubmissionBody, SubmissionJson, WithdrawBody, parse_period, rank_kind,
};
use crate::app::{Reply, SharedApp};
use crate::auth::Actor;
use crate::error::AppError;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route(
            "/api/v1/appraisal/entries",
            post(record_entry).get(list_entries),
        )
        .route(
            "/api/v1/appraisal/entries/{id}/withdraw",
            post(withdraw_entry),
        )
        .route(
            "/api/v1/appraisal/submissions",
            post(submit_year).get(list_submissions),
        )
        .route("/api/v1/appraisal/submissions/reopen", post(reopen_year))
        .route("/api/v1/appraisal/grades", post(record_grade))
        .route("/api/v1/appraisal/ranking", get(ranking))
        .route(
            "/api/v1/appraisal/bulletins",
            post(publish_bulletin).get(list_bulletins),
        )
        .route("/api/v1/appraisal/bulletins/{id}", get(get_bulletin))
}

/// A command's answer, fresh or replayed.
fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, r.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if r.replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, AppError> {
    q.map(|Query(v)| v)
        .map_err(|e| AppError::invalid("query", e.body_text()))
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[utoipa::path(
    post, path = "/api/v1/appraisal/entries", tag = "appraisal",
    summary = "Enter an item of a unit's sheet (考核录入)",
    description = "An appraiser scores an item of the unit's sheet found by people: a \
        counted item with `count` (points = count × the item's points), a free item with \
        `points` in its range. A township appraiser scores the agencies of its township and \
        gives its evaluation of each department (`township_evaluation`, a year, one per \
        department and year); a district appraiser does both for every township (naming \
        `township` for a department's evaluation). Entries of a township's submitted year \
        are refused (409). Nothing is appended on a refusal.",
    params(("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry (1 to 200 characters)")),
    request_body = EntryBody,
    responses(
        (status = 201, description = "The entry", body = EntryJson,
            headers(("Idempotent-Replayed" = String, description = "`true` on a retry's replayed answer"))),
        (status = 400, description = "Malformed JSON or no Idempotency-Key", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not record appraisals, or the unit is outside the appraiser's township", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The township's year is submitted, or the department already has this township's evaluation for the year", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid (`field` names it): unknown unit or item, a unit with no sheet, points outside the item's range, a bad period, an unknown ticket or photo; or the Idempotency-Key was used for another request", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn record_entry(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    body: Body<EntryBody>,
) -> Result<Response, AppError> {
    let meta = command_meta(&headers, "POST", "/api/v1/appraisal/entries", &body.raw)?;
    Ok(reply(app.record_entry(&actor, body.value, meta).await?))
}

fn parse_entry_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id)
        .map_err(|_| AppError::NotFound(format!("no appraisal entry {id:?}: entry ids are UUIDs")))
}

#[utoipa::path(
    post, path = "/api/v1/appraisal/entries/{id}/withdraw", tag = "appraisal",
    summary = "Withdraw an entry (撤回)",
    description = "Entries are never edited: a correction is a withdrawal with a reason and \
        a new entry. The withdrawn entry stays listed, marked `withdrawn`.",
    params(
        ("id" = uuid::Uuid, Path, description = "The entry id"),
        ("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry"),
    ),
    request_body = WithdrawBody,
    responses(
        (status = 200, description = "The entry, withdrawn", body = EntryJson),
        (status = 403, description = "Not an appraiser of the entry's township (or the district)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry the token may read", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Withdrawn already, or the township's year is submitted", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn withdraw_entry(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body<WithdrawBody>,
) -> Result<Response, AppError> {
    let id = parse_entry_id(&id)?;
    let meta = command_meta(
        &headers,
        "POST",
        &format!("/api/v1/appraisal/entries/{id}/withdraw"),
        &body.raw,
    )?;
    Ok(reply(
        app.withdraw_entry(&actor, id, body.value, meta).await?,
    ))
}

#[derive(Deserialize)]
struct EntryParams {
    unit: Option<String>,
    period: Option<String>,
    township: Option<String>,
}

/// A list of entries.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalEntryList)]
pub struct EntryList {
    items: Vec<EntryJson>,
}

#[utoipa::path(
    get, path = "/api/v1/appraisal/entries", tag = "appraisal",
    summary = "Entries (withdrawn ones marked)",
    params(
        ("unit" = Option<String>, Query, description = "The unit scored"),
        ("period" = Option<String>, Query, description = "Entries whose period lies within this one (`2026` lists the year's months and quarters too)"),
        ("township" = Option<String>, Query, description = "The township whose appraisal the entries belong to"),
    ),
    responses(
        (status = 200, description = "The entries the token may read, in log order", body = EntryList),
        (status = 403, description = "The role may not read appraisals", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad period", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_entries(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<EntryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let p = query(params)?;
    let period = nonempty(&p.period)
        .map(|s| parse_period("period", s))
        .transpose()?;
    let items = app
        .list_entries(
            &actor,
            nonempty(&p.unit),
            period.as_ref(),
            nonempty(&p.township),
        )
        .await?;
    sorted_json(&EntryList { items })
}

#[utoipa::path(
    post, path = "/api/v1/appraisal/submissions", tag = "appraisal",
    summary = "Submit a township's year (报送)",
    description = "After it, the township's entries for the year are refused (409) until a \
        district appraiser reopens the year.",
    params(("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry")),
    request_body = SubmissionBody,
    responses(
        (status = 201, description = "The year, submitted", body = SubmissionJson),
        (status = 403, description = "Not an appraiser of the township (or the district)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Submitted already", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a township, or a bad year", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn submit_year(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    body: Body<SubmissionBody>,
) -> Result<Response, AppError> {
    let meta = command_meta(&headers, "POST", "/api/v1/appraisal/submissions", &body.raw)?;
    Ok(reply(app.submit_year(&actor, body.value, meta).await?))
}

#[utoipa::path(
    post, path = "/api/v1/appraisal/submissions/reopen", tag = "appraisal",
    summary = "Reopen a submitted year (district)",
    params(("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry")),
    request_body = ReopenBody,
    responses(
        (status = 200, description = "The year, open again", body = SubmissionJson),
        (status = 403, description = "Only a district appraiser or an admin of the district", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The year is not submitted", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a township, a bad year, or no reason", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn reopen_year(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    body: Body<ReopenBody>,
) -> Result<Response, AppError> {
    let meta = command_meta(
        &headers,
        "POST",
        "/api/v1/appraisal/submissions/reopen",
        &body.raw,
    )?;
    Ok(reply(app.reopen_year(&actor, body.value, meta).await?))
}

#[derive(Deserialize)]
struct YearParams {
    year: Option<String>,
}

/// Townships' years.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalSubmissionList)]
pub struct SubmissionList {
    items: Vec<SubmissionJson>,
}

#[utoipa::path(
    get, path = "/api/v1/appraisal/submissions", tag = "appraisal",
    summary = "Townships' years submitted or reopened",
    params(("year" = Option<i32>, Query, description = "Only this year")),
    responses(
        (status = 200, description = "The years of the townships within the token's unit that were ever submitted", body = SubmissionList),
        (status = 403, description = "The role may not read appraisals", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad year", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_submissions(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<YearParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let p = query(params)?;
    let year = nonempty(&p.year)
        .map(|y| {
            y.parse::<i32>()
                .map_err(|_| AppError::invalid("year", format!("{y:?} is not a year")))
        })
        .transpose()?;
    let items = app.list_submissions(&actor, year).await?;
    sorted_json(&SubmissionList { items })
}

#[utoipa::path(
    post, path = "/api/v1/appraisal/grades", tag = "appraisal",
    summary = "Record a department's yearly grade (等次)",
    description = "1 一等 (coefficient 1.1), 2 二等 (1.0), 3 三等 (0.9, yellow card), 4 四等 \
        (0.8, yellow card). A later grade for the same year replaces it.",
    params(("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry")),
    request_body = GradeBody,
    responses(
        (status = 201, description = "The grade", body = crate::app::appraisal::GradeJson),
        (status = 403, description = "Only a district appraiser or an admin of the district", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a department, a grade outside 1 to 4, a bad year, or no note", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn record_grade(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    body: Body<GradeBody>,
) -> Result<Response, AppError> {
    let meta = command_meta(&headers, "POST", "/api/v1/appraisal/grades", &body.raw)?;
    Ok(reply(app.record_grade(&actor, body.value, meta).await?))
}

#[derive(Deserialize)]
struct RankingParams {
    period: Option<String>,
    kind: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/appraisal/ranking", tag = "appraisal",
    summary = "The ranking of one sheet's units (排名)",
    description = "The units scored by one sheet in the whole organisation, best first; ties \
        share a rank (1, 1, 3); units without a score for the period are left out. With the \
        grade of the period's year: its coefficient, `yellow_card` for grades 3 and 4, and \
        `yellow_cards_in_a_row`. A reader outside the district sees the departments and the \
        units of its own subtree, with their district-wide ranks.",
    params(
        ("period" = String, Query, description = "A month, quarter or year"),
        ("kind" = String, Query, pattern = "^(department|judicial|enforcement|market)$", description = "`department`, `judicial`, `enforcement` or `market`"),
    ),
    responses(
        (status = 200, description = "The ranking", body = Ranking),
        (status = 403, description = "The role may not read appraisals", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing or bad period or kind", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn ranking(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<RankingParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let p = query(params)?;
    let period = parse_period(
        "period",
        nonempty(&p.period).ok_or_else(|| AppError::invalid("period", "is required"))?,
    )?;
    let kind = rank_kind(nonempty(&p.kind).ok_or_else(|| {
        AppError::invalid(
            "kind",
            "is required: department, judicial, enforcement or market",
        )
    })?)?;
    sorted_json(&app.ranking(&actor, &period, kind).await?)
}

#[utoipa::path(
    post, path = "/api/v1/appraisal/bulletins", tag = "appraisal",
    summary = "Publish a bulletin (通报)",
    description = "Freezes the appraisal of the period (of `unit`'s subtree; a township \
        appraiser's own township by default, the whole organisation for the district) as \
        it is now, as an event, with the log position it was computed at (the last event \
        at or below the feed's gap-safe horizon) and that event's hash.",
    params(("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry")),
    request_body = BulletinBody,
    responses(
        (status = 201, description = "The bulletin (without its answer)", body = BulletinHeadJson),
        (status = 403, description = "Not an appraiser, or a unit outside the appraiser's township", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad period or an unknown unit", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn publish_bulletin(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    body: Body<BulletinBody>,
) -> Result<Response, AppError> {
    let meta = command_meta(&headers, "POST", "/api/v1/appraisal/bulletins", &body.raw)?;
    Ok(reply(app.publish_bulletin(&actor, body.value, meta).await?))
}

#[derive(Deserialize)]
struct BulletinParams {
    period: Option<String>,
}

/// Bulletins, without their answers.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalBulletinList)]
pub struct BulletinList {
    items: Vec<BulletinHeadJson>,
}

#[utoipa::path(
    get, path = "/api/v1/appraisal/bulletins", tag = "appraisal",
    summary = "Bulletins published",
    params(("period" = Option<String>, Query, description = "Only this period's")),
    responses(
        (status = 200, description = "The bulletins of units within the token's, in log order", body = BulletinList),
        (status = 403, description = "The role may not read appraisals", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad period", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_bulletins(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<BulletinParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let p = query(params)?;
    let period = nonempty(&p.period)
        .map(|s| parse_period("period", s))
        .transpose()?;
    let items = app.list_bulletins(&actor, period.as_ref()).await?;
    sorted_json(&BulletinList { items })
}

/// A bulletin with its frozen answer and its drift.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalBulletin)]
pub struct BulletinJson {
    actor: String,
    /// The appraisal answer as it was published (the body of `GET /api/v1/appraisal`).
    #[schema(value_type = Object)]
    answer: serde_json::Value,
    /// The units whose score today differs from the frozen one (late imports,
    /// withdrawals), with both figures.
    drift: Vec<Drift>,
    id: Uuid,
    period: String,
    position: i64,
    position_hash: String,
    profile: String,
    published_at: chrono::DateTime<chrono::Utc>,
    unit: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/appraisal/bulletins/{id}", tag = "appraisal",
    summary = "One bulletin, frozen, with its drift",
    params(("id" = uuid::Uuid, Path, description = "The bulletin id")),
    responses(
        (status = 200, description = "The bulletin", body = BulletinJson),
        (status = 403, description = "The role may not read appraisals", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such bulletin the token may read", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_bulletin(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| AppError::NotFound(format!("no bulletin {id:?}: bulletin ids are UUIDs")))?;
    let (head, answer, drift) = app.bulletin(&actor, id).await?;
    let body = BulletinJson {
        actor: head.actor,
        answer,
        drift,
        id: head.id,
        period: head.period,
        position: head.position,
        position_hash: head.position_hash,
        profile: head.profile,
        published_at: head.published_at,
        unit: head.unit,
    };
    super::json_sized(&body, 64 * 1024)
}

//! /api/v1/tickets: create, act, read, queue, per-ticket events.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{Body, Path, RawBody, command_meta, parse_json};
use super::text::check_text;
use super::{ListPage, event_json};
use crate::app::{ActionInput, NewTicket, Reply, SharedApp, render};
use crate::auth::Actor;
use crate::auth::policy::{self, Action};
use crate::domain::{CloseCode, Location, Satisfaction, Source, State as TicketState, Urgency};
use crate::error::AppError;
use crate::store::TicketQuery;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/api/v1/tickets", post(create_ticket).get(list_tickets))
        .route("/api/v1/tickets/{id}", get(get_ticket))
        .route("/api/v1/tickets/{id}/events", get(ticket_events))
        .route("/api/v1/tickets/{id}/{action}", post(act_on_ticket))
}

/// Text limits: a title is a line, a description a page.
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 10_000;
/// A code of the organisation or the catalogue (checked against it later), or a
/// person's name.
const MAX_CODE: usize = 100;

/// The body of `POST /api/v1/tickets` (受理): a new ticket. `urgency` defaults to `normal`;
/// a grid worker's report names its grid (`location.grid`). `self_handled`: a grid
/// worker fixed it on the spot (自行处置), so the ticket is accepted and handled at once.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateTicket)]
pub(crate) struct CreateBody {
    source: Source,
    /// A category code of `GET /api/v1/categories`.
    category: String,
    #[schema(max_length = 200)]
    title: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    description: String,
    /// Default `normal`.
    #[serde(default = "normal")]
    urgency: Urgency,
    #[serde(default)]
    location: Location,
    #[serde(default)]
    reporter: Option<ReporterBody>,
    /// A repeat complaint (重复投诉): the earlier ticket about the same matter.
    #[serde(default)]
    related_to: Option<Uuid>,
    #[serde(default)]
    self_handled: Option<SelfHandledBody>,
    /// Attachment hashes from POST /api/v1/attachments.
    #[serde(default)]
    photos: Vec<String>,
}

fn normal() -> Urgency {
    Urgency::Normal
}

/// The citizen's contact (personal data: kept out of the event log, masked to most readers).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReporterInput)]
pub(crate) struct ReporterBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

/// What the grid worker did on the spot.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SelfHandled)]
pub(crate) struct SelfHandledBody {
    result: String,
}

fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let no_store = crate::app::shows_contact(&r.body);
    let mut resp = (status, r.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", r.version)) {
        h.insert(header::ETAG, v);
    }
    if r.replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    // A citizen's name and phone in full (the creation answer, a single ticket, a
    // replay of a creation, read by someone who needs them): no cache, shared or
    // the browser's, may keep them.
    if no_store {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[tracing::instrument(skip_all, fields(user = %actor.user, role = actor.role.as_str()))]
async fn create_ticket(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    body: Body<CreateBody>,
) -> Result<Response, AppError> {
    let meta = command_meta(&headers, "POST", "/api/v1/tickets", &body.raw)?;
    let input = new_ticket(body.value)?;
    Ok(reply(app.create(&actor, input, meta).await?))
}

/// The action names of `POST /api/v1/tickets/{id}/{action}`.
pub const ACTIONS: [&str; 11] = [
    "assign",
    "sign",
    "return",
    "request-extension",
    "decide-extension",
    "supervise",
    "handle",
    "verify",
    "feedback",
    "comment",
    "close",
];

/// A command's body parsed and checked exactly as the API does it: `create` is
/// the body of `POST /api/v1/tickets`, any other name one of [`ACTIONS`]. Errors
/// are the API's (400 / 422 naming the field within the body, 404 for an unknown
/// action). The import of legacy history reads its lines' bodies through here.
pub fn parse_command(action: &str, raw: &[u8]) -> Result<ParsedCommand, AppError> {
    if action == "create" {
        Ok(ParsedCommand::Create(new_ticket(parse_json(raw)?)?))
    } else {
        Ok(ParsedCommand::Act(parse_action(action, raw)?))
    }
}

/// What [`parse_command`] makes of a body.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per command, moved straight into the command path"
)]
pub enum ParsedCommand {
    Create(NewTicket),
    Act(ActionInput),
}

/// Checks a creation body beyond its shape and turns it into a [`NewTicket`].
fn new_ticket(b: CreateBody) -> Result<NewTicket, AppError> {
    check_text("title", &b.title, MAX_TITLE)?;
    check_text("description", &b.description, MAX_TEXT)?;
    check_text("category", &b.category, MAX_TITLE)?;
    if let Some(a) = &b.location.address {
        check_text("location.address", a, MAX_TITLE)?;
    }
    if let Some(g) = &b.location.grid {
        check_text("location.grid", g, MAX_CODE)?;
    }
    if b.location.lat.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
        return Err(AppError::invalid(
            "location.lat",
            "must be between -90 and 90",
        ));
    }
    if b.location
        .lon
        .is_some_and(|v| !(-180.0..=180.0).contains(&v))
    {
        return Err(AppError::invalid(
            "location.lon",
            "must be between -180 and 180",
        ));
    }
    if let Some(r) = &b.reporter {
        if let Some(n) = &r.name {
            check_text("reporter.name", n, MAX_CODE)?;
        }
        if let Some(p) = &r.phone {
            if p.len() > 32 || !p.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c)) {
                return Err(AppError::invalid(
                    "reporter.phone",
                    "must be a phone number (digits, +, -)",
                ));
            }
        }
    }
    if let Some(s) = &b.self_handled {
        check_text("self_handled.result", &s.result, MAX_TEXT)?;
    }
    crate::attachments::check_hashes("photos", &b.photos)?;
    Ok(NewTicket {
        id: None,
        source: b.source,
        category: b.category,
        title: b.title,
        description: b.description,
        urgency: b.urgency,
        location: b.location,
        reporter: b.reporter.map(|r| (r.name, r.phone)),
        related_to: b.related_to,
        self_handled: b.self_handled.map(|s| s.result),
        photos: b.photos,
    })
}

/// 派单: send the ticket to a lead unit (主办) and optional co-units (协办).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignBody {
    unit: String,
    #[serde(default)]
    co_units: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}
/// 签收: the unit acknowledges the ticket and names its handler.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignBody {
    handler: String,
}
/// 退回: the unit says the ticket is not theirs.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReturnBody)]
pub(crate) struct ReasonBody {
    reason: String,
}
/// 延期申请: ask for more working days.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RequestExtensionBody)]
pub(crate) struct ExtensionBody {
    /// Working days.
    days: u32,
    reason: String,
}
/// 延期审批: approve (optionally with fewer days) or refuse the pending request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DecideExtensionBody)]
pub(crate) struct DecideBody {
    approved: bool,
    /// Working days granted (1 to 30); default: those asked for.
    #[serde(default)]
    days: Option<u32>,
}
/// 督办: a centre presses the unit.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SuperviseBody)]
pub(crate) struct NoteBody {
    note: String,
}
/// 办结: the unit reports the result (photos: attachment references).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandleBody {
    result: String,
    #[serde(default)]
    photos: Vec<String>,
}
/// 核查: pass or fail the result; a failure reopens the ticket with a new deadline.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    passed: bool,
    #[serde(default)]
    note: String,
}
/// 回访: the citizen's satisfaction.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackBody {
    satisfaction: Satisfaction,
}
/// A comment on the ticket.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommentBody {
    text: String,
}
/// 结案: close with a code; `duplicate_of` names the ticket a duplicate repeats.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseBody {
    code: CloseCode,
    #[serde(default)]
    duplicate_of: Option<Uuid>,
}

/// Parses the body of `action`; an unknown action is a 404.
fn parse_action(action: &str, raw: &[u8]) -> Result<ActionInput, AppError> {
    Ok(match action {
        "assign" => {
            let b: AssignBody = parse_json(raw)?;
            if b.co_units.len() > 20 {
                return Err(AppError::invalid("co_units", "at most 20 co-units"));
            }
            check_text("unit", &b.unit, MAX_CODE)?;
            for (i, c) in b.co_units.iter().enumerate() {
                check_text(&format!("co_units[{i}]"), c, MAX_CODE)?;
            }
            if let Some(n) = &b.note {
                check_text("note", n, MAX_TEXT)?;
            }
            ActionInput::Assign {
                unit: b.unit,
                co_units: b.co_units,
                note: b.note,
            }
        }
        "sign" => {
            let b: SignBody = parse_json(raw)?;
            check_text("handler", &b.handler, MAX_CODE)?;
            ActionInput::Sign { handler: b.handler }
        }
        "return" => {
            let b: ReasonBody = parse_json(raw)?;
            check_text("reason", &b.reason, MAX_TEXT)?;
            ActionInput::Return { reason: b.reason }
        }
        "request-extension" => {
            let b: ExtensionBody = parse_json(raw)?;
            check_text("reason", &b.reason, MAX_TEXT)?;
            ActionInput::RequestExtension {
                days: b.days,
                reason: b.reason,
            }
        }
        "decide-extension" => {
            let b: DecideBody = parse_json(raw)?;
            ActionInput::DecideExtension {
                approved: b.approved,
                days: b.days,
            }
        }
        "supervise" => {
            let b: NoteBody = parse_json(raw)?;
            check_text("note", &b.note, MAX_TEXT)?;
            ActionInput::Supervise { note: b.note }
        }
        "handle" => {
            let b: HandleBody = parse_json(raw)?;
            check_text("result", &b.result, MAX_TEXT)?;
            crate::attachments::check_hashes("photos", &b.photos)?;
            ActionInput::Handle {
                result: b.result,
                photos: b.photos,
            }
        }
        "verify" => {
            let b: VerifyBody = parse_json(raw)?;
            check_text("note", &b.note, MAX_TEXT)?;
            ActionInput::Verify {
                passed: b.passed,
                note: b.note,
            }
        }
        "feedback" => {
            let b: FeedbackBody = parse_json(raw)?;
            ActionInput::Feedback {
                satisfaction: b.satisfaction,
            }
        }
        "comment" => {
            let b: CommentBody = parse_json(raw)?;
            check_text("text", &b.text, MAX_TEXT)?;
            ActionInput::Comment { text: b.text }
        }
        "close" => {
            let b: CloseBody = parse_json(raw)?;
            ActionInput::Close {
                code: b.code,
                duplicate_of: b.duplicate_of,
            }
        }
        other => {
            return Err(AppError::NotFound(format!(
                "no action {other:?}; actions are assign, sign, return, request-extension, decide-extension, \
                 supervise, handle, verify, feedback, comment, close"
            )));
        }
    })
}

fn parse_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id)
        .map_err(|_| AppError::NotFound(format!("no ticket {id:?}: ticket ids are UUIDs")))
}

#[tracing::instrument(skip_all, fields(user = %actor.user, role = actor.role.as_str(), ticket = %id, action = %action))]
async fn act_on_ticket(
    State(app): State<SharedApp>,
    actor: Actor,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let input = parse_action(&action, &body)?;
    let meta = command_meta(
        &headers,
        "POST",
        &format!("/api/v1/tickets/{id}/{action}"),
        &body,
    )?;
    Ok(reply(app.act(&actor, id, input, meta).await?))
}

async fn get_ticket(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let (t, v) = app.get(&actor, id).await?;
    Ok(reply(Reply {
        status: 200,
        body: v.to_string(),
        version: t.version,
        replayed: false,
    }))
}

async fn ticket_events(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<axum::Json<ListPage>, AppError> {
    let id = parse_id(&id)?;
    app.check_frozen(&actor, id).await?;
    let t = app
        .load(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
    policy::check(&app.org.get(), &actor, Action::Read, &t)?;
    // The events as stored, not upcast (see `event_json`).
    let events = app.store.read_stream(id).await?;
    Ok(axum::Json(ListPage {
        items: events.iter().map(event_json).collect(),
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
struct ListParams {
    state: Option<String>,
    unit: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    /// `true`: only tickets past a deadline (the overdue list, from the unit_stats
    /// projection, checked against each ticket's current state).
    overdue: Option<bool>,
}

fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), AppError> {
    let bad = || {
        AppError::invalid(
            "cursor",
            "not a cursor this service issued; start again without it",
        )
    };
    let (micros, id) = c.split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    // Issued cursors hold creation times; chrono's wider range (±262,000 years) is
    // more than PostgreSQL's timestamptz takes, which would fail the query.
    let at = DateTime::from_timestamp_micros(micros)
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

async fn list_tickets(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<ListPage>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    if let Some(s) = &p.state {
        if TicketState::parse(s).is_none() {
            return Err(AppError::invalid(
                "state",
                "must be one of accepted, assigned, handled, verified, closed",
            ));
        }
    }
    // No unit code holds a control character, and PostgreSQL refuses NUL in text.
    if p.unit
        .as_deref()
        .is_some_and(|u| u.chars().any(char::is_control))
    {
        return Err(AppError::invalid(
            "unit",
            "is not a unit code; GET /api/v1/units lists them",
        ));
    }
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::invalid("limit", "must be between 1 and 500"));
    }
    if p.overdue == Some(true) {
        return overdue_list(&app, &actor, p.unit.as_deref(), p.cursor.as_deref(), limit).await;
    }
    let q = TicketQuery {
        state: p.state,
        unit: p.unit,
        within: None,
        before: p.cursor.as_deref().map(parse_cursor).transpose()?,
        limit,
        ..TicketQuery::default()
    };
    let tickets = app.list(&actor, q).await?;
    let now = app.now();
    let next_cursor = (tickets.len() as i64 == limit)
        .then(|| tickets.last())
        .flatten()
        .map(|t| json!(format!("{}_{}", t.created_at.timestamp_micros(), t.id)));
    let items: Vec<Value> = tickets.iter().map(|t| render(t, now, None)).collect();
    Ok(axum::Json(ListPage { items, next_cursor }))
}

/// Tickets of an overdue page read at once.
const OVERDUE_READS: usize = 8;

/// `GET /api/v1/tickets?overdue=true&unit=`: open tickets past a deadline in the
/// caller's scope (and `unit`'s subtree), oldest deadline first. The cursor is an
/// offset into that order.
async fn overdue_list(
    app: &SharedApp,
    actor: &Actor,
    unit: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<axum::Json<ListPage>, AppError> {
    let org = app.org.get();
    let offset = match cursor {
        None => 0,
        Some(c) => c
            .strip_prefix('o')
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                AppError::invalid(
                    "cursor",
                    "not a cursor this service issued; start again without it",
                )
            })?,
    };
    let base = unit.unwrap_or(&actor.unit);
    if org.unit(base).is_none() {
        return Err(AppError::invalid(
            "unit",
            format!("unknown unit {base:?}; GET /api/v1/units lists them"),
        ));
    }
    // The caller's scope, narrowed to `unit`'s subtree when it lies inside it.
    let scope_root = if org.is_within(base, &actor.unit) {
        base
    } else if org.is_within(&actor.unit, base) {
        actor.unit.as_str()
    } else {
        return Ok(axum::Json(ListPage {
            items: Vec::new(),
            next_cursor: None,
        }));
    };
    let units: Vec<String> = org
        .subtree(scope_root)
        .into_iter()
        .map(str::to_string)
        .collect();
    let scope = (org.root().code != scope_root).then_some(units.as_slice());
    let now = app.now();
    let ids =
        crate::projections::query::overdue_tickets(&app.store.pool(), scope, now, offset, limit)
            .await?;
    // A page is up to 500 tickets, each a read or two (the ticket unless cached, the
    // reporter): a few at once, in order. One at a time, a page of 50 took 190 ms
    // on PostgreSQL under load, nearly all of it waiting.
    use futures::StreamExt;
    let (n, full_page) = (ids.len(), ids.len() as i64 == limit);
    let mut loaded =
        futures::stream::iter(ids.into_iter().map(|id| app.get(actor, id))).buffered(OVERDUE_READS);
    let mut items = Vec::with_capacity(n);
    while let Some(r) = loaded.next().await {
        match r {
            Ok((t, v)) if t.overdue(now) => items.push(v),
            // A frozen ticket (a failed verification) is left out, not the page.
            Ok(_)
            | Err(AppError::Forbidden(_))
            | Err(AppError::NotFound(_))
            | Err(AppError::Tampered(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let next_cursor = full_page.then(|| json!(format!("o{}", offset + limit)));
    Ok(axum::Json(ListPage { items, next_cursor }))
}

//! /api/v1/tickets: create, act, read, queue, per-ticket events.
//! The bodies of the commands and their checks are `app::commands`.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::extract::{Body, Path, RawBody, command_meta};
use super::{EventList, event_json, sorted_json};
use crate::app::commands::{CreateBody, new_ticket, parse_action};
use crate::app::{Reply, SharedApp};
use crate::auth::Actor;
use crate::auth::policy::{self, Action};
use crate::domain::State as TicketState;
use crate::error::AppError;
use crate::repo::tickets::{Sort, TicketQuery};
use crate::views::ticket::{render, shows_contact};

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/api/v1/tickets", post(create_ticket).get(list_tickets))
        .route("/api/v1/tickets/{id}", get(get_ticket))
        .route(
            "/api/v1/tickets/by-number/{number}",
            get(get_ticket_by_number),
        )
        .route("/api/v1/tickets/{id}/events", get(ticket_events))
        .route("/api/v1/tickets/{id}/{action}", post(act_on_ticket))
}

fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let no_store = shows_contact(&r.body);
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

#[utoipa::path(
    post, path = "/api/v1/tickets", tag = "tickets",
    summary = "Accept a ticket (受理)",
    description = "The hotline (source `hotline`, or `city_supervision` for a finding the \
        city's supervision passes down), a grid worker (source `grid`, inside their grid; \
        `self_handled` when fixed on the spot), a handler (source `patrol`: what its \
        unit's own patrol found, inside its township) or a dispatcher (any source) \
        registers a ticket. It waits in the receiving centre's queue with the unit the \
        catalogue suggests.",
    params(
        ("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry (1 to 200 characters)"),
    ),
    request_body = crate::app::commands::CreateBody,
    responses(
        (status = 201, description = "The new ticket, with the reporter's contact", body = crate::views::ticket::TicketJson,
            headers(
                ("ETag" = String, description = "The ticket's version, quoted: `\"1\"`"),
                ("Idempotent-Replayed" = String, description = "`true` on a retry's replayed answer"),
            )),
        (status = 400, description = "Malformed JSON or no Idempotency-Key", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not accept tickets, or the grid is outside the token's unit (a handler's: its township)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`related_to` names no ticket this token may read (whether or not it exists)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid (`field` names it; `source` must be `grid` for a grid worker, `hotline` or `city_supervision` for a hotline agent, `patrol` for a handler), or the Idempotency-Key was used for another request", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user = %actor.user, role = actor.role.as_str()))]
async fn create_ticket(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    body: Body<CreateBody>,
) -> Result<Response, AppError> {
    let meta = command_meta(&headers, "POST", "/api/v1/tickets", &body.raw)?;
    // `parse_command("create", …)` in the API's order: the body's shape (the
    // extractor), the Idempotency-Key, then the text checks.
    let input = new_ticket(body.value)?;
    Ok(reply(app.create(&actor, input, meta).await?))
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
    // The key's fingerprint is of the body as sent (a retry sends it again), the
    // command's of the body with a ticket number resolved.
    let resolved = match action.as_str() {
        "close" => duplicate_by_number(&app, &actor, &body).await?,
        _ => None,
    };
    let input = parse_action(&action, resolved.as_deref().unwrap_or(&body))?;
    let meta = command_meta(
        &headers,
        "POST",
        &format!("/api/v1/tickets/{id}/{action}"),
        &body,
    )?;
    Ok(reply(app.act(&actor, id, input, meta).await?))
}

/// A close's `duplicate_of` given as a ticket number (`YYYYMMDD-NNNNNN`, what a
/// dispatcher reads on the page) rather than an id: the body with the id of that
/// ticket, if the actor may read it (else the 404 a link to an unreadable ticket
/// answers). None: the body as it is (an id, or no number; `parse_action` judges).
async fn duplicate_by_number(
    app: &SharedApp,
    actor: &Actor,
    body: &[u8],
) -> Result<Option<Vec<u8>>, AppError> {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
        return Ok(None);
    };
    let Some(Value::String(n)) = obj.get("duplicate_of") else {
        return Ok(None);
    };
    let n = n.trim();
    if Uuid::parse_str(n).is_ok() || !crate::repo::tickets::search::is_ticket_number(n) {
        return Ok(None);
    }
    let (t, _) = app.get_by_number(actor, n).await.map_err(|e| match e {
        AppError::NotFound(_) => AppError::NotFound(format!(
            "duplicate_of names no ticket {n:?} that this token may read"
        )),
        e => e,
    })?;
    obj.insert("duplicate_of".into(), Value::String(t.id.to_string()));
    Ok(Some(Value::Object(obj).to_string().into_bytes()))
}

#[utoipa::path(
    get, path = "/api/v1/tickets/by-number/{number}", tag = "tickets",
    summary = "One ticket by its number",
    description = "The ticket numbered `number` (`YYYYMMDD-NNNNNN`), answered as \
        `GET /api/v1/tickets/{id}` answers it, with the same visibility.",
    params(("number" = String, Path, description = "The ticket number, e.g. `20261207-000123`")),
    responses(
        (status = 200, description = "The ticket", body = crate::views::ticket::TicketJson,
            headers(("ETag" = String, description = "The ticket's version, quoted: pass it as If-Match"))),
        (status = 404, description = "No ticket has this number, or it is outside the token's unit (answered alike)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is frozen (`code`: `integrity.tampered`)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_ticket_by_number(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(number): Path<String>,
) -> Result<Response, AppError> {
    let number = number.trim();
    if !crate::repo::tickets::search::is_ticket_number(number) {
        return Err(AppError::NotFound(format!(
            "no ticket numbered {number:?}: ticket numbers read YYYYMMDD-NNNNNN"
        )));
    }
    let (t, v) = app.get_by_number(&actor, number).await?;
    let mut resp = reply(Reply {
        status: 200,
        body: v.to_string(),
        version: t.version,
        replayed: false,
    });
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Authorization"));
    Ok(resp)
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}", tag = "tickets",
    summary = "One ticket",
    description = "The reporter's contact is masked unless the reader is the hotline or an \
        admin of a unit that owns the ticket, or the lead unit's handler.",
    params(
        ("id" = uuid::Uuid, Path, description = "The ticket id"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of the answer the client holds (`\"3\"`, or `W/\"3\"`, or a list, or `*`): a 304 without a body if it is still the answer"),
    ),
    responses(
        (status = 200, description = "The ticket", body = crate::views::ticket::TicketJson,
            headers(
                ("ETag" = String, description = "The ticket's version, quoted: pass it as If-Match"),
                ("Vary" = String, description = "`Authorization`: the reporter's contact is shown or masked by token"),
            )),
        (status = 304, description = "If-None-Match names the ticket's ETag and the answer has not changed (same version, and no deadline has passed since it was written): no body",
            headers(("ETag" = String, description = "The ticket's version, quoted"))),
        (status = 404, description = "No such ticket, or one outside the token's unit (answered alike, so that existence does not leak)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is frozen: the verification of the event log found its records tampered with (`code`: `integrity.tampered`)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_ticket(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let (t, v) = app.get(&actor, id).await?;
    let unchanged = not_modified(&headers, &t, &v);
    let mut resp = reply(Reply {
        status: 200,
        body: v.to_string(),
        version: t.version,
        replayed: false,
    });
    // The answer depends on the token (the reporter's contact in full or masked).
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Authorization"));
    if !unchanged {
        return Ok(resp);
    }
    // A 304 has the 200's headers (ETag, Cache-Control, Vary) and no body.
    let (mut parts, _) = resp.into_parts();
    parts.status = StatusCode::NOT_MODIFIED;
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, axum::body::Body::empty()))
}

/// Whether `If-None-Match` names the answer the client already has (RFC 9110
/// §13.1.2): `*`, or a tag equal to the ticket's ETag by weak comparison (`W/"3"`
/// matches `"3"`). The version is the ETag, but the answer also says, as of now,
/// whether each deadline is `running` or `missed` and whether the ticket is
/// `overdue`: those change with time alone, and only one way (running to missed).
/// So the answer is unchanged only when they read the same now as when the version
/// was written (`updated_at`): then every answer of this version, whenever it was
/// made, reads the same. Otherwise the full answer goes out. A header that is no
/// list of entity tags is ignored.
fn not_modified(headers: &HeaderMap, t: &crate::domain::Ticket, now_json: &Value) -> bool {
    let lines: Vec<&str> = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if lines.is_empty() {
        return false;
    }
    let value = lines.join(", ");
    let value = value.trim_matches([' ', '\t']);
    let named = value == "*"
        || super::extract::entity_tags(value).is_some_and(|tags| {
            tags.iter()
                .any(|(_, tag)| super::extract::version_tag(tag) == Some(t.version))
        });
    if !named {
        return false;
    }
    let then = render(t, t.updated_at, None);
    then["deadlines"] == now_json["deadlines"] && then["overdue"] == now_json["overdue"]
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/events", tag = "events",
    summary = "A ticket's event stream",
    params(("id" = uuid::Uuid, Path, description = "The ticket id")),
    responses(
        (status = 200, description = "Every event of the ticket, in version order", body = EventList),
        (status = 404, description = "No such ticket, or one outside the token's unit (answered alike, so that existence does not leak)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is frozen: the verification of the event log found its records tampered with (`code`: `integrity.tampered`)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn ticket_events(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, AppError> {
    let id = parse_id(&id)?;
    app.check_frozen(&actor, id).await?;
    let t = app
        .load(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
    policy::check(&app.org.get(), &actor, Action::Read, &t)?;
    // The events as stored, not upcast (see `event_json`).
    let events = app.store.read_stream(id).await?;
    sorted_json(&EventList {
        items: events.iter().map(event_json).collect(),
        next_cursor: None,
    })
}

/// A page of the ticket queue.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketList {
    // The ticket JSON of `views::ticket::render`, already a `Value` (its keys in
    // alphabetical order): the page is written as it is.
    #[schema(value_type = Vec<crate::views::ticket::TicketJson>)]
    items: Vec<Value>,
    /// The `cursor` of the next page; null at the end.
    next_cursor: Option<String>,
    /// How many tickets match the filters, on all pages (within the token's scope).
    total: i64,
}

#[derive(Deserialize)]
struct ListParams {
    state: Option<String>,
    unit: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    /// `true`: only tickets past an open deadline (with any other filter).
    overdue: Option<bool>,
    /// Text to find in the number, title, description or address.
    q: Option<String>,
    category: Option<String>,
    /// `deadline`, `created` or `-created`.
    sort: Option<String>,
}

/// The longest `q` taken (characters): longer is no search a person types.
const MAX_Q_CHARS: usize = 100;

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

/// The offset cursor (`o` and a count) of the orders other than newest first.
fn parse_offset_cursor(c: &str) -> Result<i64, AppError> {
    c.strip_prefix('o')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            AppError::invalid(
                "cursor",
                "not a cursor this service issued for this order; start again without it",
            )
        })
}

#[utoipa::path(
    get, path = "/api/v1/tickets", tag = "tickets",
    summary = "The queue",
    description = "Tickets within the token's unit subtree, newest first, filtered by \
        every parameter given (all combine). With `overdue=true` the default order is by \
        deadline, the most overdue first. `total` counts every match, not only the page.",
    params(
        ("state" = Option<crate::domain::State>, Query, description = "Only tickets in this state"),
        ("unit" = Option<String>, Query, description = "Only tickets whose lead unit is this one (with `overdue=true`: within this unit's subtree)"),
        ("overdue" = Option<bool>, Query, description = "`true`: only tickets past an open deadline (the sign deadline until signed, the handle deadline), in any state asked for"),
        ("q" = Option<String>, Query, description = "Text the ticket's number, title, description or address contains (a substring, case-insensitive; 1 to 100 characters; a whole number `YYYYMMDD-NNNNNN` finds that ticket)"),
        ("category" = Option<String>, Query, description = "Only tickets of this category code"),
        ("sort" = Option<String>, Query, description = "`-created` (newest first, the default), `created` (oldest first) or `deadline` (earliest open deadline first, so the most overdue first; the default with `overdue=true`)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Page size, default 50"),
    ),
    responses(
        (status = 200, description = "A page of tickets (reporter not included) and the count of all matches", body = TicketList),
        (status = 422, description = "A bad parameter (`field` names it)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_tickets(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<TicketList>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let q = list_query(&app, p)?;
    let limit = q.limit;
    let sort = q.sort;
    let offset = q.offset;
    let page = app.queue(&actor, q).await?;
    let now = app.now();
    let full = page.fetched as i64 == limit;
    let next_cursor = match sort {
        Sort::NewestFirst => full
            .then(|| page.tickets.last())
            .flatten()
            .map(|t| format!("{}_{}", t.created_at.timestamp_micros(), t.id)),
        _ => full
            .then(|| offset.checked_add(limit))
            .flatten()
            .map(|n| format!("o{n}")),
    };
    let items: Vec<Value> = page.tickets.iter().map(|t| render(t, now, None)).collect();
    Ok(axum::Json(TicketList {
        items,
        next_cursor,
        total: page.total,
    }))
}

/// The query of `GET /api/v1/tickets`, each parameter checked (a bad one is named).
fn list_query(app: &SharedApp, p: ListParams) -> Result<TicketQuery, AppError> {
    if let Some(s) = &p.state
        && TicketState::parse(s).is_none()
    {
        return Err(AppError::invalid(
            "state",
            "must be one of accepted, assigned, handled, verified, closed",
        ));
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
    let overdue = p.overdue == Some(true);
    let sort = match p.sort.as_deref() {
        None if overdue => Sort::Deadline,
        None | Some("-created") => Sort::NewestFirst,
        Some("created") => Sort::OldestFirst,
        Some("deadline") => Sort::Deadline,
        Some(_) => {
            return Err(AppError::invalid(
                "sort",
                "must be deadline, created or -created",
            ));
        }
    };
    let text = match p.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) if t.chars().count() > MAX_Q_CHARS => {
            return Err(AppError::invalid(
                "q",
                format!("is longer than {MAX_Q_CHARS} characters; search for a shorter part"),
            ));
        }
        Some(t) if t.chars().any(char::is_control) => {
            return Err(AppError::invalid(
                "q",
                "holds a control character; search for printable text",
            ));
        }
        Some(t) => Some(t.to_string()),
    };
    let org = app.org.get();
    let category = match p.category.as_deref() {
        None | Some("") => None,
        Some(c) if org.category(c).is_none() => {
            return Err(AppError::invalid(
                "category",
                format!("unknown category {c:?}; GET /api/v1/categories lists them"),
            ));
        }
        Some(c) => Some(c.to_string()),
    };
    let (mut before, mut offset) = (None, 0);
    if let Some(c) = p.cursor.as_deref() {
        if sort == Sort::NewestFirst {
            before = Some(parse_cursor(c)?);
        } else {
            offset = parse_offset_cursor(c)?;
        }
    }
    // With `overdue=true`, `unit` is the unit's subtree (the overdue list of a
    // township is its own and its units'), and an unknown unit is refused.
    let (unit, units) = match (p.unit, overdue) {
        (Some(u), true) => {
            if org.unit(&u).is_none() {
                return Err(AppError::invalid(
                    "unit",
                    format!("unknown unit {u:?}; GET /api/v1/units lists them"),
                ));
            }
            let sub = org.subtree(&u).into_iter().map(str::to_string).collect();
            (None, Some(sub))
        }
        (u, _) => (u, None),
    };
    Ok(TicketQuery {
        state: p.state,
        unit,
        units,
        within: None,
        before,
        offset,
        limit,
        category,
        text,
        overdue_at: overdue.then(|| app.now()),
        sort,
        ..TicketQuery::default()
    })
}

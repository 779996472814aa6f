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
use crate::repo::tickets::TicketQuery;
use crate::views::ticket::{render, shows_contact};

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/api/v1/tickets", post(create_ticket).get(list_tickets))
        .route("/api/v1/tickets/{id}", get(get_ticket))
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
    let input = parse_action(&action, &body)?;
    let meta = command_meta(
        &headers,
        "POST",
        &format!("/api/v1/tickets/{id}/{action}"),
        &body,
    )?;
    Ok(reply(app.act(&actor, id, input, meta).await?))
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

#[utoipa::path(
    get, path = "/api/v1/tickets", tag = "tickets",
    summary = "The queue",
    description = "Tickets within the token's unit subtree, newest first. With \
        `overdue=true`: open tickets past a deadline, oldest deadline first.",
    params(
        ("state" = Option<crate::domain::State>, Query, description = "Only tickets in this state"),
        ("unit" = Option<String>, Query, description = "Only tickets whose lead unit is this one (with `overdue=true`: within this unit's subtree)"),
        ("overdue" = Option<bool>, Query, description = "`true`: the overdue list"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Page size, default 50"),
    ),
    responses(
        (status = 200, description = "A page of tickets (reporter not included)", body = TicketList),
        (status = 422, description = "A bad parameter (`field` names it)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_tickets(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<TicketList>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
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
        .map(|t| format!("{}_{}", t.created_at.timestamp_micros(), t.id));
    let items: Vec<Value> = tickets.iter().map(|t| render(t, now, None)).collect();
    Ok(axum::Json(TicketList { items, next_cursor }))
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
) -> Result<axum::Json<TicketList>, AppError> {
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
        return Ok(axum::Json(TicketList {
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
        crate::projections::stats::overdue_tickets(&app.store.pool(), scope, now, offset, limit)
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
    let next_cursor = full_page.then(|| format!("o{}", offset + limit));
    Ok(axum::Json(TicketList { items, next_cursor }))
}

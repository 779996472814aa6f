//! The global feed by position and the live SSE stream, both gap-safe (they read
//! through `EventStore::read_all`) and both limited to what the caller may see.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures::Stream;
use serde::Deserialize;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{IntervalStream, WatchStream};
use uuid::Uuid;

use super::limits::{Limits, SseSlot};
use super::server::Shutdown;
use super::{EventList, event_json, sorted_json};
use crate::app::SharedApp;
use crate::appraisal::ledger::is_appraisal_event;
use crate::auth::policy;
use crate::auth::{Actor, Role};
use crate::error::AppError;
use crate::store::RecordedEvent;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/api/v1/events", get(list_events))
        .route("/api/v1/events/stream", get(stream_events))
}

#[derive(Deserialize)]
struct FeedParams {
    after: Option<i64>,
    limit: Option<i64>,
}

/// Keeps only the events of tickets the actor may see, and the appraisal's events
/// of the units it appraises or analyses ([`appraisal_visible`]).
async fn visible(
    app: &SharedApp,
    actor: &Actor,
    events: Vec<RecordedEvent>,
) -> Result<Vec<RecordedEvent>, AppError> {
    let org = app.org.get();
    // Only an actor of the root unit (admin or not) sees every ticket's stream.
    let everything = policy::visible_units(&org, actor).is_none();
    if everything && !events.iter().any(|e| is_appraisal_event(&e.event_type)) {
        return Ok(events);
    }
    let mut seen: HashMap<Uuid, bool> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let ok = match seen.get(&e.stream_id) {
            Some(ok) => *ok,
            None if is_appraisal_event(&e.event_type) => {
                let ok = appraisal_visible(app, &org, actor, &e).await?;
                seen.insert(e.stream_id, ok);
                ok
            }
            None if everything => true,
            None => {
                // A ticket frozen by a failed verification: its view, which
                // decides who sees it, cannot be trusted.
                let ok = !app.integrity.is_tampered(e.stream_id)
                    && app
                        .load(e.stream_id)
                        .await?
                        .is_some_and(|t| policy::can_see(&org, actor, &t));
                seen.insert(e.stream_id, ok);
                ok
            }
        };
        if ok {
            out.push(e);
        }
    }
    Ok(out)
}

/// Who sees the appraisal's events in the feed: appraisers, analysts and admins,
/// those of the root unit all of them, the others those about a unit or township
/// within theirs (a withdrawal is judged by the entry it withdraws; a bulletin of
/// the whole organisation, or a grade of a department, only at the root). The
/// other roles never see them: a handler does not follow its own appraisal live.
async fn appraisal_visible(
    app: &SharedApp,
    org: &crate::org::Org,
    actor: &Actor,
    e: &RecordedEvent,
) -> Result<bool, AppError> {
    if !matches!(actor.role, Role::Appraiser | Role::Analyst | Role::Admin) {
        return Ok(false);
    }
    if actor.unit == org.root().code {
        return Ok(true);
    }
    let first;
    let about = if e.version > 1 {
        first = app.store.read_stream(e.stream_id).await?;
        first.first().map_or(&e.data, |f| &f.data)
    } else {
        &e.data
    };
    Ok(["unit", "township"].iter().any(|k| {
        about
            .get(*k)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|u| org.is_within(u, &actor.unit))
    }))
}

#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    summary = "The global feed by position",
    description = "Events after `after` in position order, limited to the tickets the \
        token may see. Gap-safe: an event is never skipped, even one whose transaction \
        commits late.",
    params(
        ("after" = Option<i64>, Query, minimum = 0, description = "Events after this position (default 0)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Events read, default 100 (a page may hold fewer: only what the token may see)"),
    ),
    responses(
        (status = 200, description = "A page of the feed", body = EventList),
        (status = 422, description = "A bad parameter (`field` names it)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_events(
    State(app): State<SharedApp>,
    actor: Actor,
    params: Result<Query<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let after = p.after.unwrap_or(0);
    if after < 0 {
        return Err(AppError::invalid("after", "must be a position (0 or more)"));
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid("limit", "must be between 1 and 1000"));
    }
    let events = app.store.read_all(after, limit).await?;
    let last = events.last().map(|e| e.position);
    let events = visible(&app, &actor, events).await?;
    sorted_json(&EventList {
        items: events.iter().map(event_json).collect(),
        // The position to pass as `after` next; it moves past events the caller
        // may not see, so a filtered page may be short but never stalls.
        next_cursor: last,
    })
}

/// How long the stream waits for a local wake-up before looking again; appends by
/// other instances are seen within this.
const POLL: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
struct StreamParams {
    after: Option<i64>,
    /// `now`: start at the current end of the feed (what is appended from now on)
    /// instead of its beginning. A reconnect's `Last-Event-ID` still wins.
    from: Option<String>,
    /// The token, for browsers: `EventSource` cannot send an Authorization header.
    /// Only this route reads it, and it is never logged (the request span records
    /// the path without the query string).
    access_token: Option<String>,
    /// Only the events of this ticket (its id): what a ticket page follows.
    ticket: Option<String>,
}

/// The ticket a stream is limited to (`?ticket=`): its id, of a ticket the caller
/// may see (a ticket it may not see is answered as one that does not exist).
async fn stream_ticket(
    app: &SharedApp,
    actor: &Actor,
    ticket: Option<&str>,
) -> Result<Option<Uuid>, AppError> {
    let Some(raw) = ticket else {
        return Ok(None);
    };
    let id = Uuid::parse_str(raw.trim()).map_err(|_| {
        AppError::invalid(
            "ticket",
            "must be a ticket id (a UUID, as in the ticket's `id`), not its number",
        )
    })?;
    let org = app.org.get();
    let visible = !app.integrity.is_tampered(id)
        && app
            .load(id)
            .await?
            .is_some_and(|t| policy::can_see(&org, actor, &t));
    if !visible {
        return Err(AppError::NotFound(format!("no ticket {id}")));
    }
    Ok(Some(id))
}

/// The caller of the stream: the bearer header, or else `?access_token=`.
async fn stream_actor(
    app: &SharedApp,
    from_header: Result<Actor, AppError>,
    access_token: Option<&str>,
) -> Result<Actor, AppError> {
    match (from_header, access_token) {
        (Ok(actor), _) => Ok(actor),
        (Err(AppError::Unauthorized(_)), Some(token)) if !token.trim().is_empty() => app
            .tokens
            .authenticate(&app.store.pool(), token.trim())
            .await?
            .map_err(|refused| AppError::Unauthorized(refused.message())),
        (Err(e), _) => Err(e),
    }
}

/// The position of the last event the gap-safe feed can already return: starting
/// after it skips nothing that commits later.
async fn feed_head(app: &SharedApp) -> Result<i64, AppError> {
    Ok(app.store.feed_horizon().await?)
}

#[utoipa::path(
    get, path = "/api/v1/events/stream", tag = "events",
    summary = "The live feed (Server-Sent Events)",
    description = "Every event the token may see, as it is appended: SSE `id` is the \
        position, `event` the type, `data` the event JSON (the `Event` schema). Resumes \
        after `Last-Event-ID` (or `after`).",
    params(
        ("after" = Option<i64>, Query, minimum = 0, description = "Start after this position"),
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "The last position received (set by EventSource on reconnect); wins over `after`"),
        ("ticket" = Option<uuid::Uuid>, Query, description = "Only the events of this ticket (its `id`), one the token may see"),
    ),
    responses(
        (status = 200, description = "An endless event stream", content_type = "text/event-stream", body = crate::http::openapi::StreamMessage),
        (status = 404, description = "`ticket` names no ticket the token may see", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad parameter or Last-Event-ID", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn stream_events(
    State(app): State<SharedApp>,
    Extension(limits): Extension<Arc<Limits>>,
    shutdown: Option<Extension<Shutdown>>,
    actor: Result<Actor, AppError>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let Query(p) = params.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let actor = stream_actor(&app, actor, p.access_token.as_deref()).await?;
    let ticket = stream_ticket(&app, &actor, p.ticket.as_deref()).await?;
    // As the feed: a position is 0 or more.
    if p.after.is_some_and(|a| a < 0) {
        return Err(AppError::invalid("after", "must be a position (0 or more)"));
    }
    let start = match p.from.as_deref() {
        None => None,
        Some("now") => Some(feed_head(&app).await?),
        Some(_) => return Err(AppError::invalid("from", "must be `now` (or leave it out)")),
    };
    let from_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| AppError::invalid("Last-Event-ID", "must be an event position"))
        })
        .transpose()?;
    let after = from_header.or(start).or(p.after).unwrap_or(0).max(0);
    // Held by the stream: the place is freed when the stream is dropped, which is
    // when the client goes away.
    let slot = limits.sse_slot(&actor.token_id, &app.metrics)?;
    let shutdown = shutdown.map(|Extension(s)| s).unwrap_or_default();
    let mut poll = tokio::time::interval(POLL.min(app.tokens.ttl()));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Wake-ups: every append of this instance (the store's watch channel), and a
    // look every POLL for the appends of other instances (the first at once).
    let ticks = WatchStream::from_changes(app.store.appended())
        .map(|_| ())
        .merge(IntervalStream::new(poll).map(|_| ()));
    let feed = Feed {
        _subscribed: Subscribed::new(app.metrics.sse_subscribers.clone()),
        app,
        actor,
        ticket,
        after,
        checked: std::time::Instant::now(),
        behind: false,
        pending: VecDeque::new(),
        ticks: Box::pin(ticks),
        shutdown,
        closed: false,
        _slot: slot,
    };
    let stream = futures::stream::unfold(feed, Feed::next).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Events read at once by one subscriber: a full page means it is behind, and the
/// next page is read without waiting.
const PAGE: i64 = 500;

/// How soon an `EventSource` whose stream ended at shutdown reconnects (the SSE
/// `retry` field): by then the load balancer sends it to another instance.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// One subscriber's live feed: where it is, what it may see, and what wakes it.
struct Feed {
    app: SharedApp,
    actor: Actor,
    /// `?ticket=`: only this ticket's events.
    ticket: Option<Uuid>,
    /// The last position read (seen or filtered out).
    after: i64,
    /// When the token was last asked of the database.
    checked: std::time::Instant,
    /// The last page was full: read the next one at once.
    behind: bool,
    /// Read and visible, not yet sent.
    pending: VecDeque<Event>,
    ticks: Pin<Box<dyn Stream<Item = ()> + Send>>,
    shutdown: Shutdown,
    /// The `close` event was sent: the stream ends.
    closed: bool,
    _subscribed: Subscribed,
    _slot: SseSlot,
}

impl Feed {
    /// The next event to send, or None when the stream ends: its token no longer
    /// works, or the instance is shutting down (after a last `close` event, so
    /// that the client reconnects elsewhere with its Last-Event-ID).
    async fn next(mut self) -> Option<(Event, Feed)> {
        loop {
            if self.closed {
                return None;
            }
            if let Some(e) = self.pending.pop_front() {
                return Some((e, self));
            }
            let shutdown = self.shutdown.clone();
            tokio::select! {
                biased;
                () = shutdown.closing() => {
                    self.closed = true;
                    return Some((close_event(), self));
                }
                more = self.read() => {
                    if !more {
                        return None;
                    }
                }
            }
        }
    }

    /// Waits for a wake-up unless behind, then reads the next page into
    /// `pending`; false when the stream must end (its token no longer works).
    async fn read(&mut self) -> bool {
        if !self.behind && self.ticks.next().await.is_none() {
            return false;
        }
        let app = &self.app;
        // The token was valid when the stream opened; it is asked again of the
        // database at least once per the token cache's time to live, and the stream
        // ends once it is revoked or expired (the client's reconnection then gets
        // the 401).
        if self.checked.elapsed() >= app.tokens.ttl() {
            match crate::auth::still_valid(&app.store.pool(), &self.actor.token_id).await {
                Ok(Ok(())) => self.checked = std::time::Instant::now(),
                Ok(Err(refused)) => {
                    tracing::info!(token = %self.actor.token_id, reason = %refused.message(), "live event stream closed: its token no longer works");
                    return false;
                }
                // The database is unreachable: the read below fails as well;
                // look again on the next round.
                Err(e) => tracing::warn!(error = %e, "event stream token check failed; retrying"),
            }
        }
        let batch = match app.store.read_all(self.after, PAGE).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "event stream read failed; retrying");
                self.behind = false;
                return true;
            }
        };
        let Some(last) = batch.last().map(|e| e.position) else {
            self.behind = false;
            return true;
        };
        let full = batch.len() as i64 == PAGE;
        let batch = match self.ticket {
            Some(id) => batch.into_iter().filter(|e| e.stream_id == id).collect(),
            None => batch,
        };
        match visible(app, &self.actor, batch).await {
            Ok(events) => {
                self.after = last;
                self.behind = full;
                self.pending.extend(events.iter().map(|e| {
                    Event::default()
                        .id(e.position.to_string())
                        .event(e.event_type.clone())
                        .data(event_json(e).to_json())
                }));
            }
            // Not advancing: the same page is read again after the next wake-up.
            Err(e) => {
                tracing::warn!(error = %e, "event stream filter failed");
                self.behind = false;
            }
        }
        true
    }
}

/// The last event of a stream ended by the instance's shutdown. It has no `id`,
/// so the client's Last-Event-ID stays that of the last event it received.
fn close_event() -> Event {
    Event::default()
        .event("close")
        .retry(RECONNECT_AFTER)
        .data(
            serde_json::json!({
                "reason": "shutdown",
                "detail": "this instance is shutting down: reconnect (with Last-Event-ID) to continue where you were",
            })
            .to_string(),
        )
}

/// One open stream in `yiwang_sse_subscribers`, for as long as it lives.
struct Subscribed(prometheus::IntGauge);

impl Subscribed {
    fn new(gauge: prometheus::IntGauge) -> Subscribed {
        gauge.inc();
        Subscribed(gauge)
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.dec();
    }
}

//! The SLA watcher (DESIGN §2, issue 3 item 5): a background task that, every
//! interval, looks at every ASSIGNED ticket and appends the `SlaWarning` /
//! `SlaBreached` events that [`sla_events`] says are due.
//!
//! ## Exactly once, with any number of instances
//! The decision is a pure function of the ticket's stream (its folded state, the
//! marks of the SLA events already in it) and the time. Each append names the
//! stream version it was decided against (`expected_version`, with the head hash
//! from the ticket view, as `App::act` does), so when two `serve` processes decide
//! the same warning, the store lets exactly one of them through and refuses the
//! other with a conflict. The loser reloads the ticket from its stream and decides
//! again at once; the events are then in the stream, so it decides nothing. A
//! ticket that keeps conflicting (someone is acting on it) is left for the next
//! round. Nothing here needs a lock, a leader or a table of its own.
//!
//! The events are appended with `occurred_at` = the watcher's clock when it saw
//! them due (the `due_at` in the payload says which deadline), metadata actor
//! `sla-watcher`, role `system`, no unit, together with the updated ticket view row
//! in the same transaction.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::app::App;
use crate::app::decide::{new_events, view_row};
use crate::domain::{DecodeError, Ticket, TicketEvent, sla_events};
use crate::repo::tickets::{self, TicketQuery};
use crate::store::{AppendRequest, Metadata, StoreError};

/// The actor named in the metadata of the watcher's events.
pub const ACTOR: &str = "sla-watcher";
/// The role named in the metadata of the watcher's events.
pub const ROLE: &str = "system";

/// Open tickets read per query while listing.
const PAGE: i64 = 500;

/// `--sla-warn-fraction`: a number greater than 0 and at most 1.
pub fn parse_warn_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; give a fraction such as 0.8"))?;
    if f > 0.0 && f <= 1.0 {
        Ok(f)
    } else {
        Err(format!(
            "{s} is out of range: the warning falls at a fraction of the time, greater than 0 and at most 1 (0.8 = 80%)"
        ))
    }
}

/// Starts the watcher: one round at once, then one every `interval`. A round that
/// fails (database down) or even panics is logged and the next round runs anyway.
pub fn spawn(app: Arc<App>, interval: Duration) -> tokio::task::JoinHandle<()> {
    let interval = interval.max(Duration::from_millis(10));
    tracing::info!(
        interval_secs = interval.as_secs_f64(),
        warn_fraction = app.sla.settings.warn_fraction,
        "SLA watcher started"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            let round = tokio::spawn({
                let app = app.clone();
                async move { run_once(&app).await }
            });
            match round.await {
                Ok(Ok(n)) => tracing::debug!(
                    appended = n,
                    secs = started.elapsed().as_secs_f64(),
                    "SLA watcher round done"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "SLA watcher round failed; retrying next round")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SLA watcher round panicked; retrying next round")
                }
            }
        }
    })
}

/// One round: every ASSIGNED ticket, its due SLA events appended. Returns how many
/// events this call appended (those another instance appended first are not
/// counted). An error is returned only when the tickets cannot be listed; a
/// ticket that fails is logged and skipped until the next round.
pub async fn run_once(app: &App) -> Result<usize, StoreError> {
    let mut appended = 0;
    let mut before = None;
    loop {
        let rows = tickets::list_tickets(
            &app.store.pool(),
            &TicketQuery {
                state: Some(crate::domain::State::Assigned.as_str().to_string()),
                before,
                limit: PAGE,
                ..TicketQuery::default()
            },
        )
        .await?;
        let Some(last) = rows.last() else { break };
        before = Some((last.created_at, last.id));
        let full_page = rows.len() as i64 == PAGE;
        for row in rows {
            let id = row.id;
            // A doc of an older shape is read from the stream instead.
            let loaded = match serde_json::from_str::<Ticket>(&row.doc) {
                Ok(t) => Ok(Some((t, Some(row.head_hash)))),
                Err(_) => load_from_stream(app, id).await,
            };
            let outcome = match loaded {
                Ok(Some(loaded)) => watch_ticket(app, loaded).await,
                Ok(None) => Ok(0),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(n) => appended += n,
                Err(e) => {
                    tracing::warn!(ticket = %id, error = %e, "SLA watcher skipped a ticket; retrying next round")
                }
            }
            // A ticket with nothing due is decided without awaiting anything, so a
            // page of 500 would hold this runtime thread for its whole length, and
            // the commands queued on it behind. Hand the thread back now and then.
            // (A round over a year's 1,000,000 events took 65 ms in all.)
            tokio::task::coop::consume_budget().await;
        }
        if !full_page {
            break;
        }
    }
    Ok(appended)
}

/// Decides and appends one ticket's SLA events. On a conflict (the ticket moved,
/// or another watcher appended first) decides once more from the stream itself.
async fn watch_ticket(
    app: &App,
    (mut ticket, mut head): (Ticket, Option<String>),
) -> Result<usize, StoreError> {
    for attempt in 0..2 {
        let now = app.clock.now();
        let events = sla_events(&ticket, now, app.sla.settings.warn_fraction);
        if events.is_empty() {
            return Ok(0);
        }
        let mut next = ticket.clone();
        for e in &events {
            next = Ticket::apply(Some(next), ticket.id, e, now);
        }
        let req = AppendRequest {
            stream_id: ticket.id,
            expected_version: ticket.version,
            prev_hash: head.clone(),
            events: new_events(&events, now),
            metadata: Metadata {
                actor: ACTOR.to_string(),
                role: ROLE.to_string(),
                unit: None,
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                idempotency_key: None,
                request_id: None,
            },
            idempotency: None,
            views: vec![std::sync::Arc::new(view_row(&next))],
        };
        match app.append_ticket(req, &next, &events).await {
            Ok(_) => {
                tracing::info!(
                    ticket = %ticket.id,
                    number = %ticket.number,
                    unit = ticket.unit.as_deref().unwrap_or(""),
                    events = %describe(&events),
                    version = next.version,
                    "SLA events appended"
                );
                return Ok(events.len());
            }
            Err(StoreError::Conflict { .. }) if attempt == 0 => {
                tracing::debug!(ticket = %ticket.id, "SLA append lost a race; deciding again from the stream");
                match load_from_stream(app, ticket.id).await? {
                    Some((t, h)) => (ticket, head) = (t, h),
                    None => return Ok(0),
                }
            }
            Err(StoreError::Conflict { .. }) => {
                tracing::debug!(ticket = %ticket.id, "the ticket keeps changing; leaving it for the next round");
                return Ok(0);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(0)
}

/// The ticket folded from its stream, with the hash of its last event: the
/// authority when the view row is of an older shape or behind.
async fn load_from_stream(
    app: &App,
    id: Uuid,
) -> Result<Option<(Ticket, Option<String>)>, StoreError> {
    let events = app.store.read_stream(id).await?;
    // Not a ticket's stream (an appraisal entry's): nothing to watch.
    if events
        .first()
        .is_some_and(|e| crate::appraisal::ledger::is_appraisal_event(&e.event_type))
    {
        return Ok(None);
    }
    let decoded = events
        .iter()
        .map(|e| {
            TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data)
                .map(|ev| (ev, e.occurred_at))
                .map_err(|err| match err {
                    DecodeError::TooNew { .. } => {
                        StoreError::Unreadable(format!("event {}: {err}", e.position))
                    }
                    _ => StoreError::Corrupt(format!("event {} unreadable: {err}", e.position)),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let state = Ticket::fold(id, decoded.iter().map(|(ev, at)| (ev, *at)));
    Ok(state.map(|t| (t, events.last().map(|e| e.hash.clone()))))
}

/// `SlaWarning(sign, 2026-10-09T00:00:00+08:00), …` for the log line.
fn describe(events: &[TicketEvent]) -> String {
    events
        .iter()
        .map(|e| match e {
            TicketEvent::SlaWarning(w) => format!(
                "SlaWarning({}, {})",
                w.deadline.as_str(),
                w.due_at.to_rfc3339()
            ),
            TicketEvent::SlaBreached(b) => format!(
                "SlaBreached({}, {})",
                b.deadline.as_str(),
                b.due_at.to_rfc3339()
            ),
            other => other.type_name().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_fraction_is_a_fraction() {
        assert_eq!(parse_warn_fraction("0.8"), Ok(0.8));
        assert_eq!(parse_warn_fraction("1"), Ok(1.0));
        for bad in ["0", "-0.1", "1.01", "NaN", "inf", "eighty", ""] {
            assert!(parse_warn_fraction(bad).is_err(), "{bad:?} accepted");
        }
    }
}

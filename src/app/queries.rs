//! Ticket reads: one ticket as an actor may see it ([`App::get`]), the queue
//! ([`App::list`]), the loads from the ticket view or the event log (`load*`), and
//! the checks of a command that read other tickets: [`App::check_linked`] (a linked
//! ticket must be readable) and [`App::check_frozen`] (a ticket a verification
//! froze).

use serde_json::Value;
use uuid::Uuid;

use super::App;
use crate::auth::Actor;
use crate::auth::policy::{self, Action};
use crate::domain::*;
use crate::error::AppError;
use crate::repo::{contacts, tickets, tickets::TicketQuery};
use crate::views::ticket::{render, reporter_json};

impl App {
    /// A ticket a command links to (a new ticket's `related_to`, a close's
    /// `duplicate_of`) must be one the actor may read. Anything else, a ticket that
    /// does not exist or one outside the actor's scope, answers the same 404, so that
    /// the link neither reaches into another unit's figures (a repeat complaint
    /// counts against the earlier ticket's unit) nor tells whether a ticket exists.
    pub async fn check_linked(
        &self,
        actor: &Actor,
        field: &str,
        linked: Option<Uuid>,
    ) -> Result<(), AppError> {
        let Some(id) = linked else { return Ok(()) };
        let readable = match self.load(id).await? {
            Some(t) => policy::check(&self.org.get(), actor, Action::Read, &t).is_ok(),
            None => false,
        };
        if readable {
            Ok(())
        } else {
            Err(AppError::NotFound(format!(
                "{field} names no ticket {id} that this token may read"
            )))
        }
    }

    /// The state a command decides on: this process's last write if it has one
    /// (`true`: a cached copy), else the stored state.
    pub(super) async fn load_for_command(
        &self,
        id: Uuid,
    ) -> Result<(Ticket, Option<String>, bool), AppError> {
        if let Some((t, h)) = self.recent.get(id) {
            return Ok((t, Some(h), true));
        }
        let (t, h) = self
            .load_with_head(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
        Ok((t, h, false))
    }

    pub async fn load(&self, id: Uuid) -> Result<Option<Ticket>, AppError> {
        Ok(self.load_with_head(id).await?.map(|(t, _)| t))
    }

    /// The ticket and the hash of its stream's last event (None when unknown).
    pub async fn load_with_head(
        &self,
        id: Uuid,
    ) -> Result<Option<(Ticket, Option<String>)>, AppError> {
        if let Some(row) = tickets::ticket_view(&self.store.pool(), id).await?
            && let Ok(t) = serde_json::from_str::<Ticket>(&row.doc)
        {
            return Ok(Some((t, Some(row.head_hash))));
        }
        self.load_from_stream(id).await
    }

    /// The ticket folded from its stream (each event read through the upcasters of
    /// its schema version), with the hash of its last event: what the view holds,
    /// read from the log itself.
    pub async fn load_from_stream(
        &self,
        id: Uuid,
    ) -> Result<Option<(Ticket, Option<String>)>, AppError> {
        let events = self.store.read_stream(id).await?;
        // An appraisal entry's, grade's or bulletin's stream is no ticket: a ticket
        // id that happens to name one is not found (404), not unreadable.
        if events
            .first()
            .is_some_and(|e| crate::appraisal::ledger::is_appraisal_event(&e.event_type))
        {
            return Ok(None);
        }
        // Decoded in order, so the first unreadable event is the one named.
        let decoded = events
            .iter()
            .map(|e| {
                TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data)
                    .map(|ev| (ev, e.occurred_at))
                    .map_err(|err| {
                        AppError::Internal(anyhow::anyhow!(
                            "event {} unreadable: {err}",
                            e.position
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = Ticket::fold(id, decoded.iter().map(|(ev, at)| (ev, *at)));
        Ok(state.map(|t| (t, events.last().map(|e| e.hash.clone()))))
    }

    /// Err when the latest verification froze ticket `id`: 409 `integrity.tampered`
    /// to those who may see it, judged on the fold of its events (its view is what is
    /// not trusted), and the 404 of a ticket that does not exist to everyone else, so
    /// that a frozen ticket's existence does not leak beyond its scope either.
    pub async fn check_frozen(&self, actor: &Actor, id: Uuid) -> Result<(), AppError> {
        if !self.integrity.is_tampered(id) {
            return Ok(());
        }
        match self.load_from_stream(id).await {
            Ok(Some((t, _))) if !policy::can_see(&self.org.get(), actor, &t) => {
                Err(AppError::NotFound(format!("no ticket {id}")))
            }
            Ok(None) => Err(AppError::NotFound(format!("no ticket {id}"))),
            // Visible, or events too damaged to fold: the freeze is the answer.
            _ => self.integrity.check(id),
        }
    }

    /// One ticket as the actor may see it, with the reporter's contact (masked
    /// unless the actor needs it).
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<(Ticket, Value), AppError> {
        self.check_frozen(actor, id).await?;
        let t = self
            .load(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
        let org = self.org.get();
        policy::check(&org, actor, Action::Read, &t)?;
        let reporter = match t.reporter_ref {
            Some(r) => contacts::contact(&self.store.pool(), r)
                .await?
                .map(|c| reporter_json(&c, policy::sees_contact(&org, actor, &t))),
            None => None,
        };
        let v = render(&t, self.now(), reporter);
        Ok((t, v))
    }

    /// One ticket by its number, as [`App::get`] answers it by id; a number that
    /// names no ticket the actor may read is not found, whether it exists or not.
    pub async fn get_by_number(
        &self,
        actor: &Actor,
        number: &str,
    ) -> Result<(Ticket, Value), AppError> {
        let not_found = || AppError::NotFound(format!("no ticket numbered {number:?}"));
        let row = tickets::ticket_by_number(&self.store.pool(), number)
            .await?
            .ok_or_else(not_found)?;
        match self.get(actor, row.id).await {
            Err(AppError::NotFound(_)) | Err(AppError::Forbidden(_)) => Err(not_found()),
            r => r,
        }
    }

    /// A page of the queue and the count of all the tickets that match (`total`),
    /// within the actor's scope. `fetched` is how many rows the page read before
    /// those the actor may not see were left out (the next page starts after them).
    pub async fn queue(&self, actor: &Actor, mut q: TicketQuery) -> Result<QueuePage, AppError> {
        let org = self.org.get();
        q.within = policy::visible_units(&org, actor);
        let pool = self.store.pool();
        let (rows, total) = tickets::page_with_total(&pool, &q).await?;
        let fetched = rows.len();
        let tickets = self.visible(actor, rows).await?;
        Ok(QueuePage {
            tickets,
            fetched,
            total,
        })
    }

    pub async fn list(&self, actor: &Actor, mut q: TicketQuery) -> Result<Vec<Ticket>, AppError> {
        let org = self.org.get();
        q.within = policy::visible_units(&org, actor);
        let rows = tickets::list_tickets(&self.store.pool(), &q).await?;
        self.visible(actor, rows).await
    }

    /// The tickets of `rows` the actor may see, in order.
    async fn visible(
        &self,
        actor: &Actor,
        rows: Vec<tickets::TicketViewRow>,
    ) -> Result<Vec<Ticket>, AppError> {
        let org = self.org.get();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // A frozen ticket's view decides nothing (a failed verification).
            if self.integrity.is_tampered(r.id) {
                continue;
            }
            match serde_json::from_str::<Ticket>(&r.doc) {
                Ok(t) if policy::can_see(&org, actor, &t) => out.push(t),
                Ok(_) => {}
                Err(_) => {
                    if let Some(t) = self.load(r.id).await?
                        && policy::can_see(&org, actor, &t)
                    {
                        out.push(t);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A page of the queue ([`App::queue`]).
pub struct QueuePage {
    pub tickets: Vec<Ticket>,
    /// Rows read for the page, seen or not.
    pub fetched: usize,
    /// Tickets matching the filters, on every page.
    pub total: i64,
}

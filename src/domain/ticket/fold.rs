//! The fold: [`Ticket::apply`] turns one event into the next state (events are
//! facts, so it never refuses), [`Ticket::fold`] a whole stream.

use super::*;

impl Ticket {
    /// Folds a whole stream. Returns None for an empty stream.
    pub fn fold<'a>(
        id: Uuid,
        events: impl IntoIterator<Item = (&'a TicketEvent, DateTime<Utc>)>,
    ) -> Option<Ticket> {
        let mut state: Option<Ticket> = None;
        for (e, at) in events {
            state = Some(Ticket::apply(state, id, e, at));
        }
        state
    }

    /// Applies one event. Events are facts: apply never refuses.
    pub fn apply(
        state: Option<Ticket>,
        id: Uuid,
        event: &TicketEvent,
        at: DateTime<Utc>,
    ) -> Ticket {
        let mut t = match (state, event) {
            (None, TicketEvent::TicketAccepted(a)) => Ticket {
                id,
                number: a.number.clone(),
                state: State::Accepted,
                version: 0,
                source: a.source,
                category: a.category.clone(),
                urgency: a.urgency,
                title: a.title.clone(),
                description: a.description.clone(),
                location: a.location.clone(),
                reporter_ref: a.reporter_ref,
                related_to: a.related_to,
                suggested_unit: a.suggested_unit.clone(),
                centre: a.centre.clone(),
                unit: None,
                co_units: vec![],
                at_centre: false,
                handler: None,
                signed_at: None,
                assigned_at: None,
                handled_at: None,
                sign_due_at: None,
                handle_due_at: None,
                pending_extension_days: None,
                returns: 0,
                returned_by: Vec::new(),
                return_reason: None,
                supervisions: 0,
                extensions: 0,
                reworks: 0,
                self_handled: false,
                result: None,
                satisfaction: None,
                close_code: None,
                duplicate_of: None,
                created_at: at,
                updated_at: at,
                closed_at: None,
                handle_started_at: None,
                sla: SlaMarks::default(),
                photos: Vec::new(),
            },
            (Some(t), _) => t,
            // A stream that does not start with TicketAccepted is not a ticket; the
            // store never holds one (decide refuses it), so this is a broken log.
            (None, other) => panic!("ticket stream {id} starts with {}", other.type_name()),
        };
        t.version += 1;
        t.updated_at = at;
        match event {
            TicketEvent::TicketAccepted(a) => t.add_photos(&a.photos, PhotoStage::Accepted),
            TicketEvent::TicketAssigned(a) => {
                t.state = State::Assigned;
                t.centre = a.from_unit.clone();
                t.unit = Some(a.unit.clone());
                t.co_units = a.co_units.clone();
                t.return_reason = None;
                t.at_centre = a.to_centre;
                t.handler = None;
                t.signed_at = None;
                t.assigned_at = Some(at);
                t.sign_due_at = a.sign_due_at;
                t.handle_due_at = a.handle_due_at;
                t.handle_started_at = a.handle_due_at.map(|_| at);
                t.pending_extension_days = None;
                t.sla = SlaMarks::default();
            }
            TicketEvent::TicketSigned(s) => {
                t.handler = Some(s.handler.clone());
                t.signed_at = Some(at);
            }
            TicketEvent::TicketReturned(r) => {
                t.state = State::Accepted;
                t.returns += 1;
                if !t.returned_by.contains(&r.unit) {
                    t.returned_by.push(r.unit.clone());
                }
                t.return_reason = Some(r.reason.clone());
                t.centre = r.to_unit.clone();
                t.unit = None;
                t.co_units.clear();
                t.at_centre = false;
                t.handler = None;
                t.signed_at = None;
                t.assigned_at = None;
                t.sign_due_at = None;
                t.handle_due_at = None;
                t.handle_started_at = None;
                t.pending_extension_days = None;
                t.sla = SlaMarks::default();
            }
            TicketEvent::ExtensionRequested(r) => t.pending_extension_days = Some(r.days),
            TicketEvent::ExtensionDecided(d) => {
                t.pending_extension_days = None;
                if d.approved {
                    t.extensions += 1;
                    if d.handle_due_at.is_some() {
                        t.handle_due_at = d.handle_due_at;
                        t.handle_started_at = Some(at);
                        t.sla.clear_handle();
                    }
                }
            }
            TicketEvent::TicketSupervised(s) => t.supervisions = s.count,
            TicketEvent::TicketHandled(h) => {
                t.state = State::Handled;
                t.handled_at = Some(at);
                // Reporting the result settles any extension still waiting.
                t.pending_extension_days = None;
                t.result = Some(h.result.clone());
                t.add_photos(&h.photos, PhotoStage::Handled);
                if h.self_handled {
                    t.self_handled = true;
                    t.unit = t.location.grid.clone();
                }
            }
            TicketEvent::VerificationPassed(_) => t.state = State::Verified,
            TicketEvent::VerificationFailed(f) => {
                t.state = State::Assigned;
                t.reworks += 1;
                t.handled_at = None;
                t.handle_due_at = Some(f.handle_due_at);
                t.handle_started_at = Some(at);
                t.sla.clear_handle();
                // A self-handled report that fails verification goes back to the
                // reporter's own grid, which signed for it by reporting it.
                if t.signed_at.is_none() {
                    t.signed_at = Some(at);
                }
            }
            TicketEvent::CitizenFeedbackRecorded(f) => t.satisfaction = Some(f.satisfaction),
            TicketEvent::TicketCommented(_) => {}
            TicketEvent::TicketClosed(c) => {
                t.state = State::Closed;
                t.close_code = Some(c.code);
                t.duplicate_of = c.duplicate_of;
                t.closed_at = Some(at);
            }
            TicketEvent::SlaWarning(w) => match w.deadline {
                DeadlineKind::Sign => t.sla.sign_warned = Some(w.due_at),
                DeadlineKind::Handle => t.sla.handle_warned = Some(w.due_at),
            },
            TicketEvent::SlaBreached(b) => match b.deadline {
                DeadlineKind::Sign => t.sla.sign_breached = Some(b.due_at),
                DeadlineKind::Handle => t.sla.handle_breached = Some(b.due_at),
            },
        }
        t
    }

    /// True while an open deadline has passed at `now`.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.overdue_from().is_some_and(|d| now > d)
    }

    /// The earliest open deadline: the ticket is overdue once it has passed (the
    /// sign deadline until signed, the handle deadline, while assigned). It changes
    /// only with the ticket's events, so the ticket view keeps it (`due_at`) for the
    /// overdue filter and the sort by deadline.
    pub fn overdue_from(&self) -> Option<DateTime<Utc>> {
        match self.state {
            State::Assigned => {
                let sign = self.sign_due_at.filter(|_| self.signed_at.is_none());
                match (sign, self.handle_due_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            _ => None,
        }
    }
}

//! A command decided, with nothing read or written: who may act (the policy), the
//! input against the organisation, then the aggregate. [`check_new_ticket`] and
//! [`decide_create`] for a new ticket, [`decide_action`] for an action on one; the
//! live path (`App::create` / `App::act`), the import of legacy history and the
//! load generator's seed all decide through here. Also the store's form of what
//! was decided: [`new_events`] and the ticket view's row ([`view_row`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::commands::{
    ActionInput, AssignBody, CloseBody, CommentBody, DecideBody, ExtensionBody, FeedbackBody,
    HandleBody, IfMatch, NewTicket, NoteBody, ReasonBody, SignBody, VerifyBody,
};
use crate::auth::policy;
use crate::auth::{Actor, Role};
use crate::domain::*;
use crate::error::AppError;
use crate::org::Org;
use crate::repo::tickets::TicketViewRow;
use crate::store::NewEvent;

/// What a command decided, before anything is written: the events to append and
/// the ticket's state after them.
#[derive(Clone, Debug)]
pub struct Decided {
    pub events: Vec<TicketEvent>,
    pub next: Ticket,
}

/// The checks of a new ticket against the organisation that need no store: who may
/// report where, the source, the category, the grid. (`related_to` is
/// [`App::check_linked`](super::App::check_linked).)
pub fn check_new_ticket(org: &Org, actor: &Actor, input: &NewTicket) -> Result<(), AppError> {
    policy::check_create(org, actor, input.location.grid.as_deref())?;
    check_source(actor, input.source)?;
    if org.category(&input.category).is_none() {
        return Err(AppError::invalid(
            "category",
            format!(
                "unknown category {:?}; GET /api/v1/categories lists them",
                input.category
            ),
        ));
    }
    if let Some(g) = input.location.grid.as_deref() {
        match org.unit(g) {
            Some(u) if u.kind == crate::org::UnitKind::Grid => {}
            _ => {
                return Err(AppError::invalid(
                    "location.grid",
                    format!(
                        "{g:?} is not a grid of the organisation; GET /api/v1/units?kind=grid lists them"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A ticket's `source` follows the role of whoever reports it. The area rules of the
/// appraisal (容貌管理, illegal construction found by the city) count reports by their
/// recorded source, so a client must not be able to claim another one (issue 19: a
/// hotline ticket posted as `grid` deducted from the squad; a grid worker's report
/// posted as `hotline` escaped):
/// - a grid worker reports `grid`;
/// - a hotline agent records `hotline`, or `city_supervision` (a finding the city's
///   supervision passes down reaches the district through the hotline desk);
/// - a handler records only what its own unit's patrol found, `patrol`;
/// - dispatchers and admins (a centre that takes a report by other means) choose.
fn check_source(actor: &Actor, source: Source) -> Result<(), AppError> {
    let allowed: &[Source] = match actor.role {
        Role::GridWorker => &[Source::Grid],
        Role::HotlineAgent => &[Source::Hotline, Source::CitySupervision],
        Role::Handler => &[Source::Patrol],
        _ => return Ok(()),
    };
    if allowed.contains(&source) {
        return Ok(());
    }
    let names: Vec<String> = allowed
        .iter()
        .map(|s| format!("\"{}\"", s.as_str()))
        .collect();
    Err(AppError::invalid(
        "source",
        format!(
            "a {}'s reports have the source {}, not \"{}\"",
            actor.role.as_str(),
            names.join(" or "),
            source.as_str()
        ),
    ))
}

/// The aggregate's decision on a new ticket at `now`, after [`check_new_ticket`]:
/// the receiving centre, the suggested unit, the events and the state. Pure. The
/// caller has settled the id and number (`id_number`) and the reporter's contact
/// (`reporter_ref`); `input.id` and `input.reporter` are not read here.
pub fn decide_create(
    org: &Org,
    deadlines: &(dyn Deadlines + Sync),
    actor: &Actor,
    input: NewTicket,
    (id, number): (Uuid, String),
    reporter_ref: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Decided, AppError> {
    let centre = receiving_centre(org, actor, input.location.grid.as_deref());
    let suggested_unit = input
        .location
        .grid
        .as_deref()
        .and_then(|g| org.route(&input.category, g))
        .or_else(|| {
            org.category(&input.category)
                .and_then(|c| c.default_unit.as_deref())
        })
        .map(str::to_string);
    let cmd = Command::Accept(Box::new(AcceptTicket {
        id,
        number,
        source: input.source,
        category: input.category,
        urgency: input.urgency,
        title: input.title,
        description: input.description,
        location: input.location,
        reporter_ref,
        related_to: input.related_to,
        suggested_unit,
        centre,
        self_handled: input.self_handled,
        photos: input.photos,
    }));
    let ctx = Ctx { now, deadlines };
    let events = decide(None, cmd, &ctx)?;
    let next = fold_new(None, id, &events, now);
    Ok(Decided { events, next })
}

/// A command on an existing ticket decided at `now`, as the live API decides it:
/// who may act (the policy), the If-Match precondition, the input against the
/// organisation, then the aggregate. Pure: nothing is read or written.
pub fn decide_action(
    org: &Org,
    deadlines: &(dyn Deadlines + Sync),
    actor: &Actor,
    ticket: &Ticket,
    input: ActionInput,
    now: DateTime<Utc>,
    if_match: Option<&IfMatch>,
) -> Result<Decided, AppError> {
    policy::check(org, actor, input.action(), ticket)?;
    if let Some(m) = if_match.filter(|m| !m.matches(ticket.version)) {
        let at = ticket.version;
        return Err(AppError::PreconditionFailed(match m.0.as_slice() {
            [] => format!(
                "If-Match names no version of this ticket (a weak tag, W/\"…\", never matches: \
                 strong comparison, RFC 9110 §13.1.1); the ticket is at version {at}, ETag \
                 \"{at}\": reload it and decide again"
            ),
            [v] => format!(
                "If-Match names version {v} but the ticket is at version {at}; reload it and decide again"
            ),
            vs => format!(
                "If-Match names versions {vs:?} but the ticket is at version {at}; reload it and decide again"
            ),
        }));
    }
    let cmd = to_command(org, actor, ticket, input)?;
    let ctx = Ctx { now, deadlines };
    let events = decide(Some(ticket), cmd, &ctx)?;
    let next = fold_new(Some(ticket.clone()), ticket.id, &events, now);
    Ok(Decided { events, next })
}

/// Where a new ticket waits for dispatch: the caller's centre for the hotline and
/// dispatchers; the township centre of the grid for a grid worker's report; for a
/// handler's patrol report, the township centre of the grid, else of the handler's
/// unit (a district department's: the district's).
fn receiving_centre(org: &Org, actor: &Actor, grid: Option<&str>) -> String {
    if actor.role != Role::GridWorker && org.is_centre(&actor.unit) {
        return actor.unit.clone();
    }
    grid.and_then(|g| org.township_of(g))
        .or_else(|| match actor.role {
            Role::Handler => org.township_of(&actor.unit),
            _ => None,
        })
        .unwrap_or(&org.root().code)
        .to_string()
}

fn to_command(
    org: &Org,
    actor: &Actor,
    t: &Ticket,
    input: ActionInput,
) -> Result<Command, AppError> {
    Ok(match input {
        ActionInput::Assign(AssignBody {
            unit,
            co_units,
            note,
        }) => {
            let from = policy::holding_centre(t).to_string();
            if org.unit(&unit).is_none() {
                return Err(AppError::invalid(
                    "unit",
                    format!("no unit {unit:?} in the organisation"),
                ));
            }
            if !org.may_dispatch(&from, &unit) {
                return Err(AppError::invalid(
                    "unit",
                    format!(
                        "{from} does not dispatch to {unit}; it dispatches to: {}{}",
                        org.dispatch_targets(&from).join(", "),
                        // The way there, when there is one (through a township, or up).
                        org.next_hop(&from, &unit)
                            .map(|hop| format!(" (to reach {unit}, dispatch to {hop})"))
                            .unwrap_or_default()
                    ),
                ));
            }
            // Co-units (协办) pass the same reach check as the lead: a centre names
            // only units it may dispatch to. A co-unit reads and comments on the
            // ticket (policy::check), so naming one of another township would open
            // the ticket to it.
            for (i, c) in co_units.iter().enumerate() {
                let field = format!("co_units[{i}]");
                if org.unit(c).is_none() {
                    return Err(AppError::invalid(
                        field,
                        format!("no unit {c:?} in the organisation"),
                    ));
                }
                if c == &unit {
                    return Err(AppError::invalid(
                        field,
                        format!("{c} is the lead unit already"),
                    ));
                }
                if !org.may_dispatch(&from, c) {
                    return Err(AppError::invalid(
                        field,
                        format!(
                            "{from} does not dispatch to {c}; it dispatches to: {}",
                            org.dispatch_targets(&from).join(", ")
                        ),
                    ));
                }
            }
            Command::Assign {
                to_centre: org.is_centre(&unit),
                from_unit: from,
                unit,
                co_units,
                note,
            }
        }
        ActionInput::Sign(SignBody { handler }) => Command::Sign {
            unit: t.unit.clone().unwrap_or_else(|| actor.unit.clone()),
            handler,
        },
        ActionInput::Return(ReasonBody { reason }) => Command::Return {
            unit: t.unit.clone().unwrap_or_else(|| actor.unit.clone()),
            reason,
        },
        ActionInput::RequestExtension(ExtensionBody { days, reason }) => {
            Command::RequestExtension { days, reason }
        }
        ActionInput::DecideExtension(DecideBody { approved, days }) => {
            Command::DecideExtension { approved, days }
        }
        ActionInput::Supervise(NoteBody { note }) => Command::Supervise { note },
        ActionInput::Handle(HandleBody { result, photos }) => Command::Handle { result, photos },
        ActionInput::Verify(VerifyBody { passed, note }) => Command::Verify { passed, note },
        ActionInput::Feedback(FeedbackBody { satisfaction }) => Command::Feedback { satisfaction },
        ActionInput::Comment(CommentBody { text }) => Command::Comment { text },
        ActionInput::Close(CloseBody { code, duplicate_of }) => {
            Command::Close { code, duplicate_of }
        }
    })
}

fn fold_new(
    mut state: Option<Ticket>,
    id: Uuid,
    events: &[TicketEvent],
    at: DateTime<Utc>,
) -> Ticket {
    for e in events {
        state = Some(Ticket::apply(state, id, e, at));
    }
    // decide never returns an empty list for a valid command and a new stream
    // always starts with TicketAccepted, so there is a state here.
    state.expect("decide returned at least one event")
}

/// The store's form of a ticket's events, all occurring at `at`.
pub fn new_events(events: &[TicketEvent], at: DateTime<Utc>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| {
            let (event_type, data) = e.to_parts();
            NewEvent {
                event_type,
                schema_version: e.schema_version(),
                data,
                occurred_at: at,
            }
        })
        .collect()
}

/// The ticket-view row for `t` (also written by the SLA watcher with its events).
pub fn view_row(t: &Ticket) -> TicketViewRow {
    TicketViewRow {
        id: t.id,
        number: t.number.clone(),
        state: t.state.as_str().to_string(),
        unit: t.unit.clone(),
        centre: t.centre.clone(),
        category: t.category.clone(),
        grid: t.location.grid.clone(),
        co_units: t.co_units.clone(),
        version: t.version,
        created_at: t.created_at,
        updated_at: t.updated_at,
        due_at: t.overdue_from(),
        doc: t.to_json(),
        // The append fills in the hash of the last event it appends.
        head_hash: String::new(),
    }
}

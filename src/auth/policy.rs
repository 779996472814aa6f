//! Who may do what, to which ticket: pure functions of the actor, the organisation
//! and the ticket. Every refusal names the rule that refused it.
//!
//! Scope is the actor's unit subtree. A ticket belongs to the units on its path: the
//! centre that holds or dispatched it, its lead and co-units, and the grid it was
//! reported in. Roles:
//! - grid_worker: reports inside their own grid(s); sees tickets of their grid(s).
//! - hotline_agent: accepts complaints and records follow-up feedback in scope.
//! - dispatcher (a centre): dispatches what its centre holds, to the units that centre
//!   may dispatch to; decides extensions, supervises, verifies and closes tickets in
//!   its subtree.
//! - handler (a department or agency): signs for, returns, asks for more time and
//!   reports the result of tickets whose lead unit is theirs; comments as a co-unit.
//! - analyst: reads only.
//! - admin: everything.

use super::{Actor, Role};
use crate::domain::{State, Ticket};
use crate::org::Org;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Assign,
    Sign,
    Return,
    RequestExtension,
    DecideExtension,
    Supervise,
    Handle,
    Verify,
    Feedback,
    Comment,
    Close,
}

impl Action {
    pub const COMMANDS: [Action; 12] = [
        Action::Create,
        Action::Assign,
        Action::Sign,
        Action::Return,
        Action::RequestExtension,
        Action::DecideExtension,
        Action::Supervise,
        Action::Handle,
        Action::Verify,
        Action::Feedback,
        Action::Comment,
        Action::Close,
    ];

    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Action::Read => &[
                GridWorker,
                HotlineAgent,
                Dispatcher,
                Handler,
                Analyst,
                Admin,
            ],
            Action::Create => &[GridWorker, HotlineAgent, Dispatcher, Admin],
            Action::Assign => &[Dispatcher, Admin],
            Action::Sign | Action::Handle | Action::RequestExtension => &[Handler, Admin],
            Action::Return => &[Handler, Dispatcher, Admin],
            Action::DecideExtension | Action::Supervise | Action::Verify | Action::Close => {
                &[Dispatcher, Admin]
            }
            Action::Feedback => &[HotlineAgent, Dispatcher, Admin],
            Action::Comment => &[GridWorker, HotlineAgent, Dispatcher, Handler, Admin],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

/// The centre whose dispatchers act on the ticket now.
pub fn holding_centre(t: &Ticket) -> &str {
    match (&t.unit, t.at_centre, t.state) {
        (Some(u), true, State::Assigned) => u,
        _ => &t.centre,
    }
}

/// True when the ticket lies (partly) in the actor's unit subtree.
pub fn can_see(org: &Org, actor: &Actor, t: &Ticket) -> bool {
    if actor.role == Role::Admin {
        return true;
    }
    let within = |code: &str| org.is_within(code, &actor.unit);
    within(&t.centre)
        || t.unit.as_deref().is_some_and(within)
        || t.co_units.iter().any(|c| within(c))
        || t.location.grid.as_deref().is_some_and(within)
}

/// The units whose tickets a list shows this actor: None for everything.
pub fn visible_units(org: &Org, actor: &Actor) -> Option<Vec<String>> {
    if actor.role == Role::Admin || org.root().code == actor.unit {
        return None;
    }
    Some(
        org.subtree(&actor.unit)
            .into_iter()
            .map(str::to_string)
            .collect(),
    )
}

fn role_allowed(actor: &Actor, action: Action) -> Result<(), Forbidden> {
    if action.roles().contains(&actor.role) {
        Ok(())
    } else {
        Err(Forbidden(format!(
            "the {} role may not {}",
            actor.role.as_str(),
            describe(action)
        )))
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::Read => "read tickets",
        Action::Create => "create tickets",
        Action::Assign => "dispatch tickets",
        Action::Sign => "sign for tickets",
        Action::Return => "return tickets",
        Action::RequestExtension => "request extensions",
        Action::DecideExtension => "decide extensions",
        Action::Supervise => "supervise tickets",
        Action::Handle => "report tickets handled",
        Action::Verify => "verify results",
        Action::Feedback => "record citizen feedback",
        Action::Comment => "comment on tickets",
        Action::Close => "close tickets",
    }
}

/// Checks a new report: grid workers only inside their own grid(s).
pub fn check_create(org: &Org, actor: &Actor, grid: Option<&str>) -> Result<(), Forbidden> {
    role_allowed(actor, Action::Create)?;
    if actor.role == Role::GridWorker {
        match grid {
            Some(g) if org.is_within(g, &actor.unit) => {}
            Some(g) => {
                return Err(Forbidden(format!(
                    "grid worker {} reports only inside {}; grid {g} is outside it",
                    actor.user, actor.unit
                )));
            }
            None => {
                return Err(Forbidden(
                    "a grid worker's report names its grid (location.grid)".to_string(),
                ));
            }
        }
    }
    Ok(())
}

/// Checks an action on an existing ticket.
pub fn check(org: &Org, actor: &Actor, action: Action, t: &Ticket) -> Result<(), Forbidden> {
    role_allowed(actor, action)?;
    if !can_see(org, actor, t) {
        return Err(Forbidden(format!(
            "ticket {} is outside {}, the unit of this token",
            t.number, actor.unit
        )));
    }
    if actor.role == Role::Admin {
        return Ok(());
    }
    let lead = t.unit.as_deref();
    let mine = |u: Option<&str>| u == Some(actor.unit.as_str());
    let ok = match action {
        Action::Read | Action::Create => true,
        Action::Comment => match actor.role {
            Role::Handler => mine(lead) || t.co_units.contains(&actor.unit),
            _ => true,
        },
        Action::Assign => holding_centre(t) == actor.unit,
        Action::Sign | Action::Handle | Action::RequestExtension => mine(lead),
        Action::Return => match actor.role {
            Role::Handler => mine(lead) && !t.at_centre,
            // A centre that received a hop it cannot place passes it back (or up).
            _ => mine(lead) && t.at_centre,
        },
        Action::DecideExtension | Action::Supervise | Action::Verify | Action::Close => {
            org.is_centre(&actor.unit)
                && (t.centre == actor.unit || lead.is_some_and(|u| org.is_within(u, &actor.unit)))
        }
        Action::Feedback => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Forbidden(format!(
            "{} of {} may not {} on ticket {}: it is with {}",
            actor.role.as_str(),
            actor.unit,
            describe(action),
            t.number,
            lead.unwrap_or(holding_centre(t))
        )))
    }
}

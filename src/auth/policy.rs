//! Who may do what, to which ticket: pure functions of the actor, the organisation
//! and the ticket. Every refusal names the rule that refused it.
//!
//! Scope is the actor's unit subtree, for every role (an admin at the root, the
//! default, therefore sees everything; an admin of a township only that township). A
//! ticket belongs to the units on its path: the centre that holds or dispatched it,
//! its lead and co-units, and the grid it was reported in. Nothing outside the scope
//! is shown or acted on: a new report located in a grid outside it is refused too,
//! and a ticket outside it answers exactly as a ticket that does not exist (404), so
//! that its existence does not leak ([`Refused::Hidden`]).
//!
//! Seeing a ticket is not owning it. Only its **centre** (the one that holds or
//! dispatched it) and its **lead unit**, and the units above them, own it: only they
//! move the figures (dispatch, sign, handle, verify, supervise, feedback, close…). A
//! unit that sees the ticket only as a co-unit (协办) or because the ticket's grid
//! lies in its subtree may read it and comment on it, nothing else (issue 19: a
//! township admin whose grid a district ticket lies in could otherwise sign, verify
//! and fail it in the district department's name).
//!
//! Roles:
//! - grid_worker: reports inside their own grid(s); sees tickets of their grid(s).
//! - hotline_agent: accepts complaints; records follow-up feedback on tickets its
//!   unit owns.
//! - dispatcher (a centre): dispatches what its centre holds, to the units that centre
//!   may dispatch to (lead and co-units alike); passes back a hop that reached its
//!   centre (退回); decides extensions, supervises, verifies and closes tickets it
//!   owns (held by a centre in its subtree, or with a lead unit in it).
//! - handler (a department or agency): signs for, returns, asks for more time and
//!   reports the result of tickets whose lead unit is theirs; comments as a co-unit.
//! - analyst: reads only.
//! - admin: every action of the dispatcher and handler rules, judged against its
//!   subtree instead of its own unit (dispatch what a centre in its subtree holds;
//!   sign and handle for a lead unit in its subtree; supervise, verify and close what
//!   its subtree owns). Acting across those rules takes an admin of the root unit.

use uuid::Uuid;

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
            Action::Read => &Role::ALL,
            // A handler reports only what its unit's own patrol found (`patrol`, checked
            // with the source).
            Action::Create => &[GridWorker, HotlineAgent, Dispatcher, Handler, Admin],
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

/// Why an action on an existing ticket is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The ticket lies outside the actor's scope: answered exactly as a ticket that
    /// does not exist (404, "no ticket {id}"), so that its existence does not leak.
    #[error("no ticket {0}")]
    Hidden(Uuid),
    /// The actor sees the ticket but its role or unit may not do this (403).
    #[error("{0}")]
    Forbidden(String),
}

impl From<Forbidden> for Refused {
    fn from(f: Forbidden) -> Refused {
        Refused::Forbidden(f.0)
    }
}

/// The centre whose dispatchers act on the ticket now.
pub fn holding_centre(t: &Ticket) -> &str {
    match (&t.unit, t.at_centre, t.state) {
        (Some(u), true, State::Assigned) => u,
        _ => &t.centre,
    }
}

/// True when the ticket lies (partly) in the actor's unit subtree. Admins are no
/// exception: an admin of the root unit sees everything because everything is
/// beneath the root.
pub fn can_see(org: &Org, actor: &Actor, t: &Ticket) -> bool {
    let within = |code: &str| org.is_within(code, &actor.unit);
    within(&t.centre)
        || t.unit.as_deref().is_some_and(within)
        || t.co_units.iter().any(|c| within(c))
        || t.location.grid.as_deref().is_some_and(within)
}

/// True when the actor's unit owns the ticket: the root unit, or a unit above (or
/// equal to) the ticket's centre or its lead unit. Co-units and the grid's own
/// township see a ticket without owning it.
pub fn owns(org: &Org, actor: &Actor, t: &Ticket) -> bool {
    let within = |code: &str| org.is_within(code, &actor.unit);
    org.root().code == actor.unit || within(&t.centre) || t.unit.as_deref().is_some_and(within)
}

/// True when the reader gets the reporter's contact in full: the hotline and admins
/// of a unit that owns the ticket, and the handlers of its lead unit. Everyone else
/// who may read the ticket (co-units, the grid's township, analysts…) sees it masked.
pub fn sees_contact(org: &Org, actor: &Actor, t: &Ticket) -> bool {
    match actor.role {
        Role::HotlineAgent | Role::Admin => owns(org, actor, t),
        Role::Handler => t.unit.as_deref() == Some(actor.unit.as_str()),
        _ => false,
    }
}

/// The units whose tickets a list shows this actor: None for everything (an actor
/// of the root unit).
pub fn visible_units(org: &Org, actor: &Actor) -> Option<Vec<String>> {
    if org.root().code == actor.unit {
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

/// Checks a new report: grid workers only inside their own grid(s); a handler's
/// patrol report inside the township its unit is stationed in (a district
/// department's: anywhere in the district); everyone else only located inside their
/// unit subtree (a report without a grid lands in the caller's own centre, so it is
/// in scope).
pub fn check_create(org: &Org, actor: &Actor, grid: Option<&str>) -> Result<(), Forbidden> {
    role_allowed(actor, Action::Create)?;
    let scope = match actor.role {
        Role::Handler => org.township_of(&actor.unit).unwrap_or(&org.root().code),
        _ => actor.unit.as_str(),
    };
    match grid {
        Some(g) if org.is_within(g, scope) => Ok(()),
        // An unknown grid is not a scope question: the command answers 422 for it.
        Some(g) if org.unit(g).is_none() => Ok(()),
        Some(g) if actor.role == Role::GridWorker => Err(Forbidden(format!(
            "grid worker {} reports only inside {}; grid {g} is outside it",
            actor.user, actor.unit
        ))),
        Some(g) if actor.role == Role::Handler => Err(Forbidden(format!(
            "a patrol of {} reports inside {scope}; grid {g} is outside it",
            actor.unit
        ))),
        Some(g) => Err(Forbidden(format!(
            "grid {g} is outside {}, the unit of this token",
            actor.unit
        ))),
        None if actor.role == Role::GridWorker => Err(Forbidden(
            "a grid worker's report names its grid (location.grid)".to_string(),
        )),
        None => Ok(()),
    }
}

/// Checks an action on an existing ticket. A ticket outside the actor's scope is
/// [`Refused::Hidden`] whatever the action and role, before anything else is judged,
/// so that the answer does not depend on whether it exists.
pub fn check(org: &Org, actor: &Actor, action: Action, t: &Ticket) -> Result<(), Refused> {
    if !can_see(org, actor, t) {
        return Err(Refused::Hidden(t.id));
    }
    role_allowed(actor, action)?;
    let lead = t.unit.as_deref();
    let mine = |u: Option<&str>| u == Some(actor.unit.as_str());
    // An admin's rules are the dispatcher's and the handler's, judged against its
    // subtree rather than its own unit.
    let admin = actor.role == Role::Admin;
    let under = |u: Option<&str>| u.is_some_and(|u| org.is_within(u, &actor.unit));
    let ok = match action {
        Action::Read | Action::Create => true,
        Action::Comment => match actor.role {
            Role::Handler => mine(lead) || t.co_units.contains(&actor.unit),
            _ => true,
        },
        _ if admin && org.root().code == actor.unit => true,
        Action::Assign if admin => under(Some(holding_centre(t))),
        Action::Assign => holding_centre(t) == actor.unit,
        Action::Sign | Action::Handle | Action::RequestExtension if admin => under(lead),
        Action::Sign | Action::Handle | Action::RequestExtension => mine(lead),
        Action::Return if admin => under(lead),
        Action::Return => match actor.role {
            Role::Handler => mine(lead) && !t.at_centre,
            // A centre that received a hop it cannot place passes it back (or up).
            _ => mine(lead) && t.at_centre,
        },
        // The centre that holds or dispatched the ticket, or one above it, or a
        // centre above its lead unit.
        Action::DecideExtension | Action::Supervise | Action::Verify | Action::Close => {
            (admin || org.is_centre(&actor.unit)) && owns(org, actor, t)
        }
        // The citizen's satisfaction counts in the lead unit's figures: recorded by
        // a unit that owns the ticket, not by one that only sees it.
        Action::Feedback => owns(org, actor, t),
    };
    if ok {
        Ok(())
    } else {
        Err(Refused::Forbidden(format!(
            "{} of {} may not {} on ticket {}: it is with {}",
            actor.role.as_str(),
            actor.unit,
            describe(action),
            t.number,
            lead.unwrap_or(holding_centre(t))
        )))
    }
}

//! Who may record what for the appraisal (考核), and for which units: pure functions
//! of the actor and the organisation.
//!
//! - A **township appraiser** (role `appraiser`, unit a township) scores the agencies
//!   stationed in its township, gives its township's evaluation of any department,
//!   closes its township's year and publishes bulletins of its township.
//! - A **district appraiser** (unit the district, the root) does all that for every
//!   township (naming the `township` whose evaluation of a department it records),
//!   reopens a closed year and records departments' grades.
//! - An **admin** may do what an appraiser of its unit may do (an admin of the root:
//!   what a district appraiser may).
//!
//! Everyone else is refused every write (403). Readers of the appraisal are the
//! roles of [`READERS`]; what each sees is limited by [`sees`].

use super::policy::Forbidden;
use super::{Actor, Role};
use crate::org::{Org, UnitKind};

/// Roles that read appraisals, entries, rankings and bulletins.
pub const READERS: [Role; 5] = [
    Role::Dispatcher,
    Role::Handler,
    Role::Analyst,
    Role::Appraiser,
    Role::Admin,
];

/// The reach of an appraiser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The district: every township, reopenings and grades.
    District,
    /// One township's appraisal.
    Township(String),
}

impl Reach {
    /// Whether this reach covers `township`'s appraisal.
    pub fn covers(&self, township: &str) -> bool {
        match self {
            Reach::District => true,
            Reach::Township(t) => t == township,
        }
    }
}

/// The reach of an actor who may write to the appraisal: an appraiser or an admin
/// whose unit is the district or a township. 403 for anyone else.
pub fn reach(org: &Org, actor: &Actor) -> Result<Reach, Forbidden> {
    if !matches!(actor.role, Role::Appraiser | Role::Admin) {
        return Err(Forbidden(format!(
            "the {} role may not record appraisals (appraisers and admins may)",
            actor.role.as_str()
        )));
    }
    if actor.unit == org.root().code {
        return Ok(Reach::District);
    }
    match org.unit(&actor.unit).map(|u| u.kind) {
        Some(UnitKind::Township) => Ok(Reach::Township(actor.unit.clone())),
        _ => Err(Forbidden(format!(
            "an appraiser's unit must be the district or a township, not {}",
            actor.unit
        ))),
    }
}

/// The district's reach, for what only the district decides (reopening a year,
/// grades): 403 for a township's appraiser.
pub fn district(org: &Org, actor: &Actor, what: &str) -> Result<(), Forbidden> {
    match reach(org, actor)? {
        Reach::District => Ok(()),
        Reach::Township(t) => Err(Forbidden(format!(
            "only a district appraiser (or an admin of {}) may {what}; the token's unit is {t}",
            org.root().code
        ))),
    }
}

/// Whether a reader may read the appraisal of `unit`: a reader role whose unit
/// contains it. Departments are read by every township too (each township evaluates
/// them), as is an entry of `township` by that township.
pub fn sees(org: &Org, actor: &Actor, unit: &str, township: Option<&str>) -> bool {
    if !READERS.contains(&actor.role) {
        return false;
    }
    org.is_within(unit, &actor.unit)
        || township.is_some_and(|t| org.is_within(t, &actor.unit))
        || (org
            .unit(unit)
            .is_some_and(|u| u.kind == UnitKind::Department)
            && org
                .unit(&actor.unit)
                .is_some_and(|u| u.kind == UnitKind::Township))
}

/// 403 unless the role reads appraisals.
pub fn reader(actor: &Actor) -> Result<(), Forbidden> {
    if READERS.contains(&actor.role) {
        Ok(())
    } else {
        Err(Forbidden(format!(
            "the {} role may not read appraisals (dispatchers, handlers, analysts, appraisers and admins may)",
            actor.role.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, unit: &str) -> Actor {
        Actor {
            token_id: "t".into(),
            user: "u".into(),
            role,
            unit: unit.into(),
        }
    }

    #[test]
    fn reach_by_role_and_unit() {
        let org = crate::org::model::demo();
        assert_eq!(
            reach(&org, &actor(Role::Appraiser, "etdz")),
            Ok(Reach::District)
        );
        assert_eq!(
            reach(&org, &actor(Role::Appraiser, "hg")),
            Ok(Reach::Township("hg".into()))
        );
        assert_eq!(
            reach(&org, &actor(Role::Admin, "etdz")),
            Ok(Reach::District)
        );
        assert!(reach(&org, &actor(Role::Dispatcher, "etdz")).is_err());
        assert!(reach(&org, &actor(Role::Appraiser, "hg-zfzd")).is_err());
        assert!(district(&org, &actor(Role::Appraiser, "hg"), "reopen a year").is_err());
        assert!(sees(&org, &actor(Role::Appraiser, "hg"), "zhzf", None));
        assert!(!sees(&org, &actor(Role::Appraiser, "hg"), "fl-zfzd", None));
        assert!(sees(
            &org,
            &actor(Role::Handler, "hg-zfzd"),
            "hg-zfzd",
            Some("hg")
        ));
        assert!(!sees(&org, &actor(Role::GridWorker, "hg"), "hg-zfzd", None));
    }
}

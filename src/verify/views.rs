//! The fold check: each ticket view against the ticket folded again from its
//! stream's events.

use serde_json::Value;
use uuid::Uuid;

use super::{Problem, ProblemKind};
use crate::domain::{Ticket, TicketEvent};
use crate::store::audit::StoredRow;
use crate::store::hash::GENESIS;

/// A ticket view row as stored, for the fold check.
#[derive(Clone, Debug)]
pub struct StoredView {
    pub id: Uuid,
    pub number: String,
    pub state: String,
    pub unit: Option<String>,
    pub centre: String,
    pub category: String,
    pub grid: Option<String>,
    /// Err: the stored co-units could not be read.
    pub co_units: Result<Vec<String>, String>,
    pub version: i64,
    pub doc: String,
    pub head_hash: String,
}

/// What differs between a ticket view row and the ticket folded from its stream's
/// events up to the view's version (`head`: the hash of the last of them): each
/// difference names the field, where it was found (`column` or `doc`), and both
/// values. Every field that decides who may see or act on the ticket, what the
/// reader is shown of the reporter and what the figures count is compared.
pub fn view_differences(view: &StoredView, fold: &Ticket, head: &str) -> Vec<String> {
    fn show<T: std::fmt::Debug>(v: &T) -> String {
        format!("{v:?}")
    }
    let mut out = Vec::new();
    let mut cmp = |field: &str, stored: String, folded: String| {
        if stored != folded {
            out.push(format!(
                "{field}: {stored} in the view, {folded} from the events"
            ));
        }
    };
    cmp(
        "state",
        show(&view.state.as_str()),
        show(&fold.state.as_str()),
    );
    cmp("unit", show(&view.unit), show(&fold.unit));
    match &view.co_units {
        Ok(c) => cmp("co_units", show(c), show(&fold.co_units)),
        Err(e) => cmp("co_units", e.clone(), show(&fold.co_units)),
    }
    cmp("centre", show(&view.centre), show(&fold.centre));
    cmp("grid", show(&view.grid), show(&fold.location.grid));
    cmp("number", show(&view.number), show(&fold.number));
    cmp("category", show(&view.category), show(&fold.category));
    cmp(
        "version",
        view.version.to_string(),
        fold.version.to_string(),
    );
    cmp("head_hash", view.head_hash.clone(), head.to_string());
    match serde_json::from_str::<Ticket>(&view.doc) {
        Err(e) => out.push(format!("doc: not a ticket ({e})")),
        Ok(d) => {
            let mut cmp = |field: &str, stored: String, folded: String| {
                if stored != folded {
                    out.push(format!(
                        "doc.{field}: {stored} in the view, {folded} from the events"
                    ));
                }
            };
            // The stored doc's fields against the fold's, in this order.
            macro_rules! same {
                ($($field:ident),*) => {
                    $(cmp(stringify!($field), show(&d.$field), show(&fold.$field));)*
                };
            }
            same!(id, state, unit, co_units, centre, at_centre);
            cmp("grid", show(&d.location.grid), show(&fold.location.grid));
            same!(
                handler,
                sign_due_at,
                handle_due_at,
                number,
                category,
                reporter_ref
            );
            cmp("version", d.version.to_string(), fold.version.to_string());
        }
    }
    out
}

/// The fold check of one ticket view against its stream's events (in version
/// order).
pub(super) fn check_view(view: &StoredView, rows: &[StoredRow]) -> Vec<Problem> {
    let problem = |version: i64, position: Option<i64>, detail: String| Problem {
        kind: ProblemKind::View,
        stream: view.id,
        version,
        position,
        detail,
    };
    let mut state: Option<Ticket> = None;
    let mut head = (GENESIS.to_string(), None);
    for r in rows.iter().filter(|r| r.version <= view.version) {
        let event = match serde_json::from_str::<Value>(&r.data) {
            Err(e) => Err(e.to_string()),
            Ok(data) => match TicketEvent::from_parts(&r.event_type, r.schema_version, &data) {
                Ok(e) => Ok(e),
                // Written by a later release: this build cannot fold it, which is
                // not tampering (the chain check judged its content).
                Err(crate::domain::DecodeError::TooNew { .. }) => return Vec::new(),
                Err(e) => Err(e.to_string()),
            },
        };
        let (event, at) = match (event, &r.occurred_at) {
            (Ok(e), Ok(at)) => (e, *at),
            (Err(e), _) => {
                return vec![problem(
                    r.version,
                    Some(r.position),
                    format!(
                        "the event cannot be read as a ticket event ({e}): the view cannot be checked"
                    ),
                )];
            }
            (_, Err(t)) => {
                return vec![problem(
                    r.version,
                    Some(r.position),
                    format!("its occurred_at {t:?} is not a time: the view cannot be checked"),
                )];
            }
        };
        state = Some(Ticket::apply(state, view.id, &event, at));
        head = (r.hash.clone(), Some(r.position));
    }
    let Some(fold) = state else {
        // No event at all: the chain check has reported every version missing.
        return Vec::new();
    };
    let diff = view_differences(view, &fold, &head.0);
    if diff.is_empty() {
        return Vec::new();
    }
    vec![problem(
        view.version,
        head.1,
        format!(
            "the ticket view differs from its events (authorization and masking read the view): {}",
            diff.join("; ")
        ),
    )]
}

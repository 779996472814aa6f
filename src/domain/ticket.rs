//! The ticket aggregate: pure and synchronous, no I/O.
//!
//! `decide(state, command, ctx)` either refuses with a [`DomainError`] or returns the
//! events to append; `Ticket::apply` folds one event into the state (in
//! `ticket/fold.rs`). The only outside knowledge a decision needs (the time, the SLA
//! deadlines) comes in through [`Ctx`], so the same inputs always give the same
//! events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::events::*;

mod fold;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Accepted,
    Assigned,
    Handled,
    Verified,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Accepted => "accepted",
            State::Assigned => "assigned",
            State::Handled => "handled",
            State::Verified => "verified",
            State::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "accepted" => State::Accepted,
            "assigned" => State::Assigned,
            "handled" => State::Handled,
            "verified" => State::Verified,
            "closed" => State::Closed,
            _ => return None,
        })
    }
}

/// Everything a ticket's history says about it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: Uuid,
    pub number: String,
    pub state: State,
    pub version: i64,
    pub source: Source,
    pub category: String,
    pub urgency: Urgency,
    pub title: String,
    pub description: String,
    pub location: Location,
    pub reporter_ref: Option<Uuid>,
    pub related_to: Option<Uuid>,
    pub suggested_unit: Option<String>,
    /// The centre whose queue holds the ticket while it waits for dispatch, and
    /// which dispatched the current hop.
    pub centre: String,
    /// The unit the ticket is with (lead unit), while assigned or later.
    pub unit: Option<String>,
    pub co_units: Vec<String>,
    /// True while the current hop sits with a centre that must dispatch it on.
    pub at_centre: bool,
    pub handler: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub handled_at: Option<DateTime<Utc>>,
    pub sign_due_at: Option<DateTime<Utc>>,
    pub handle_due_at: Option<DateTime<Utc>>,
    pub pending_extension_days: Option<u32>,
    pub returns: u32,
    /// The units that sent the ticket back (退回), each once, in order: the
    /// suggestion never proposes one of them again. (`serde(default)`: a view row
    /// written before this field reads as none until the ticket's next event, or
    /// `yiwang replay`.)
    #[serde(default)]
    pub returned_by: Vec<String>,
    /// Why it was last sent back, until it is dispatched again.
    #[serde(default)]
    pub return_reason: Option<String>,
    pub supervisions: u32,
    pub extensions: u32,
    pub reworks: u32,
    pub self_handled: bool,
    pub result: Option<String>,
    pub satisfaction: Option<Satisfaction>,
    pub close_code: Option<CloseCode>,
    pub duplicate_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// When the current handle deadline began: the assignment, the approval of an
    /// extension, or the failed verification that set it. The SLA warning falls a
    /// fraction of the way from here to `handle_due_at`. (`serde(default)`: view
    /// rows written before the SLA watcher still read.)
    #[serde(default)]
    pub handle_started_at: Option<DateTime<Utc>>,
    /// The deadlines the SLA watcher has already warned about and reported breached.
    #[serde(default)]
    pub sla: SlaMarks,
    /// Every photo the ticket's events name, each once, in the order they came: the
    /// report's and every handling's (a rework keeps the earlier ones). Only
    /// attachment hashes: free-form names in events older than attachments are left
    /// out. (`serde(default)`: view rows written before attachments still read.)
    #[serde(default)]
    pub photos: Vec<Photo>,
}

/// A photo of a ticket: which attachment, and which step added it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub hash: String,
    pub stage: PhotoStage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhotoStage {
    /// With the report (受理).
    Accepted,
    /// With a result (办结).
    Handled,
}

impl Ticket {
    /// The unit to propose to the dispatcher: the catalogue's routing of the
    /// category, unless that unit has already sent the ticket back (a dispatcher
    /// choosing again must not be steered to the unit that refused it).
    pub fn suggestion(&self) -> Option<&str> {
        self.suggested_unit
            .as_deref()
            .filter(|u| !self.returned_by.iter().any(|r| r == u))
    }

    /// The bytes of the ticket's texts (codes, names, the report, the result, the
    /// photos' hashes): with a fixed allowance for the keys, numbers and instants,
    /// the size of a buffer its JSON fits in without growing.
    pub fn text_len(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let list = |v: &[String]| v.iter().map(|s| s.len() + 3).sum::<usize>();
        self.number.len()
            + self.category.len()
            + self.title.len()
            + self.description.len()
            + opt(&self.location.address)
            + opt(&self.location.grid)
            + opt(&self.suggested_unit)
            + self.centre.len()
            + opt(&self.unit)
            + list(&self.co_units)
            + opt(&self.handler)
            + list(&self.returned_by)
            + opt(&self.return_reason)
            + opt(&self.result)
            + self.photos.len() * 128
    }

    /// The ticket as the JSON document of its view row, in a buffer sized for it
    /// at once ([`Ticket::text_len`]) rather than grown a doubling at a time.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(1536 + self.text_len());
        // Serializing a derived struct of plain fields cannot fail.
        serde_json::to_writer(&mut out, self).expect("ticket serializes");
        // serde_json writes UTF-8 only.
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// True when one of the ticket's events names the attachment `hash`.
    pub fn has_photo(&self, hash: &str) -> bool {
        self.photos.iter().any(|p| p.hash == hash)
    }

    fn add_photos(&mut self, hashes: &[String], stage: PhotoStage) {
        for h in hashes {
            if is_attachment_hash(h) && !self.has_photo(h) {
                self.photos.push(Photo {
                    hash: h.clone(),
                    stage,
                });
            }
        }
    }
}

/// For each deadline kind, the `due_at` whose [`SlaWarning`] / [`SlaBreached`] is
/// already in the stream. A deadline that moves (an approved extension, a rework
/// after a failed verification, a new dispatch) has another `due_at` and so gets
/// its own warning and breach, once each; the events that start a deadline also
/// clear its marks, so a new deadline that happens to fall on the same instant as
/// the old one is watched afresh too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaMarks {
    pub sign_warned: Option<DateTime<Utc>>,
    pub sign_breached: Option<DateTime<Utc>>,
    pub handle_warned: Option<DateTime<Utc>>,
    pub handle_breached: Option<DateTime<Utc>>,
}

impl SlaMarks {
    /// (warned, breached) for one deadline kind.
    pub fn of(&self, kind: DeadlineKind) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        match kind {
            DeadlineKind::Sign => (self.sign_warned, self.sign_breached),
            DeadlineKind::Handle => (self.handle_warned, self.handle_breached),
        }
    }

    fn clear_handle(&mut self) {
        self.handle_warned = None;
        self.handle_breached = None;
    }
}

/// What the caller asks for. Fields are already parsed at the HTTP boundary.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Accept(Box<AcceptTicket>),
    Assign {
        from_unit: String,
        unit: String,
        co_units: Vec<String>,
        note: Option<String>,
        to_centre: bool,
    },
    Sign {
        unit: String,
        handler: String,
    },
    Return {
        unit: String,
        reason: String,
    },
    RequestExtension {
        days: u32,
        reason: String,
    },
    DecideExtension {
        approved: bool,
        days: Option<u32>,
    },
    Supervise {
        note: String,
    },
    Handle {
        result: String,
        photos: Vec<String>,
    },
    Verify {
        passed: bool,
        note: String,
    },
    Feedback {
        satisfaction: Satisfaction,
    },
    Comment {
        text: String,
    },
    Close {
        code: CloseCode,
        duplicate_of: Option<Uuid>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct AcceptTicket {
    pub id: Uuid,
    pub number: String,
    pub source: Source,
    pub category: String,
    pub urgency: Urgency,
    pub title: String,
    pub description: String,
    pub location: Location,
    pub reporter_ref: Option<Uuid>,
    pub related_to: Option<Uuid>,
    pub suggested_unit: Option<String>,
    pub centre: String,
    /// 自行处置: the grid worker fixed it on the spot; accepted and handled at once.
    pub self_handled: Option<String>,
    /// Attachment hashes of the report's photos (checked to exist by the caller).
    pub photos: Vec<String>,
}

impl Command {
    /// The action name used in the API path (`POST /tickets/{id}/{action}`).
    pub fn action(&self) -> &'static str {
        match self {
            Command::Accept(_) => "create",
            Command::Assign { .. } => "assign",
            Command::Sign { .. } => "sign",
            Command::Return { .. } => "return",
            Command::RequestExtension { .. } => "request-extension",
            Command::DecideExtension { .. } => "decide-extension",
            Command::Supervise { .. } => "supervise",
            Command::Handle { .. } => "handle",
            Command::Verify { .. } => "verify",
            Command::Feedback { .. } => "feedback",
            Command::Comment { .. } => "comment",
            Command::Close { .. } => "close",
        }
    }
}

/// Deadline arithmetic, injected so the aggregate stays pure. The production
/// implementation works in working days of the business calendar.
pub trait Deadlines {
    fn sign_due(&self, from: DateTime<Utc>, category: &str, urgency: Urgency) -> DateTime<Utc>;
    fn handle_due(&self, from: DateTime<Utc>, category: &str, urgency: Urgency) -> DateTime<Utc>;
    /// Moves a handle deadline by `days` approved extension days.
    fn extend(&self, due: DateTime<Utc>, days: u32) -> DateTime<Utc>;
    /// The new handle deadline after a failed verification (限期重新办理).
    fn rework_due(&self, from: DateTime<Utc>) -> DateTime<Utc>;
}

pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub deadlines: &'a (dyn Deadlines + Sync),
}

/// Why a command was refused. Nothing is appended in either case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input itself is unacceptable (HTTP 422).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The ticket's state forbids it (HTTP 409).
    #[error("{0}")]
    NotAllowed(String),
    /// The command needs an existing ticket (HTTP 404).
    #[error("ticket not found")]
    NotFound,
    /// A creation for a stream that already exists (HTTP 409).
    #[error("ticket already exists")]
    AlreadyExists,
}

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field,
        message: message.into(),
    }
}

fn not_allowed(t: &Ticket, what: &str) -> DomainError {
    DomainError::NotAllowed(format!(
        "cannot {what}: ticket {} is {}",
        t.number,
        t.state.as_str()
    ))
}

fn require_text(field: &'static str, s: &str) -> Result<(), DomainError> {
    if s.trim().is_empty() {
        Err(invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Decides what happens when `cmd` meets the ticket `state` (None: no such stream).
pub fn decide(
    state: Option<&Ticket>,
    cmd: Command,
    ctx: &Ctx,
) -> Result<Vec<TicketEvent>, DomainError> {
    let t = match (state, cmd) {
        (None, Command::Accept(a)) => return accept(*a),
        (Some(_), Command::Accept(_)) => return Err(DomainError::AlreadyExists),
        (None, _) => return Err(DomainError::NotFound),
        (Some(t), cmd) => (t, cmd),
    };
    let (t, cmd) = t;
    if t.state == State::Closed {
        return Err(DomainError::NotAllowed(format!(
            "ticket {} is closed; a new complaint about the same matter is a new ticket with related_to",
            t.number
        )));
    }
    let ev = match cmd {
        Command::Accept(_) => unreachable!("handled above"),
        Command::Assign {
            from_unit,
            unit,
            co_units,
            note,
            to_centre,
        } => {
            require_text("unit", &unit)?;
            let redispatch = t.state == State::Assigned && t.at_centre;
            if t.state != State::Accepted && !redispatch {
                return Err(match t.state {
                    State::Assigned => DomainError::NotAllowed(format!(
                        "ticket {} is already dispatched to {}; it must be returned before it can be dispatched again",
                        t.number,
                        t.unit.as_deref().unwrap_or("?")
                    )),
                    _ => not_allowed(t, "dispatch"),
                });
            }
            if t.unit.as_deref() == Some(unit.as_str()) && redispatch {
                return Err(invalid("unit", "the ticket is already with this unit"));
            }
            let mut co: Vec<String> = Vec::new();
            for c in co_units {
                require_text("co_units", &c)?;
                if c == unit {
                    return Err(invalid(
                        "co_units",
                        "the lead unit cannot also be a co-unit",
                    ));
                }
                if !co.contains(&c) {
                    co.push(c);
                }
            }
            let (sign_due_at, handle_due_at) = if to_centre {
                (None, None)
            } else {
                (
                    Some(ctx.deadlines.sign_due(ctx.now, &t.category, t.urgency)),
                    Some(ctx.deadlines.handle_due(ctx.now, &t.category, t.urgency)),
                )
            };
            TicketEvent::TicketAssigned(Assigned {
                from_unit,
                unit,
                co_units: co,
                note,
                to_centre,
                sign_due_at,
                handle_due_at,
            })
        }
        Command::Sign { unit, handler } => {
            require_text("handler", &handler)?;
            if t.state != State::Assigned {
                return Err(not_allowed(t, "sign for it"));
            }
            if t.at_centre {
                return Err(DomainError::NotAllowed(format!(
                    "ticket {} sits with centre {}; the centre dispatches it on, it is not signed for",
                    t.number,
                    t.unit.as_deref().unwrap_or("?")
                )));
            }
            if t.signed_at.is_some() {
                return Err(DomainError::NotAllowed(format!(
                    "ticket {} was already signed for by {}",
                    t.number,
                    t.handler.as_deref().unwrap_or("?")
                )));
            }
            TicketEvent::TicketSigned(Signed { unit, handler })
        }
        Command::Return { unit, reason } => {
            require_text("reason", &reason)?;
            if t.state != State::Assigned {
                return Err(not_allowed(t, "return it"));
            }
            TicketEvent::TicketReturned(Returned {
                unit,
                reason,
                to_unit: t.centre.clone(),
            })
        }
        Command::RequestExtension { days, reason } => {
            require_text("reason", &reason)?;
            if !(1..=30).contains(&days) {
                return Err(invalid("days", "must be between 1 and 30 working days"));
            }
            if t.state != State::Assigned || t.at_centre {
                return Err(not_allowed(t, "request an extension"));
            }
            if t.handle_due_at.is_none() {
                return Err(DomainError::NotAllowed(format!(
                    "ticket {} has no handle deadline to extend",
                    t.number
                )));
            }
            if t.pending_extension_days.is_some() {
                return Err(DomainError::NotAllowed(format!(
                    "ticket {} already has an extension request waiting for a decision",
                    t.number
                )));
            }
            TicketEvent::ExtensionRequested(ExtensionRequested { days, reason })
        }
        Command::DecideExtension { approved, days } => {
            let Some(requested) = t.pending_extension_days else {
                return Err(DomainError::NotAllowed(format!(
                    "ticket {} has no extension request to decide",
                    t.number
                )));
            };
            if t.state != State::Assigned {
                return Err(not_allowed(t, "decide an extension"));
            }
            let days = days.unwrap_or(requested);
            if approved && !(1..=30).contains(&days) {
                return Err(invalid("days", "must be between 1 and 30 working days"));
            }
            let handle_due_at = match (approved, t.handle_due_at) {
                (true, Some(due)) => Some(ctx.deadlines.extend(due, days)),
                _ => None,
            };
            TicketEvent::ExtensionDecided(ExtensionDecided {
                approved,
                days: if approved { days } else { 0 },
                handle_due_at,
            })
        }
        Command::Supervise { note } => {
            require_text("note", &note)?;
            if t.state != State::Assigned {
                return Err(not_allowed(t, "supervise it"));
            }
            TicketEvent::TicketSupervised(Supervised {
                note,
                count: t.supervisions + 1,
            })
        }
        Command::Handle { result, photos } => {
            require_text("result", &result)?;
            if t.state != State::Assigned || t.at_centre {
                return Err(not_allowed(t, "report it handled"));
            }
            if t.signed_at.is_none() {
                return Err(DomainError::NotAllowed(format!(
                    "ticket {} must be signed for (签收) before it is reported handled",
                    t.number
                )));
            }
            TicketEvent::TicketHandled(Handled {
                result,
                photos,
                self_handled: false,
                legacy_photo_names: vec![],
            })
        }
        Command::Verify { passed, note } => {
            if t.state != State::Handled {
                return Err(not_allowed(t, "verify it"));
            }
            if passed {
                TicketEvent::VerificationPassed(VerificationPassed { note })
            } else {
                require_text("note", &note)?;
                TicketEvent::VerificationFailed(VerificationFailed {
                    note,
                    handle_due_at: ctx.deadlines.rework_due(ctx.now),
                })
            }
        }
        Command::Feedback { satisfaction } => {
            if !matches!(t.state, State::Handled | State::Verified) {
                return Err(not_allowed(t, "record the citizen's feedback"));
            }
            if t.satisfaction.is_some() {
                return Err(DomainError::NotAllowed(format!(
                    "ticket {} already has the citizen's feedback",
                    t.number
                )));
            }
            TicketEvent::CitizenFeedbackRecorded(FeedbackRecorded { satisfaction })
        }
        Command::Comment { text } => {
            require_text("text", &text)?;
            TicketEvent::TicketCommented(Commented { text })
        }
        Command::Close { code, duplicate_of } => {
            match (t.state, code) {
                (State::Verified, CloseCode::Resolved) => {}
                (State::Verified, _) => {
                    return Err(invalid("code", "a verified ticket closes as resolved"));
                }
                (State::Accepted, CloseCode::Resolved) => {
                    return Err(DomainError::NotAllowed(format!(
                        "ticket {} is not handled and verified; from accepted it closes only as duplicate, invalid or withdrawn",
                        t.number
                    )));
                }
                (State::Accepted, _) => {}
                _ => return Err(not_allowed(t, "close it")),
            }
            match (code, duplicate_of) {
                (CloseCode::Duplicate, None) => {
                    return Err(invalid(
                        "duplicate_of",
                        "a duplicate names the ticket it duplicates",
                    ));
                }
                (CloseCode::Duplicate, Some(d)) if d == t.id => {
                    return Err(invalid("duplicate_of", "a ticket cannot duplicate itself"));
                }
                (CloseCode::Duplicate, _) => {}
                (_, Some(_)) => {
                    return Err(invalid(
                        "duplicate_of",
                        "only a duplicate names another ticket",
                    ));
                }
                _ => {}
            }
            TicketEvent::TicketClosed(Closed { code, duplicate_of })
        }
    };
    Ok(vec![ev])
}

fn accept(a: AcceptTicket) -> Result<Vec<TicketEvent>, DomainError> {
    require_text("title", &a.title)?;
    require_text("category", &a.category)?;
    if a.related_to == Some(a.id) {
        return Err(invalid(
            "related_to",
            "a ticket cannot be related to itself",
        ));
    }
    if a.self_handled.is_some() && a.location.grid.is_none() {
        return Err(invalid(
            "location.grid",
            "a report fixed on the spot names its grid, which answers for the fix",
        ));
    }
    let mut out = vec![TicketEvent::TicketAccepted(Accepted {
        number: a.number,
        source: a.source,
        category: a.category,
        urgency: a.urgency,
        title: a.title,
        description: a.description,
        location: a.location,
        reporter_ref: a.reporter_ref,
        related_to: a.related_to,
        suggested_unit: a.suggested_unit,
        centre: a.centre,
        photos: a.photos,
    })];
    if let Some(result) = a.self_handled {
        require_text("self_handled.result", &result)?;
        if a.source != Source::Grid {
            return Err(invalid(
                "self_handled",
                "only a grid worker's report can be fixed on the spot",
            ));
        }
        out.push(TicketEvent::TicketHandled(Handled {
            result,
            photos: vec![],
            self_handled: true,
            legacy_photo_names: vec![],
        }));
    }
    Ok(out)
}

/// The SLA events due for `t` at `now`: what the SLA watcher appends. Pure, so
/// every watcher instance that reads the same stream version decides the same
/// events, and the store's optimistic append lets exactly one of them through.
///
/// Only an ASSIGNED ticket with a working unit (not one waiting at a centre) is
/// watched: the sign deadline until the unit signs, the handle deadline until it
/// reports the ticket handled. For each deadline:
/// - `SlaWarning` once when `now >= start + warn_fraction × (due − start)`, where
///   start is the moment the deadline began: the assignment for the sign deadline;
///   for the handle deadline the assignment, the approved extension or the failed
///   verification that set it (`Ticket::handle_started_at`). Measuring from the
///   moment of the move rather than the first assignment keeps a rework or a late
///   extension from being warned about the instant it is granted.
/// - `SlaBreached` once when `now > due` (the same test as [`Ticket::overdue`]).
/// - When both are due at once (the watcher was down through the warning window),
///   only the breach is emitted: a warning after the deadline has passed warns of
///   nothing. No warning ever follows the breach of the same `due_at`.
///
/// "Once" is per `due_at`, from the marks in [`Ticket::sla`]. The sign deadline's
/// events come before the handle deadline's. `warn_fraction` is clamped to 0..=1
/// (not a number: 1, i.e. no warning before the deadline itself).
pub fn sla_events(t: &Ticket, now: DateTime<Utc>, warn_fraction: f64) -> Vec<TicketEvent> {
    let mut out = Vec::new();
    if t.state != State::Assigned || t.at_centre {
        return out;
    }
    let fraction = if warn_fraction.is_nan() {
        1.0
    } else {
        warn_fraction.clamp(0.0, 1.0)
    };
    if t.signed_at.is_none()
        && let Some(due) = t.sign_due_at
    {
        let start = t.assigned_at.unwrap_or(due);
        sla_for(t, DeadlineKind::Sign, start, due, now, fraction, &mut out);
    }
    if let Some(due) = t.handle_due_at {
        let start = t.handle_started_at.or(t.assigned_at).unwrap_or(due);
        sla_for(t, DeadlineKind::Handle, start, due, now, fraction, &mut out);
    }
    out
}

/// The instant `fraction` of the way from `start` to `due` (`due` itself when
/// the deadline does not lie after its start).
pub fn sla_warn_at(start: DateTime<Utc>, due: DateTime<Utc>, fraction: f64) -> DateTime<Utc> {
    let span = due - start;
    if span <= chrono::TimeDelta::zero() {
        return due;
    }
    // Spans are days, not centuries: milliseconds in an f64 are exact enough.
    let ms = (span.num_milliseconds() as f64 * fraction).round() as i64;
    (start + chrono::TimeDelta::milliseconds(ms)).min(due)
}

fn sla_for(
    t: &Ticket,
    kind: DeadlineKind,
    start: DateTime<Utc>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    fraction: f64,
    out: &mut Vec<TicketEvent>,
) {
    let (warned, breached) = t.sla.of(kind);
    if breached == Some(due) {
        return;
    }
    if now > due {
        out.push(TicketEvent::SlaBreached(SlaBreached {
            deadline: kind,
            due_at: due,
        }));
    } else if warned != Some(due) && now >= sla_warn_at(start, due, fraction) {
        out.push(TicketEvent::SlaWarning(SlaWarning {
            deadline: kind,
            due_at: due,
        }));
    }
}

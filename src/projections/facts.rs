//! The unit-statistics projection's fold, pure: one ticket's events in, the facts
//! the statistics are computed from out.
//!
//! A ticket's time with one working unit is an [`Episode`]: from the assignment
//! that reached the unit (a hop to another dispatch centre is not one) until the
//! unit returns it or the ticket is closed. The episode keeps the dates that the
//! figures are defined on (sign deadline and signing, the handle deadline in force,
//! the last handling and the deadline in force at that moment), each with the
//! position of the event behind it, so every figure and every deducted point can
//! name its evidence. Things that are simply counted (a return, a supervision, a
//! citizen's feedback, a grid report) are [`Occurrence`]s.
//!
//! Nothing here reads a clock or a database: the projection runner folds events in
//! position order, and a rebuild from zero folds the same events to the same facts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{CloseCode, TicketEvent};
use crate::sla::calendar::Calendar;

/// The far future: the `span_end` of an episode still open.
pub const OPEN: i64 = i64::MAX;

/// Microseconds since the Unix epoch: how the projection stores instants.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant back from microseconds.
pub fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A ticket's time with one working unit (its lead unit, 主办).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// 1 for the ticket's first working unit, 2 after a return and new dispatch, ...
    pub seq: i32,
    pub unit: String,
    pub assigned_at: i64,
    pub assign_pos: i64,
    pub sign_due: Option<i64>,
    pub signed_at: Option<i64>,
    pub sign_pos: Option<i64>,
    /// When the ticket left the unit without being handled by it (returned).
    pub left_at: Option<i64>,
    pub return_pos: Option<i64>,
    /// The handle deadline in force now (moved by an approved extension or a
    /// failed verification).
    pub handle_due: Option<i64>,
    /// The last handling; cleared when verification fails (the ticket is open again).
    pub handled_at: Option<i64>,
    pub handle_pos: Option<i64>,
    /// The handle deadline that was in force at `handled_at`.
    pub handled_due: Option<i64>,
    /// Working time from assignment to the last handling, in seconds.
    pub turnaround_secs: Option<i64>,
    /// Closed while still open with this unit (withdrawn, duplicate, invalid).
    pub closed_at: Option<i64>,
    pub close_pos: Option<i64>,
    /// Failed verifications (返工) while with this unit.
    pub reworks: i32,
    pub ext_requested: i32,
    pub ext_approved: i32,
    /// The ticket had been returned by an earlier unit (so not a one-time completion).
    pub after_return: bool,
}

impl Episode {
    /// Still with the unit and not handled: the deadline is running.
    pub fn is_open(&self) -> bool {
        self.left_at.is_none() && self.handled_at.is_none() && self.closed_at.is_none()
    }

    /// With the unit (handled or not): events on the ticket are about this unit.
    fn is_current(&self) -> bool {
        self.left_at.is_none()
    }

    /// The latest instant this episode can count in: see `stats_episodes.span_end`.
    pub fn span_end(&self) -> i64 {
        if self.is_open() {
            return OPEN;
        }
        [
            Some(self.assigned_at),
            self.sign_due,
            self.signed_at,
            self.left_at,
            self.handle_due,
            self.handled_at,
            self.closed_at,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.assigned_at)
    }

    /// Handled with no return before it, no failed verification and no extension (一次办结).
    pub fn one_time(&self) -> bool {
        self.handled_at.is_some()
            && !self.after_return
            && self.reworks == 0
            && self.ext_requested == 0
    }
}

/// Whether a handle deadline counts as due to finish (应办结): there is one, and
/// the unit neither returned the ticket nor had it closed before it.
pub fn due_counts(handle_due: Option<i64>, left_at: Option<i64>, closed_at: Option<i64>) -> bool {
    handle_due.is_some_and(|h| left_at.is_none_or(|l| l >= h) && closed_at.is_none_or(|c| c >= h))
}

/// Handled on time: the last handling at or before the deadline in force then
/// (or the current one, or no deadline at all).
pub fn finished_on_time(
    handled_at: Option<i64>,
    handled_due: Option<i64>,
    handle_due: Option<i64>,
) -> bool {
    handled_at.is_some_and(|h| handled_due.or(handle_due).is_none_or(|d| h <= d))
}

/// A countable thing that happened, attributed to a unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    pub position: i64,
    pub kind: Kind,
    pub ticket: Uuid,
    pub unit: String,
    pub at: i64,
    pub category: String,
    pub source: String,
}

/// What an occurrence counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A ticket accepted; unit = the township (or centre) where it was reported.
    Accepted,
    /// A ticket linked to an earlier one (重复投诉); unit = the earlier ticket's unit.
    RepeatComplaint,
    Returned,
    ExtensionRequested,
    ExtensionApproved,
    VerificationFailed,
    Supervised,
    /// The second or later supervision of one ticket (重复督办).
    SupervisedRepeat,
    FeedbackSatisfied,
    FeedbackBasic,
    FeedbackUnsatisfied,
    /// A report taken back: the ticket was closed as a duplicate, invalid or
    /// withdrawn, so it no longer counts as a place found (容貌管理 "每发现一处").
    /// It mirrors the report's `Accepted` occurrence (the same unit, time and
    /// position, that of the `TicketAccepted`), so the two cancel in the monthly
    /// report lists and in a day's rows alike.
    ReportVoided,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Accepted,
        Kind::RepeatComplaint,
        Kind::Returned,
        Kind::ExtensionRequested,
        Kind::ExtensionApproved,
        Kind::VerificationFailed,
        Kind::Supervised,
        Kind::SupervisedRepeat,
        Kind::FeedbackSatisfied,
        Kind::FeedbackBasic,
        Kind::FeedbackUnsatisfied,
        Kind::ReportVoided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Accepted => "accepted",
            Kind::RepeatComplaint => "repeat_complaint",
            Kind::Returned => "returned",
            Kind::ExtensionRequested => "extension_requested",
            Kind::ExtensionApproved => "extension_approved",
            Kind::VerificationFailed => "verification_failed",
            Kind::Supervised => "supervised",
            Kind::SupervisedRepeat => "supervised_repeat",
            Kind::FeedbackSatisfied => "feedback_satisfied",
            Kind::FeedbackBasic => "feedback_basic",
            Kind::FeedbackUnsatisfied => "feedback_unsatisfied",
            Kind::ReportVoided => "report_voided",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Everything the projection keeps about one ticket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketFacts {
    pub ticket: Uuid,
    pub category: String,
    pub source: String,
    /// Where it was reported: the township of its grid, else the receiving centre.
    pub area: String,
    pub centre: String,
    pub episodes: Vec<Episode>,
    /// The unit it was last with (for feedback after close), if any.
    pub last_unit: Option<String>,
    /// When and at which position it was accepted: its report's item in the area
    /// lists, taken back when it closes as a duplicate, invalid or withdrawn
    /// (`serde(default)`: facts stored before these fields read 0; migration 0011
    /// has the projection rebuilt, so none is left).
    #[serde(default)]
    pub accepted_at: i64,
    #[serde(default)]
    pub accepted_pos: i64,
}

impl TicketFacts {
    fn current(&mut self) -> Option<&mut Episode> {
        self.episodes.last_mut().filter(|e| e.is_current())
    }

    /// The unit events about the ticket are charged to: its current or last lead
    /// unit, else the centre holding it.
    fn charged_unit(&self) -> String {
        self.last_unit
            .clone()
            .unwrap_or_else(|| self.centre.clone())
    }
}

/// The position, time and content of one event, as the fold needs them.
pub struct Input<'a> {
    pub position: i64,
    pub occurred_at: DateTime<Utc>,
    pub event: &'a TicketEvent,
}

/// What the fold needs from outside the ticket: the calendar for working time,
/// the township of a grid, and the unit of an earlier ticket (repeat complaints).
pub trait Context {
    fn calendar(&self) -> &Calendar;
    fn township_of(&self, grid: &str) -> Option<String>;
    fn unit_of_ticket(&self, ticket: Uuid) -> Option<String>;
}

/// Folds one event into the ticket's facts (None: the ticket is new), pushing the
/// occurrences it causes. Returns the new facts.
pub fn apply(
    facts: Option<TicketFacts>,
    stream: Uuid,
    input: &Input<'_>,
    ctx: &dyn Context,
    out: &mut Vec<Occurrence>,
) -> Option<TicketFacts> {
    let at = micros(input.occurred_at);
    let pos = input.position;
    if let TicketEvent::TicketAccepted(a) = input.event {
        let area = a
            .location
            .grid
            .as_deref()
            .and_then(|g| ctx.township_of(g))
            .unwrap_or_else(|| a.centre.clone());
        let f = TicketFacts {
            ticket: stream,
            category: a.category.clone(),
            source: a.source.as_str().into(),
            area,
            centre: a.centre.clone(),
            episodes: Vec::new(),
            last_unit: None,
            accepted_at: at,
            accepted_pos: pos,
        };
        out.push(occ(&f, pos, Kind::Accepted, f.area.clone(), at));
        if let Some(earlier) = a.related_to {
            let unit = ctx
                .unit_of_ticket(earlier)
                .unwrap_or_else(|| f.centre.clone());
            out.push(occ(&f, pos, Kind::RepeatComplaint, unit, at));
        }
        return Some(f);
    }
    // An event of a stream whose acceptance was never seen is not a ticket's.
    let mut f = facts?;
    match input.event {
        TicketEvent::TicketAccepted(_) => {}
        TicketEvent::TicketAssigned(a) => {
            if a.to_centre {
                f.centre = a.unit.clone();
            } else {
                let after_return = f.episodes.iter().any(|e| e.return_pos.is_some());
                let seq = f.episodes.len() as i32 + 1;
                f.episodes.push(Episode {
                    seq,
                    unit: a.unit.clone(),
                    assigned_at: at,
                    assign_pos: pos,
                    sign_due: a.sign_due_at.map(micros),
                    handle_due: a.handle_due_at.map(micros),
                    after_return,
                    ..Episode::default()
                });
                f.last_unit = Some(a.unit.clone());
            }
        }
        TicketEvent::TicketSigned(_) => {
            if let Some(e) = f.current()
                && e.signed_at.is_none()
            {
                e.signed_at = Some(at);
                e.sign_pos = Some(pos);
            }
        }
        TicketEvent::TicketReturned(r) => {
            if let Some(e) = f.current() {
                e.left_at = Some(at);
                e.return_pos = Some(pos);
            }
            f.centre = r.to_unit.clone();
            out.push(occ(&f, pos, Kind::Returned, r.unit.clone(), at));
        }
        TicketEvent::ExtensionRequested(_) => {
            if let Some(e) = f.current() {
                e.ext_requested += 1;
            }
            out.push(occ(&f, pos, Kind::ExtensionRequested, f.charged_unit(), at));
        }
        TicketEvent::ExtensionDecided(d) => {
            if d.approved {
                if let Some(e) = f.current() {
                    e.ext_approved += 1;
                    if let Some(due) = d.handle_due_at {
                        e.handle_due = Some(micros(due));
                    }
                }
                out.push(occ(&f, pos, Kind::ExtensionApproved, f.charged_unit(), at));
            }
        }
        TicketEvent::TicketSupervised(s) => {
            let unit = f.charged_unit();
            out.push(occ(&f, pos, Kind::Supervised, unit.clone(), at));
            if s.count >= 2 {
                out.push(occ(&f, pos, Kind::SupervisedRepeat, unit, at));
            }
        }
        TicketEvent::TicketHandled(_) => {
            let cal = ctx.calendar();
            if let Some(e) = f.current() {
                e.handled_at = Some(at);
                e.handle_pos = Some(pos);
                e.handled_due = e.handle_due;
                let secs = cal
                    .working_duration(instant(e.assigned_at), input.occurred_at)
                    .num_seconds();
                e.turnaround_secs = Some(secs.max(0));
            }
        }
        TicketEvent::VerificationFailed(v) => {
            let unit = f.charged_unit();
            if let Some(e) = f.current() {
                e.reworks += 1;
                e.handled_at = None;
                e.handle_pos = None;
                e.handled_due = None;
                e.turnaround_secs = None;
                e.handle_due = Some(micros(v.handle_due_at));
            }
            out.push(occ(&f, pos, Kind::VerificationFailed, unit, at));
        }
        TicketEvent::CitizenFeedbackRecorded(fb) => {
            let kind = match fb.satisfaction {
                crate::domain::Satisfaction::Satisfied => Kind::FeedbackSatisfied,
                crate::domain::Satisfaction::BasicallySatisfied => Kind::FeedbackBasic,
                crate::domain::Satisfaction::Unsatisfied => Kind::FeedbackUnsatisfied,
            };
            out.push(occ(&f, pos, kind, f.charged_unit(), at));
        }
        TicketEvent::TicketClosed(c) => {
            if let Some(e) = f.current()
                && e.is_open()
            {
                e.closed_at = Some(at);
                e.close_pos = Some(pos);
            }
            if voids_report(c.code) && f.accepted_pos > 0 {
                let (area, accepted) = (f.area.clone(), f.accepted_at);
                out.push(occ(&f, f.accepted_pos, Kind::ReportVoided, area, accepted));
            }
        }
        TicketEvent::VerificationPassed(_)
        | TicketEvent::TicketCommented(_)
        | TicketEvent::SlaWarning(_)
        | TicketEvent::SlaBreached(_) => {}
    }
    Some(f)
}

/// True for the close codes that take a report back: it found no place of its own
/// (a duplicate of another report, invalid, or withdrawn). A ticket closes once
/// (closed is final), so a report is taken back at most once.
pub fn voids_report(code: CloseCode) -> bool {
    matches!(
        code,
        CloseCode::Duplicate | CloseCode::Invalid | CloseCode::Withdrawn
    )
}

fn occ(f: &TicketFacts, position: i64, kind: Kind, unit: String, at: i64) -> Occurrence {
    Occurrence {
        position,
        kind,
        ticket: f.ticket,
        unit,
        at,
        category: f.category.clone(),
        source: f.source.clone(),
    }
}

//! The ticket's events: what happened, in the words of DESIGN §2.
//!
//! Each variant is stored as its own `event_type` with its payload as `data`; the
//! serde tagging below is exactly that split. Deadlines are computed by the command
//! that starts them and frozen in the event, so a replay never recomputes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use super::upcast::{DecodeError, current_version};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// 12345热线: a call or message to the hotline.
    Hotline,
    /// 网格上报: a grid worker's report.
    Grid,
    /// 市级督查: found by the city's supervision (市级发现督办), passed down to the
    /// district; the illegal-construction rule of the squad's sheet counts these.
    CitySupervision,
    /// 自查巡查: found by a unit's own patrol (a squad, a market office).
    Patrol,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Hotline,
        Source::Grid,
        Source::CitySupervision,
        Source::Patrol,
    ];

    /// The name of the source as the API and the statistics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Hotline => "hotline",
            Source::Grid => "grid",
            Source::CitySupervision => "city_supervision",
            Source::Patrol => "patrol",
        }
    }

    /// The source named `s` (as [`Source::as_str`] spells it), if there is one.
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Normal,
    Urgent,
    Emergency,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::Urgent => "urgent",
            Urgency::Emergency => "emergency",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    Satisfied,
    BasicallySatisfied,
    Unsatisfied,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseCode {
    Resolved,
    Duplicate,
    Invalid,
    Withdrawn,
}

/// Where the matter is: any of an address, WGS-84 coordinates and the base grid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub grid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub number: String,
    pub source: Source,
    pub category: String,
    pub urgency: Urgency,
    pub title: String,
    pub description: String,
    pub location: Location,
    /// Reference to the reporter's contact details, which live outside the log
    /// (personal data must be erasable without touching the log).
    pub reporter_ref: Option<Uuid>,
    pub related_to: Option<Uuid>,
    pub suggested_unit: Option<String>,
    /// The centre whose queue the ticket lands in.
    pub centre: String,
    /// Photos of the report, by the SHA-256 of the attachment (`serde(default)`:
    /// events written before attachments read as having none).
    #[serde(default)]
    pub photos: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assigned {
    /// The centre that dispatched this hop.
    pub from_unit: String,
    /// Lead unit (主办).
    pub unit: String,
    #[serde(default)]
    pub co_units: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// True when the hop reached another centre (district -> township, or a
    /// township passing up), which dispatches it on; no deadline runs until the
    /// hop that reaches the unit doing the work.
    pub to_centre: bool,
    pub sign_due_at: Option<DateTime<Utc>>,
    pub handle_due_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signed {
    pub unit: String,
    pub handler: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Returned {
    pub unit: String,
    pub reason: String,
    /// The centre the ticket goes back to.
    pub to_unit: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtensionRequested {
    pub days: u32,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtensionDecided {
    pub approved: bool,
    pub days: u32,
    /// The new handle deadline when approved.
    pub handle_due_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Supervised {
    pub note: String,
    /// The nth supervision of this ticket; the second and later are 重复督办.
    pub count: u32,
}

/// `TicketHandled`, schema version 2 (see `upcast.rs` for version 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handled {
    pub result: String,
    /// Photos of the result, by attachment hash (the API and `yiwang import` accept
    /// nothing else). Version 1 events may hold free-form names here too; reading
    /// one moves those into `legacy_photo_names`.
    #[serde(default)]
    pub photos: Vec<String>,
    #[serde(default)]
    pub self_handled: bool,
    /// Free-form photo names of a version 1 event written before attachments
    /// existed, kept for the record (no file is behind them). This build never
    /// writes any: the field is left out of the JSON when empty, so a version 2
    /// payload has exactly the fields a version 1 payload had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legacy_photo_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationPassed {
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationFailed {
    pub note: String,
    /// 限期重新办理: the new handle deadline.
    pub handle_due_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecorded {
    pub satisfaction: Satisfaction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Commented {
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Closed {
    pub code: CloseCode,
    pub duplicate_of: Option<Uuid>,
}

/// True for the name of an attachment: the SHA-256 of its bytes as 64 lowercase
/// hex digits (the only form a photo reference may take, and the only form that is
/// ever turned into a file name).
pub fn is_attachment_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Which deadline an SLA event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// 签收: the unit signs for the ticket.
    Sign,
    /// 办结: the unit reports it handled.
    Handle,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Sign => "sign",
            DeadlineKind::Handle => "handle",
        }
    }
}

/// The SLA watcher saw a deadline draw near (by default 80% of its time gone).
/// `due_at` names the deadline it is about, so a deadline that moves (extension,
/// rework, a new dispatch) gets its own warning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaWarning {
    pub deadline: DeadlineKind,
    pub due_at: DateTime<Utc>,
}

/// The SLA watcher saw a deadline pass with the step not done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaBreached {
    pub deadline: DeadlineKind,
    pub due_at: DateTime<Utc>,
}

/// Decodes a payload by its stored event type: `$decode` is called with the
/// variant's payload type as `T`; an unknown type is an error like serde's.
macro_rules! decode_by_type {
    ($ty:expr, |T| $decode:expr) => {{
        macro_rules! variant {
            ($variant:ident, $payload:ty) => {{
                type T = $payload;
                $decode.map(TicketEvent::$variant)
            }};
        }
        match $ty {
            "TicketAccepted" => variant!(TicketAccepted, Accepted),
            "TicketAssigned" => variant!(TicketAssigned, Assigned),
            "TicketSigned" => variant!(TicketSigned, Signed),
            "TicketReturned" => variant!(TicketReturned, Returned),
            "ExtensionRequested" => variant!(ExtensionRequested, ExtensionRequested),
            "ExtensionDecided" => variant!(ExtensionDecided, ExtensionDecided),
            "TicketSupervised" => variant!(TicketSupervised, Supervised),
            "TicketHandled" => variant!(TicketHandled, Handled),
            "VerificationPassed" => variant!(VerificationPassed, VerificationPassed),
            "VerificationFailed" => variant!(VerificationFailed, VerificationFailed),
            "CitizenFeedbackRecorded" => variant!(CitizenFeedbackRecorded, FeedbackRecorded),
            "TicketCommented" => variant!(TicketCommented, Commented),
            "TicketClosed" => variant!(TicketClosed, Closed),
            "SlaWarning" => variant!(SlaWarning, SlaWarning),
            "SlaBreached" => variant!(SlaBreached, SlaBreached),
            other => Err(<serde_json::Error as serde::de::Error>::unknown_variant(
                other,
                &[
                    "TicketAccepted",
                    "TicketAssigned",
                    "TicketSigned",
                    "TicketReturned",
                    "ExtensionRequested",
                    "ExtensionDecided",
                    "TicketSupervised",
                    "TicketHandled",
                    "VerificationPassed",
                    "VerificationFailed",
                    "CitizenFeedbackRecorded",
                    "TicketCommented",
                    "TicketClosed",
                    "SlaWarning",
                    "SlaBreached",
                ],
            )),
        }
    }};
}

/// Every event of a ticket stream. `type` and `data` are the stored columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TicketEvent {
    TicketAccepted(Accepted),
    TicketAssigned(Assigned),
    TicketSigned(Signed),
    TicketReturned(Returned),
    ExtensionRequested(ExtensionRequested),
    ExtensionDecided(ExtensionDecided),
    TicketSupervised(Supervised),
    TicketHandled(Handled),
    VerificationPassed(VerificationPassed),
    VerificationFailed(VerificationFailed),
    CitizenFeedbackRecorded(FeedbackRecorded),
    TicketCommented(Commented),
    TicketClosed(Closed),
    SlaWarning(SlaWarning),
    SlaBreached(SlaBreached),
}

impl TicketEvent {
    /// Splits into the stored (event_type, data) pair.
    ///
    /// The payload is serialized alone: it is exactly the `data` of the tagged
    /// enum's JSON (serde's adjacent tagging serializes the variant's content with
    /// its own `Serialize`), without building the `{"type": …, "data": …}` object
    /// around it and taking it apart again (`stored_parts_are_the_tagged_enums_type_and_data` in the domain tests
    /// checks the two agree).
    pub fn to_parts(&self) -> (String, serde_json::Value) {
        fn data<T: Serialize>(payload: &T) -> serde_json::Value {
            // Serializing a derived struct of plain fields into a Value cannot fail.
            serde_json::to_value(payload).expect("ticket events serialize")
        }
        let data = match self {
            TicketEvent::TicketAccepted(p) => data(p),
            TicketEvent::TicketAssigned(p) => data(p),
            TicketEvent::TicketSigned(p) => data(p),
            TicketEvent::TicketReturned(p) => data(p),
            TicketEvent::ExtensionRequested(p) => data(p),
            TicketEvent::ExtensionDecided(p) => data(p),
            TicketEvent::TicketSupervised(p) => data(p),
            TicketEvent::TicketHandled(p) => data(p),
            TicketEvent::VerificationPassed(p) => data(p),
            TicketEvent::VerificationFailed(p) => data(p),
            TicketEvent::CitizenFeedbackRecorded(p) => data(p),
            TicketEvent::TicketCommented(p) => data(p),
            TicketEvent::TicketClosed(p) => data(p),
            TicketEvent::SlaWarning(p) => data(p),
            TicketEvent::SlaBreached(p) => data(p),
        };
        (self.type_name().to_string(), data)
    }

    /// The schema version this build writes the event with (the store's
    /// `schema_version` column): its type's [`current_version`].
    pub fn schema_version(&self) -> i32 {
        current_version(self.type_name())
    }

    /// Rebuilds an event from its stored parts. A payload of an older schema
    /// version goes through its type's upcasters first (`upcast.rs`); a version
    /// newer than this build knows is an error ([`DecodeError::TooNew`]), never a
    /// guess.
    pub fn from_parts(
        event_type: &str,
        schema_version: i32,
        data: &serde_json::Value,
    ) -> Result<Self, DecodeError> {
        if schema_version == current_version(event_type) {
            // `&Value` is a deserializer: the payload is read in place, not copied.
            return Ok(decode_by_type!(event_type, |T| T::deserialize(data))?);
        }
        Self::from_older(event_type, schema_version, data.clone())
    }

    /// Rebuilds an event from its stored type, schema version and the payload's
    /// JSON text. An event of its type's current version is decoded straight from
    /// the text, without an intermediate `Value` (the projection rebuild reads a
    /// million of these); only an older version takes the `Value` route through
    /// the upcasters.
    pub fn from_json_parts(
        event_type: &str,
        schema_version: i32,
        data: &str,
    ) -> Result<Self, DecodeError> {
        if schema_version == current_version(event_type) {
            return Ok(decode_by_type!(event_type, |T| serde_json::from_str::<T>(
                data
            ))?);
        }
        Self::from_older(event_type, schema_version, serde_json::from_str(data)?)
    }

    /// An event of another version than the current one: upcast, then decoded.
    fn from_older(
        event_type: &str,
        schema_version: i32,
        data: serde_json::Value,
    ) -> Result<Self, DecodeError> {
        let data = super::upcast::upcast(event_type, schema_version, data)?;
        Ok(decode_by_type!(event_type, |T| T::deserialize(&data))?)
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            TicketEvent::TicketAccepted(_) => "TicketAccepted",
            TicketEvent::TicketAssigned(_) => "TicketAssigned",
            TicketEvent::TicketSigned(_) => "TicketSigned",
            TicketEvent::TicketReturned(_) => "TicketReturned",
            TicketEvent::ExtensionRequested(_) => "ExtensionRequested",
            TicketEvent::ExtensionDecided(_) => "ExtensionDecided",
            TicketEvent::TicketSupervised(_) => "TicketSupervised",
            TicketEvent::TicketHandled(_) => "TicketHandled",
            TicketEvent::VerificationPassed(_) => "VerificationPassed",
            TicketEvent::VerificationFailed(_) => "VerificationFailed",
            TicketEvent::CitizenFeedbackRecorded(_) => "CitizenFeedbackRecorded",
            TicketEvent::TicketCommented(_) => "TicketCommented",
            TicketEvent::TicketClosed(_) => "TicketClosed",
            TicketEvent::SlaWarning(_) => "SlaWarning",
            TicketEvent::SlaBreached(_) => "SlaBreached",
        }
    }
}

//! The command inputs, one shape for every way in: [`NewTicket`], [`ActionInput`]
//! and [`CommandMeta`], and the bodies they are parsed from with their checks
//! ([`parse_command`]). The HTTP handlers (`http::tickets`, `http::open311`), the
//! import of legacy history and the load generator all read a command's body
//! through here, so a body means the same whichever way it comes. The request
//! bodies keep their `utoipa::ToSchema` derives: the OpenAPI document
//! (`http::openapi`) describes them from here.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::text::check_text;
use crate::auth::policy::Action;
use crate::domain::{CloseCode, Location, Satisfaction, Source, Urgency};
use crate::error::AppError;

/// Requests over this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Text limits: a title is a line, a description a page.
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 10_000;
/// A code of the organisation or the catalogue (checked against it later), or a
/// person's name.
const MAX_CODE: usize = 100;

/// A new ticket as the API takes it, already parsed.
#[derive(Clone, Debug)]
pub struct NewTicket {
    /// The ticket's id. None (the API) draws a fresh UUID v7; the import of legacy
    /// history names one derived from the ticket's external reference, so that a
    /// second run of the same file finds the same ticket.
    pub id: Option<Uuid>,
    pub source: Source,
    pub category: String,
    pub title: String,
    pub description: String,
    pub urgency: Urgency,
    pub location: Location,
    pub reporter: Option<(Option<String>, Option<String>)>,
    pub related_to: Option<Uuid>,
    pub self_handled: Option<String>,
    /// Attachment hashes of the report's photos.
    pub photos: Vec<String>,
}

/// An action on an existing ticket as the API takes it.
#[derive(Clone, Debug)]
pub enum ActionInput {
    Assign {
        unit: String,
        co_units: Vec<String>,
        note: Option<String>,
    },
    Sign {
        handler: String,
    },
    Return {
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

impl ActionInput {
    pub(super) fn action(&self) -> Action {
        match self {
            ActionInput::Assign { .. } => Action::Assign,
            ActionInput::Sign { .. } => Action::Sign,
            ActionInput::Return { .. } => Action::Return,
            ActionInput::RequestExtension { .. } => Action::RequestExtension,
            ActionInput::DecideExtension { .. } => Action::DecideExtension,
            ActionInput::Supervise { .. } => Action::Supervise,
            ActionInput::Handle { .. } => Action::Handle,
            ActionInput::Verify { .. } => Action::Verify,
            ActionInput::Feedback { .. } => Action::Feedback,
            ActionInput::Comment { .. } => Action::Comment,
            ActionInput::Close { .. } => Action::Close,
        }
    }
}

/// The request facts that are not the body.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    pub idempotency_key: String,
    /// Hash of method, path and body.
    pub request_hash: String,
    pub if_match: Option<i64>,
    pub request_id: String,
}

/// The action names of `POST /api/v1/tickets/{id}/{action}`.
pub const ACTIONS: [&str; 11] = [
    "assign",
    "sign",
    "return",
    "request-extension",
    "decide-extension",
    "supervise",
    "handle",
    "verify",
    "feedback",
    "comment",
    "close",
];

/// A command's body parsed and checked exactly as the API does it: `create` is
/// the body of `POST /api/v1/tickets`, any other name one of [`ACTIONS`]. Errors
/// are the API's (400 / 422 naming the field within the body, 404 for an unknown
/// action). The import of legacy history reads its lines' bodies through here.
pub fn parse_command(action: &str, raw: &[u8]) -> Result<ParsedCommand, AppError> {
    if action == "create" {
        Ok(ParsedCommand::Create(new_ticket(parse_json(raw)?)?))
    } else {
        Ok(ParsedCommand::Act(parse_action(action, raw)?))
    }
}

/// What [`parse_command`] makes of a body.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per command, moved straight into the command path"
)]
pub enum ParsedCommand {
    Create(NewTicket),
    Act(ActionInput),
}

/// Checks a creation body beyond its shape and turns it into a [`NewTicket`].
pub(crate) fn new_ticket(b: CreateBody) -> Result<NewTicket, AppError> {
    check_text("title", &b.title, MAX_TITLE)?;
    check_text("description", &b.description, MAX_TEXT)?;
    check_text("category", &b.category, MAX_TITLE)?;
    if let Some(a) = &b.location.address {
        check_text("location.address", a, MAX_TITLE)?;
    }
    if let Some(g) = &b.location.grid {
        check_text("location.grid", g, MAX_CODE)?;
    }
    if b.location.lat.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
        return Err(AppError::invalid(
            "location.lat",
            "must be between -90 and 90",
        ));
    }
    if b.location
        .lon
        .is_some_and(|v| !(-180.0..=180.0).contains(&v))
    {
        return Err(AppError::invalid(
            "location.lon",
            "must be between -180 and 180",
        ));
    }
    if let Some(r) = &b.reporter {
        if let Some(n) = &r.name {
            check_text("reporter.name", n, MAX_CODE)?;
        }
        if let Some(p) = &r.phone {
            if p.len() > 32 || !p.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c)) {
                return Err(AppError::invalid(
                    "reporter.phone",
                    "must be a phone number (digits, +, -)",
                ));
            }
        }
    }
    if let Some(s) = &b.self_handled {
        check_text("self_handled.result", &s.result, MAX_TEXT)?;
    }
    crate::attachments::check_hashes("photos", &b.photos)?;
    Ok(NewTicket {
        id: None,
        source: b.source,
        category: b.category,
        title: b.title,
        description: b.description,
        urgency: b.urgency,
        location: b.location,
        reporter: b.reporter.map(|r| (r.name, r.phone)),
        related_to: b.related_to,
        self_handled: b.self_handled.map(|s| s.result),
        photos: b.photos,
    })
}

/// The body of `POST /api/v1/tickets` (受理): a new ticket. `urgency` defaults to `normal`;
/// a grid worker's report names its grid (`location.grid`). `self_handled`: a grid
/// worker fixed it on the spot (自行处置), so the ticket is accepted and handled at once.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateTicket)]
pub(crate) struct CreateBody {
    source: Source,
    /// A category code of `GET /api/v1/categories`.
    category: String,
    #[schema(max_length = 200)]
    title: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    description: String,
    /// Default `normal`.
    #[serde(default = "normal")]
    urgency: Urgency,
    #[serde(default)]
    location: Location,
    #[serde(default)]
    reporter: Option<ReporterBody>,
    /// A repeat complaint (重复投诉): the earlier ticket about the same matter.
    #[serde(default)]
    related_to: Option<Uuid>,
    #[serde(default)]
    self_handled: Option<SelfHandledBody>,
    /// Attachment hashes from POST /api/v1/attachments.
    #[serde(default)]
    photos: Vec<String>,
}

fn normal() -> Urgency {
    Urgency::Normal
}

/// The citizen's contact (personal data: kept out of the event log, masked to most readers).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReporterInput)]
pub(crate) struct ReporterBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

/// What the grid worker did on the spot.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SelfHandled)]
pub(crate) struct SelfHandledBody {
    result: String,
}

/// 派单: send the ticket to a lead unit (主办) and optional co-units (协办).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignBody {
    unit: String,
    #[serde(default)]
    co_units: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}
/// 签收: the unit acknowledges the ticket and names its handler.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignBody {
    handler: String,
}
/// 退回: the unit says the ticket is not theirs.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReturnBody)]
pub(crate) struct ReasonBody {
    reason: String,
}
/// 延期申请: ask for more working days.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RequestExtensionBody)]
pub(crate) struct ExtensionBody {
    /// Working days.
    days: u32,
    reason: String,
}
/// 延期审批: approve (optionally with fewer days) or refuse the pending request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DecideExtensionBody)]
pub(crate) struct DecideBody {
    approved: bool,
    /// Working days granted (1 to 30); default: those asked for.
    #[serde(default)]
    days: Option<u32>,
}
/// 督办: a centre presses the unit.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SuperviseBody)]
pub(crate) struct NoteBody {
    note: String,
}
/// 办结: the unit reports the result (photos: attachment references).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandleBody {
    result: String,
    #[serde(default)]
    photos: Vec<String>,
}
/// 核查: pass or fail the result; a failure reopens the ticket with a new deadline.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    passed: bool,
    #[serde(default)]
    note: String,
}
/// 回访: the citizen's satisfaction.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackBody {
    satisfaction: Satisfaction,
}
/// A comment on the ticket.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommentBody {
    text: String,
}
/// 结案: close with a code; `duplicate_of` names the ticket a duplicate repeats.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseBody {
    code: CloseCode,
    #[serde(default)]
    duplicate_of: Option<Uuid>,
}

/// Parses the body of `action`; an unknown action is a 404.
pub fn parse_action(action: &str, raw: &[u8]) -> Result<ActionInput, AppError> {
    Ok(match action {
        "assign" => {
            let b: AssignBody = parse_json(raw)?;
            if b.co_units.len() > 20 {
                return Err(AppError::invalid("co_units", "at most 20 co-units"));
            }
            check_text("unit", &b.unit, MAX_CODE)?;
            for (i, c) in b.co_units.iter().enumerate() {
                check_text(&format!("co_units[{i}]"), c, MAX_CODE)?;
            }
            if let Some(n) = &b.note {
                check_text("note", n, MAX_TEXT)?;
            }
            ActionInput::Assign {
                unit: b.unit,
                co_units: b.co_units,
                note: b.note,
            }
        }
        "sign" => {
            let b: SignBody = parse_json(raw)?;
            check_text("handler", &b.handler, MAX_CODE)?;
            ActionInput::Sign { handler: b.handler }
        }
        "return" => {
            let b: ReasonBody = parse_json(raw)?;
            check_text("reason", &b.reason, MAX_TEXT)?;
            ActionInput::Return { reason: b.reason }
        }
        "request-extension" => {
            let b: ExtensionBody = parse_json(raw)?;
            check_text("reason", &b.reason, MAX_TEXT)?;
            ActionInput::RequestExtension {
                days: b.days,
                reason: b.reason,
            }
        }
        "decide-extension" => {
            let b: DecideBody = parse_json(raw)?;
            ActionInput::DecideExtension {
                approved: b.approved,
                days: b.days,
            }
        }
        "supervise" => {
            let b: NoteBody = parse_json(raw)?;
            check_text("note", &b.note, MAX_TEXT)?;
            ActionInput::Supervise { note: b.note }
        }
        "handle" => {
            let b: HandleBody = parse_json(raw)?;
            check_text("result", &b.result, MAX_TEXT)?;
            crate::attachments::check_hashes("photos", &b.photos)?;
            ActionInput::Handle {
                result: b.result,
                photos: b.photos,
            }
        }
        "verify" => {
            let b: VerifyBody = parse_json(raw)?;
            check_text("note", &b.note, MAX_TEXT)?;
            ActionInput::Verify {
                passed: b.passed,
                note: b.note,
            }
        }
        "feedback" => {
            let b: FeedbackBody = parse_json(raw)?;
            ActionInput::Feedback {
                satisfaction: b.satisfaction,
            }
        }
        "comment" => {
            let b: CommentBody = parse_json(raw)?;
            check_text("text", &b.text, MAX_TEXT)?;
            ActionInput::Comment { text: b.text }
        }
        "close" => {
            let b: CloseBody = parse_json(raw)?;
            ActionInput::Close {
                code: b.code,
                duplicate_of: b.duplicate_of,
            }
        }
        other => {
            return Err(AppError::NotFound(format!(
                "no action {other:?}; actions are assign, sign, return, request-extension, decide-extension, \
                 supervise, handle, verify, feedback, comment, close"
            )));
        }
    })
}

/// A command's body as JSON into `T`: malformed JSON (or anything after the value) is
/// a 400, a missing or wrong field a 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, AppError> {
    if raw.is_empty() {
        return Err(AppError::BadRequest("the request needs a JSON body".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(raw);
    let value = parse_value(de)?;
    // One JSON value and nothing after it (whitespace aside): `{...} {...}` is not a body.
    de.end()
        .map_err(|e| AppError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

fn parse_value<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, AppError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    // A missing field is reported on the enclosing object.
                    missing_field(&inner.to_string()).unwrap_or_else(|| "body".into())
                } else {
                    path
                };
                AppError::invalid(field, strip_position(&inner.to_string()))
            }
            _ => AppError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

//! The command inputs, one shape for every way in: [`NewTicket`], [`ActionInput`]
//! and [`CommandMeta`], and the bodies they are parsed from with their checks
//! ([`parse_command`]). The HTTP handlers (`http::tickets`, `http::open311`), the
//! import of legacy history and the load generator all read a command's body
//! through here, so a body means the same whichever way it comes. The request
//! bodies keep their `utoipa::ToSchema` derives: the OpenAPI document
//! (`http::openapi`) describes them from here.
//!
//! An action has one shape from its body to the domain: the request body
//! (`AssignBody`, …) is read by serde, held as it is by its [`ActionInput`]
//! variant and checked there (lengths, counts, hashes); `app::decide::to_command`
//! checks it against the organisation and makes the domain's `Command`, which the
//! aggregate's `decide` judges against the ticket's state.

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

/// An action on an existing ticket as the API takes it: the action's request body
/// (the same struct the OpenAPI document describes), its shape read and its text
/// checked by [`parse_action`]. `decide::to_command` turns it into the domain's
/// `Command` after the organisation's checks.
#[derive(Clone, Debug)]
pub enum ActionInput {
    Assign(AssignBody),
    Sign(SignBody),
    Return(ReasonBody),
    RequestExtension(ExtensionBody),
    DecideExtension(DecideBody),
    Supervise(NoteBody),
    Handle(HandleBody),
    Verify(VerifyBody),
    Feedback(FeedbackBody),
    Comment(CommentBody),
    Close(CloseBody),
}

impl ActionInput {
    pub(super) fn action(&self) -> Action {
        match self {
            ActionInput::Assign(_) => Action::Assign,
            ActionInput::Sign(_) => Action::Sign,
            ActionInput::Return(_) => Action::Return,
            ActionInput::RequestExtension(_) => Action::RequestExtension,
            ActionInput::DecideExtension(_) => Action::DecideExtension,
            ActionInput::Supervise(_) => Action::Supervise,
            ActionInput::Handle(_) => Action::Handle,
            ActionInput::Verify(_) => Action::Verify,
            ActionInput::Feedback(_) => Action::Feedback,
            ActionInput::Comment(_) => Action::Comment,
            ActionInput::Close(_) => Action::Close,
        }
    }

    /// The text checks of the body beyond its shape (lengths, counts, attachment
    /// hashes): a 422 naming the field. The checks against the organisation and
    /// the ticket's state come later (`decide`).
    fn check(&self) -> Result<(), AppError> {
        match self {
            ActionInput::Assign(b) => {
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
            }
            ActionInput::Sign(b) => check_text("handler", &b.handler, MAX_CODE)?,
            ActionInput::Return(b) => check_text("reason", &b.reason, MAX_TEXT)?,
            ActionInput::RequestExtension(b) => check_text("reason", &b.reason, MAX_TEXT)?,
            ActionInput::DecideExtension(_) => {}
            ActionInput::Supervise(b) => check_text("note", &b.note, MAX_TEXT)?,
            ActionInput::Handle(b) => {
                check_text("result", &b.result, MAX_TEXT)?;
                crate::attachments::check_hashes("photos", &b.photos)?;
            }
            ActionInput::Verify(b) => check_text("note", &b.note, MAX_TEXT)?,
            ActionInput::Feedback(_) => {}
            ActionInput::Comment(b) => check_text("text", &b.text, MAX_TEXT)?,
            ActionInput::Close(_) => {}
        }
        Ok(())
    }
}

/// The request facts that are not the body.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    pub idempotency_key: String,
    /// Hash of method, path and body.
    pub request_hash: String,
    pub if_match: Option<IfMatch>,
    pub request_id: String,
}

/// An `If-Match` precondition on the ticket's version, compared strongly (RFC 9110
/// §13.1.1): the versions of the strong entity tags the header lists. A weak tag
/// (`W/"3"`) never matches, so a header of weak tags only fails on any ticket. (`*`
/// sets no condition: a command acts on a ticket that exists.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfMatch(pub Vec<i64>);

impl IfMatch {
    pub fn matches(&self, version: i64) -> bool {
        self.0.contains(&version)
    }
}

impl CommandMeta {
    /// Who did it and why, as stored with every event the command appends.
    pub fn metadata(&self, actor: &crate::auth::Actor) -> crate::store::Metadata {
        crate::store::Metadata {
            actor: actor.user.clone(),
            role: actor.role.as_str().to_string(),
            unit: Some(actor.unit.clone()),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency_key: Some(self.idempotency_key.clone()),
            request_id: Some(self.request_id.clone()),
        }
    }

    /// What answers the retries of the command on `stream`, kept under the actor's
    /// key: the first answer's `status`, the `version` the command leaves the
    /// stream at, and its `body` when the answer cannot be rendered again from the
    /// stream at that version (None for a ticket's: see `App::replay`).
    pub fn idempotency_record(
        &self,
        actor: &crate::auth::Actor,
        status: u16,
        body: Option<String>,
        (stream, version): (Uuid, i64),
    ) -> crate::store::IdempotencyRecord {
        crate::store::IdempotencyRecord {
            scope: actor.user.clone(),
            key: self.idempotency_key.clone(),
            request_hash: self.request_hash.clone(),
            status,
            body,
            stream_id: stream,
            version: Some(version),
        }
    }
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
/// action). The import of legacy history, the load generator and Open311 read
/// their bodies through here; `http::tickets` calls its two halves itself
/// ([`parse_action`] for an action; for a creation the body's shape, then its
/// Idempotency-Key, then [`new_ticket`]'s checks, the API's order of refusals).
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
        if let Some(p) = &r.phone
            && (p.len() > 32 || !p.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c)))
        {
            return Err(AppError::invalid(
                "reporter.phone",
                "must be a phone number (digits, +, -)",
            ));
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
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub unit: String,
    #[serde(default)]
    pub co_units: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}
/// 签收: the unit acknowledges the ticket and names its handler.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    pub handler: String,
}
/// 退回: the unit says the ticket is not theirs.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReturnBody)]
pub struct ReasonBody {
    pub reason: String,
}
/// 延期申请: ask for more working days.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RequestExtensionBody)]
pub struct ExtensionBody {
    /// Working days.
    pub days: u32,
    pub reason: String,
}
/// 延期审批: approve (optionally with fewer days) or refuse the pending request.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DecideExtensionBody)]
pub struct DecideBody {
    pub approved: bool,
    /// Working days granted (1 to 30); default: those asked for.
    #[serde(default)]
    pub days: Option<u32>,
}
/// 督办: a centre presses the unit.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SuperviseBody)]
pub struct NoteBody {
    pub note: String,
}
/// 办结: the unit reports the result (photos: attachment references).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleBody {
    pub result: String,
    #[serde(default)]
    pub photos: Vec<String>,
}
/// 核查: pass or fail the result; a failure reopens the ticket with a new deadline.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    pub passed: bool,
    #[serde(default)]
    pub note: String,
}
/// 回访: the citizen's satisfaction.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    pub satisfaction: Satisfaction,
}
/// A comment on the ticket.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub text: String,
}
/// 结案: close with a code; `duplicate_of` names the ticket a duplicate repeats.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    pub code: CloseCode,
    /// The ticket this one repeats: its id, or its number (`YYYYMMDD-NNNNNN`,
    /// which the API resolves to the id before the command).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub duplicate_of: Option<Uuid>,
}

/// Parses the body of `action` and checks its text ([`ActionInput::check`]); an
/// unknown action is a 404.
pub fn parse_action(action: &str, raw: &[u8]) -> Result<ActionInput, AppError> {
    let input = match action {
        "assign" => ActionInput::Assign(parse_json(raw)?),
        "sign" => ActionInput::Sign(parse_json(raw)?),
        "return" => ActionInput::Return(parse_json(raw)?),
        "request-extension" => ActionInput::RequestExtension(parse_json(raw)?),
        "decide-extension" => ActionInput::DecideExtension(parse_json(raw)?),
        "supervise" => ActionInput::Supervise(parse_json(raw)?),
        "handle" => ActionInput::Handle(parse_json(raw)?),
        "verify" => ActionInput::Verify(parse_json(raw)?),
        "feedback" => ActionInput::Feedback(parse_json(raw)?),
        "comment" => ActionInput::Comment(parse_json(raw)?),
        "close" => ActionInput::Close(parse_json(raw)?),
        other => {
            return Err(AppError::NotFound(format!(
                "no action {other:?}; actions are assign, sign, return, request-extension, decide-extension, \
                 supervise, handle, verify, feedback, comment, close"
            )));
        }
    };
    input.check()?;
    Ok(input)
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

//! The file read line by line: each line checked around its body (time, actor,
//! action) and grouped by ticket; a line's body parsed as the API parses it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::app::commands::{ACTIONS, ParsedCommand, parse_command};
use crate::auth::{Actor, Role};
use crate::error::AppError;
use crate::org::Org;

use super::{BadLine, IMPORT_TOKEN, reason};

/// A line read and checked, its body not parsed yet (that needs every ticket's id).
pub(super) struct Line {
    pub(super) no: usize,
    pub(super) text: String,
    pub(super) at: DateTime<Utc>,
    pub(super) actor: Actor,
    pub(super) action: String,
    pub(super) body: Value,
}

/// One ticket's lines, in file order.
pub(super) struct Group {
    pub(super) reference: String,
    pub(super) lines: Vec<Line>,
    /// Lines of this ticket that could not be read.
    pub(super) bad: Vec<BadLine>,
    /// The line number of the ticket's first line and its `at` when that line was
    /// read (the ticket's id comes from it).
    pub(super) first: (usize, Option<DateTime<Utc>>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    #[allow(dead_code)] // read before, from the Value; kept so the field is allowed
    ticket: String,
    at: String,
    actor: RawActor,
    action: String,
    body: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    user: String,
    role: String,
    unit: String,
}

/// Reads every line; lines whose ticket reference can be read are grouped by it,
/// in the order of each ticket's first line.
pub(super) fn read_file(
    bytes: &[u8],
    org: &Org,
    now: DateTime<Utc>,
) -> (Vec<Group>, Vec<BadLine>, usize) {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut loose = Vec::new();
    let mut read = 0;
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let no = i + 1;
        let raw = if no == 1 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let raw = raw.trim_ascii();
        if raw.is_empty() {
            continue;
        }
        read += 1;
        let loose_bad = |reason: String| BadLine {
            line: no,
            ticket: None,
            reason,
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            loose.push(loose_bad("not UTF-8 text".into()));
            continue;
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                loose.push(loose_bad(format!("not valid JSON: {}", json_error(&e))));
                continue;
            }
        };
        let reference = match value.get("ticket") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                loose.push(loose_bad(
                    "no ticket reference: \"ticket\" must be a non-empty string".into(),
                ));
                continue;
            }
        };
        let g = *index.entry(reference.clone()).or_insert_with(|| {
            groups.push(Group {
                reference: reference.clone(),
                lines: Vec::new(),
                bad: Vec::new(),
                first: (no, None),
            });
            groups.len() - 1
        });
        let group = &mut groups[g];
        match read_line(no, text, value, org, now) {
            Ok(line) => {
                if group.first.0 == no {
                    group.first.1 = Some(line.at);
                }
                group.lines.push(line);
            }
            Err(reason) => group.bad.push(BadLine {
                line: no,
                ticket: Some(reference),
                reason,
            }),
        }
    }
    (groups, loose, read)
}

/// A serde_json error without its "line 1" (every line is line 1 to the parser).
fn json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.find(" at line ") {
        Some(i) => format!("{} at column {}", &msg[..i], e.column()),
        None => msg,
    }
}

/// Checks the parts of a line around its body: the time, the actor, the action.
fn read_line(
    no: usize,
    text: &str,
    value: Value,
    org: &Org,
    now: DateTime<Utc>,
) -> Result<Line, String> {
    let raw: RawLine = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })?;
    let at = DateTime::parse_from_rfc3339(raw.at.trim())
        .map_err(|e| format!("at: {:?} is not an RFC 3339 time ({e})", raw.at))?
        .with_timezone(&Utc);
    let at = crate::store::truncate_micros(at);
    if at.timestamp_millis() < 0 {
        return Err(format!("at: {} is before 1970", raw.at));
    }
    if at > now {
        return Err(format!("at: {} is in the future", raw.at));
    }
    let role = Role::parse(raw.actor.role.trim()).ok_or_else(|| {
        format!(
            "actor.role: unknown role {:?}; use grid_worker, hotline_agent, dispatcher, handler, analyst, appraiser or admin",
            raw.actor.role
        )
    })?;
    let user = raw.actor.user.trim();
    if user.is_empty() || user.len() > 100 {
        return Err("actor.user: must be 1 to 100 characters".into());
    }
    // The user lands in every event's metadata: the API's rule for text.
    if let Err(AppError::Invalid { message, .. }) =
        crate::app::text::check_text("actor.user", user, 100)
    {
        return Err(format!("actor.user: {message}"));
    }
    let unit = raw.actor.unit.trim();
    if org.unit(unit).is_none() {
        return Err(format!("actor.unit: no unit {unit:?} in the organisation"));
    }
    let action = raw.action;
    if action != "create" && !ACTIONS.contains(&action.as_str()) {
        return Err(format!(
            "action: unknown action {action:?}; actions are create, {}",
            ACTIONS.join(", ")
        ));
    }
    Ok(Line {
        no,
        text: text.to_string(),
        at,
        actor: Actor {
            token_id: IMPORT_TOKEN.into(),
            user: user.to_string(),
            role,
            unit: unit.to_string(),
        },
        action,
        body: raw.body,
    })
}

/// The line's body as the API parses it, with a `related_to` (create) or
/// `duplicate_of` (close) that names a ticket of the file replaced by its id.
pub(super) fn command(
    line: &Line,
    ids: &HashMap<String, Option<Uuid>>,
) -> Result<ParsedCommand, String> {
    let mut body = line.body.clone();
    let field = match line.action.as_str() {
        "create" => Some("related_to"),
        "close" => Some("duplicate_of"),
        _ => None,
    };
    if let Some(field) = field
        && let Some(Value::String(s)) = body.get(field)
    {
        match ids.get(s) {
            Some(Some(id)) => body[field] = Value::String(id.to_string()),
            Some(None) => {
                return Err(format!(
                    "422 body.{field}: ticket {s:?} of this file cannot be imported (see its first line)"
                ));
            }
            None if Uuid::parse_str(s).is_ok() => {}
            None => {
                return Err(format!(
                    "422 body.{field}: {s:?} is neither a ticket of this file nor a ticket id"
                ));
            }
        }
    }
    // Serializing a Value cannot fail.
    let raw = serde_json::to_vec(&body).expect("a JSON value serializes");
    if raw.len() > crate::app::commands::BODY_LIMIT {
        return Err("413: the body is over the API's 1 MiB limit".into());
    }
    parse_command(&line.action, &raw).map_err(|e| reason(&e))
}

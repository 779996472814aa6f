//! The ticket's JSON of the public contract ([`render`], [`render_string`]), with its
//! OpenAPI schemas (`Ticket`, `TicketPhoto`, `Deadlines`, `Reporter`,
//! `DeadlineStatus`), and the reporter's contact in it: shown in full or masked
//! ([`reporter_json`], [`mask_name`], [`mask_phone`]); [`shows_contact`] tells an
//! answer that shows it in full.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::*;
use crate::repo::contacts::Contact;

/// met / missed / running for one deadline.
fn deadline_status(
    due: Option<DateTime<Utc>>,
    done: Option<DateTime<Utc>>,
    open: bool,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    match (due, done) {
        (None, _) => None,
        (Some(d), Some(at)) => Some(if at <= d { "met" } else { "missed" }),
        (Some(d), None) if open => Some(if now <= d { "running" } else { "missed" }),
        (Some(_), None) => None,
    }
}

/// The ticket JSON of the public contract.
pub fn render(t: &Ticket, now: DateTime<Utc>, reporter: Option<Value>) -> Value {
    // Serializing a struct of plain fields into a Value cannot fail.
    serde_json::to_value(TicketJson::new(t, now, reporter)).expect("ticket JSON serializes")
}

/// The same JSON as text, without building a Value first (the command path).
pub fn render_string(t: &Ticket, now: DateTime<Utc>, reporter: Option<Value>) -> String {
    // Sized for the answer at once (keys, numbers and instants take about 1,100
    // bytes, a photo's URL about 150 more than its hash) rather than grown from
    // serde_json's 128 bytes a doubling at a time.
    let mut out = Vec::with_capacity(1280 + t.text_len() + t.photos.len() * 160);
    // Serializing a struct of plain fields cannot fail.
    serde_json::to_writer(&mut out, &TicketJson::new(t, now, reporter))
        .expect("ticket JSON serializes");
    // serde_json writes UTF-8 only.
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The ticket JSON of the public contract, borrowed from the folded state (its
/// OpenAPI schema is `Ticket`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Ticket)]
pub(crate) struct TicketJson<'a> {
    id: Uuid,
    /// `YYYYMMDD-NNNNNN`: the acceptance date (Asia/Shanghai) and a serial.
    number: &'a str,
    #[schema(value_type = State)]
    state: &'static str,
    /// The stream version; also the ETag.
    version: i64,
    source: Source,
    category: &'a str,
    urgency: Urgency,
    title: &'a str,
    description: &'a str,
    location: &'a Location,
    /// The reporter's contact, on the creation answer and on a single ticket (masked
    /// unless the reader needs it); null in lists, in the answers to actions, and
    /// once erased.
    #[schema(value_type = Option<Reporter>)]
    reporter: Option<Value>,
    /// The earlier ticket this one repeats (重复投诉).
    related_to: Option<Uuid>,
    /// The unit the catalogue routes the category to, for the dispatcher; null
    /// once that unit has sent the ticket back (`returned_by`).
    suggested_unit: Option<&'a str>,
    /// The units that sent the ticket back (退回), each once, in order.
    returned_by: &'a [String],
    /// Why it was last sent back; null once it is dispatched again.
    return_reason: Option<&'a str>,
    /// The centre that holds (or last dispatched) the ticket.
    centre: &'a str,
    /// The lead unit (主办) once dispatched.
    unit: Option<&'a str>,
    /// Co-units (协办).
    co_units: &'a [String],
    /// The person the lead unit named when signing.
    handler: Option<&'a str>,
    deadlines: DeadlinesJson,
    /// An open deadline has passed.
    overdue: bool,
    /// Times returned (退回).
    returned: u32,
    /// Times supervised (督办).
    supervised: u32,
    /// An extension was approved.
    extended: bool,
    /// Failed verifications (返工).
    reworked: u32,
    /// Days asked for by an undecided extension request.
    pending_extension_days: Option<u32>,
    /// Fixed on the spot by the grid worker (自行处置).
    self_handled: bool,
    result: Option<&'a str>,
    satisfaction: Option<Satisfaction>,
    close_code: Option<CloseCode>,
    duplicate_of: Option<Uuid>,
    photos: Vec<PhotoJson<'a>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

/// A photo of the ticket (an attachment), with the URL that serves it to whoever
/// may see the ticket.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = TicketPhoto)]
pub(crate) struct PhotoJson<'a> {
    /// The attachment's SHA-256 (from `POST /api/v1/attachments`).
    hash: &'a str,
    /// `accepted`: with the report; `handled`: with a result.
    stage: PhotoStage,
    /// `/api/v1/tickets/{id}/attachments/{hash}`.
    #[schema(value_type = String)]
    url: PhotoUrl<'a>,
}

/// A photo's URL, written straight into the answer (no text of its own).
struct PhotoUrl<'a> {
    id: Uuid,
    hash: &'a str,
}

impl serde::Serialize for PhotoUrl<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "/api/v1/tickets/{}/attachments/{}",
            self.id, self.hash
        ))
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Deadlines)]
pub(crate) struct DeadlinesJson {
    sign_due_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<DeadlineStatus>)]
    sign: Option<&'static str>,
    handle_due_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<DeadlineStatus>)]
    handle: Option<&'static str>,
    /// The SLA watcher has warned (`SlaWarning`) that the sign deadline is near:
    /// the desk shows it amber until it is met or breached.
    sign_warned: bool,
    /// The same for the handle deadline now in force.
    handle_warned: bool,
}

/// A reporter's contact on a ticket: in full for hotline agents, admins and the
/// handling unit, masked (`赵**`, `138****0000`) for everyone else.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: `reporter_json` builds it
pub struct Reporter {
    name: Option<String>,
    phone: Option<String>,
    masked: bool,
}

/// A deadline's standing: `met` or `missed` once done, `running` while open and not
/// past due (`missed` when past it).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // a schema only: `deadline_status` gives it as text
pub enum DeadlineStatus {
    Met,
    Missed,
    Running,
}

impl<'a> TicketJson<'a> {
    fn new(t: &'a Ticket, now: DateTime<Utc>, reporter: Option<Value>) -> TicketJson<'a> {
        let open = t.state == State::Assigned;
        TicketJson {
            id: t.id,
            number: &t.number,
            state: t.state.as_str(),
            version: t.version,
            source: t.source,
            category: &t.category,
            urgency: t.urgency,
            title: &t.title,
            description: &t.description,
            location: &t.location,
            reporter,
            related_to: t.related_to,
            suggested_unit: t.suggestion(),
            returned_by: &t.returned_by,
            return_reason: t.return_reason.as_deref(),
            centre: &t.centre,
            unit: t.unit.as_deref(),
            co_units: &t.co_units,
            handler: t.handler.as_deref(),
            deadlines: DeadlinesJson {
                sign_due_at: t.sign_due_at,
                sign: deadline_status(t.sign_due_at, t.signed_at, open, now),
                handle_due_at: t.handle_due_at,
                handle: deadline_status(t.handle_due_at, t.handled_at, open, now),
                sign_warned: t.sign_due_at.is_some() && t.sla.sign_warned == t.sign_due_at,
                handle_warned: t.handle_due_at.is_some() && t.sla.handle_warned == t.handle_due_at,
            },
            overdue: t.overdue(now),
            returned: t.returns,
            supervised: t.supervisions,
            extended: t.extensions > 0,
            reworked: t.reworks,
            pending_extension_days: t.pending_extension_days,
            self_handled: t.self_handled,
            result: t.result.as_deref(),
            satisfaction: t.satisfaction,
            close_code: t.close_code,
            duplicate_of: t.duplicate_of,
            photos: t
                .photos
                .iter()
                .map(|p| PhotoJson {
                    hash: &p.hash,
                    stage: p.stage,
                    url: PhotoUrl {
                        id: t.id,
                        hash: &p.hash,
                    },
                })
                .collect(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            closed_at: t.closed_at,
        }
    }
}

/// The reporter's contact: in full when `full` ([`policy::sees_contact`](crate::auth::policy::sees_contact): the
/// hotline and admins of a unit that owns the ticket, and its lead unit's handlers);
/// masked for everyone else.
pub fn reporter_json(c: &Contact, full: bool) -> Value {
    // Erased after the retention period (yiwang contacts purge): nothing to show.
    if c.name.is_none() && c.phone.is_none() {
        return Value::Null;
    }
    if full {
        json!({ "name": c.name, "phone": c.phone, "masked": false })
    } else {
        json!({
            "name": c.name.as_deref().map(mask_name),
            "phone": c.phone.as_deref().map(mask_phone),
            "masked": true,
        })
    }
}

/// Whether a ticket answer (its JSON as [`render_string`] writes it, fresh or kept
/// for an idempotent replay) shows a reporter's contact in full: the HTTP layer then
/// forbids caches to keep it (`Cache-Control: no-store`).
///
/// serde_json writes compact JSON, and a `"` inside a string is always escaped as
/// `\"`, so `"masked":false` occurs only as the key and value that
/// [`reporter_json`] writes for a contact shown in full, never inside a title or a
/// description.
pub fn shows_contact(body: &str) -> bool {
    body.contains(r#""masked":false"#)
}

/// `张三` -> `张*`; keeps the first character.
pub fn mask_name(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// `13800000000` -> `138****0000`: keeps the first three and last four digits.
pub fn mask_phone(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..3]
        .iter()
        .chain(std::iter::repeat_n(&'*', n - 7))
        .chain(&chars[n - 4..])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_names_and_phones() {
        assert_eq!(mask_name("赵先生"), "赵**");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_phone("13800000000"), "138****0000");
        assert_eq!(mask_phone("12345"), "*****");
    }

    #[test]
    fn an_unmasked_contact_is_told_from_the_body() {
        let full = json!({"name": "赵先生", "phone": "13800000000", "masked": false});
        let masked = json!({"name": "赵**", "phone": "138****0000", "masked": true});
        for (reporter, shown) in [(full, true), (masked, false), (Value::Null, false)] {
            let body = json!({"id": 1, "title": "x", "reporter": reporter}).to_string();
            assert_eq!(shows_contact(&body), shown, "{body}");
        }
        // The words inside a text are escaped, so they do not count.
        let body = json!({"title": "\"masked\":false", "reporter": null}).to_string();
        assert!(!shows_contact(&body), "{body}");
    }
}

//! A ticket as GeoReport shows a service request: its status, where it stands in
//! words, its photo's address, and (for the public) contacts masked.

use serde_json::{Value, json};

use super::mask;
use crate::domain::{PhotoStage, State as TicketState, Ticket};
use crate::org::Org;

/// `open` until the centre has verified the result; `closed` after (verified or
/// closed).
pub(super) fn status_of(t: &Ticket) -> &'static str {
    match t.state {
        TicketState::Verified | TicketState::Closed => "closed",
        TicketState::Accepted | TicketState::Assigned | TicketState::Handled => "open",
    }
}

pub(super) fn unit_name(org: &Org, code: &str) -> String {
    org.unit(code)
        .map(|u| u.name.clone())
        .unwrap_or_else(|| code.to_string())
}

/// Where the ticket stands, in Chinese and English.
pub(super) fn status_notes(org: &Org, t: &Ticket) -> String {
    let unit = t.unit.as_deref().map(|u| unit_name(org, u));
    match t.state {
        TicketState::Accepted => "已受理，等待派单 / accepted, waiting for dispatch".to_string(),
        TicketState::Assigned => match (&unit, t.handler.is_some()) {
            (Some(u), true) => format!("{u}已签收，办理中 / signed for by {u}, in hand"),
            (Some(u), false) => format!("已派单至{u} / dispatched to {u}"),
            (None, _) => "已派单 / dispatched".to_string(),
        },
        TicketState::Handled => "已办结，等待核查 / handled, waiting for verification".to_string(),
        TicketState::Verified => "已核查通过 / verified".to_string(),
        TicketState::Closed => {
            let code = t
                .close_code
                .map(|c| match c {
                    crate::domain::CloseCode::Resolved => "已解决 / resolved",
                    crate::domain::CloseCode::Duplicate => "重复件 / duplicate",
                    crate::domain::CloseCode::Invalid => "无效件 / invalid",
                    crate::domain::CloseCode::Withdrawn => "撤件 / withdrawn",
                })
                .unwrap_or("");
            format!("已结案 / closed: {code}")
        }
    }
}

/// How a request is shown: to a key (its description as written) or to the public
/// (contacts masked out of it); `base` makes `media_url` absolute.
pub(super) struct Shown<'a> {
    pub(super) public: bool,
    pub(super) base: &'a str,
}

/// The report's first photo (one posted as `media`, or with the ticket in
/// `/api/v1`), if any.
pub(super) fn report_photo(t: &Ticket) -> Option<&str> {
    t.photos
        .iter()
        .find(|p| p.stage == PhotoStage::Accepted)
        .map(|p| p.hash.as_str())
}

/// A ticket as a GeoReport service request: the spec's fields, nothing else. The
/// reporter's contact is left out; for the public, the contacts recognisable in
/// the description (and the address, should one be written there) are masked
/// ([`mask::contacts`]).
pub(super) fn request_json(org: &Org, t: &Ticket, shown: &Shown) -> Value {
    let service_name = org
        .category(&t.category)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| t.category.clone());
    let agency = unit_name(org, t.unit.as_deref().unwrap_or(&t.centre));
    json!({
        "service_request_id": t.id,
        "status": status_of(t),
        "status_notes": status_notes(org, t),
        "service_name": service_name,
        "service_code": t.category,
        "description": if shown.public {
            mask::contacts(&t.description)
        } else {
            t.description.clone()
        },
        "agency_responsible": agency,
        "service_notice": format!("工单编号 {} / ticket number {}", t.number, t.number),
        "requested_datetime": t.created_at,
        "updated_datetime": t.updated_at,
        "expected_datetime": t.handle_due_at,
        "address": match &t.location.address {
            Some(a) if shown.public => Some(mask::contacts(a)),
            other => other.clone(),
        },
        "address_id": null,
        "zipcode": null,
        "lat": t.location.lat,
        "long": t.location.lon,
        "media_url": report_photo(t)
            .map(|_| format!("{}/open311/v2/requests/{}/media", shown.base, t.id)),
    })
}

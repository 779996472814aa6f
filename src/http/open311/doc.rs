//! The Open311 routes in the OpenAPI document (`http::openapi` adds [`Open311`] to
//! its modifiers): every resource in JSON and in XML, discovery, the multipart
//! POST and the photo. The router serves each format by one route whose last
//! segment is the file name (`requests.json`, `requests/{id}.xml`), so, as for the
//! ticket actions of `http::openapi::actions`, the operations are declared on
//! functions of their own here that are never called; the schemas describe the
//! JSON the handlers write with `json!` (their XML holds the same fields).

#![allow(dead_code)] // schemas and operations only: see the module's doc

use serde::Serialize;
use utoipa::openapi::OpenApi as Doc;
use utoipa::{Modify, OpenApi, ToSchema};

/// GeoReport's discovery document.
#[derive(Serialize, ToSchema)]
pub struct Open311Discovery {
    /// When the interface last changed (W3C date-time).
    changeset: String,
    /// Whom to ask about the endpoint.
    contact: String,
    /// How to get an api_key.
    key_service: String,
    endpoints: Vec<Open311Endpoint>,
}

/// One endpoint of discovery.
#[derive(Serialize, ToSchema)]
pub struct Open311Endpoint {
    /// `http://wiki.open311.org/GeoReport_v2`
    specification: String,
    /// The endpoint's root: this host's `/open311/v2`.
    url: String,
    changeset: String,
    /// `production`
    #[serde(rename = "type")]
    kind: String,
    /// `application/json` and `text/xml`.
    formats: Vec<String>,
}

/// A service: a category of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct Open311Service {
    /// The category code (`city.exposed_garbage`).
    service_code: String,
    service_name: String,
    /// The group and the name.
    description: String,
    /// Always false: no service has extra attributes.
    metadata: bool,
    /// Always `realtime`.
    #[serde(rename = "type")]
    kind: String,
    /// The group and the code's domain, comma-separated.
    keywords: String,
    group: Option<String>,
}

/// A service definition: no attributes.
#[derive(Serialize, ToSchema)]
pub struct Open311ServiceDefinition {
    service_code: String,
    /// Always empty.
    #[schema(value_type = Vec<Object>)]
    attributes: Vec<()>,
}

/// A service request: GeoReport's fields, nothing else. The reporter is never in
/// it; for a read without a key (public reads) the description has its contacts
/// masked.
#[derive(Serialize, ToSchema)]
pub struct Open311Request {
    /// The ticket id (of `/api/v1/tickets/{id}`).
    service_request_id: uuid::Uuid,
    /// `open` until verified (核查通过) or closed (结案), then `closed`.
    #[schema(pattern = "^(open|closed)$")]
    status: String,
    /// Where the ticket stands, in Chinese and English.
    status_notes: String,
    service_name: String,
    service_code: String,
    description: String,
    /// The lead unit, or the centre while the ticket waits for dispatch.
    agency_responsible: String,
    /// The ticket number (工单编号).
    service_notice: String,
    requested_datetime: chrono::DateTime<chrono::Utc>,
    updated_datetime: chrono::DateTime<chrono::Utc>,
    /// The handle deadline, once dispatched.
    expected_datetime: Option<chrono::DateTime<chrono::Utc>>,
    address: Option<String>,
    /// Always null.
    address_id: Option<String>,
    /// Always null.
    zipcode: Option<String>,
    lat: Option<f64>,
    long: Option<f64>,
    /// The report's photo (`/open311/v2/requests/{id}/media`, absolute), or null.
    media_url: Option<String>,
}

/// The answer to a posted request.
#[derive(Serialize, ToSchema)]
pub struct Open311Created {
    service_request_id: uuid::Uuid,
    /// The ticket number (工单编号).
    service_notice: String,
    /// Always null.
    account_id: Option<String>,
}

/// An answer in GeoReport's XML: the fields of the JSON answer of the same resource,
/// one element each, in `<service_requests><request>…`, `<services><service>…`,
/// `<service_definition>…`, `<discovery>…` or `<errors><error>…`.
///
/// A schema only: the handlers write the XML by hand.
#[derive(ToSchema)]
#[schema(value_type = String, description = "GeoReport's XML: the fields of the JSON answer of the same resource, one element each.")]
pub struct Open311Xml(String);

/// A GeoReport error.
#[derive(Serialize, ToSchema)]
pub struct Open311Error {
    /// The HTTP status.
    code: u16,
    description: String,
}

/// The fields of `POST requests` (GeoReport's). A location is required: `lat` and
/// `long`, or `address_string`.
#[derive(Serialize, ToSchema)]
pub struct Open311RequestForm {
    /// A yiwang token of a grid_worker or hotline_agent (here, or in the query
    /// string).
    api_key: Option<String>,
    /// Checked against the configured one, if any.
    jurisdiction_id: Option<String>,
    /// A category code of `services.json`.
    service_code: String,
    #[schema(minimum = -90, maximum = 90)]
    lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    long: Option<f64>,
    address_string: Option<String>,
    /// The complaint; its first line becomes the ticket's title.
    #[schema(max_length = 10000)]
    description: Option<String>,
    /// The reporter (kept aside as personal data; never shown by Open311).
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    /// A link kept as text in the description (yiwang fetches no outside URL).
    media_url: Option<String>,
}

/// The multipart form of `POST requests`: the same fields as parts, and the photo.
#[derive(Serialize, ToSchema)]
pub struct Open311RequestMultipart {
    /// Here, or in the query string.
    api_key: Option<String>,
    jurisdiction_id: Option<String>,
    service_code: String,
    lat: Option<f64>,
    long: Option<f64>,
    address_string: Option<String>,
    description: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    /// The photo: JPEG, PNG, WebP or HEIC (by its bytes), within the attachment size
    /// limit; stored as an attachment and shown as the request's `media_url`.
    #[schema(value_type = Option<String>, format = Binary)]
    media: Option<()>,
}

/// The same operation in JSON and XML: `$json` and `$xml` are the two functions;
/// the XML answers are described as text ([`Open311Xml`]).
macro_rules! both {
    ($json:ident, $xml:ident, $m:ident, $path:literal, $summary:literal, $desc:literal,
     params($($p:tt)*), ok = $ok:ty, $okdesc:literal) => {
        operation!($json, $m, concat!($path, ".json"), "application/json", $summary, $desc,
            params($($p)*), ok = $ok, err = Vec<Open311Error>, $okdesc);
        operation!($xml, $m, concat!($path, ".xml"), "text/xml", $summary, $desc,
            params($($p)*), ok = Open311Xml, err = Open311Xml, $okdesc);
    };
}

/// Every Open311 operation answers errors as GeoReport's list of errors.
macro_rules! operation {
    ($fn:ident, get, $path:expr, $ct:literal, $summary:literal, $desc:literal,
     params($($p:tt)*), ok = $ok:ty, err = $err:ty, $okdesc:literal) => {
        #[utoipa::path(
            get, path = $path, tag = "open311",
            summary = $summary, description = $desc,
            params($($p)*),
            responses(
                (status = 200, description = $okdesc, content_type = $ct, body = $ok),
                (status = 400, description = "A bad parameter (or a jurisdiction_id this endpoint does not serve)", content_type = $ct, body = $err),
                (status = 403, description = "No api_key (and public reads off), or one unknown, revoked or expired", content_type = $ct, body = $err),
                (status = 404, description = "No such resource (or none the key may see)", content_type = $ct, body = $err),
                (status = "default", description = "Any other error: GeoReport's list of errors (500: an internal error, logged; nothing recorded), or, from the limits in front of every route, a problem document (429 with Retry-After, 503)", content(($err = $ct), (crate::http::error::Problem = "application/problem+json"))),
            )
        )]
        pub fn $fn() {}
    };
}

both!(
    open311_services_json, open311_services_xml, get, "/open311/v2/services",
    "Open311: the services (categories)",
    "The category catalogue as GeoReport services. No api_key needed.",
    params(("jurisdiction_id" = Option<String>, Query, description = "Checked against the configured one, if any")),
    ok = Vec<Open311Service>, "The services"
);

both!(
    open311_service_json, open311_service_xml, get, "/open311/v2/services/{service_code}",
    "Open311: a service definition",
    "A service's definition (no attributes). No api_key needed.",
    params(
        ("service_code" = String, Path, description = "A category code"),
        ("jurisdiction_id" = Option<String>, Query, description = "Checked against the configured one, if any"),
    ),
    ok = Open311ServiceDefinition, "The definition"
);

both!(
    open311_requests_json, open311_requests_xml, get, "/open311/v2/requests",
    "Open311: service requests",
    "With an api_key, the requests of the token's scope; without one, when the city \
     turned on public reads, every request with the public fields (contacts masked out \
     of the description); otherwise a 403. At most 1000, in a window of at most 90 days \
     (default: the last 90 days).",
    params(
        ("api_key" = Option<String>, Query, description = "A yiwang token (any role); optional only with public reads on"),
        ("jurisdiction_id" = Option<String>, Query, description = "Checked against the configured one, if any"),
        ("service_request_id" = Option<String>, Query, description = "Comma-separated ids: these requests, the other filters ignored"),
        ("service_code" = Option<String>, Query, description = "A category code"),
        ("start_date" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "W3C date-time (2026-09-30T08:00:00+08:00)"),
        ("end_date" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "W3C date-time; at most 90 days after start_date"),
        ("status" = Option<String>, Query, pattern = "^ *((open|closed) *(, *(open|closed) *)*)?$", description = "open, closed, or open,closed; empty: either (as absent, like every empty GeoReport parameter)"),
    ),
    ok = Vec<Open311Request>, "The requests (possibly none)"
);

both!(
    open311_request_json, open311_request_xml, get, "/open311/v2/requests/{service_request_id}",
    "Open311: one service request",
    "A list of one request. With an api_key, if the token may see it; without one, \
     with public reads on, its public fields.",
    params(
        ("service_request_id" = uuid::Uuid, Path, description = "The ticket id"),
        ("api_key" = Option<String>, Query, description = "A yiwang token (any role); optional only with public reads on"),
        ("jurisdiction_id" = Option<String>, Query, description = "Checked against the configured one, if any"),
    ),
    ok = Vec<Open311Request>, "The request"
);

both!(
    open311_discovery_json,
    open311_discovery_xml,
    get,
    "/open311/discovery",
    "Open311: service discovery",
    "GeoReport's discovery: this host's production endpoint and its formats.",
    params(),
    ok = Open311Discovery,
    "The discovery document"
);

/// `POST requests` in one format.
macro_rules! post_request {
    ($fn:ident, $path:literal, $ct:literal, $created:ty, $err:ty) => {
        #[utoipa::path(
            post, path = $path, tag = "open311",
            summary = "Open311: post a service request",
            description = "Form-encoded (as `curl -d` sends it) or multipart/form-data with \
                the photo as the file part `media` (as mobile apps send it). The api_key of \
                a grid_worker or hotline_agent; the request becomes a ticket by the same \
                command path as `POST /api/v1/tickets`. The same form again from the same \
                user is answered from the first (header `Idempotent-Replayed: true`).",
            params(
                ("api_key" = Option<String>, Query, description = "The api_key, when a client sends it here rather than in the form (the form's wins)"),
                ("jurisdiction_id" = Option<String>, Query, description = "As in the form"),
            ),
            request_body(content(
                (Open311RequestForm = "application/x-www-form-urlencoded"),
                (Open311RequestMultipart = "multipart/form-data"),
            )),
            responses(
                (status = 201, description = "Created (a list of one)", content_type = $ct, body = $created),
                (status = 400, description = "A missing or bad field, a body that is neither form, a second media part, or a jurisdiction_id this endpoint does not serve", content_type = $ct, body = $err),
                (status = 403, description = "No api_key, an unknown one, or a role that does not report", content_type = $ct, body = $err),
                (status = 413, description = "A form over 1 MiB, or a photo over the attachment limit", content_type = $ct, body = $err),
                (status = 415, description = "The media part is not a JPEG, PNG, WebP or HEIC image", content_type = $ct, body = $err),
                (status = "default", description = "Any other error: GeoReport's list of errors (500: an internal error, logged; nothing recorded), or, from the limits in front of every route, a problem document (429 with Retry-After, 503)", content(($err = $ct), (crate::http::error::Problem = "application/problem+json"))),
            )
        )]
        pub fn $fn() {}
    };
}

post_request!(
    open311_post_json,
    "/open311/v2/requests.json",
    "application/json",
    Vec<Open311Created>,
    Vec<Open311Error>
);
post_request!(
    open311_post_xml,
    "/open311/v2/requests.xml",
    "text/xml",
    Open311Xml,
    Open311Xml
);

#[utoipa::path(
    get, path = "/open311/v2/requests/{service_request_id}/media", tag = "open311",
    summary = "Open311: the photo of a request",
    description = "The report's photo (a request's `media_url`), to the same readers as \
        the request.",
    params(
        ("service_request_id" = uuid::Uuid, Path, description = "The ticket id"),
        ("api_key" = Option<String>, Query, description = "A yiwang token; optional only with public reads on"),
    ),
    responses(
        (status = 200, description = "The photo", content_type = "image/*", body = crate::http::attachments::PhotoBytes),
        (status = 403, description = "No api_key (and public reads off), or a refused one", content_type = "application/json", body = Vec<Open311Error>),
        (status = 404, description = "No such request the key may see, or no photo", content_type = "application/json", body = Vec<Open311Error>),
        (status = "default", description = "Any other error: GeoReport's list of errors (500: an internal error, logged; nothing recorded), or, from the limits in front of every route, a problem document (429 with Retry-After, 503)", content((Vec<Open311Error> = "application/json"), (crate::http::error::Problem = "application/problem+json"))),
    )
)]
pub fn open311_media() {}

/// The Open311 operations and their schemas.
#[derive(OpenApi)]
#[openapi(
    paths(
        open311_discovery_json,
        open311_discovery_xml,
        open311_services_json,
        open311_services_xml,
        open311_service_json,
        open311_service_xml,
        open311_requests_json,
        open311_requests_xml,
        open311_post_json,
        open311_post_xml,
        open311_request_json,
        open311_request_xml,
        open311_media,
    ),
    tags((name = "open311", description = "Open311 GeoReport v2 (`/open311/`): its own keys (`api_key`), formats and errors"))
)]
struct Operations;

/// Adds the Open311 operations to the document, after the common modifier: they
/// authenticate by `api_key` (or not at all), not by the bearer token, and answer
/// GeoReport's errors, not problem documents.
pub struct Open311;

impl Modify for Open311 {
    fn modify(&self, doc: &mut Doc) {
        let mut ours = Operations::openapi();
        for item in ours.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                // An empty requirement list: no bearer token.
                op.security = Some(Vec::new());
            }
        }
        doc.merge(ours);
    }
}

//! The OpenAPI 3.1 document of `/api/v1` at `GET /api/v1/openapi.json`, and Swagger
//! UI at `GET /api/docs`. Neither needs a token.
//!
//! The document is generated with utoipa. The schemas are derived from the types the
//! handlers serialize and parse (the ticket JSON of `views::ticket::render`, the request bodies
//! of `app::commands`, `StatsItem`, the appraisal types). The answers that the handlers
//! build with `json!` (events, units, categories, profiles, problems) are described by
//! the schema types in this module. The path items are the documentation stubs in
//! [`paths`]: one per route, and one per action of `POST /api/v1/tickets/{id}/{action}`.
//! Nothing here can drift unseen: `tests/api/openapi.rs` checks that every route of
//! the router is documented and keeps a snapshot (`schema/openapi.json`), and the
//! test support validates every `/api/v1` response of the suite against the document,
//! rejecting undocumented fields.
//!
//! Swagger UI's files are vendored from the npm package `swagger-ui-dist`
//! (`assets/vendor/swagger-ui-dist/`, with its licence) and embedded in the binary.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::app::SharedApp;
use crate::error::AppError;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/docs", get(docs_page))
        .route("/api/docs/{file}", get(docs_file))
}

/// The document as served: JSON text in the order the code declares it (paths
/// grouped by resource, actions in lifecycle order). Built once.
pub fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        // The document is plain data (strings, maps, numbers): it always serializes.
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    })
}

/// The same, indented (the snapshot `schema/openapi.json` is this).
pub fn document_pretty() -> String {
    // As above: plain data always serializes.
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

/// The document as a JSON value (for the tests' validation).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        // The text was just produced by serde_json from the same document.
        serde_json::from_str(document_text()).expect("the OpenAPI document parses")
    })
}

async fn openapi_json() -> Response {
    let mut r = document_text().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The Swagger UI page. Paths are relative, so the page also works behind a proxy
/// that mounts the service under a prefix.
const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>yiwang (一网) API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"#;

/// Starts Swagger UI on the document (a file rather than an inline script, so that a
/// strict Content-Security-Policy can forbid inline scripts). `validatorUrl: null`:
/// the page never calls out to the public validator.
const DOCS_INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false
});
"##;

const SWAGGER_JS: &[u8] =
    include_bytes!("../../assets/vendor/swagger-ui-dist/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../../assets/vendor/swagger-ui-dist/swagger-ui.css");
const SWAGGER_LICENSE: &[u8] = include_bytes!("../../assets/vendor/swagger-ui-dist/LICENSE");

/// The policy of the Swagger UI page: the web pages' (`crate::web::CSP`: only this
/// origin, no inline script, no framing), except that Swagger UI's stylesheet
/// draws icons from `data:` images and its components set inline styles.
pub const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; \
                            style-src 'self' 'unsafe-inline'; object-src 'none'; \
                            base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The headers of every answer under `/api/docs`: the web pages' (`web::page_headers`)
/// with the Swagger UI page's policy.
fn docs_headers(h: &mut HeaderMap) {
    crate::web::page_headers(h, DOCS_CSP);
}

async fn docs_page() -> Response {
    let mut r = DOCS_HTML.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    docs_headers(h);
    r
}

async fn docs_file(Path(file): Path<String>) -> Result<Response, AppError> {
    let (body, content_type): (&'static [u8], &'static str) = match file.as_str() {
        "swagger-ui-bundle.js" => (SWAGGER_JS, "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (SWAGGER_CSS, "text/css; charset=utf-8"),
        "init.js" => (DOCS_INIT.as_bytes(), "text/javascript; charset=utf-8"),
        "LICENSE" => (SWAGGER_LICENSE, "text/plain; charset=utf-8"),
        _ => return Err(AppError::NotFound(format!("no file {file:?} in /api/docs"))),
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files change only with the binary.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    docs_headers(h);
    Ok(r)
}

const DESCRIPTION: &str = "\
yiwang (一网): event-sourced ticket (工单) dispatch for grid governance and the 12345 hotline.

* **Authentication**: every route except this document needs `Authorization: Bearer <token>` \
(`yiwang token create --user NAME --role ROLE --unit CODE`). What a token may see and do is \
limited to its unit's subtree and its role.
* **Commands** (every POST) need an `Idempotency-Key` header: a retry with the same key and \
body gets the first answer (header `Idempotent-Replayed: true`) and appends nothing; the same \
key with another body is a 422.
* **Versions**: ticket answers carry `ETag: \"<version>\"`; `If-Match: \"<version>\"` makes a \
command conditional (412 when the ticket has moved on).
* **Errors** are RFC 9457 `application/problem+json` documents (`field` names the offending \
field of a 422).
* **Lists** answer `{\"items\": [...], \"next_cursor\": ...}`: pass `next_cursor` back as \
`cursor` (or `after`, for the feed) for the next page; null at the end.
* **Times** are RFC 3339 in UTC. Deadlines fall at 24:00 Asia/Shanghai of a working day.

Open311 GeoReport v2 is served at `/open311/v2/` (see the README); it is not part of this \
document.";

/// The document: paths from [`paths`], schemas derived or declared here, and the
/// bearer scheme, the 401 and the catch-all error answer added by [`Common`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "yiwang (一网) API",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        paths::create_ticket,
        paths::list_tickets,
        paths::get_ticket,
        paths::ticket_events,
        paths::assign,
        paths::sign,
        paths::return_ticket,
        paths::request_extension,
        paths::decide_extension,
        paths::supervise,
        paths::handle,
        paths::verify,
        paths::feedback,
        paths::comment,
        paths::close,
        paths::list_events,
        paths::stream_events,
        paths::list_units,
        paths::list_categories,
        paths::unit_stats,
        paths::get_appraisal,
        paths::list_profiles,
        paths::me,
        paths::upload_attachment,
        paths::get_attachment,
        paths::get_ticket_attachment,
        paths::openapi,
    ),
    components(schemas(
        Problem,
        // Named by parameters only (not collected from bodies).
        crate::domain::State,
        crate::org::UnitKind,
        crate::projections::periods::Granularity,
        SatisfactionMode,
    )),
    modifiers(&Common),
    tags(
        (name = "tickets", description = "工单: accept, act on, read and list tickets"),
        (name = "events", description = "The event log: a ticket's stream, the global feed and its live stream"),
        (name = "organisation", description = "The organisation (units) and the category catalogue in force"),
        (name = "statistics", description = "Unit SLA statistics and appraisal scores (考核)"),
        (name = "attachments", description = "Photos: upload, and read back with the ticket that references them"),
        (name = "session", description = "Who the token is"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: the bearer scheme (the default for all but the
/// public ones), the 401 of an authenticated route and the catch-all error answer.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc.info.description = Some(DESCRIPTION.to_string());
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A yiwang token (`yiwang token create`)"))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    super::error::PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        components.responses.insert(
            "Unauthorized".to_string(),
            RefOr::T(problem(
                "No bearer token, or one that is unknown or revoked",
            )),
        );
        components.responses.insert(
            "Error".to_string(),
            RefOr::T(problem(
                "Any other error, as a problem document: 405 method not allowed, 429 too many \
                 requests (with Retry-After), 500 internal error (logged; nothing recorded), 503 \
                 database unreachable (retry with the same Idempotency-Key)",
            )),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = path == "/api/v1/openapi.json";
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if public {
                    // An empty requirement list: no authentication.
                    op.security = Some(Vec::new());
                } else {
                    op.responses
                        .responses
                        .entry("401".to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Unauthorized")));
                }
                op.responses
                    .responses
                    .entry("default".to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Error")));
            }
        }
    }
}

/// An RFC 9457 problem document: every error of `/api/v1`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: the handlers build it with `json!`
pub struct Problem {
    /// Always `about:blank`: `title` and `status` say what went wrong.
    #[schema(example = "about:blank")]
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    /// What happened and what to do about it, in words a person can act on.
    detail: String,
    /// The offending field, on a 422 (a body path such as `location.lat`, a query
    /// parameter or a header name).
    #[schema(nullable = false)]
    field: Option<String>,
    /// What kind of refusal this is, where the status alone does not say:
    /// `integrity.tampered` (409): the verification of the event log found the
    /// ticket's records tampered with, and the ticket is frozen until an operator
    /// has dealt with it.
    #[schema(nullable = false)]
    code: Option<String>,
}

/// A page of the ticket queue.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::ListPage` carries it
pub struct TicketList {
    #[schema(value_type = Vec<crate::views::ticket::TicketJson>)]
    items: Vec<()>,
    /// The `cursor` of the next page; null at the end.
    next_cursor: Option<String>,
}

/// One event of the log (`http::event_json`).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::event_json` builds it
pub struct Event {
    /// The global position: increasing, gap-safe, possibly sparse (PostgreSQL).
    position: i64,
    /// The ticket id.
    stream_id: uuid::Uuid,
    /// 1 for the stream's first event, then +1 per event.
    version: i64,
    /// TicketAccepted, TicketAssigned, TicketSigned, TicketReturned,
    /// ExtensionRequested, ExtensionDecided, TicketSupervised, TicketHandled,
    /// VerificationPassed, VerificationFailed, CitizenFeedbackRecorded,
    /// TicketCommented, TicketClosed, SlaWarning, SlaBreached (more may come).
    #[schema(rename = "type")]
    kind: String,
    schema_version: i32,
    /// Business time: when it happened (an import keeps the legacy system's time).
    occurred_at: chrono::DateTime<chrono::Utc>,
    /// When the store appended it.
    recorded_at: chrono::DateTime<chrono::Utc>,
    /// The payload of the event type (schema_version says which shape).
    #[schema(value_type = Object)]
    data: (),
    /// Who and why: `actor`, `role`, `unit`, `correlation_id`, `causation_id`,
    /// `idempotency_key`, `request_id`.
    #[schema(value_type = Object)]
    metadata: (),
    /// SHA-256 chaining this event to the previous one of its stream (hex).
    hash: String,
}

/// A page of events.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::ListPage` carries it
pub struct EventList {
    items: Vec<Event>,
    /// The global feed: the position to pass as `after` next (it moves past events
    /// the caller may not see; null when the page is empty). A ticket's stream: null.
    next_cursor: Option<i64>,
}

/// A unit of the organisation.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::org` builds it
pub struct Unit {
    code: String,
    name: String,
    kind: crate::org::UnitKind,
    parent: Option<String>,
    /// Agencies: judicial, enforcement, market, police, …
    agency_type: Option<String>,
    /// Centres only: the units this centre may dispatch to.
    dispatch_targets: Option<Vec<String>>,
}

/// The organisation's units.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::ListPage` carries it
pub struct UnitList {
    items: Vec<Unit>,
    /// Always null: one page.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<()>,
}

/// "In township `area`, this category goes to `unit`."
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::org` builds it
pub struct CategoryRoute {
    area: String,
    unit: String,
}

/// The deadlines of one urgency.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::org` builds it
pub struct CategorySla {
    /// Working days to sign for (签收) after dispatch.
    sign_days: u32,
    handle: crate::org::model::HandleDue,
}

/// The deadlines of a category by urgency.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::org` builds it
pub struct CategorySlas {
    normal: CategorySla,
    urgent: CategorySla,
    emergency: CategorySla,
}

/// A category of the catalogue.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::org` builds it
pub struct Category {
    code: String,
    name: String,
    group: Option<String>,
    /// The district department that receives the category when no route applies.
    default_unit: Option<String>,
    routes: Vec<CategoryRoute>,
    sla: CategorySlas,
}

/// The category catalogue.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::ListPage` carries it
pub struct CategoryList {
    items: Vec<Category>,
    /// Always null: one page.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<()>,
}

/// Unit statistics: one item per unit and period.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::stats` builds it
pub struct StatsList {
    items: Vec<crate::projections::stats::StatsItem>,
    /// Always null: one page.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<()>,
}

/// An appraisal rule profile.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::appraisal` builds it
pub struct Profile {
    /// The value of `profile=`.
    name: String,
    title: String,
    description: String,
    /// The document the rules come from.
    source: Option<String>,
    base: f64,
    /// The profile used when `profile` is not given.
    default: bool,
}

/// The appraisal profiles of this build.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::ListPage` carries it
pub struct ProfileList {
    items: Vec<Profile>,
    /// Always null: one page.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<()>,
}

/// `satisfaction=`: `standard` counts satisfied and basically satisfied, `strict`
/// satisfied only.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // a schema only: parsed by `http::stats`
pub enum SatisfactionMode {
    Standard,
    Strict,
}

/// Who the presented token is (`http::me`).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::me` builds it
pub struct Me {
    user: String,
    role: crate::auth::Role,
    unit: String,
    /// Null when the unit is not in the organisation in force.
    unit_name: Option<String>,
    unit_kind: Option<crate::org::UnitKind>,
    /// True for a unit that dispatches (the district and the townships).
    centre: bool,
}

/// The upload form of a photo.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::attachments` reads the multipart body
pub struct AttachmentUpload {
    /// The photo: JPEG, PNG, WebP or HEIC (checked by its bytes, not its name).
    #[schema(value_type = String, format = Binary)]
    file: (),
}

/// A stored photo (`http::attachments`).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `http::attachments` builds it
pub struct Attachment {
    /// SHA-256 of the bytes (hex): reference it in `photos` of a report or a result.
    hash: String,
    content_type: String,
    size: u64,
    /// Where the uploader reads it back.
    url: String,
}

/// The bytes of a photo.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // a schema only: the photo's bytes
pub struct PhotoBytes(String);

/// The documentation stubs: one per route (and action). They are never called; the
/// handlers live in the resource modules.
#[allow(dead_code)]
pub mod paths {
    use super::*;
    use crate::app::commands::{
        AssignBody, CloseBody, CommentBody, CreateBody, DecideBody, ExtensionBody, FeedbackBody,
        HandleBody, NoteBody, ReasonBody, SignBody, VerifyBody,
    };
    use crate::domain::State;
    use crate::http::appraisal::AppraisalBody;
    use crate::views::ticket::TicketJson;

    #[utoipa::path(
        post, path = "/api/v1/tickets", tag = "tickets",
        summary = "Accept a ticket (受理)",
        description = "The hotline (source `hotline`) or a grid worker (source `grid`, inside \
            their grid; `self_handled` when fixed on the spot) registers a ticket. It waits \
            in the receiving centre's queue with the unit the catalogue suggests.",
        params(
            ("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry (1 to 200 characters)"),
        ),
        request_body = CreateBody,
        responses(
            (status = 201, description = "The new ticket, with the reporter's contact", body = TicketJson,
                headers(
                    ("ETag" = String, description = "The ticket's version, quoted: `\"1\"`"),
                    ("Idempotent-Replayed" = String, description = "`true` on a retry's replayed answer"),
                )),
            (status = 400, description = "Malformed JSON or no Idempotency-Key", body = Problem, content_type = "application/problem+json"),
            (status = 403, description = "The role may not accept tickets, or the grid is outside the token's unit", body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`related_to` names no ticket this token may read (whether or not it exists)", body = Problem, content_type = "application/problem+json"),
            (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
            (status = 422, description = "A field is missing or invalid (`field` names it; `source` must be `grid` for a grid worker and `hotline` for a hotline agent), or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn create_ticket() {}

    #[utoipa::path(
        get, path = "/api/v1/tickets", tag = "tickets",
        summary = "The queue",
        description = "Tickets within the token's unit subtree, newest first. With \
            `overdue=true`: open tickets past a deadline, oldest deadline first.",
        params(
            ("state" = Option<State>, Query, description = "Only tickets in this state"),
            ("unit" = Option<String>, Query, description = "Only tickets whose lead unit is this one (with `overdue=true`: within this unit's subtree)"),
            ("overdue" = Option<bool>, Query, description = "`true`: the overdue list"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Page size, default 50"),
        ),
        responses(
            (status = 200, description = "A page of tickets (reporter not included)", body = TicketList),
            (status = 422, description = "A bad parameter (`field` names it)", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn list_tickets() {}

    #[utoipa::path(
        get, path = "/api/v1/tickets/{id}", tag = "tickets",
        summary = "One ticket",
        description = "The reporter's contact is masked unless the reader is the hotline or an \
            admin of a unit that owns the ticket, or the lead unit's handler.",
        params(("id" = uuid::Uuid, Path, description = "The ticket id")),
        responses(
            (status = 200, description = "The ticket", body = TicketJson,
                headers(("ETag" = String, description = "The ticket's version, quoted: pass it as If-Match"))),
            (status = 404, description = "No such ticket, or one outside the token's unit (answered alike, so that existence does not leak)", body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "The ticket is frozen: the verification of the event log found its records tampered with (`code`: `integrity.tampered`)", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn get_ticket() {}

    #[utoipa::path(
        get, path = "/api/v1/tickets/{id}/events", tag = "events",
        summary = "A ticket's event stream",
        params(("id" = uuid::Uuid, Path, description = "The ticket id")),
        responses(
            (status = 200, description = "Every event of the ticket, in version order", body = EventList),
            (status = 404, description = "No such ticket, or one outside the token's unit (answered alike, so that existence does not leak)", body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "The ticket is frozen: the verification of the event log found its records tampered with (`code`: `integrity.tampered`)", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn ticket_events() {}

    /// One action of `POST /api/v1/tickets/{id}/{action}`: the same parameters and
    /// answers, its own body.
    macro_rules! action {
        ($fn:ident, $path:literal, $body:ty, $summary:literal, $desc:literal) => {
            #[utoipa::path(
                post, path = $path, tag = "tickets",
                summary = $summary,
                description = $desc,
                params(
                    ("id" = uuid::Uuid, Path, description = "The ticket id"),
                    ("Idempotency-Key" = String, Header, description = "A fresh UUID per command, reused on retry (1 to 200 characters)"),
                    ("If-Match" = Option<String>, Header, description = "The ticket's ETag (`\"3\"`): apply only if the ticket is still at that version"),
                ),
                request_body = $body,
                responses(
                    (status = 200, description = "The ticket after the command", body = TicketJson,
                        headers(
                            ("ETag" = String, description = "The ticket's new version, quoted"),
                            ("Idempotent-Replayed" = String, description = "`true` on a retry's replayed answer"),
                        )),
                    (status = 400, description = "Malformed JSON or no Idempotency-Key", body = Problem, content_type = "application/problem+json"),
                    (status = 403, description = "The role or unit may not do this to this ticket", body = Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such ticket, or one outside the token's unit (answered alike), or `duplicate_of` names no ticket this token may read", body = Problem, content_type = "application/problem+json"),
                    (status = 409, description = "Not allowed in the ticket's current state (or the ticket is changing too fast: retry; or, `code` `integrity.tampered`, the ticket is frozen: the verification of the event log found its records tampered with)", body = Problem, content_type = "application/problem+json"),
                    (status = 412, description = "If-Match names another version: reload and decide again", body = Problem, content_type = "application/problem+json"),
                    (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
                    (status = 422, description = "A field is missing or invalid (`field` names it), or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
                )
            )]
            pub fn $fn() {}
        };
    }

    action!(
        assign,
        "/api/v1/tickets/{id}/assign",
        AssignBody,
        "Dispatch (派单)",
        "A dispatcher of the holding centre sends the ticket to a unit that centre \
         dispatches to: a department or agency (the sign and handle deadlines start), or \
         another centre (a hop: 转派 down or 吹哨报到 up)."
    );
    action!(
        sign,
        "/api/v1/tickets/{id}/sign",
        SignBody,
        "Sign for (签收)",
        "The lead unit's handler acknowledges the ticket and names the person handling it."
    );
    action!(
        return_ticket,
        "/api/v1/tickets/{id}/return",
        ReasonBody,
        "Return (退回)",
        "The lead unit says the ticket is not theirs (or a centre passes a hop back); it \
         goes back to the centre that dispatched it."
    );
    action!(
        request_extension,
        "/api/v1/tickets/{id}/request-extension",
        ExtensionBody,
        "Request an extension (延期申请)",
        "The lead unit asks for more working days."
    );
    action!(
        decide_extension,
        "/api/v1/tickets/{id}/decide-extension",
        DecideBody,
        "Decide an extension (延期审批)",
        "A centre approves (the handle deadline moves) or refuses the pending request."
    );
    action!(
        supervise,
        "/api/v1/tickets/{id}/supervise",
        NoteBody,
        "Supervise (督办)",
        "A centre presses the unit; the second and later are 重复督办."
    );
    action!(
        handle,
        "/api/v1/tickets/{id}/handle",
        HandleBody,
        "Handle (办结)",
        "The lead unit reports the result; the ticket waits for verification."
    );
    action!(
        verify,
        "/api/v1/tickets/{id}/verify",
        VerifyBody,
        "Verify (核查)",
        "A centre checks the result: passed (verified) or failed (assigned again, with a \
         new handle deadline)."
    );
    action!(
        feedback,
        "/api/v1/tickets/{id}/feedback",
        FeedbackBody,
        "Record the citizen's feedback (回访)",
        "The citizen's satisfaction with the result."
    );
    action!(
        comment,
        "/api/v1/tickets/{id}/comment",
        CommentBody,
        "Comment",
        "A note on the ticket's timeline; it changes no state."
    );
    action!(
        close,
        "/api/v1/tickets/{id}/close",
        CloseBody,
        "Close (结案)",
        "A centre closes a verified ticket (`resolved`), or an accepted one as a \
         duplicate (重复件, naming the ticket it repeats), invalid (无效件) or withdrawn (撤诉)."
    );

    #[utoipa::path(
        get, path = "/api/v1/events", tag = "events",
        summary = "The global feed by position",
        description = "Events after `after` in position order, limited to the tickets the \
            token may see. Gap-safe: an event is never skipped, even one whose transaction \
            commits late.",
        params(
            ("after" = Option<i64>, Query, minimum = 0, description = "Events after this position (default 0)"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Events read, default 100 (a page may hold fewer: only what the token may see)"),
        ),
        responses(
            (status = 200, description = "A page of the feed", body = EventList),
            (status = 422, description = "A bad parameter (`field` names it)", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn list_events() {}

    #[utoipa::path(
        get, path = "/api/v1/events/stream", tag = "events",
        summary = "The live feed (Server-Sent Events)",
        description = "Every event the token may see, as it is appended: SSE `id` is the \
            position, `event` the type, `data` the event JSON (the `Event` schema). Resumes \
            after `Last-Event-ID` (or `after`).",
        params(
            ("after" = Option<i64>, Query, minimum = 0, description = "Start after this position"),
            ("Last-Event-ID" = Option<i64>, Header, description = "The last position received (set by EventSource on reconnect); wins over `after`"),
        ),
        responses(
            (status = 200, description = "An endless event stream", content_type = "text/event-stream", body = String),
            (status = 422, description = "A bad parameter or Last-Event-ID", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn stream_events() {}

    #[utoipa::path(
        get, path = "/api/v1/units", tag = "organisation",
        summary = "The organisation's units",
        params(
            ("kind" = Option<crate::org::UnitKind>, Query, description = "Only units of this kind"),
            ("parent" = Option<String>, Query, description = "Only the children of this unit"),
        ),
        responses(
            (status = 200, description = "The units in organisation order", body = UnitList),
            (status = 422, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn list_units() {}

    #[utoipa::path(
        get, path = "/api/v1/categories", tag = "organisation",
        summary = "The category catalogue",
        responses((status = 200, description = "The categories with their routes and deadlines", body = CategoryList))
    )]
    pub fn list_categories() {}

    #[utoipa::path(
        get, path = "/api/v1/stats/units", tag = "statistics",
        summary = "Unit SLA statistics per period",
        description = "For `unit` (default: the token's) rolled up over its subtree, and for \
            every unit beneath it with figures, one item per period from `from` to `to`. \
            `Accept: text/csv` gives the same as CSV. Analysts, admins, dispatchers and \
            handlers, for their own subtree.",
        params(
            ("unit" = Option<String>, Query, description = "A unit code (default: the token's unit)"),
            ("from" = Option<chrono::NaiveDate>, Query, description = "First day (default: the start of the period containing `to`)"),
            ("to" = Option<chrono::NaiveDate>, Query, description = "Last day (default: today, Asia/Shanghai)"),
            ("granularity" = Option<crate::projections::periods::Granularity>, Query, description = "Default `month`; at most 400 periods"),
            ("satisfaction" = Option<SatisfactionMode>, Query, description = "Default `standard`"),
        ),
        responses(
            (status = 200, description = "The figures", content(
                (StatsList = "application/json"),
                (String = "text/csv"),
            )),
            (status = 403, description = "The role may not read statistics, or the unit is outside the token's", body = Problem, content_type = "application/problem+json"),
            (status = 422, description = "A bad parameter (`field` names it)", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn unit_stats() {}

    #[utoipa::path(
        get, path = "/api/v1/appraisal", tag = "statistics",
        summary = "Appraisal scores (考核)",
        description = "Every department and agency within `unit` scored by a rule profile, \
            with every deduction's evidence (ticket ids and event positions). \
            `Accept: text/csv`: one row per unit and deduction.",
        params(
            ("period" = String, Query, description = "A quarter (`2026-Q3`), a month (`2026-09`) or a year (`2026`)"),
            ("profile" = Option<String>, Query, description = "A profile name of `GET /api/v1/appraisal/profiles` (default `weihai-etdz-2020`)"),
            ("unit" = Option<String>, Query, description = "A unit code (default: the token's unit)"),
        ),
        responses(
            (status = 200, description = "The scores", content(
                (AppraisalBody = "application/json"),
                (String = "text/csv"),
            )),
            (status = 403, description = "The role may not read appraisals, or the unit is outside the token's", body = Problem, content_type = "application/problem+json"),
            (status = 422, description = "A missing or bad period, an unknown profile or unit", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn get_appraisal() {}

    #[utoipa::path(
        get, path = "/api/v1/appraisal/profiles", tag = "statistics",
        summary = "The appraisal rule profiles",
        responses((status = 200, description = "The profiles of this build", body = ProfileList))
    )]
    pub fn list_profiles() {}

    #[utoipa::path(
        get, path = "/api/v1/me", tag = "session",
        summary = "Who the token is",
        responses((status = 200, description = "The token's user, role and unit", body = Me))
    )]
    pub fn me() {}

    #[utoipa::path(
        post, path = "/api/v1/attachments", tag = "attachments",
        summary = "Upload a photo",
        description = "One photo per request, as the multipart part named `file`. Stored by \
            its SHA-256; reference the hash in `photos` of a new report or of `handle`. \
            Roles that report or handle tickets.",
        request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
        responses(
            (status = 201, description = "Stored (or already stored: the same bytes, the same hash)", body = Attachment,
                headers(("Location" = String, description = "`/api/v1/attachments/{hash}`"))),
            (status = 400, description = "An unreadable multipart body", body = Problem, content_type = "application/problem+json"),
            (status = 403, description = "The role may not upload", body = Problem, content_type = "application/problem+json"),
            (status = 413, description = "The photo is over the size limit", body = Problem, content_type = "application/problem+json"),
            (status = 415, description = "Not multipart/form-data, or not a JPEG, PNG, WebP or HEIC image", body = Problem, content_type = "application/problem+json"),
            (status = 422, description = "No part named `file`, or more than one", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn upload_attachment() {}

    #[utoipa::path(
        get, path = "/api/v1/attachments/{hash}", tag = "attachments",
        summary = "A photo the token's user uploaded",
        params(("hash" = String, Path, description = "The photo's SHA-256 (hex)")),
        responses(
            (status = 200, description = "The photo", content_type = "image/*", body = PhotoBytes,
                headers(("ETag" = String, description = "The hash, quoted"))),
            (status = 404, description = "No such photo uploaded by this user (whether or not it exists)", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn get_attachment() {}

    #[utoipa::path(
        get, path = "/api/v1/tickets/{id}/attachments/{hash}", tag = "attachments",
        summary = "A photo of a ticket",
        description = "For whoever may see the ticket, when the ticket references the photo.",
        params(
            ("id" = uuid::Uuid, Path, description = "The ticket id"),
            ("hash" = String, Path, description = "The photo's SHA-256 (hex)"),
        ),
        responses(
            (status = 200, description = "The photo", content_type = "image/*", body = PhotoBytes,
                headers(("ETag" = String, description = "The hash, quoted"))),
            (status = 404, description = "No such photo on a ticket this token may see (whether or not it exists)", body = Problem, content_type = "application/problem+json"),
        )
    )]
    pub fn get_ticket_attachment() {}

    #[utoipa::path(
        get, path = "/api/v1/openapi.json", tag = "meta",
        summary = "This document (no token needed)",
        responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
    )]
    pub fn openapi() {}
}

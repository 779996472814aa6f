//! The OpenAPI 3.1 document of `/api/v1` at `GET /api/v1/openapi.json`, and Swagger
//! UI at `GET /api/docs`. Neither needs a token.
//!
//! The document is generated with utoipa. Each route's operation is the
//! `#[utoipa::path]` attribute on its handler in the resource module (`tickets`,
//! `events`, `org`, `stats`, `appraisal`, `me`, `attachments`, and `openapi_json`
//! here), except the actions of `POST /api/v1/tickets/{id}/{action}`: one handler
//! (`tickets::act_on_ticket`) serves them all, and the document gives each action its
//! own operation and body, declared in [`actions`]. The schemas are derived on the
//! types the handlers serialize and parse: the ticket JSON of `views::ticket::render`,
//! the request bodies of `app::commands`, the problem document (`http::error::Problem`),
//! the event JSON (`http::Event`), the answers and list pages of the resource modules
//! (`tickets::TicketList`, `org::Unit`, `org::Category`, `appraisal::Profile`,
//! `me::Me`, `attachments::Attachment`, `stats::StatsList`, …), `StatsItem`, the
//! appraisal types, and the enums `domain::State`, `auth::Role`, `org::UnitKind`,
//! `org::model::HandleDue`, `projections::periods::Granularity` and
//! `stats::SatisfactionMode`. Two schemas describe what no value of the code holds,
//! and sit by their handler: `attachments::AttachmentUpload` (the multipart form,
//! streamed to disk part by part) and `attachments::PhotoBytes` (a stored file's
//! bytes).
//!
//! Why the actions are functions of their own here, never called: utoipa gives one
//! path to a function, and the router has one route for the eleven actions. Eleven
//! real handlers would need eleven routes beside the `{action}` one (kept, so that
//! an unknown action still answers its 404 naming the actions, after the ticket id
//! and before the body are checked): the `route` label of the request latency metric
//! (`http_requests`, by route template) would then change from
//! `/api/v1/tickets/{id}/{action}` to eleven templates, and each handler would only
//! pass its action's name on to the same code. The stubs carry the attributes and
//! nothing else; `tests/api/openapi.rs` checks that each of `app::commands::ACTIONS`
//! is documented.
//! The operations endpoints (`/healthz`, `/readyz`, `/metrics`, served by `ops.rs`)
//! are declared the same way, in [`ops`], with the shapes of their answers. The
//! constraints the service enforces beyond the types (the text fields' characters
//! and lengths, the `Idempotency-Key`, `If-Match` and appraisal `period` forms) are
//! written into the document by [`Constraints`], so that a request built from the
//! document is refused exactly when the document says it will be;
//! `scripts/schemathesis.sh` holds the service to it.
//! The Open311 operations (`/open311/`, each format, discovery, the multipart POST)
//! are declared in `open311::doc` and added by its modifier [`Open311`], after
//! [`Common`]: they take an `api_key`, not the bearer token, and answer GeoReport's
//! errors.
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
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::error::Problem;
use super::open311::doc::Open311;
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

#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "meta", operation_id = "openapi",
    summary = "This document (no token needed)",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
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

Open311 GeoReport v2 is served at `/open311/v2/` (tag `open311`): its own `api_key`, formats \
(`.json`, `.xml`) and errors (`[{\"code\", \"description\"}]`), no bearer token.

* **Problem types**: each problem's `type` is `/problems/{kind}`, a page of the service that \
says what it means (`GET /problems` lists them); `title` is the kind's, `detail` this \
occurrence's. A 503 and a 429 carry `Retry-After` (seconds).
* **Conditional reads**: `GET /api/v1/tickets/{id}` with `If-None-Match: \"<version>\"` is a \
304 without a body while the answer is unchanged. `If-Match` compares strongly: a weak tag \
(`W/\"3\"`) never matches (412).";

/// The document: the operations of the handlers and of [`actions`] (in this order:
/// the paths keep it), the schemas they name (and a few named by parameters only),
/// and the bearer scheme, the 401 and the catch-all error answer added by [`Common`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "yiwang (一网) API",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::tickets::create_ticket,
        super::tickets::list_tickets,
        super::tickets::get_ticket,
        super::tickets::get_ticket_by_number,
        super::tickets::ticket_events,
        super::similar::similar_tickets,
        actions::assign,
        actions::sign,
        actions::return_ticket,
        actions::request_extension,
        actions::decide_extension,
        actions::supervise,
        actions::handle,
        actions::verify,
        actions::feedback,
        actions::comment,
        actions::close,
        super::events::list_events,
        super::events::stream_events,
        super::org::list_units,
        super::org::list_categories,
        super::map::map,
        super::stats::unit_stats,
        super::people::people_stats,
        super::appraisal::get_appraisal,
        super::appraisal::list_profiles,
        super::appraisal_entries::record_entry,
        super::appraisal_entries::list_entries,
        super::appraisal_entries::withdraw_entry,
        super::appraisal_entries::submit_year,
        super::appraisal_entries::list_submissions,
        super::appraisal_entries::reopen_year,
        super::appraisal_entries::record_grade,
        super::appraisal_entries::ranking,
        super::appraisal_entries::publish_bulletin,
        super::appraisal_entries::list_bulletins,
        super::appraisal_entries::get_bulletin,
        super::me::me,
        super::session::sign_in,
        super::session::sign_out,
        super::attachments::upload_attachment,
        super::attachments::get_attachment,
        super::attachments::get_ticket_attachment,
        openapi_json,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    components(schemas(
        Problem,
        // Named by parameters only (not collected from bodies).
        crate::domain::State,
        crate::org::UnitKind,
        crate::projections::periods::Granularity,
        super::stats::SatisfactionMode,
        super::stats::StatsGranularity,
    )),
    modifiers(&Common, &Constraints, &Open311),
    tags(
        (name = "tickets", description = "工单: accept, act on, read and list tickets"),
        (name = "events", description = "The event log: a ticket's stream, the global feed and its live stream"),
        (name = "organisation", description = "The organisation (units) and the category catalogue in force"),
        (name = "statistics", description = "Unit SLA statistics and appraisal scores (考核)"),
        (name = "appraisal", description = "考核: entries, withdrawals, townships' years, grades, the ranking and bulletins"),
        (name = "attachments", description = "Photos: upload, and read back with the ticket that references them"),
        (name = "session", description = "Who the token is; signing in with a password and out"),
        (name = "meta", description = "This document"),
        (name = "operations", description = "Liveness, readiness and metrics for probes and scrapers (no token; outside /api/v1)"),
    )
)]
pub struct ApiDoc;

/// The operations that need no token: this document and the operations endpoints.
pub const PUBLIC: &[&str] = &[
    "/api/v1/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/session",
];

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
            let public = PUBLIC.contains(&path.as_str());
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

/// What a text field of a command may hold (`app::text::check_text`), as a JSON
/// Schema pattern: no control characters but tab, line feed and carriage return,
/// no bidirectional overrides or isolates, no noncharacters of the Basic
/// Multilingual Plane. (The noncharacters of the other planes, U+xxFFFE and
/// U+xxFFFF, are refused too; a pattern of UTF-16 code units cannot name them.)
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069\\uFDD0-\\uFDEF\\uFFFE\\uFFFF]*$";

/// An `Idempotency-Key` as `extract::command_meta` takes it: 1 to 200 printable
/// ASCII characters (spaces inside, none at either end, which HTTP trims).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]*[!-~])?$";

/// `If-Match` as `extract::if_match` reads it: `*`, or a list of entity tags
/// (`"3"`, `W/"3"`; RFC 9110 §8.8.3).
pub const IF_MATCH_PATTERN: &str = "^ *(\\*|(W/)?\"[!#-~]*\"( *, *(W/)?\"[!#-~]*\")*) *$";

/// A period as `projections::periods::Period::parse` reads it for the appraisal: a
/// year (1900 to 9999), a month (`2026-09`) or a quarter (`2026-Q3`).
pub const PERIOD_PATTERN: &str = "^(19[0-9]{2}|[2-9][0-9]{3})(-(0[1-9]|1[0-2])|-[Qq][1-4])?$";

/// The text fields of the request bodies that `check_text` checks, by schema and
/// property, with their longest length in characters (`app::commands`,
/// `app::appraisal`). [`Constraints`] writes them into the document.
const TEXT_FIELDS: &[(&str, &str, usize)] = &[
    ("CreateTicket", "title", 200),
    ("CreateTicket", "description", 10_000),
    ("CreateTicket", "category", 200),
    ("Location", "address", 200),
    ("Location", "grid", 100),
    ("ReporterInput", "name", 100),
    ("SelfHandled", "result", 10_000),
    ("AssignBody", "unit", 100),
    ("AssignBody", "note", 10_000),
    ("SignBody", "handler", 100),
    ("ReturnBody", "reason", 10_000),
    ("RequestExtensionBody", "reason", 10_000),
    ("SuperviseBody", "note", 10_000),
    ("HandleBody", "result", 10_000),
    ("VerifyBody", "note", 10_000),
    ("CommentBody", "text", 10_000),
];

/// The constraints the service enforces on what comes in, beyond the types, where
/// the derives do not state them: the text fields' character set and length
/// ([`TEXT_FIELDS`], [`TEXT_PATTERN`]), every `Idempotency-Key` header
/// ([`IDEMPOTENCY_KEY_PATTERN`]) and every appraisal `period` ([`PERIOD_PATTERN`]).
/// So that a request built from the document (schemathesis' generated ones) is
/// refused exactly when the document says it will be.
struct Constraints;

impl Modify for Constraints {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Required;
        use utoipa::openapi::schema::{Object, Schema, SchemaType};
        let string = |min: Option<usize>, max: Option<usize>, pattern: &str| {
            let mut o = ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern));
            if let Some(n) = min {
                o = o.min_length(Some(n));
            }
            if let Some(n) = max {
                o = o.max_length(Some(n));
            }
            o.build()
        };
        if let Some(components) = doc.components.as_mut() {
            for (schema, property, max) in TEXT_FIELDS {
                let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(*schema) else {
                    continue;
                };
                let Some(RefOr::T(Schema::Object(p))) = o.properties.get_mut(*property) else {
                    continue;
                };
                let p: &mut Object = p;
                p.pattern = Some(TEXT_PATTERN.to_string());
                p.max_length = Some(*max);
            }
        }
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                for param in op.parameters.iter_mut().flatten() {
                    // Every parameter here is declared inline (none is a `$ref`).
                    let RefOr::T(param) = param else { continue };
                    // A parameter is absent or has a value: `null` is not one (the
                    // derives write an `Option` as nullable).
                    if let Some(RefOr::T(Schema::Object(o))) = param.schema.as_mut()
                        && let SchemaType::Array(types) = &o.schema_type
                    {
                        let kept: Vec<Type> = types
                            .iter()
                            .filter(|t| **t != Type::Null)
                            .cloned()
                            .collect();
                        if let [one] = kept.as_slice() {
                            o.schema_type = SchemaType::Type(one.clone());
                        }
                    }
                    let required = matches!(param.required, Required::True);
                    match param.name.as_str() {
                        "Idempotency-Key" => {
                            param.schema = Some(RefOr::T(Schema::Object(string(
                                Some(1),
                                Some(200),
                                IDEMPOTENCY_KEY_PATTERN,
                            ))));
                            param.description = Some(
                                "A fresh UUID per command, reused on retry: 1 to 200 printable \
                                 ASCII characters, not starting with `import:` (the legacy \
                                 import's)"
                                    .into(),
                            );
                        }
                        // An optional period may also be empty (as if absent).
                        "period" => {
                            let pattern = if required {
                                PERIOD_PATTERN.to_string()
                            } else {
                                format!("^({})?$", PERIOD_PATTERN.trim_matches(['^', '$']))
                            };
                            param.schema =
                                Some(RefOr::T(Schema::Object(string(None, None, &pattern))));
                        }
                        "If-Match" => {
                            param.schema = Some(RefOr::T(Schema::Object(string(
                                Some(1),
                                None,
                                IF_MATCH_PATTERN,
                            ))));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The operations of `POST /api/v1/tickets/{id}/{action}`, one per action. The router
/// has one route and one handler for them (`tickets::act_on_ticket`, which parses the
/// body by `app::commands::parse_action`); the document lists each action with its
/// own body, so these functions exist only to carry the attributes. They are never
/// called.
#[allow(dead_code)]
pub mod actions {
    use super::*;
    use crate::app::commands::{
        AssignBody, CloseBody, CommentBody, DecideBody, ExtensionBody, FeedbackBody, HandleBody,
        NoteBody, ReasonBody, SignBody, VerifyBody,
    };
    use crate::views::ticket::TicketJson;

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
         duplicate (重复件, naming the ticket it repeats), invalid (无效件) or withdrawn (撤件)."
    );
}

/// The operations endpoints (`http::ops`: `/healthz`, `/readyz`, `/metrics`), for
/// probes and scrapers, outside `/api/v1` and without a token. Their handlers are
/// in `ops.rs`; the operations are declared here with the shapes of their answers
/// (built there with `json!`), so these functions and types are never used.
#[allow(dead_code)]
pub mod ops {
    use std::collections::BTreeMap;

    use utoipa::ToSchema;

    /// `GET /healthz`.
    #[derive(ToSchema)]
    #[schema(as = Health)]
    pub struct Health {
        /// Always `ok`: the process is up.
        #[schema(pattern = "^ok$")]
        status: String,
    }

    /// `GET /readyz` when the database answers.
    #[derive(ToSchema)]
    #[schema(as = Readiness)]
    pub struct Readiness {
        /// `ready`, or `degraded` (still serving) when a projection of this
        /// instance has stopped or the latest verification found tampering.
        status: ReadyStatus,
        /// `ok`.
        database: String,
        /// `sqlite` or `postgres`.
        engine: String,
        /// Each projection runner of this instance by name.
        projections: BTreeMap<String, ProjectionState>,
        integrity: Integrity,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ReadyStatus {
        Ready,
        Degraded,
    }

    #[derive(ToSchema)]
    pub struct ProjectionState {
        /// `running` (this instance holds the lease), `standby` (another does) or
        /// `stopped`.
        state: String,
        /// The feed position it has applied.
        checkpoint: Option<i64>,
        /// Its last error, if its last round failed.
        error: Option<String>,
    }

    #[derive(ToSchema)]
    pub struct Integrity {
        /// Problems the latest verification of the log found.
        #[schema(minimum = 0)]
        findings: u64,
    }

    /// `GET /readyz` when the instance cannot serve: a problem document with the
    /// state of the database.
    #[derive(ToSchema)]
    #[schema(as = NotReady)]
    pub struct NotReady {
        #[schema(rename = "type")]
        kind: String,
        title: String,
        status: u16,
        detail: String,
        /// `unreachable` when the database did not answer.
        database: Option<String>,
    }

    #[utoipa::path(
        get, path = "/healthz", tag = "operations", operation_id = "healthz",
        summary = "Liveness: the process is up (no token)",
        responses((status = 200, description = "Up", body = Health))
    )]
    pub fn healthz() {}

    #[utoipa::path(
        get, path = "/readyz", tag = "operations", operation_id = "readyz",
        summary = "Readiness: the instance can serve (no token)",
        description = "200 while the database answers (within 900 ms); `degraded` is still \
            ready. 503 when the database does not answer or the instance is shutting down, \
            with Retry-After.",
        responses(
            (status = 200, description = "Ready (or degraded)", body = Readiness),
            (status = 503, description = "Not ready", body = NotReady, content_type = "application/problem+json",
                headers(("Retry-After" = String, description = "Seconds before asking again"))),
        )
    )]
    pub fn readyz() {}

    #[utoipa::path(
        get, path = "/metrics", tag = "operations", operation_id = "metrics",
        summary = "Prometheus metrics (no token)",
        responses((status = 200, description = "The metrics in the Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
    )]
    pub fn metrics() {}
}

/// One message of the live stream (`GET /api/v1/events/stream`), as Server-Sent
/// Events fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StreamMessage {
    /// The event's position.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// The event's type.
    event: String,
    /// The event JSON (the `Event` schema), as text.
    data: String,
}

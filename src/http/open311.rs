//! Open311 GeoReport v2 at `/open311/v2/`, in JSON (`.json`) and XML (`.xml`), so that
//! civic-reporting apps can post and follow requests.
//!
//! - `GET services.json`: the category catalogue (service_code = category code).
//!   `GET services/{code}.json`: a service definition (no attributes). No api_key.
//! - `POST requests.json`, form-encoded: `api_key` is a yiwang token of a grid worker
//!   or a hotline agent. The request becomes a ticket through the same command path
//!   as `POST /api/v1/tickets` (the same checks, the same events). Its
//!   Idempotency-Key is derived from the token's user and a hash of the form body, so
//!   a client's retry of the same form is answered with the same request and not
//!   doubled. (The same citizen posting the very same form twice is taken as a retry.)
//!   `POST` also takes `multipart/form-data` (as mobile apps send it): the same fields
//!   as parts, and the photo as the file part `media`, stored as an attachment as
//!   `POST /api/v1/attachments` stores one (the same size limit and image types) and
//!   named in the ticket's `photos`; reads then give its `media_url`
//!   (`/open311/v2/requests/{id}/media`, read with the same key, or without one when
//!   public reads are on).
//! - `GET requests.json` and `GET requests/{id}.json` with an `api_key` (any role):
//!   the token sees what it sees in `/api/v1`, its unit's subtree. Without one, a
//!   403, unless the city turned on `open311_public_reads` ([`Settings`]): then every
//!   request of the district is answered with GeoReport's public fields, the
//!   contacts recognisable in the description masked out ([`mask`]). The reporter's
//!   contact is never shown.
//! - `GET /open311/discovery.json` (or `.xml`): GeoReport's service discovery.
//! - `jurisdiction_id`: when the city configured one (`open311_jurisdiction`), a
//!   request naming another is a 400; otherwise it is accepted and ignored.
//! - CORS: any origin may call `/open311/` (the answers carry
//!   `Access-Control-Allow-Origin: *`, preflights are answered): it is a public
//!   interface whose writes need an `api_key` in the form, never a cookie, so a
//!   page of another origin can do nothing its user's key could not.
//!
//! `service_request_id` is the ticket id (the UUID of `/api/v1/tickets/{id}`); the
//! ticket number is in `service_notice`. `status` is `closed` once the ticket is
//! verified (核查通过) or closed (结案), `open` before. `agency_responsible` is the
//! lead unit's name, or the centre's while the ticket waits for dispatch.
//! `expected_datetime` is the handle deadline. Errors are GeoReport's
//! `[{"code", "description"}]` with the HTTP status as `code` (400, 403, 404; 5xx
//! for the service's own failures).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::commands::{CommandMeta, ParsedCommand, parse_command};
use crate::app::{App, SharedApp};
use crate::auth::{Actor, Role};
use crate::error::AppError;
use crate::org::UnitKind;
use crate::repo::tickets::TicketQuery;

mod answer;
pub mod discovery;
pub mod doc;
pub mod mask;
mod media;
mod request_view;

use answer::{
    Format, Open311Error, answer, bad_request, err, error_response, escape, ext, respond,
    split_format,
};
use request_view::{Shown, report_photo, request_json};

/// What a city chooses for its Open311 endpoint (`serve`'s flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `--open311-public-reads`: `GET requests*` without an `api_key` answer every
    /// request of the district with GeoReport's public fields, contacts masked out
    /// of the description. Off: such a read is a 403.
    pub public_reads: bool,
    /// `--open311-jurisdiction`: the `jurisdiction_id` this endpoint serves; a
    /// request naming another gets a 400. None: any is accepted and ignored.
    pub jurisdiction: Option<String>,
}

pub fn router(app: &App, settings: Settings) -> Router<SharedApp> {
    // A form with its photo: the attachment's limit, and room for the other parts.
    let limit = app
        .attachments
        .max_bytes
        .saturating_add(media::MULTIPART_OVERHEAD);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // Each resource lists its own methods (so that `Allow` is exact); `{resource}`
    // answers GeoReport's 404 for any other name.
    let posts = || post(post_resource).layer(DefaultBodyLimit::max(limit));
    Router::new()
        .route(
            "/open311/v2/services.json",
            get(get_resource).fallback(read_only),
        )
        .route(
            "/open311/v2/services.xml",
            get(get_resource).fallback(read_only),
        )
        .route(
            "/open311/v2/requests.json",
            get(get_resource).merge(posts()),
        )
        .route("/open311/v2/requests.xml", get(get_resource).merge(posts()))
        .route(
            "/open311/v2/{resource}",
            get(get_resource).post(post_resource),
        )
        .route("/open311/v2/services/{file}", get(service_definition))
        .route("/open311/v2/requests/{file}", get(get_request))
        .route("/open311/v2/requests/{id}/media", get(media::get_media))
        .route("/open311/discovery.json", get(discovery::json))
        .route("/open311/discovery.xml", get(discovery::xml))
        .layer(Extension(Arc::new(settings)))
}

/// CORS of `/open311/` (applied by `http::cors`, before routing, so that a
/// preflight reaches it): any origin, no credentials (see the module's doc), GET and
/// POST, the form's content types; a preflight is answered for an hour.
pub fn cors_layer() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method};
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// The most requests one `GET requests` answers, and its default window.
pub const MAX_REQUESTS: i64 = 1000;
pub const DEFAULT_DAYS: i64 = 90;

/// The token named by `api_key`; a missing, unknown or revoked one is a 403.
async fn authenticate(app: &SharedApp, api_key: Option<&str>) -> Result<Actor, Open311Error> {
    let key = api_key
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            err(
                StatusCode::FORBIDDEN,
                "api_key is required: a yiwang token (yiwang token create …)",
            )
        })?;
    app.tokens
        .authenticate(&app.store.pool(), key)
        .await
        .map_err(|e| Open311Error::from(AppError::from(e)))?
        .map_err(|refused| match refused {
            crate::auth::Refused::Unknown => {
                err(StatusCode::FORBIDDEN, "api_key is unknown or revoked")
            }
            crate::auth::Refused::Expired(_) => err(
                StatusCode::FORBIDDEN,
                format!("api_key: {}", refused.message()),
            ),
        })
}

/// Who reads: the `api_key`'s token (its scope, as in `/api/v1`), or, without one
/// and with public reads on, the public (`true`): the whole district, public fields.
async fn reader(
    app: &SharedApp,
    settings: &Settings,
    params: &HashMap<String, String>,
) -> Result<(Actor, bool), Open311Error> {
    match field(params, "api_key") {
        Some(key) => Ok((authenticate(app, Some(key)).await?, false)),
        None if settings.public_reads => {
            let org = app.org.get();
            // Reads only, and only through `request_json(.., public = true)`: an
            // analyst of the root unit sees every ticket and no reporter's contact.
            let public = Actor {
                token_id: String::new(),
                user: "open311:public".to_string(),
                role: Role::Analyst,
                unit: org.root().code.clone(),
            };
            Ok((public, true))
        }
        None => Err(err(
            StatusCode::FORBIDDEN,
            "api_key is required: a yiwang token (yiwang token create …); this endpoint \
             does not answer reads without one (open311_public_reads is off)",
        )),
    }
}

/// A `jurisdiction_id` other than the configured one is a 400; without a configured
/// one, any is accepted (and ignored).
fn check_jurisdiction(
    settings: &Settings,
    params: &HashMap<String, String>,
) -> Result<(), Open311Error> {
    match (&settings.jurisdiction, field(params, "jurisdiction_id")) {
        (Some(ours), Some(theirs)) if theirs != ours => Err(bad_request(format!(
            "jurisdiction_id {theirs:?} is not served here: this endpoint serves {ours:?} \
             (or leave jurisdiction_id out)"
        ))),
        _ => Ok(()),
    }
}

/// The scheme and host the client called (`Host`; `https` when a proxy says so in
/// `X-Forwarded-Proto`), for the absolute URLs of `media_url` and discovery.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// The last segment of the path: `services.json`, `requests.xml`, ….
fn resource_of(uri: &Uri) -> String {
    uri.path().rsplit('/').next().unwrap_or("").to_string()
}

async fn get_resource(
    State(app): State<SharedApp>,
    Extension(settings): Extension<Arc<Settings>>,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let resource = resource_of(&uri);
    let f = split_format(&resource).map_or(Format::Json, |(_, f)| f);
    if let Err(e) = check_jurisdiction(&settings, &params) {
        return error_response(f, e);
    }
    match split_format(&resource) {
        Some(("services", f)) => respond(f, Ok(services(&app, f))),
        Some(("requests", f)) => respond(
            f,
            list_requests(&app, &settings, &params, &base_url(&headers), f).await,
        ),
        Some((_, f)) => error_response(f, not_found(&resource)),
        None => error_response(Format::Json, not_found(&resource)),
    }
}

/// Any method but GET on a resource that is only read: GeoReport's 405.
async fn read_only(method: axum::http::Method, uri: Uri) -> Response {
    let resource = resource_of(&uri);
    let f = split_format(&resource).map_or(Format::Json, |(_, f)| f);
    let mut r = error_response(
        f,
        err(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {resource}: it is read with GET"),
        ),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
    r
}

async fn post_resource(
    State(app): State<SharedApp>,
    Extension(settings): Extension<Arc<Settings>>,
    req: Request,
) -> Response {
    let resource = resource_of(req.uri());
    match split_format(&resource) {
        Some(("requests", f)) => respond(f, post_request(&app, &settings, req, f).await),
        Some((_, f)) => error_response(f, not_found(&resource)),
        None => error_response(Format::Json, not_found(&resource)),
    }
}

fn not_found(what: &str) -> Open311Error {
    err(
        StatusCode::NOT_FOUND,
        format!(
            "no resource {what:?}: services.json, services/{{code}}.json, requests.json, requests/{{id}}.json (or .xml)"
        ),
    )
}

/// One service of `services.json`.
fn service_json(c: &crate::org::model::CategoryDef) -> Value {
    let description = match &c.group {
        Some(g) => format!("{g}：{}", c.name),
        None => c.name.clone(),
    };
    // The group and the code's domain (`city` of `city.exposed_garbage`).
    let keywords: Vec<&str> = c
        .group
        .as_deref()
        .into_iter()
        .chain(c.code.split('.').next().filter(|d| *d != c.code))
        .collect();
    json!({
        "service_code": c.code,
        "service_name": c.name,
        "description": description,
        "metadata": false,
        "type": "realtime",
        "keywords": keywords.join(","),
        "group": c.group,
    })
}

fn services(app: &SharedApp, f: Format) -> Response {
    let org = app.org.get();
    let items: Vec<Value> = org.categories().iter().map(service_json).collect();
    answer(f, StatusCode::OK, "services", "service", &items)
}

async fn service_definition(
    State(app): State<SharedApp>,
    Extension(settings): Extension<Arc<Settings>>,
    Path(file): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some((code, f)) = split_format(&file) else {
        return error_response(Format::Json, not_found(&format!("services/{file}")));
    };
    if let Err(e) = check_jurisdiction(&settings, &params) {
        return error_response(f, e);
    }
    let org = app.org.get();
    let r = match org.category(code) {
        // No attributes: a service definition of GeoReport is a list of extra
        // questions, and a ticket has none.
        Some(c) => {
            let def = json!({ "service_code": c.code, "attributes": [] });
            let body = match f {
                Format::Json => def.to_string(),
                Format::Xml => xml_definition(&c.code),
            };
            let content_type = match f {
                Format::Json => "application/json; charset=utf-8",
                Format::Xml => "text/xml; charset=utf-8",
            };
            let mut r = body.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ok(r)
        }
        None => Err(err(
            StatusCode::NOT_FOUND,
            format!("no service_code {code:?}; services.{} lists them", ext(f)),
        )),
    };
    respond(f, r)
}

fn xml_definition(code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_definition><service_code>{}</service_code><attributes></attributes></service_definition>\n",
        escape(code)
    )
}

/// The first value of each form field.
fn parse_form(raw: &[u8]) -> Result<HashMap<String, String>, Open311Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
        .map_err(|e| bad_request(format!("the form body could not be read: {e}")))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        out.entry(k).or_insert(v);
    }
    Ok(out)
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn number(form: &HashMap<String, String>, name: &str) -> Result<Option<f64>, Open311Error> {
    field(form, name)
        .map(|s| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad_request(format!("{name}: {s:?} is not a number")))
        })
        .transpose()
}

/// A title for the ticket: the description's first line (at most 60 characters), or
/// the service's name.
fn title_of(description: &str, service_name: &str) -> String {
    let first = description.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(l) if l.chars().count() > 60 => format!("{}…", l.chars().take(59).collect::<String>()),
        Some(l) => l.to_string(),
        None => service_name.to_string(),
    }
}

/// A person's name from GeoReport's parts: family name first when it is written
/// in CJK characters (赵 + 先生), "first last" otherwise.
fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (None, None) => None,
        (Some(f), None) => Some(f.to_string()),
        (None, Some(l)) => Some(l.to_string()),
        (Some(f), Some(l)) if !f.is_ascii() || !l.is_ascii() => Some(format!("{l}{f}")),
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
    }
}

async fn post_request(
    app: &SharedApp,
    settings: &Settings,
    req: Request,
    f: Format,
) -> Result<Response, Open311Error> {
    let headers = req.headers().clone();
    // `api_key` and `jurisdiction_id` may also come in the query string, as some
    // clients send them; the form's win.
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let posted = media::read(app, req).await?;
    let mut form = posted.form;
    for (k, v) in query {
        if k == "api_key" || k == "jurisdiction_id" {
            form.entry(k).or_insert(v);
        }
    }
    check_jurisdiction(settings, &form)?;
    let actor = authenticate(app, field(&form, "api_key")).await?;
    let source = match actor.role {
        Role::GridWorker => "grid",
        Role::HotlineAgent => "hotline",
        other => {
            return Err(err(
                StatusCode::FORBIDDEN,
                format!(
                    "the api_key's role {} may not post requests: use a grid_worker or hotline_agent token",
                    other.as_str()
                ),
            ));
        }
    };
    let org = app.org.get();
    let code =
        field(&form, "service_code").ok_or_else(|| bad_request("service_code is required"))?;
    let category = org.category(code).ok_or_else(|| {
        bad_request(format!(
            "service_code {code:?} was not found; services.{} lists them",
            ext(f)
        ))
    })?;
    let lat = number(&form, "lat")?;
    let lon = number(&form, "long")?;
    let address = field(&form, "address_string");
    if lat.is_some() != lon.is_some() {
        return Err(bad_request(
            "lat and long go together: send both, or address_string",
        ));
    }
    if lat.is_none() && address.is_none() {
        return Err(bad_request(
            "a location is required: lat and long, or address_string",
        ));
    }
    let mut description = field(&form, "description").unwrap_or("").to_string();
    // Kept as text for the dispatcher: yiwang does not fetch outside URLs.
    if let Some(url) = field(&form, "media_url") {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&format!("media_url: {url}"));
    }
    // A grid worker reports in their own grid: the token's unit when it is one.
    let grid = (actor.role == Role::GridWorker)
        .then(|| org.unit(&actor.unit))
        .flatten()
        .filter(|u| u.kind == UnitKind::Grid)
        .map(|u| u.code.clone());
    let name = full_name(field(&form, "first_name"), field(&form, "last_name"));
    // GeoReport clients send phones as they are written; keep what a phone field holds.
    let phone = field(&form, "phone").map(|p| {
        p.chars()
            .filter(|c| c.is_ascii_digit() || "+- ".contains(*c))
            .collect::<String>()
            .trim()
            .to_string()
    });
    let phone = phone.filter(|p| !p.is_empty());
    let mut ticket = json!({
        "source": source,
        "category": category.code,
        "title": title_of(&description, &category.name),
        "description": description,
        "urgency": "normal",
        "location": { "address": address, "lat": lat, "lon": lon, "grid": grid },
    });
    if name.is_some() || phone.is_some() {
        ticket["reporter"] = json!({ "name": name, "phone": phone });
    }
    let mut input = match parse_command("create", ticket.to_string().as_bytes())? {
        ParsedCommand::Create(t) => t,
        ParsedCommand::Act(_) => {
            return Err(err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request could not be turned into a ticket",
            ));
        }
    };
    // The photo is kept only now that the rest of the request was accepted.
    let mut canonical = posted.canonical;
    if let Some(incoming) = posted.media {
        let stored = incoming.finish().await.map_err(media::media_error)?;
        crate::attachments::record(&app.store.pool(), &stored, &actor.user, app.now())
            .await
            .map_err(|e| Open311Error::from(AppError::from(e)))?;
        tracing::info!(hash = %stored.hash, size = stored.size, content_type = %stored.content_type, "open311 media stored");
        canonical.extend_from_slice(b"\nmedia=");
        canonical.extend_from_slice(stored.hash.as_bytes());
        input.photos.push(stored.hash);
    }
    let meta = form_meta(&actor, &headers, &canonical);
    let reply = app.create(&actor, input, meta).await?;
    let created: Value = serde_json::from_str(&reply.body).map_err(|e| {
        Open311Error::from(AppError::Internal(anyhow::anyhow!(
            "stored answer unreadable: {e}"
        )))
    })?;
    let id = created.get("id").cloned().unwrap_or(Value::Null);
    let number = created.get("number").and_then(Value::as_str).unwrap_or("");
    let item = json!({
        "service_request_id": id,
        "service_notice": format!("工单编号 {number} / ticket number {number}"),
        "account_id": null,
    });
    let mut r = answer(
        f,
        StatusCode::CREATED,
        "service_requests",
        "request",
        &[item],
    );
    if reply.replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(r)
}

/// The command facts of a form: the Idempotency-Key is the token user's hash of the
/// body (a multipart form's fields and photo: `media::Posted::canonical`), so the
/// same form from the same user is one request however often it is sent.
fn form_meta(actor: &Actor, headers: &HeaderMap, raw: &[u8]) -> CommandMeta {
    let mut k = Sha256::new();
    k.update(actor.user.as_bytes());
    k.update(b"\n");
    k.update(raw);
    let mut h = Sha256::new();
    h.update(b"POST /open311/v2/requests\n");
    h.update(raw);
    CommandMeta {
        idempotency_key: format!("open311-{}", hex::encode(k.finalize())),
        request_hash: hex::encode(h.finalize()),
        if_match: None,
        request_id: super::extract::request_id(headers),
    }
}

fn parse_datetime(name: &str, s: &str) -> Result<DateTime<Utc>, Open311Error> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad_request(format!(
                "{name}: {s:?} is not a W3C date-time such as 2026-09-30T08:00:00+08:00"
            ))
        })
}

async fn list_requests(
    app: &SharedApp,
    settings: &Settings,
    params: &HashMap<String, String>,
    base: &str,
    f: Format,
) -> Result<Response, Open311Error> {
    let (actor, public) = reader(app, settings, params).await?;
    let shown = Shown { public, base };
    let org = app.org.get();
    let now = app.now();
    let start = field(params, "start_date")
        .map(|s| parse_datetime("start_date", s))
        .transpose()?;
    let end = field(params, "end_date")
        .map(|s| parse_datetime("end_date", s))
        .transpose()?;
    let window = Duration::days(DEFAULT_DAYS);
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + window),
        (None, Some(e)) => (e - window, e),
        (None, None) => (now - window, now),
    };
    if start > end {
        return Err(bad_request("start_date is after end_date"));
    }
    if end - start > window {
        return Err(bad_request(format!(
            "start_date to end_date spans more than {DEFAULT_DAYS} days"
        )));
    }
    let states = match field(params, "status") {
        None => None,
        Some(s) => {
            let mut states = Vec::new();
            for one in s.split(',').map(str::trim) {
                match one {
                    "open" => states.extend(["accepted", "assigned", "handled"]),
                    "closed" => states.extend(["verified", "closed"]),
                    other => {
                        return Err(bad_request(format!(
                            "status: {other:?} is neither open nor closed"
                        )));
                    }
                }
            }
            Some(states.into_iter().map(str::to_string).collect())
        }
    };
    let category = match field(params, "service_code") {
        None => None,
        Some(c) if org.category(c).is_some() => Some(c.to_string()),
        Some(c) => {
            return Err(bad_request(format!(
                "service_code {c:?} was not found; services.{} lists them",
                ext(f)
            )));
        }
    };
    // Named requests: the other filters do not apply (GeoReport says so), though a
    // malformed one is still a 400.
    if let Some(ids) = field(params, "service_request_id") {
        let mut items = Vec::new();
        for id in ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .take(MAX_REQUESTS as usize)
        {
            let Ok(id) = Uuid::parse_str(id) else {
                continue;
            };
            match app.get(&actor, id).await {
                Ok((t, _)) => items.push(request_json(&org, &t, &shown)),
                // A frozen ticket (a failed verification) is left out, not the list.
                Err(AppError::NotFound(_) | AppError::Forbidden(_) | AppError::Tampered(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(answer(
            f,
            StatusCode::OK,
            "service_requests",
            "request",
            &items,
        ));
    }
    let q = TicketQuery {
        category,
        states,
        created_from: Some(start),
        // Inclusive of `end`: every id sorts below the largest UUID.
        before: Some((end, Uuid::max())),
        limit: MAX_REQUESTS,
        ..TicketQuery::default()
    };
    let tickets = app.list(&actor, q).await?;
    let items: Vec<Value> = tickets
        .iter()
        .map(|t| request_json(&org, t, &shown))
        .collect();
    Ok(answer(
        f,
        StatusCode::OK,
        "service_requests",
        "request",
        &items,
    ))
}

async fn get_request(
    State(app): State<SharedApp>,
    Extension(settings): Extension<Arc<Settings>>,
    Path(file): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some((id, f)) = split_format(&file) else {
        return error_response(Format::Json, not_found(&format!("requests/{file}")));
    };
    let r = async {
        check_jurisdiction(&settings, &params)?;
        let (actor, public) = reader(&app, &settings, &params).await?;
        let base = base_url(&headers);
        let missing = || err(StatusCode::NOT_FOUND, format!("no service request {id:?}"));
        let id = Uuid::parse_str(id).map_err(|_| missing())?;
        // A ticket outside the token's scope is not found either: no existence leak.
        let t = match app.get(&actor, id).await {
            Ok((t, _)) => t,
            Err(AppError::NotFound(_) | AppError::Forbidden(_)) => return Err(missing()),
            Err(e) => return Err(e.into()),
        };
        let org = app.org.get();
        Ok(answer(
            f,
            StatusCode::OK,
            "service_requests",
            "request",
            &[request_json(
                &org,
                &t,
                &Shown {
                    public,
                    base: &base,
                },
            )],
        ))
    }
    .await;
    respond(f, r)
}

#[cfg(test)]
mod tests;

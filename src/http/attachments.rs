//! Photos: `POST /api/v1/attachments` (multipart, one part named `file`) stores one;
//! `GET /api/v1/attachments/{hash}` serves it back to whoever uploaded it, and
//! `GET /api/v1/tickets/{id}/attachments/{hash}` to whoever may see a ticket that
//! references it. Everything else is a 404, whether the photo exists or not, so that
//! a hash reveals nothing. See `crate::attachments` for the storage.

use axum::Router;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::Path;
use crate::app::{App, SharedApp};
use crate::attachments::{self, Incoming, Stored, is_hash};
use crate::auth::policy::{self, Action};
use crate::auth::{Actor, Role};
use crate::error::AppError;

/// Room in a request, beyond the file itself, for the multipart boundaries and part
/// headers.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

pub fn router(app: &App) -> Router<SharedApp> {
    let limit = app.attachments.max_bytes.saturating_add(MULTIPART_OVERHEAD);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/api/v1/attachments",
            post(upload_attachment).layer(DefaultBodyLimit::max(limit)),
        )
        .route("/api/v1/attachments/{hash}", get(get_attachment))
        .route(
            "/api/v1/tickets/{id}/attachments/{hash}",
            get(get_ticket_attachment),
        )
}

/// Who may upload: whoever may report a ticket or report one handled.
fn may_upload(role: Role) -> bool {
    Action::Create.roles().contains(&role) || Action::Handle.roles().contains(&role)
}

fn multipart_error(e: MultipartError, max: u64) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        attachments::too_large(max)
    } else {
        AppError::BadRequest(format!(
            "could not read the multipart body: {}",
            e.body_text()
        ))
    }
}

/// Reads what is left of the request (bounded by the route's body limit), so the
/// client gets the error answer rather than a connection reset mid-upload.
async fn drain(field: Option<Field<'_>>) {
    if let Some(mut f) = field {
        while let Ok(Some(_)) = f.chunk().await {}
    }
}

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
        (status = 400, description = "An unreadable multipart body", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not upload", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The photo is over the size limit", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart/form-data, or not a JPEG, PNG, WebP or HEIC image", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "No part named `file`, or more than one", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user = %actor.user, role = actor.role.as_str()))]
async fn upload_attachment(
    State(app): State<SharedApp>,
    actor: Actor,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    if !may_upload(actor.role) {
        return Err(AppError::Forbidden(format!(
            "the {} role may not upload attachments",
            actor.role.as_str()
        )));
    }
    let max = app.attachments.max_bytes;
    let mut multipart = multipart.map_err(|e| {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
        if is_form {
            AppError::BadRequest(format!(
                "could not read the multipart body: {}",
                e.body_text()
            ))
        } else {
            AppError::UnsupportedMediaType(
                "send the photo as multipart/form-data with one part named file".into(),
            )
        }
    })?;
    // The file stays in `tmp/` until the whole form has been read and accepted: a
    // request refused after its file part (a second file, a broken form, a body
    // over the limit) leaves nothing on disk and nothing in the table.
    let mut pending: Option<Incoming> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, max)),
        };
        // Other parts (a caption a form may add) are skipped unread.
        if field.name() != Some("file") {
            continue;
        }
        if pending.is_some() {
            drain(Some(field)).await;
            return Err(AppError::invalid(
                "file",
                "one file per request: send each photo in its own upload",
            ));
        }
        let mut incoming = Incoming::start(&app.attachments).await?;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if let Err(e) = incoming.write(&chunk).await {
                        drain(Some(field)).await;
                        return Err(e);
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(multipart_error(e, max)),
            }
        }
        pending = Some(incoming);
    }
    let stored: Stored = pending
        .ok_or_else(|| {
            AppError::invalid(
                "file",
                "the form has no part named file: send the photo as the part named file",
            )
        })?
        .finish()
        .await?;
    attachments::record(&app.store.pool(), &stored, &actor.user, app.now()).await?;
    tracing::info!(hash = %stored.hash, size = stored.size, content_type = %stored.content_type, "attachment stored");
    let body = super::sorted_json(&Attachment {
        hash: &stored.hash,
        content_type: &stored.content_type,
        size: stored.size,
        url: format!("/api/v1/attachments/{}", stored.hash),
    })?;
    let mut resp = (StatusCode::CREATED, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/attachments/{}", stored.hash)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// A stored photo (`http::attachments`). Written through `sorted_json`: keys in
/// alphabetical order, fields in the order of the document's properties.
#[derive(Serialize, ToSchema)]
#[schema(description = "A stored photo (`http::attachments`).")]
pub struct Attachment<'a> {
    /// SHA-256 of the bytes (hex): reference it in `photos` of a report or a result.
    hash: &'a str,
    content_type: &'a str,
    size: u64,
    /// Where the uploader reads it back.
    url: String,
}

/// The upload form of a photo.
///
/// A schema only: the handler streams the multipart body part by part to disk
/// (`Incoming`), counting and checking the bytes as they come, and never holds the
/// form as a value; the photo's type is decided by its bytes. A struct the handler
/// could build would have to buffer the whole photo in memory.
#[derive(ToSchema)]
#[schema(description = "The upload form of a photo.")]
#[allow(dead_code)] // a schema only: `upload_attachment` streams the multipart body
pub struct AttachmentUpload {
    /// The photo: JPEG, PNG, WebP or HEIC (checked by its bytes, not its name).
    #[schema(value_type = String, format = Binary)]
    file: (),
}

/// The bytes of a photo.
///
/// A schema only: `serve` answers the stored file's bytes as they are, with the
/// content type recorded at upload; utoipa would describe a `Vec<u8>` as an array
/// of integers, not as binary.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, description = "The bytes of a photo.")]
#[allow(dead_code)] // a schema only: `serve` answers the file's bytes
pub struct PhotoBytes(Vec<u8>);

fn no_attachment(hash: &str) -> AppError {
    let shown: String = hash.chars().take(80).collect();
    AppError::NotFound(format!("no attachment {shown:?} that you may see"))
}

/// `GET /api/v1/attachments/{hash}`: the uploader's own photo.
#[utoipa::path(
    get, path = "/api/v1/attachments/{hash}", tag = "attachments",
    summary = "A photo the token's user uploaded",
    params(("hash" = String, Path, description = "The photo's SHA-256 (hex)")),
    responses(
        (status = 200, description = "The photo", content_type = "image/*", body = PhotoBytes,
            headers(("ETag" = String, description = "The hash, quoted"))),
        (status = 404, description = "No such photo uploaded by this user (whether or not it exists)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_attachment(
    State(app): State<SharedApp>,
    actor: Actor,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    if !is_hash(&hash) {
        return Err(no_attachment(&hash));
    }
    let a = attachments::find(&app.store.pool(), &hash, Some(&actor.user))
        .await?
        .ok_or_else(|| no_attachment(&hash))?;
    serve(&app, &a).await
}

/// `GET /api/v1/tickets/{id}/attachments/{hash}`: a photo of a ticket the caller
/// may see.
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
        (status = 404, description = "No such photo on a ticket this token may see (whether or not it exists)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_ticket_attachment(
    State(app): State<SharedApp>,
    actor: Actor,
    Path((id, hash)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (Ok(id), true) = (Uuid::parse_str(&id), is_hash(&hash)) else {
        return Err(no_attachment(&hash));
    };
    // A frozen ticket's view (who may see it, its photos) cannot be trusted.
    let visible = match app.load(id).await? {
        Some(_) if app.integrity.is_tampered(id) => false,
        Some(t) => {
            policy::check(&app.org.get(), &actor, Action::Read, &t).is_ok() && t.has_photo(&hash)
        }
        None => false,
    };
    if !visible {
        return Err(no_attachment(&hash));
    }
    let a = attachments::find(&app.store.pool(), &hash, None)
        .await?
        .ok_or_else(|| no_attachment(&hash))?;
    serve(&app, &a).await
}

/// The stored file's bytes with its headers (also Open311's `media_url`).
pub(crate) async fn serve(app: &App, a: &Stored) -> Result<Response, AppError> {
    let path = attachments::path_of(&app.attachments.dir, &a.hash);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(hash = %a.hash, path = %path.display(), "an attachment's file is missing");
            return Err(no_attachment(&a.hash));
        }
        Err(e) => {
            return Err(AppError::Internal(anyhow::anyhow!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    let ct = HeaderValue::from_str(&a.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Shown, not downloaded, under a name of our making; and should a browser ever
    // take it for a document, it runs nothing and reaches nothing (sandboxed, no
    // sources), so a photo cannot act with the origin's rights.
    let name = format!(
        "inline; filename=\"{}.{}\"",
        a.hash,
        attachments::extension(&a.content_type)
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", a.hash)) {
        h.insert(header::ETAG, v);
    }
    Ok(resp)
}

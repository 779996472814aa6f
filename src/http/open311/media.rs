//! The body of `POST requests`: a form-encoded body (as `curl -d` sends it), or a
//! `multipart/form-data` one whose file part `media` is the photo (as mobile
//! Open311 apps send it); and `GET requests/{id}/media`, that photo.
//!
//! The photo is streamed to the attachments' `tmp/` as `POST /api/v1/attachments`
//! streams one ([`Incoming`]: the same size limit, the same image types decided by
//! the bytes), and kept only once the whole request has been accepted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Extension;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use uuid::Uuid;

use super::{
    Format, Open311Error, Settings, bad_request, check_jurisdiction, err, error_response, reader,
    report_photo,
};
use crate::app::commands::BODY_LIMIT;
use crate::app::{App, SharedApp};
use crate::attachments::Incoming;
use crate::error::AppError;

/// Room in a multipart request, beyond the photo, for the other parts, the
/// boundaries and the part headers: the form-encoded body's own limit.
pub const MULTIPART_OVERHEAD: u64 = BODY_LIMIT as u64;

/// A posted form: its fields (the first value of each), the photo waiting in
/// `tmp/`, and the bytes the Idempotency-Key hashes (the form-encoded body as it
/// came; a multipart form's fields in the order of their names, since a client's
/// boundary changes from one try to the next; the photo's hash is added once known).
pub(super) struct Posted {
    pub form: HashMap<String, String>,
    pub media: Option<Incoming>,
    pub canonical: Vec<u8>,
}

fn too_large() -> Open311Error {
    err(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the form is over the {} MiB limit (send the photo as the multipart part media)",
            BODY_LIMIT / (1024 * 1024)
        ),
    )
}

/// Reads the body by its content type: form-encoded (or none named) up to 1 MiB,
/// multipart up to the attachment limit; anything else is a 400 naming both.
pub(super) async fn read(app: &App, req: Request) -> Result<Posted, Open311Error> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match content_type.as_deref() {
        Some(ct) if ct.starts_with("multipart/form-data") => multipart(app, req).await,
        None => urlencoded(req).await,
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => urlencoded(req).await,
        Some(_) => Err(bad_request(
            "send the request as application/x-www-form-urlencoded (curl -d field=value …), \
             or as multipart/form-data with the photo as the file part media (curl -F \
             media=@photo.jpg -F field=value …)",
        )),
    }
}

async fn urlencoded(req: Request) -> Result<Posted, Open311Error> {
    let mut stream = req.into_body().into_data_stream();
    let mut raw = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| bad_request(format!("could not read the request body: {e}")))?;
        if raw.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large());
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(Posted {
        form: super::parse_form(&raw)?,
        media: None,
        canonical: raw,
    })
}

fn multipart_error(e: MultipartError, max: u64) -> Open311Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        err(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the form is over its limit: the photo may be at most {max} bytes ({:.1} MiB)",
                max as f64 / (1024.0 * 1024.0)
            ),
        )
    } else {
        bad_request(format!(
            "could not read the multipart body: {}",
            e.body_text()
        ))
    }
}

/// Reads what is left of a part, so the client gets the error answer rather than
/// a connection reset mid-upload.
async fn drain(mut f: Field<'_>) {
    while let Ok(Some(_)) = f.chunk().await {}
}

async fn multipart(app: &App, req: Request) -> Result<Posted, Open311Error> {
    let max = app.attachments.max_bytes;
    let mut parts = Multipart::from_request(req, &()).await.map_err(|e| {
        bad_request(format!(
            "could not read the multipart body: {}",
            e.body_text()
        ))
    })?;
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut text_bytes = 0usize;
    let mut media: Option<Incoming> = None;
    loop {
        let mut field = match parts.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, max)),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "media" {
            if media.is_some() {
                drain(field).await;
                return Err(bad_request(
                    "one media part per request: GeoReport takes one photo with a request",
                ));
            }
            let mut incoming = Incoming::start(&app.attachments).await?;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = incoming.write(&chunk).await {
                            drain(field).await;
                            return Err(media_error(e));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(multipart_error(e, max)),
                }
            }
            media = Some(incoming);
            continue;
        }
        // A text field: at most 1 MiB of them in all, as a form-encoded body.
        let mut value = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    text_bytes += chunk.len();
                    if text_bytes > BODY_LIMIT {
                        drain(field).await;
                        return Err(too_large());
                    }
                    value.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(multipart_error(e, max)),
            }
        }
        let value = String::from_utf8(value)
            .map_err(|_| bad_request(format!("the part {name:?} is not UTF-8 text")))?;
        // The first value of each field, as in a form-encoded body.
        fields.entry(name).or_insert(value);
    }
    let canonical = serde_urlencoded::to_string(&fields)
        .map_err(|e| bad_request(format!("the form could not be read: {e}")))?;
    let mut bytes = b"multipart\n".to_vec();
    bytes.extend_from_slice(canonical.as_bytes());
    Ok(Posted {
        form: fields.into_iter().collect(),
        media,
        canonical: bytes,
    })
}

/// The photo's own errors name the part.
pub(super) fn media_error(e: AppError) -> Open311Error {
    match e {
        AppError::PayloadTooLarge(m) => err(StatusCode::PAYLOAD_TOO_LARGE, format!("media: {m}")),
        AppError::UnsupportedMediaType(m) => {
            err(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("media: {m}"))
        }
        other => other.into(),
    }
}

/// `GET /open311/v2/requests/{id}/media`: the report's photo of a request, to the
/// same readers as the request (its `api_key`'s scope, or anyone with public reads
/// on). Errors are GeoReport's, in JSON.
pub(super) async fn get_media(
    State(app): State<SharedApp>,
    Extension(settings): Extension<Arc<Settings>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let r = async {
        check_jurisdiction(&settings, &params)?;
        let (actor, _public) = reader(&app, &settings, &params).await?;
        let missing = || {
            err(
                StatusCode::NOT_FOUND,
                format!("no media for request {id:?}"),
            )
        };
        let id = Uuid::parse_str(&id).map_err(|_| missing())?;
        let t = match app.get(&actor, id).await {
            Ok((t, _)) => t,
            Err(AppError::NotFound(_) | AppError::Forbidden(_) | AppError::Tampered(_)) => {
                return Err(missing());
            }
            Err(e) => return Err(e.into()),
        };
        let hash = report_photo(&t).ok_or_else(missing)?;
        let stored = crate::attachments::find(&app.store.pool(), hash, None)
            .await
            .map_err(|e| Open311Error::from(AppError::from(e)))?
            .ok_or_else(missing)?;
        crate::http::attachments::serve(&app, &stored)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => missing(),
                other => other.into(),
            })
    }
    .await;
    r.unwrap_or_else(|e| error_response(Format::Json, e))
}

//! GeoReport's answers: the two formats (`.json`, `.xml`), its errors
//! (`[{"code", "description"}]`) and the API's errors put in its terms, and the XML
//! GeoReport writes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::AppError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Xml,
}

/// `services.json` -> ("services", Json).
pub(super) fn split_format(file: &str) -> Option<(&str, Format)> {
    if let Some(name) = file.strip_suffix(".json") {
        Some((name, Format::Json))
    } else {
        file.strip_suffix(".xml").map(|name| (name, Format::Xml))
    }
}

#[derive(Debug)]
pub(super) struct Open311Error {
    pub(super) status: StatusCode,
    pub(super) description: String,
}

pub(super) fn err(status: StatusCode, description: impl Into<String>) -> Open311Error {
    Open311Error {
        status,
        description: description.into(),
    }
}

pub(super) fn bad_request(description: impl Into<String>) -> Open311Error {
    err(StatusCode::BAD_REQUEST, description)
}

/// The API's own errors in GeoReport terms: a field error is a 400 naming the form
/// field, a missing or refused token a 403, internals are logged and not shown.
impl From<AppError> for Open311Error {
    fn from(e: AppError) -> Self {
        match e.into_base() {
            AppError::Invalid { field, message } => {
                bad_request(format!("{}: {message}", form_field(&field)))
            }
            AppError::Unauthorized(m) | AppError::Forbidden(m) => err(StatusCode::FORBIDDEN, m),
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error (open311)");
                err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "an internal error occurred; it has been logged. Nothing was recorded.",
                )
            }
            other => err(
                StatusCode::from_u16(other.status()).unwrap_or(StatusCode::BAD_REQUEST),
                other.to_string(),
            ),
        }
    }
}

/// The GeoReport name of a field of the ticket body.
pub(super) fn form_field(api_field: &str) -> &str {
    match api_field {
        "category" => "service_code",
        "location.lat" => "lat",
        "location.lon" => "long",
        "location.address" => "address_string",
        "reporter.phone" => "phone",
        "reporter.name" => "first_name/last_name",
        "title" | "description" => "description",
        other => other,
    }
}

/// An answer in the requested format.
pub(super) fn answer(
    format: Format,
    status: StatusCode,
    root: &str,
    item: &str,
    items: &[Value],
) -> Response {
    let (body, content_type) = match format {
        Format::Json => (
            Value::from(items.to_vec()).to_string(),
            "application/json; charset=utf-8",
        ),
        Format::Xml => (xml(root, item, items), "text/xml; charset=utf-8"),
    };
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn error_response(format: Format, e: Open311Error) -> Response {
    answer(
        format,
        e.status,
        "errors",
        "error",
        &[json!({ "code": e.status.as_u16(), "description": e.description })],
    )
}

pub(super) fn respond(format: Format, r: Result<Response, Open311Error>) -> Response {
    r.unwrap_or_else(|e| error_response(format, e))
}

/// GeoReport's XML: `<root><item><field>value</field>…</item>…</root>`. Items are flat
/// objects; an array (the attributes of a service definition) becomes a wrapper
/// element with one `<attribute>` per entry.
pub(super) fn xml(root: &str, item: &str, items: &[Value]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str(&format!("<{root}>"));
    for it in items {
        if let Some(obj) = it.as_object() {
            out.push_str(&format!("<{item}>"));
            for (k, v) in obj {
                out.push_str(&format!("<{k}>"));
                match v {
                    Value::Null => {}
                    Value::String(s) => out.push_str(&escape(s)),
                    Value::Array(a) => {
                        for x in a {
                            out.push_str(&format!(
                                "<attribute>{}</attribute>",
                                escape(&x.to_string())
                            ));
                        }
                    }
                    other => out.push_str(&escape(&other.to_string())),
                }
                out.push_str(&format!("</{k}>"));
            }
            out.push_str(&format!("</{item}>"));
        }
    }
    out.push_str(&format!("</{root}>\n"));
    out
}

pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all become U+FFFD, so that a
            // ticket stored before the API refused them cannot make a page
            // unreadable.
            c if !xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// XML 1.0's `Char`: `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
/// [#x10000-#x10FFFF]` (a `char` is never a surrogate).
pub(super) fn xml_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

pub(super) fn ext(f: Format) -> &'static str {
    match f {
        Format::Json => "json",
        Format::Xml => "xml",
    }
}

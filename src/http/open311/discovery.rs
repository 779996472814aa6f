//! `GET /open311/discovery.json` (and `.xml`): GeoReport v2's service discovery,
//! naming the one production endpoint `/open311/v2` of this host and its formats.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{base_url, escape};
use crate::app::SharedApp;

/// When this Open311 interface last changed (GeoReport's `changeset`): public reads,
/// multipart media, discovery and the jurisdiction check.
pub const CHANGESET: &str = "2026-12-07T00:00:00Z";

/// The GeoReport v2 specification the endpoint follows.
pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";

/// The formats of every resource.
pub const FORMATS: [&str; 2] = ["application/json", "text/xml"];

fn document(app: &SharedApp, headers: &HeaderMap) -> Value {
    let org = app.org.get();
    json!({
        "changeset": CHANGESET,
        "contact": format!(
            "{}：12345 热线 / the 12345 hotline centre",
            org.root().name
        ),
        "key_service": "api_key: a yiwang token of a grid_worker or hotline_agent, issued by \
                        the operators (yiwang token create); reads without a key only where \
                        the city has turned on public reads",
        "endpoints": [{
            "specification": SPECIFICATION,
            "url": format!("{}/open311/v2", base_url(headers)),
            "changeset": CHANGESET,
            "type": "production",
            "formats": FORMATS,
        }],
    })
}

fn typed(body: String, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) async fn json(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    typed(
        document(&app, &headers).to_string(),
        "application/json; charset=utf-8",
    )
}

/// GeoReport's XML of discovery: `<discovery>` with `<endpoints><endpoint>…` and
/// `<formats><format>…`.
pub(super) async fn xml(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    let d = document(&app, &headers);
    let text = |k: &str, v: &Value| format!("<{k}>{}</{k}>", escape(v.as_str().unwrap_or("")));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<discovery>");
    for k in ["changeset", "contact", "key_service"] {
        out.push_str(&text(k, &d[k]));
    }
    out.push_str("<endpoints>");
    for e in d["endpoints"].as_array().into_iter().flatten() {
        out.push_str("<endpoint>");
        for k in ["specification", "url", "changeset", "type"] {
            out.push_str(&text(k, &e[k]));
        }
        out.push_str("<formats>");
        for f in e["formats"].as_array().into_iter().flatten() {
            out.push_str(&text("format", f));
        }
        out.push_str("</formats></endpoint>");
    }
    out.push_str("</endpoints></discovery>\n");
    typed(out, "text/xml; charset=utf-8")
}

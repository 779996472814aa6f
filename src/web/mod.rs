//! The web pages (issue 6): sign-in, dispatch desk, ticket page, department
//! dashboard, the grid worker's mobile page, and the appraisal pages (issue 21:
//! sheets and entries, ranking, bulletins). Plain HTML, CSS and JS modules,
//! embedded in the binary from `assets/`, calling the JSON API with the token the
//! person pasted at sign-in. Nothing is fetched from elsewhere at build or run time.
//!
//! Every response here carries a strict Content-Security-Policy: scripts, styles and
//! connections only from this origin, no inline script or style, images also from
//! `blob:` (photos are fetched with the token and shown from object URLs).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::app::SharedApp;
use crate::error::AppError;

mod offline;

/// The policy of every page and asset.
/// `worker-src` and `manifest-src` name the grid page's service worker and web app
/// manifest (offline.rs), which `default-src` would allow too, explicitly.
pub const CSP: &str = "default-src 'self'; img-src 'self' blob:; object-src 'none'; \
                       base-uri 'none'; frame-ancestors 'none'; form-action 'self'; \
                       worker-src 'self'; manifest-src 'self'";

/// One embedded file: its URL path (under `/web/`, or a page's route), its content
/// type, and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($url:literal, $file:literal, $ctype:expr) => {
        Asset {
            path: $url,
            content_type: $ctype,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $file)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
const PNG: &str = "image/png";

static ASSETS: &[Asset] = &[
    asset!("login", "web/login.html", HTML),
    asset!("desk", "web/desk.html", HTML),
    asset!("ticket", "web/ticket.html", HTML),
    asset!("dashboard", "web/dashboard.html", HTML),
    asset!("grid", "web/grid.html", HTML),
    asset!("appraisal", "web/appraisal.html", HTML),
    asset!("ranking", "web/ranking.html", HTML),
    asset!("bulletins", "web/bulletins.html", HTML),
    asset!("intake", "web/intake.html", HTML),
    asset!("intake.css", "web/intake.css", CSS),
    asset!("map.css", "web/map.css", CSS),
    asset!("js/intake.js", "web/js/intake.js", JS),
    asset!("js/map.js", "web/js/map.js", JS),
    asset!("js/ticket-map.js", "web/js/ticket-map.js", JS),
    asset!("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.js", JS),
    asset!(
        "vendor/leaflet/leaflet.css",
        "vendor/leaflet/leaflet.css",
        CSS
    ),
    asset!(
        "vendor/leaflet/LICENSE",
        "vendor/leaflet/LICENSE",
        "text/plain; charset=utf-8"
    ),
    asset!(
        "vendor/leaflet/images/layers.png",
        "vendor/leaflet/images/layers.png",
        PNG
    ),
    asset!(
        "vendor/leaflet/images/layers-2x.png",
        "vendor/leaflet/images/layers-2x.png",
        PNG
    ),
    asset!(
        "vendor/leaflet/images/marker-icon.png",
        "vendor/leaflet/images/marker-icon.png",
        PNG
    ),
    asset!(
        "vendor/leaflet/images/marker-icon-2x.png",
        "vendor/leaflet/images/marker-icon-2x.png",
        PNG
    ),
    asset!(
        "vendor/leaflet/images/marker-shadow.png",
        "vendor/leaflet/images/marker-shadow.png",
        PNG
    ),
    asset!("app.css", "web/app.css", CSS),
    asset!("icon.svg", "web/icon.svg", "image/svg+xml"),
    asset!("js/common.js", "web/js/common.js", JS),
    asset!("js/actions.js", "web/js/actions.js", JS),
    asset!("js/login.js", "web/js/login.js", JS),
    asset!("js/desk.js", "web/js/desk.js", JS),
    asset!("js/desk-sla.js", "web/js/desk-sla.js", JS),
    asset!("js/desk-table.js", "web/js/desk-table.js", JS),
    asset!("js/desk-bulk.js", "web/js/desk-bulk.js", JS),
    asset!("js/desk-keys.js", "web/js/desk-keys.js", JS),
    asset!("js/desk-alert.js", "web/js/desk-alert.js", JS),
    asset!("js/ticket.js", "web/js/ticket.js", JS),
    asset!("js/dashboard.js", "web/js/dashboard.js", JS),
    asset!("js/grid.js", "web/js/grid.js", JS),
    asset!("js/appraisal-common.js", "web/js/appraisal-common.js", JS),
    asset!("js/appraisal.js", "web/js/appraisal.js", JS),
    asset!(
        "js/appraisal-department.js",
        "web/js/appraisal-department.js",
        JS
    ),
    asset!("js/ranking.js", "web/js/ranking.js", JS),
    asset!("js/bulletins.js", "web/js/bulletins.js", JS),
    asset!("i18n/zh.json", "web/i18n/zh.json", JSON),
    asset!("i18n/en.json", "web/i18n/en.json", JSON),
    asset!(
        "manifest.webmanifest",
        "web/manifest.webmanifest",
        "application/manifest+json; charset=utf-8"
    ),
    asset!("vendor/uplot/uPlot.esm.js", "vendor/uplot/uPlot.esm.js", JS),
    asset!(
        "vendor/uplot/uPlot.min.css",
        "vendor/uplot/uPlot.min.css",
        CSS
    ),
    asset!(
        "vendor/uplot/LICENSE",
        "vendor/uplot/LICENSE",
        "text/plain; charset=utf-8"
    ),
];

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route("/", get(|h: HeaderMap| page(h, "login")))
        .route("/login", get(|h: HeaderMap| page(h, "login")))
        .route("/desk", get(|h: HeaderMap| page(h, "desk")))
        .route("/tickets/{id}", get(|h: HeaderMap| page(h, "ticket")))
        .route("/dashboard", get(|h: HeaderMap| page(h, "dashboard")))
        .route("/grid", get(|h: HeaderMap| page(h, "grid")))
        .route("/appraisal", get(|h: HeaderMap| page(h, "appraisal")))
        .route("/appraisal/ranking", get(|h: HeaderMap| page(h, "ranking")))
        .route(
            "/appraisal/bulletins",
            get(|h: HeaderMap| page(h, "bulletins")),
        )
        .route("/intake", get(|h: HeaderMap| page(h, "intake")))
        .route("/favicon.ico", get(|h: HeaderMap| page(h, "icon.svg")))
        .route("/sw.js", get(offline::service_worker))
        .route("/web/{*path}", get(file))
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Strong ETags, computed once per process.
fn etag(path: &'static str) -> &'static str {
    static TAGS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let h = Sha256::digest(a.body);
                (a.path, format!("\"{}\"", hex::encode(&h[..12])))
            })
            .collect()
    });
    tags.get(path).map(String::as_str).unwrap_or("\"\"")
}

async fn page(headers: HeaderMap, name: &'static str) -> Response {
    match find(name) {
        Some(a) => serve(&headers, a),
        None => AppError::NotFound(format!("no page {name}")).into_response(),
    }
}

async fn file(headers: HeaderMap, Path(path): Path<String>) -> Response {
    // Pages have their own routes; /web/ serves the rest.
    match find(&path).filter(|a| a.path.contains('.')) {
        Some(a) => serve(&headers, a),
        None => AppError::NotFound(format!("no file /web/{path}")).into_response(),
    }
}

fn serve(headers: &HeaderMap, a: &'static Asset) -> Response {
    let tag = etag(a.path);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        a.body.into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    page_headers(h, CSP);
    r
}

/// The headers of every page and file served to a browser from this origin (the
/// web pages and `/api/docs`): the origin's localStorage holds the pages' tokens, so
/// nothing of it may be framed (clickjacking: the CSP's `frame-ancestors 'none'` and,
/// for older browsers, `X-Frame-Options`), run script from elsewhere (`csp`), be
/// sniffed into another type, or send its URL on as a referrer.
pub fn page_headers(h: &mut HeaderMap, csp: &'static str) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    /// One dictionary per language, and both name the same strings.
    #[test]
    fn the_dictionaries_have_the_same_keys() {
        let parse = |p: &str| -> serde_json::Value {
            let a = find(p).expect("dictionary embedded");
            serde_json::from_slice(a.body).expect("dictionary is JSON")
        };
        let (zh, en) = (parse("i18n/zh.json"), parse("i18n/en.json"));
        let (kz, ke) = (keys(&zh), keys(&en));
        let only_zh: Vec<_> = kz.iter().filter(|k| !ke.contains(k)).collect();
        let only_en: Vec<_> = ke.iter().filter(|k| !kz.contains(k)).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in zh: {only_zh:?}; only in en: {only_en:?}"
        );
    }

    /// Every key a page or script uses is in the dictionaries.
    #[test]
    fn every_key_used_is_translated() {
        let zh: serde_json::Value =
            serde_json::from_slice(find("i18n/zh.json").expect("zh").body).expect("JSON");
        let mut missing = Vec::new();
        for a in ASSETS
            .iter()
            .filter(|a| a.path.ends_with(".html") || a.content_type == HTML)
        {
            let text = String::from_utf8_lossy(a.body);
            for part in text.split("data-i18n").skip(1) {
                // data-i18n="key" or data-i18n-placeholder="key"
                let Some(start) = part.find('"') else {
                    continue;
                };
                let rest = &part[start + 1..];
                let key = rest.split('"').next().unwrap_or("");
                if zh.get(key).is_none() {
                    missing.push(format!("{}: {key}", a.path));
                }
            }
        }
        for a in ASSETS
            .iter()
            .filter(|a| a.path.starts_with("js/") && a.path.ends_with(".js"))
        {
            let text = String::from_utf8_lossy(a.body);
            let mut rest = text.as_ref();
            while let Some(i) = rest.find("t('") {
                // `t('key'`, not `set('…'` or `get('…'`.
                let call = i == 0
                    || !rest[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
                rest = &rest[i + 3..];
                let key = rest.split('\'').next().unwrap_or("");
                if call && !key.is_empty() && !key.ends_with('.') && zh.get(key).is_none() {
                    missing.push(format!("{}: {key}", a.path));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys without a translation: {missing:?}"
        );
    }

    /// No page carries inline script or style, which the policy would block.
    #[test]
    fn pages_have_no_inline_script_or_style() {
        for a in ASSETS.iter().filter(|a| a.content_type == HTML) {
            let text = String::from_utf8_lossy(a.body);
            assert!(!text.contains("<style"), "{}: inline <style>", a.path);
            assert!(!text.contains(" style="), "{}: style attribute", a.path);
            let handler = text.split(" on").skip(1).any(|rest| {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase())
                    .collect();
                !name.is_empty() && rest[name.len()..].starts_with('=')
            });
            assert!(!handler, "{}: inline event handler", a.path);
            for part in text.split("<script").skip(1) {
                let tag = part.split('>').next().unwrap_or("");
                assert!(tag.contains("src="), "{}: inline <script>", a.path);
            }
        }
    }
}

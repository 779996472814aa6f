//! The grid page's service worker (issue 22, point 8): `/sw.js`, at the root so that
//! it may control `/grid` (it registers with the scope `/grid`, nothing else). Its
//! cache is named after the build: the placeholder `__YIWANG_BUILD__` in
//! `assets/web/sw.js` becomes the crate version and the git revision that
//! `yiwang_build_info` reports, so a new build installs a new worker, which fills a
//! new cache and drops the old ones.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{CSP, page_headers};

const SOURCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/sw.js"));

/// The build the worker's cache is named after: `0.1.0-1a2b3c4d5e6f`.
pub(super) fn build_id() -> String {
    let rev = crate::metrics::REVISION;
    let short = rev.get(..12).unwrap_or(rev);
    format!("{}-{short}", env!("CARGO_PKG_VERSION"))
}

/// The worker's text with the build filled in, and its strong ETag.
fn body() -> &'static (String, String) {
    static BODY: OnceLock<(String, String)> = OnceLock::new();
    BODY.get_or_init(|| {
        let text = SOURCE.replace("__YIWANG_BUILD__", &build_id());
        let h = Sha256::digest(text.as_bytes());
        let tag = format!("\"{}\"", hex::encode(&h[..12]));
        (text, tag)
    })
}

pub(super) async fn service_worker(headers: HeaderMap) -> Response {
    let (text, tag) = body();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        text.clone().into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    // The browser looks for a new worker on every visit; no-cache makes it ask.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    page_headers(h, CSP);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_is_named_after_the_build() {
        let (text, _) = body();
        assert!(!text.contains("__YIWANG_BUILD__"));
        assert!(text.contains(&build_id()));
        assert!(build_id().starts_with(env!("CARGO_PKG_VERSION")));
    }
}

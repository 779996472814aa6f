//! CORS for the read-only use of `/api/v1` by pages of other origins (a city's
//! dashboard on its own site), with the origins a city lists in `cors_origins`;
//! none by default, and then no CORS header at all on `/api/v1`; and for `/open311/`,
//! whose policy (any origin) is `http::open311::cors_layer`. The pages get none.
//!
//! Only reads: a `GET` (or `HEAD`) from a listed origin gets
//! `Access-Control-Allow-Origin`, and a preflight (`OPTIONS`) is answered for
//! `GET`/`HEAD` with the `Authorization` header (the bearer token), `If-None-Match`,
//! `Last-Event-ID` and `X-Request-Id`. Commands (`POST`) get no CORS header, so a
//! browser never sends one from another origin. No credentials: the token is a
//! header the page sets, never a cookie.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The origins `/api/v1` answers reads from (`--cors-origins`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub origins: Vec<String>,
}

/// One origin of `--cors-origins`: `scheme://host[:port]`, http or https, no path;
/// kept in lower case (as browsers send it). An empty one (`YIWANG_CORS_ORIGINS=`, a
/// trailing comma) is none, left out by `ServeArgs::edge`.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let o = s.trim().to_ascii_lowercase();
    if o.is_empty() {
        return Ok(o);
    }
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("{s:?} is not an origin: write it as https://host or http://host:port")
        })?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    if !host_ok || !port_ok {
        return Err(format!(
            "{s:?} is not an origin: scheme://host[:port] with no path (https://dashboard.example.gov)"
        ));
    }
    Ok(o)
}

/// The CORS layer of `/api/v1` for these settings; None when no origin is listed.
pub fn api_layer(settings: &Settings) -> Option<CorsLayer> {
    if settings.origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = settings
        .origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let reads = |parts: &Parts| match parts.method {
        Method::GET | Method::HEAD => true,
        Method::OPTIONS => parts
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| m == "GET" || m == "HEAD"),
        _ => false,
    };
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, parts| {
                reads(parts) && origins.iter().any(|o| o == origin)
            }))
            .allow_methods([Method::GET, Method::HEAD])
            .allow_headers([
                header::AUTHORIZATION,
                header::ACCEPT,
                header::IF_NONE_MATCH,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::ETAG,
                header::RETRY_AFTER,
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

/// The CORS layers by path: `/open311/`'s (any origin) and `/api/v1/`'s (the listed
/// origins, if any).
pub struct Layers {
    open311: CorsLayer,
    api: Option<CorsLayer>,
}

impl Layers {
    pub fn new(settings: &Settings) -> Layers {
        Layers {
            open311: super::open311::cors_layer(),
            api: api_layer(settings),
        }
    }
}

/// The middleware, before routing (so that a preflight `OPTIONS` is answered even
/// where the route has no such method): `/open311/` and `/api/v1/` requests through
/// their CORS layer; everything else (the pages) untouched.
pub async fn layer(State(layers): State<Arc<Layers>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let cors = if path.starts_with("/open311/") {
        Some(&layers.open311)
    } else if path.starts_with("/api/v1/") {
        layers.api.as_ref()
    } else {
        None
    };
    match cors {
        Some(cors) => match cors.layer(next).oneshot(req).await {
            Ok(r) => r.into_response(),
            Err(never) => match never {},
        },
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn origins_are_checked() {
        assert_eq!(
            parse_origin(" https://Dash.Example.gov ").as_deref(),
            Ok("https://dash.example.gov")
        );
        assert!(parse_origin("http://localhost:5173").is_ok());
        assert_eq!(parse_origin(" ").as_deref(), Ok(""));
        for bad in [
            "dash.example.gov",
            "https://dash.example.gov/",
            "https://x/path",
            "https://x:port",
            "ftp://x",
            "*",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}

//! `GET /api/v1/map`: what the pages' map (`assets/web/js/map.js`, Leaflet) draws
//! beside the tickets (issue 22, point 6): the tile server set with `serve
//! --map-tiles` (a URL template such as a government tile server's
//! `https://tiles.example.gov.cn/{z}/{x}/{y}.png`), and the units' boundaries the
//! organisation file gives. Without a tile server the map draws the points on a
//! plain background with those boundaries, so it works with no internet.
//!
//! The pages' Content-Security-Policy allows images from this origin only; with a
//! tile server, [`tile_csp`] adds its origin (and `data:`, the empty image Leaflet
//! puts in a removed tile) to `img-src` of the pages' answers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::sorted_json;
use crate::app::SharedApp;
use crate::auth::Actor;
use crate::error::AppError;
use crate::org::UnitKind;

/// The map's settings (`serve --map-tiles`).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The tile URL template, checked by [`parse_tiles`]; None: no tiles.
    pub tiles: Option<String>,
}

/// Checks a tile URL template (`--map-tiles`, `YIWANG_MAP_TILES`): an `https://`,
/// `http://` or same-origin (`/…`) URL with `{z}`, `{x}` and `{y}` (and optionally
/// `{s}` in the host, Leaflet's subdomains), without spaces, quotes, `;` or `,`
/// (it goes into the pages' Content-Security-Policy).
pub fn parse_tiles(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    if !(s.starts_with("https://") || s.starts_with("http://") || s.starts_with('/')) {
        return Err("a tile URL template starts with https://, http:// or / (this origin)".into());
    }
    if s.starts_with("//") {
        return Err("give the scheme: https://host/…".into());
    }
    for p in ["{z}", "{x}", "{y}"] {
        if !s.contains(p) {
            return Err(format!(
                "a tile URL template names {p}, e.g. https://tiles.example.gov.cn/{{z}}/{{x}}/{{y}}.png"
            ));
        }
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ';' | ',' | '\'' | '"'))
    {
        return Err("a tile URL template has no spaces, quotes, `;` or `,`".into());
    }
    Ok(s.to_string())
}

/// The CSP source of the template's host: `https://host:port`, `{s}.` as `*.`; None
/// for this origin.
fn tile_origin(template: &str) -> Option<String> {
    let (scheme, rest) = template.split_once("://")?;
    let host = rest.split('/').next().unwrap_or("");
    let host = host
        .strip_prefix("{s}.")
        .map_or_else(|| host.to_string(), |h| format!("*.{h}"));
    Some(format!("{scheme}://{host}"))
}

/// A middleware: with a tile server, the pages' policy ([`crate::web::CSP`]) lets
/// their images come from it. Other answers pass unchanged.
pub async fn tile_csp(
    State(csp): State<Arc<Option<HeaderValue>>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    if let Some(wide) = csp.as_ref() {
        let h = resp.headers_mut();
        if h.get(header::CONTENT_SECURITY_POLICY)
            .is_some_and(|v| v.as_bytes() == crate::web::CSP.as_bytes())
        {
            h.insert(header::CONTENT_SECURITY_POLICY, wide.clone());
        }
    }
    resp
}

/// The state of [`tile_csp`]: the pages' policy with the tile server's images, or
/// None without one.
pub fn tile_csp_state(settings: &Settings) -> Arc<Option<HeaderValue>> {
    let wide = settings
        .tiles
        .as_deref()
        .filter(|t| !t.is_empty())
        .and_then(|t| {
            let mut extra = "data:".to_string();
            if let Some(o) = tile_origin(t) {
                extra = format!("{extra} {o}");
            }
            let csp = crate::web::CSP.replacen(
                "img-src 'self' blob:",
                &format!("img-src 'self' blob: {extra}"),
                1,
            );
            HeaderValue::from_str(&csp).ok()
        });
    Arc::new(wide)
}

pub fn router(settings: &Settings) -> Router<SharedApp> {
    let tiles: Arc<Option<String>> = Arc::new(settings.tiles.clone().filter(|t| !t.is_empty()));
    Router::new().route(
        "/api/v1/map",
        get(move |app: State<SharedApp>, actor: Actor| map(app, actor, tiles.clone())),
    )
}

/// What the map draws beside the tickets.
#[derive(Serialize, ToSchema)]
pub struct MapConfig {
    /// The tile URL template (`{z}/{x}/{y}`, maybe `{s}`); null: no tiles, a plain
    /// background.
    tiles: Option<String>,
    /// The units whose boundary the organisation file gives, in its order.
    boundaries: Vec<Boundary>,
}

/// One unit's area.
#[derive(Serialize, ToSchema)]
pub struct Boundary {
    unit: String,
    name: String,
    kind: UnitKind,
    /// A GeoJSON geometry, `Polygon` or `MultiPolygon`, positions `[lon, lat]`.
    #[schema(value_type = Object)]
    geometry: Value,
}

#[utoipa::path(
    get, path = "/api/v1/map", tag = "organisation",
    summary = "The map's tiles and the units' boundaries",
    description = "The tile URL template set with `serve --map-tiles` (null: none) and \
        the boundaries of the units the organisation file gives one (grids, communities).",
    responses((status = 200, description = "The map's settings", body = MapConfig))
)]
async fn map(
    State(app): State<SharedApp>,
    _actor: Actor,
    tiles: Arc<Option<String>>,
) -> Result<axum::Json<Value>, AppError> {
    let org = app.org.get();
    let boundaries = org
        .units()
        .iter()
        .filter_map(|u| {
            u.boundary.as_ref().map(|b| Boundary {
                unit: u.code.clone(),
                name: u.name.clone(),
                kind: u.kind,
                geometry: b.clone(),
            })
        })
        .collect();
    sorted_json(&MapConfig {
        tiles: tiles.as_ref().clone(),
        boundaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_templates_are_checked() {
        let ok = "https://{s}.tiles.example.gov.cn:8443/wmts/{z}/{x}/{y}.png";
        assert_eq!(parse_tiles(ok).as_deref(), Ok(ok));
        assert_eq!(
            tile_origin(ok).as_deref(),
            Some("https://*.tiles.example.gov.cn:8443")
        );
        assert_eq!(tile_origin("/tiles/{z}/{x}/{y}.png"), None);
        assert!(parse_tiles("/tiles/{z}/{x}/{y}.png").is_ok());
        assert!(parse_tiles("ftp://a/{z}/{x}/{y}").is_err());
        assert!(parse_tiles("https://a/{z}/{x}.png").is_err());
        assert!(parse_tiles("https://a/{z}/{x}/{y}.png; script-src *").is_err());
        assert!(parse_tiles("//a/{z}/{x}/{y}.png").is_err());
        let csp = tile_csp_state(&Settings {
            tiles: Some(ok.to_string()),
        });
        let csp = csp
            .as_ref()
            .as_ref()
            .map(|v| v.to_str().unwrap_or("").to_string());
        assert!(csp.is_some_and(|c| {
            c.contains("img-src 'self' blob: data: https://*.tiles.example.gov.cn:8443;")
        }));
    }
}

//! The web dashboard at `/`: one HTML page, a stylesheet and a script, compiled into the binary (no CDN, no
//! build step), and `GET /api/v1/devices.geojson` for its map. The page asks the API with a read token taken
//! from the URL fragment (`/#token=…`, never sent to the server in the URL) or typed in, kept in the browser.
//! The map's street tiles, if configured (`[dashboard.tiles]`), are written into the page and admitted by its
//! Content-Security-Policy, and by nothing else.
mod tiles;

pub use tiles::{DashboardConfig, TileGrid, TileSource, TileUrl, TileUrlError};

use crate::auth::Principal;
use crate::{AppState, Error};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Assets may change with every release: revalidate rather than cache for long.
const CACHE: &str = "no-cache";

#[utoipa::path(
    get,
    path = "/",
    operation_id = "dashboard",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "dashboard",
    summary = "The web dashboard (HTML)",
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
    ),
)]
pub(crate) async fn index(State(state): State<AppState>) -> impl IntoResponse {
    let tiles = state.dashboard.tiles.as_ref();
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CACHE_CONTROL, CACHE.to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp(tiles)),
        ],
        page(tiles),
    )
}

/// The page's own script, style and API only; images also from the tile source's origin when one is set.
fn csp(tiles: Option<&TileSource>) -> String {
    let tile_origin = tiles
        .map(|t| format!(" {}", t.url.origin()))
        .unwrap_or_default();
    format!("default-src 'self'; img-src 'self' data:{tile_origin}; frame-ancestors 'none'")
}

/// The page with the map's tile source in `#map`'s data attributes (empty: the plain background).
fn page(tiles: Option<&TileSource>) -> String {
    let (url, attribution, grid, max_zoom) = match tiles {
        Some(t) => (
            t.url.template(),
            t.attribution.as_str(),
            t.grid.as_str(),
            t.max_zoom.to_string(),
        ),
        None => ("", "", "", String::new()),
    };
    INDEX.replacen(
        "data-tiles=\"\"",
        &format!(
            "data-tiles=\"{}\" data-attribution=\"{}\" data-grid=\"{grid}\" data-max-zoom=\"{max_zoom}\"",
            escape(url),
            escape(attribution)
        ),
        1,
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[utoipa::path(
    get,
    path = "/assets/app.js",
    operation_id = "dashboard_js",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "dashboard",
    summary = "The dashboard's script",
    responses(
        (status = 200, description = "JavaScript", body = String, content_type = "text/javascript"),
    ),
)]
pub(crate) async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        APP_JS,
    )
}

#[utoipa::path(
    get,
    path = "/assets/app.css",
    operation_id = "dashboard_css",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "dashboard",
    summary = "The dashboard's stylesheet",
    responses(
        (status = 200, description = "CSS", body = String, content_type = "text/css"),
    ),
)]
pub(crate) async fn app_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        APP_CSS,
    )
}

/// Every device with a location as an RFC 7946 FeatureCollection (longitude first).
#[utoipa::path(
    get,
    path = "/api/v1/devices.geojson",
    operation_id = "devices_geojson",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "dashboard",
    summary = "Devices with a location as a GeoJSON FeatureCollection",
    responses(
        (status = 200, description = "RFC 7946 FeatureCollection (longitude first)", body = Value, content_type = "application/geo+json"),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn devices_geojson(
    State(state): State<AppState>,
    by: Principal,
) -> Result<impl IntoResponse, Error> {
    let devices = state.registry.devices().await?;
    let features: Vec<Value> = devices
        .iter()
        .filter(|d| by.sees_device(&d.id, &d.org))
        .filter_map(|d| {
            let l = d.location?;
            Some(json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [l.lon(), l.lat()]},
                "properties": {
                    "id": d.id, "name": d.name, "transport": d.transport, "domain": d.domain, "tags": d.tags,
                },
            }))
        })
        .collect();
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        axum::Json(json!({"type": "FeatureCollection", "features": features})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(attribution: &str) -> TileSource {
        TileSource {
            url: TileUrl::try_from("https://tiles.example:8443/{z}/{x}/{y}.png?a=1&b=2".to_owned())
                .unwrap(),
            attribution: attribution.to_owned(),
            grid: TileGrid::WebMercator,
            max_zoom: 18,
        }
    }

    #[test]
    fn the_policy_admits_the_tile_origin_and_nothing_else() {
        assert_eq!(
            csp(None),
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        );
        assert_eq!(
            csp(Some(&source("x"))),
            "default-src 'self'; img-src 'self' data: https://tiles.example:8443; frame-ancestors 'none'"
        );
    }

    #[test]
    fn the_tile_source_is_written_into_the_page_escaped() {
        let html = page(Some(&source("© \"Kort\" <b>&</b>")));
        assert!(html.contains(
            "data-tiles=\"https://tiles.example:8443/{z}/{x}/{y}.png?a=1&amp;b=2\" \
             data-attribution=\"© &quot;Kort&quot; &lt;b&gt;&amp;&lt;/b&gt;\" \
             data-grid=\"web-mercator\" data-max-zoom=\"18\""
        ));
        let plain = page(None);
        assert!(
            plain.contains("data-tiles=\"\" data-attribution=\"\""),
            "{plain}"
        );
    }
}

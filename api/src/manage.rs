//! The management pages at `/manage`: one HTML page, a stylesheet and a few plain-JavaScript modules (no
//! framework, no build step, no CDN), compiled into the binary. The page uses only the public API, signed in
//! either by a login session (`/auth/me`, its cookie and CSRF token) or by an API key the person pastes.
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("../assets/manage/index.html");

/// Every asset by its file name: (content type, text).
const ASSETS: [(&str, &str, &str); 8] = [
    (
        "manage.css",
        "text/css",
        include_str!("../assets/manage/manage.css"),
    ),
    ("app.js", JS, include_str!("../assets/manage/app.js")),
    ("api.js", JS, include_str!("../assets/manage/api.js")),
    ("ui.js", JS, include_str!("../assets/manage/ui.js")),
    (
        "devices.js",
        JS,
        include_str!("../assets/manage/devices.js"),
    ),
    (
        "onboard.js",
        JS,
        include_str!("../assets/manage/onboard.js"),
    ),
    ("admin.js", JS, include_str!("../assets/manage/admin.js")),
    ("alerts.js", JS, include_str!("../assets/manage/alerts.js")),
];
const JS: &str = "text/javascript";

/// Assets may change with every release: revalidate rather than cache for long.
const CACHE: &str = "no-cache";

#[utoipa::path(
    get,
    path = "/manage",
    operation_id = "manage",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "manage",
    summary = "The management pages (HTML): devices, onboarding, codecs, gateways, alerts, keys, members",
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
    ),
)]
pub(crate) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
            // The page's own script and style only: nothing from elsewhere runs or loads.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        PAGE,
    )
}

#[utoipa::path(
    get,
    path = "/manage/assets/{file}",
    operation_id = "manage_asset",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "manage",
    summary = "A script or stylesheet of the management pages",
    params(("file" = String, Path, description = "File name, e.g. `app.js`")),
    responses(
        (status = 200, description = "JavaScript or CSS", body = String, content_type = "text/javascript"),
        (status = 404, description = "No such asset", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn asset(Path(file): Path<String>) -> Result<impl IntoResponse, crate::Error> {
    let (_, kind, text) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| crate::Error::NotFound {
            what: "asset",
            id: file.chars().take(64).collect(),
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, format!("{kind}; charset=utf-8")),
            (header::CACHE_CONTROL, CACHE.to_owned()),
        ],
        *text,
    ))
}

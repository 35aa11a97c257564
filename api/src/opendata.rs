//! The public side of open data (no token): the catalogs, each dataset's page of files, and the files.
//! Thin handlers: what is published, and how it renders, is `bydata_opendata`'s.
use crate::{AppState, Error};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bydata_opendata::PublishedFile;
use bydata_opendata::model::FileFormat;
use serde::Deserialize;
use serde_json::Value;

fn json_response(content_type: &'static str, doc: &Value) -> Response {
    let mut body = serde_json::to_vec_pretty(doc).unwrap_or_default();
    body.push(b'\n');
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct CatalogParams {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /opendata/catalog`: DCAT-AP-DK as JSON-LD, or Turtle with `?format=ttl` or `Accept: text/turtle`.
#[utoipa::path(
    get,
    path = "/opendata/catalog",
    operation_id = "opendata_catalog",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "opendata",
    summary = "The open-data catalog in DCAT-AP-DK (JSON-LD; Turtle with format=ttl)",
    params(("format" = Option<String>, Query, description = "`jsonld` (default) or `ttl`")),
    responses(
        (status = 200, description = "The catalog", body = Object),
        (status = 400, description = "An unknown format", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn catalog(
    State(state): State<AppState>,
    Query(params): Query<CatalogParams>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let (info, published) = state.opendata.catalog().await?;
    let turtle = match params.format.as_deref() {
        Some("ttl" | "turtle") => true,
        Some("jsonld" | "json-ld") | None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/turtle")),
        Some(other) => {
            return Err(Error::bad(
                "invalid_parameter",
                format!("format: {other:?} is not jsonld or ttl"),
            ));
        }
    };
    if turtle {
        let body = bydata_opendata::catalog_turtle(&info, &published);
        return Ok(([(header::CONTENT_TYPE, "text/turtle; charset=utf-8")], body).into_response());
    }
    Ok(json_response(
        "application/ld+json",
        &bydata_opendata::catalog_jsonld(&info, &published),
    ))
}

/// `GET /opendata/data.json`: the catalog in the shape Open Data DK harvests from OS2iot.
#[utoipa::path(
    get,
    path = "/opendata/data.json",
    operation_id = "opendata_data_json",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "opendata",
    summary = "The catalog as data.json (the shape Open Data DK harvests from OS2iot)",
    responses((status = 200, description = "The catalog", body = Object)),
)]
pub(crate) async fn data_json(State(state): State<AppState>) -> Result<Response, Error> {
    let (info, published) = state.opendata.catalog().await?;
    Ok(json_response(
        "application/json",
        &bydata_opendata::data_json(&info, &published),
    ))
}

/// A page: nothing but its own inline style may load or run.
fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Whether an `Accept` header ranks HTML above JSON (a browser's does; `q=0` refuses).
fn prefers_html(accept: &str) -> bool {
    let quality = |wanted: &str| -> f32 {
        accept
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let media = pieces.next()?.trim();
                if media != wanted {
                    return None;
                }
                let q = pieces
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
            .fold(0.0, f32::max)
    };
    let html = quality("text/html");
    html > 0.0 && html >= quality("application/json")
}

/// `GET /opendata`: the published datasets as a page for people.
#[utoipa::path(
    get,
    path = "/opendata",
    operation_id = "opendata_index",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "opendata",
    summary = "The published datasets as an HTML page",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)),
)]
pub(crate) async fn index(State(state): State<AppState>) -> Result<Response, Error> {
    let (info, published) = state.opendata.catalog().await?;
    Ok(html(bydata_opendata::index_page(&info, &published)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DatasetParams {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /opendata/datasets/{id}`: a dataset's metadata and every period's files, versions and checksums — as
/// JSON, or as a page when a browser asks for HTML (`?format=json` forces JSON).
#[utoipa::path(
    get,
    path = "/opendata/datasets/{id}",
    operation_id = "opendata_dataset",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "opendata",
    summary = "A published dataset: metadata, periods, versions, file URLs and SHA-256 checksums (JSON, or HTML for browsers)",
    params(
        ("id" = String, Path, description = "Dataset id"),
        ("format" = Option<String>, Query, description = "`json` or `html`; without it, the `Accept` header decides"),
    ),
    responses(
        (status = 200, description = "The dataset", content((Object = "application/json"), (String = "text/html"))),
        (status = 400, description = "An unknown format", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such published dataset", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn dataset(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<DatasetParams>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let wants_html = match params.format.as_deref() {
        Some("json") => false,
        Some("html") => true,
        Some(other) => {
            return Err(Error::bad(
                "invalid_parameter",
                format!("format: {other:?} is not json or html"),
            ));
        }
        None => prefers_html(
            headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
    };
    let not_found = || Error::NotFound {
        what: "published dataset",
        id: id.chars().take(64).collect(),
    };
    let doc = state
        .opendata
        .dataset_document(&id)
        .await?
        .ok_or_else(not_found)?;
    let mut response = if wants_html {
        html(bydata_opendata::dataset_page(
            &doc,
            state.opendata.base_url(),
        ))
    } else {
        json_response("application/json", &doc)
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// `GET /opendata/datasets/{id}/{period}/{file}`: a period's current file.
#[utoipa::path(
    get,
    path = "/opendata/datasets/{id}/{period}/{file}",
    operation_id = "opendata_file",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "opendata",
    summary = "A period's current file (the newest version, or the running period's file)",
    params(
        ("id" = String, Path, description = "Dataset id"),
        ("period" = String, Path, description = "`2026-03` or `2026`"),
        ("file" = String, Path, description = "`{id}_{period}.csv`, `.json` or `.geojson`"),
    ),
    responses(
        (status = 200, description = "The file; its SHA-256 is in the ETag"),
        (status = 404, description = "No such file", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn current_file(
    State(state): State<AppState>,
    Path((id, period, file)): Path<(String, String, String)>,
) -> Result<Response, Error> {
    serve(&state, &id, &period, None, &file).await
}

/// `GET /opendata/datasets/{id}/{period}/v{n}/{file}`: one version, never changed.
#[utoipa::path(
    get,
    path = "/opendata/datasets/{id}/{period}/{version}/{file}",
    operation_id = "opendata_file_version",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "opendata",
    summary = "One version of a period's file (immutable)",
    params(
        ("id" = String, Path, description = "Dataset id"),
        ("period" = String, Path, description = "`2026-03` or `2026`"),
        ("version" = String, Path, description = "`v1`, `v2`, …"),
        ("file" = String, Path, description = "`{id}_{period}.csv`, `.json` or `.geojson`"),
    ),
    responses(
        (status = 200, description = "The file; its SHA-256 is in the ETag"),
        (status = 404, description = "No such file", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn version_file(
    State(state): State<AppState>,
    Path((id, period, version, file)): Path<(String, String, String, String)>,
) -> Result<Response, Error> {
    let v = version
        .strip_prefix('v')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| version == format!("v{n}"))
        .ok_or_else(|| Error::NotFound {
            what: "file version",
            id: version.chars().take(16).collect(),
        })?;
    serve(&state, &id, &period, Some(v), &file).await
}

async fn serve(
    state: &AppState,
    id: &str,
    period: &str,
    version: Option<u32>,
    name: &str,
) -> Result<Response, Error> {
    let not_found = || Error::NotFound {
        what: "file",
        id: format!("{id}/{period}/{name}").chars().take(128).collect(),
    };
    let PublishedFile {
        path,
        format,
        record,
        immutable,
    } = state
        .opendata
        .file(id, period, version, name)
        .await?
        .ok_or_else(not_found)?;
    // Streamed: a month of a large dataset can be a hundred megabytes.
    // A running period's older files are pruned once a newer set is recorded: a request that looked up the
    // old set just before gets a 404, as if it had come a moment later.
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => {
            return Err(Error::Internal {
                message: format!("{}: {e}", path.display()),
            });
        }
    };
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    let h = response.headers_mut();
    let content_type = match format {
        FileFormat::Csv => "text/csv; charset=utf-8; header=present",
        other => other.media_type(),
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", record.sha256)) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(record.bytes));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=300"
        }),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok((StatusCode::OK, response).into_response())
}

#[cfg(test)]
mod tests {
    use super::prefers_html;

    #[test]
    fn browsers_get_pages_and_programs_get_json() {
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(prefers_html(firefox));
        assert!(!prefers_html(""));
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html("application/json"));
        assert!(!prefers_html("application/json, text/html;q=0"));
        assert!(!prefers_html("text/html;q=0.5, application/json"));
        assert!(prefers_html("application/json;q=0.5, text/html"));
    }
}

//! Every answer that is not a route's own — an unknown path (404), a method the path does not take (405),
//! and axum's plain-text rejections — in the one error shape `{"error": {"code", "message"}}`.
use crate::Error;
use axum::extract::Request;
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

/// The methods each route takes, from the OpenAPI document (a test keeps it equal to the router), with
/// `HEAD` wherever `GET` is (axum answers it).
static METHODS: LazyLock<Vec<(String, Vec<String>)>> = LazyLock::new(|| {
    let doc: serde_json::Value =
        serde_json::from_str(&crate::openapi::DOCUMENT).unwrap_or_default();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let mut methods: Vec<String> = item
            .as_object()
            .into_iter()
            .flatten()
            .map(|(m, _)| m.to_uppercase())
            .collect();
        if methods.iter().any(|m| m == "GET") {
            methods.push("HEAD".to_owned());
        }
        out.push((path.clone(), methods));
    }
    out
});

/// Whether `path` is an instance of the route `template` (`{x}` stands for one segment).
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// The router's fallback: no route has this path.
pub(crate) async fn no_route(uri: Uri) -> Error {
    Error::NoRoute {
        path: shown(uri.path()),
    }
}

/// A path cut short for the message (the path is the client's text).
fn shown(path: &str) -> String {
    path.chars().take(200).collect()
}

/// Rewrites what axum answers by itself (an empty 405 with `Allow`, a plain-text rejection) into our error
/// shape; answers already in JSON pass unchanged.
pub(crate) async fn in_our_shape(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), shown(request.uri().path()));
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // Every documented path the request fits: `/api/v1/codecs/test` is also `/api/v1/codecs/{name}`.
        let mut allowed: Vec<String> = METHODS
            .iter()
            .filter(|(template, _)| fits(template, &path))
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        allowed.extend(
            response
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty()),
        );
        allowed.sort();
        allowed.dedup();
        return Error::MethodNotAllowed {
            method: method.to_string(),
            path,
            allowed,
        }
        .into_response();
    }
    if status == StatusCode::NOT_FOUND {
        return Error::NoRoute { path }.into_response();
    }
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the body is larger than this endpoint accepts".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as JSON (Content-Type: application/json)".to_owned(),
        ),
        s if s.is_server_error() => (
            "internal",
            "internal error; the server log has the details".to_owned(),
        ),
        _ => ("invalid_request", words(&text)),
    };
    let mut answer = Error::bad(code, message).into_response();
    *answer.status_mut() = status;
    answer
}

/// axum's rejection texts, with their Rust prefix taken off.
fn words(text: &str) -> String {
    let text = text.trim();
    for prefix in [
        "Failed to deserialize query string: ",
        "Invalid URL: ",
        "Failed to deserialize the JSON body into the target type: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return format!("the request is not valid: {rest}");
        }
    }
    if text.is_empty() {
        "the request is not valid; see /api for what this endpoint takes".to_owned()
    } else {
        text.chars().take(500).collect()
    }
}

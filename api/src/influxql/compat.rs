//! What InfluxDB 1.x clients expect of `/query` around the handler, in one middleware that touches no other
//! path: their credentials (HTTP Basic with the key as password, as Grafana sends its data source's User and
//! Password, or `u`/`p` in the query string, as the Python client can) become the `Token` the API
//! authenticates, before the policy runs; and every error answer of this path (401, 403, 404, 405, 503, …)
//! takes InfluxDB's shape `{"error": "…"}` instead of bydata's `{"error": {"code", "message"}}`.
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use http_body_util::BodyExt;

/// The path InfluxDB 1.x clients query.
pub(crate) const PATH: &str = "/query";
/// Error bodies are small; anything larger is passed on as it is.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub(crate) async fn compat(mut request: Request, next: Next) -> Response {
    if request.uri().path() != PATH {
        return next.run(request).await;
    }
    if let Some(key) = key_of(&request)
        && let Ok(value) = HeaderValue::from_str(&format!("Token {key}"))
    {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let response = next.run(request).await;
    if response.status().is_success() {
        return response;
    }
    influx_shape(response).await
}

/// The key in InfluxDB 1.x credentials: Basic auth's password (its user name when the password is empty),
/// else the `p` parameter (or `u`). `None` when the request carries a bearer or token header, or nothing.
fn key_of(request: &Request) -> Option<String> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(auth) = authorization {
        let encoded = auth.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':').unwrap_or((&text, ""));
        let key = if password.is_empty() { user } else { password };
        return (!key.is_empty()).then(|| key.to_owned());
    }
    let axum::extract::Query(pairs) = axum::extract::Query::<
        std::collections::HashMap<String, String>,
    >::try_from_uri(request.uri())
    .ok()?;
    pairs
        .get("p")
        .filter(|p| !p.is_empty())
        .or_else(|| pairs.get("u").filter(|u| !u.is_empty()))
        .cloned()
}

/// `{"error": {"code", "message"}}` → `{"error": "message"}`, status and headers kept.
async fn influx_shape(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
    else {
        return Response::from_parts(parts, Body::from("{\"error\":\"the answer was cut\"}"));
    };
    let bytes = bytes.to_bytes();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    let Some(message) = message else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let body = serde_json::json!({ "error": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

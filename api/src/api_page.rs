//! `GET /api`: the API as a plain HTML page, rendered once from the OpenAPI document (no JavaScript, no CDN),
//! so it lists exactly what `/api/openapi.json` does.
use crate::openapi::DOCUMENT;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::LazyLock;

/// The API page.
#[utoipa::path(
    get,
    path = "/api",
    operation_id = "api_page",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "meta",
    summary = "This API as a readable HTML page",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String))
)]
pub(crate) async fn api_page() -> impl IntoResponse {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        let doc = serde_json::from_str(&DOCUMENT).unwrap_or(Value::Null);
        render(&doc)
    });
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        PAGE.as_str(),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The operations of `doc`, grouped by tag, with their parameters, body and responses.
fn render(doc: &Value) -> String {
    let text = |v: &Value| escape(v.as_str().unwrap_or(""));
    let mut by_tag: BTreeMap<String, Vec<(String, String, &Value)>> = BTreeMap::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "patch", "put", "delete"] {
                if let Some(op) = item.get(method) {
                    let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                    by_tag
                        .entry(tag)
                        .or_default()
                        .push((method.to_uppercase(), path.clone(), op));
                }
            }
        }
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} API</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}\
code{{background:#f2f2f2;padding:0 .2em}}.op{{border-top:1px solid #ddd;padding:.5rem 0}}\
.m{{display:inline-block;min-width:4.5em;font-weight:bold}}td,th{{text-align:left;padding:0 .6em 0 0;vertical-align:top}}</style>\
</head><body><h1>{title} API {version}</h1><p>{description}</p>\
<p>Machine-readable: <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a> (OpenAPI {openapi}).</p>\n",
        title = text(&doc["info"]["title"]),
        version = text(&doc["info"]["version"]),
        description = text(&doc["info"]["description"]),
        openapi = text(&doc["openapi"]),
    );
    for (tag, ops) in &by_tag {
        let _ = writeln!(out, "<h2 id=\"{0}\">{0}</h2>", escape(tag));
        for (method, path, op) in ops {
            let _ = write!(
                out,
                "<div class=\"op\"><span class=\"m\">{method}</span> <code>{}</code> — {}",
                escape(path),
                text(&op["summary"])
            );
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                out.push_str(" <small>(token)</small>");
            }
            if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                out.push_str("<table><tr><th>parameter</th><th>in</th><th></th></tr>");
                for p in params {
                    let _ = write!(
                        out,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                        text(&p["name"]),
                        if p["required"].as_bool() == Some(true) {
                            " (required)"
                        } else {
                            ""
                        },
                        text(&p["in"]),
                        text(&p["description"])
                    );
                }
                out.push_str("</table>");
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                let types: Vec<String> = content.keys().map(|k| escape(k)).collect();
                let _ = write!(out, "<br>Body: {}", types.join(", "));
            }
            if let Some(responses) = op["responses"].as_object() {
                let codes: Vec<String> = responses.keys().map(|k| escape(k)).collect();
                let _ = write!(out, "<br>Responses: {}", codes.join(", "));
            }
            out.push_str("</div>\n");
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::openapi::tests::{document, operations};

    #[tokio::test]
    async fn the_api_page_lists_every_operation() {
        let doc = document();
        let page = render(&doc);
        for (method, path) in operations(&doc) {
            assert!(
                page.contains(&format!("{method}</span> <code>{}</code>", escape(&path))),
                "{method} {path}"
            );
        }
        assert!(!page.contains("<script"));
    }
}

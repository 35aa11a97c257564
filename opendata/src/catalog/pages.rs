//! The open data as pages for people: `/opendata` lists the datasets, and `/opendata/datasets/{id}` asked for by
//! a browser shows one — metadata, licence, and every period's files with their SHA-256, current and older
//! versions. Server-rendered HTML in Danish and English, no JavaScript, nothing loaded from elsewhere; links
//! are relative to the page, so the pages work behind a proxy that serves bydata under a path prefix.
use crate::model::{CatalogInfo, PublishedDataset};
use serde_json::Value;
use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2a33;background:#f6f8f9}\
main{max-width:64rem;margin:0 auto;padding:1.5rem}h1{margin:.2rem 0}.en{color:#5b6b75}\
table{border-collapse:collapse;width:100%;background:#fff;table-layout:fixed}\
th:first-child,th:nth-child(2){width:8rem}td code{display:block;word-break:break-all}th,td{text-align:left;padding:.4rem .6rem;\
border-bottom:1px solid #dde3e7;vertical-align:top}code,small{font-size:.8rem;color:#5b6b75}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}\
section{background:#fff;padding:1rem;margin:1rem 0;border-radius:6px}a{color:#0b5394}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"da\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body><main>\n{body}</main></body></html>\n",
        escape(title)
    )
}

fn licence_link(spdx: &str) -> String {
    match spdx {
        "CC0-1.0" => {
            "<a href=\"https://creativecommons.org/publicdomain/zero/1.0/\">CC0 1.0</a>".into()
        }
        "CC-BY-4.0" => {
            "<a href=\"https://creativecommons.org/licenses/by/4.0/\">CC BY 4.0</a>".into()
        }
        other => escape(other),
    }
}

/// A published file's URL as a link relative to a dataset's page (`/…/opendata/datasets/{id}`): the catalog's
/// URLs carry the configured public address, which a proxy may serve under another.
fn from_dataset_page(url: &str, base_url: &str) -> String {
    match url.strip_prefix(&format!("{base_url}/opendata/datasets/")) {
        Some(rest) => rest.to_owned(),
        None => url.to_owned(),
    }
}

fn label(format: &str) -> &'static str {
    match format {
        "csv" => "CSV",
        "json" => "JSON",
        "geojson" => "GeoJSON",
        _ => "file",
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 10_000_000 => format!("{} MB", b / 1_000_000),
        b if b >= 10_000 => format!("{} kB", b / 1_000),
        b => format!("{b} B"),
    }
}

/// Links to the catalogs; `to_opendata` is the relative path from the page to `/opendata/`.
fn machine_readable(to_opendata: &str) -> String {
    format!(
        "<p>Maskinlæsbart katalog / machine-readable catalog: \
<a href=\"{to_opendata}catalog\">DCAT-AP-DK (JSON-LD)</a> · \
<a href=\"{to_opendata}catalog?format=ttl\">Turtle</a> · <a href=\"{to_opendata}data.json\">data.json</a></p>\n"
    )
}

/// `/opendata`: every published dataset.
pub fn index(info: &CatalogInfo, datasets: &[PublishedDataset]) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1 id=\"catalog\">{}</h1><p class=\"en\" lang=\"en\">{}</p>\n<p>{}</p>\n",
        escape(&info.title.da),
        escape(&info.title.en),
        escape(&info.description.da)
    );
    b.push_str(&machine_readable("opendata/"));
    if datasets.is_empty() {
        b.push_str(
            "<p id=\"empty\">Ingen datasæt er udgivet endnu. / No dataset is published yet.</p>\n",
        );
    }
    for d in datasets {
        let files = d.distributions.len();
        let periods = d
            .distributions
            .iter()
            .map(|x| x.period.as_str())
            .collect::<std::collections::BTreeSet<_>>();
        let _ = writeln!(
            b,
            "<section class=\"dataset\" id=\"dataset-{id}\"><h2><a href=\"opendata/datasets/{id}\">{}</a></h2>\
<p class=\"en\" lang=\"en\">{}</p><p>{}</p><p><small>{} · {} · {} perioder / periods · {files} filer / files · \
{}</small></p></section>",
            escape(&d.title.da),
            escape(&d.title.en),
            escape(&d.description.da),
            licence_link(&d.licence),
            escape(&d.update_frequency),
            periods.len(),
            escape(&d.themes.join(", ")),
            id = escape(&d.id),
        );
    }
    page(&info.title.da, &b)
}

/// `/opendata/datasets/{id}` for a browser, from the same document the JSON answer is.
pub fn dataset(doc: &Value, base_url: &str) -> String {
    let t = |v: &Value| escape(v.as_str().unwrap_or(""));
    let mut b = String::new();
    let _ = write!(
        b,
        "<p><a href=\"../../opendata\">← Alle datasæt / all datasets</a></p>\n<h1>{}</h1>\
<p class=\"en\" lang=\"en\">{}</p>\n<p>{}</p><p class=\"en\" lang=\"en\">{}</p>\n<dl>",
        t(&doc["title"]["da"]),
        t(&doc["title"]["en"]),
        t(&doc["description"]["da"]),
        t(&doc["description"]["en"]),
    );
    let mut row = |label: &str, value: String| {
        let _ = write!(b, "<dt>{label}</dt><dd>{value}</dd>");
    };
    row(
        "Licens / licence",
        format!(
            "<span id=\"licence\">{}</span>",
            licence_link(doc["licence"].as_str().unwrap_or(""))
        ),
    );
    row("Opdateres / updated", t(&doc["update_frequency"]));
    row(
        "Værdier / values",
        format!(
            "{} pr. / per {}{}",
            t(&doc["aggregation"]),
            t(&doc["every"]),
            doc["unit"]
                .as_str()
                .map(|u| format!(" ({})", escape(u)))
                .unwrap_or_default()
        ),
    );
    row("Udgiver / publisher", t(&doc["publisher"]["name"]));
    let contact = &doc["contact_point"];
    row(
        "Kontakt / contact",
        match contact["email"].as_str() {
            Some(e) => format!(
                "<a href=\"mailto:{}\">{}</a>",
                escape(e),
                t(&contact["name"])
            ),
            None => t(&contact["name"]),
        },
    );
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(escape)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    row("Temaer / themes", list(&doc["themes"]));
    row("Nøgleord / keywords", list(&doc["keywords"]));
    if let Some(s) = doc["spatial"].as_str() {
        row(
            "Sted / place",
            if s.starts_with("https://") || s.starts_with("http://") {
                format!("<a href=\"{0}\">{0}</a>", escape(s))
            } else {
                escape(s)
            },
        );
    }
    row(
        "Periode / time",
        format!(
            "{} – {}",
            t(&doc["temporal_start"]),
            doc["temporal_end"]
                .as_str()
                .map(escape)
                .unwrap_or_else(|| "…".into())
        ),
    );
    b.push_str("</dl>\n<h2>Filer / files</h2>\n<p><small>Hver periode har sin faste adresse (nyeste version) og \
en uforanderlig adresse pr. version. / Each period has a stable address (the newest version) and an immutable \
address per version. SHA-256 under hver fil / under each file.</small></p>\n<table id=\"files\"><thead><tr>\
<th>Periode / period</th><th>Status</th><th>CSV</th><th>JSON</th><th>GeoJSON</th></tr></thead><tbody>\n");
    for p in doc["periods"].as_array().into_iter().flatten() {
        let current = &p["current"];
        let status = match current["version"].as_u64() {
            Some(v) => format!("version {v}"),
            None => "løbende / running".into(),
        };
        let _ = write!(
            b,
            "<tr class=\"period\" id=\"period-{0}\"><td>{0}</td><td>{status}",
            t(&p["period"])
        );
        let older: Vec<String> = p["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["version"] != current["version"])
            .map(|v| {
                let links: Vec<String> = v["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        format!(
                            "<a href=\"{}\">{}</a>",
                            escape(&from_dataset_page(
                                f["url"].as_str().unwrap_or(""),
                                base_url
                            )),
                            label(f["format"].as_str().unwrap_or(""))
                        )
                    })
                    .collect();
                format!("v{}: {}", v["version"], links.join(" "))
            })
            .collect();
        if !older.is_empty() {
            let _ = write!(
                b,
                "<details><summary>Ældre / older</summary>{}</details>",
                older.join("<br>")
            );
        }
        b.push_str("</td>");
        for f in current["files"].as_array().into_iter().flatten() {
            let url = f["url"].as_str().unwrap_or("");
            let _ = write!(
                b,
                "<td><a class=\"file\" href=\"{}\">{}</a> <small>{}</small><code>{}</code></td>",
                escape(&from_dataset_page(url, base_url)),
                label(f["format"].as_str().unwrap_or("")),
                size(f["bytes"].as_u64().unwrap_or(0)),
                t(&f["sha256"])
            );
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</tbody></table>\n");
    b.push_str(&machine_readable("../"));
    let _ = writeln!(
        b,
        "<p><a href=\"{}?format=json\">Denne side som JSON / this page as JSON</a></p>",
        t(&doc["id"])
    );
    page(doc["title"]["da"].as_str().unwrap_or("Datasæt"), &b)
}

#[cfg(test)]
mod tests {
    use super::dataset;
    use serde_json::json;

    #[test]
    fn links_are_relative_to_the_page_and_values_escaped() {
        let doc = json!({
            "id": "a", "title": {"da": "<script>x</script>", "en": "t"},
            "description": {"da": "d", "en": "d"}, "licence": "CC0-1.0",
            "spatial": "javascript:alert(1)",
            "contact_point": {"name": "n", "email": "e@x.dk"},
            "periods": [{"period": "2026-03", "current": {"version": 1, "files": [
                {"format": "csv", "bytes": 10, "sha256": "ab",
                 "url": "https://x.dk/iot/opendata/datasets/a/2026-03/a_2026-03.csv"}]},
                "versions": [{"version": 1}]}],
        });
        let page = dataset(&doc, "https://x.dk/iot");
        assert!(page.contains("href=\"a/2026-03/a_2026-03.csv\""), "{page}");
        assert!(page.contains("href=\"../catalog\""));
        assert!(page.contains("href=\"../../opendata\""));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("href=\"javascript:"));
    }
}

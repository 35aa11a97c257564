//! A published dataset's own document (`/opendata/datasets/{id}`): its metadata and every period's files,
//! versions and checksums — served as JSON, and rendered as a page by `pages`.
use crate::manifest::{FileRecord, Manifest, file_name};
use crate::model::{FileFormat, PublishedDataset};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The dataset's document: its description without the distributions, its periods newest first, and the
/// catalog it belongs to.
pub(crate) fn dataset_document(d: &PublishedDataset, manifest: &Manifest, base_url: &str) -> Value {
    let periods: Vec<Value> = manifest
        .periods
        .iter()
        .rev()
        .map(|(period, r)| {
            let files = |version: Option<u32>, files: &BTreeMap<String, FileRecord>| {
                FileFormat::ALL
                    .into_iter()
                    .filter_map(|f| {
                        let rec = files.get(f.extension())?;
                        let name = file_name(&d.id, period, f);
                        let url = match version {
                            Some(v) => format!("{}/{period}/v{v}/{name}", d.landing_page),
                            None => format!("{}/{period}/{name}", d.landing_page),
                        };
                        Some(json!({
                            "format": f, "media_type": f.media_type(), "url": url,
                            "sha256": rec.sha256, "bytes": rec.bytes,
                        }))
                    })
                    .collect::<Vec<_>>()
            };
            json!({
                "period": period,
                "start": r.start,
                "end": r.end,
                "complete": !r.versions.is_empty(),
                "current": match (r.versions.last(), &r.running) {
                    (Some(v), _) => json!({"version": v.version, "issued": v.issued, "files": files(None, &v.files)}),
                    (None, Some(run)) => json!({"version": null, "issued": run.issued, "files": files(None, &run.files)}),
                    (None, None) => Value::Null,
                },
                "versions": r.versions.iter().map(|v| json!({
                    "version": v.version, "issued": v.issued, "files": files(Some(v.version), &v.files),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    // A plain struct of strings, numbers and lists: serialising it cannot fail.
    let mut doc = serde_json::to_value(d).unwrap_or(Value::Null);
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("distributions");
        obj.insert("periods".into(), json!(periods));
        obj.insert(
            "catalog".into(),
            json!(format!("{base_url}/opendata/catalog")),
        );
    }
    doc
}

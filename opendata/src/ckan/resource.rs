//! Resources, one per distribution: their fields, what differs from the site's, and the reconciliation
//! that creates, patches and deletes ours (never one added by hand).
use super::json::{items, same, text};
use super::names::{ckan_time, parse_ckan_time};
use super::report::{CkanError, PackageOutcome, PushReport};
use super::session::{Request, Session};
use crate::model::{Distribution, FileFormat};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use tracing::{debug, info};

const SPDX_SHA256: &str = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256";

fn format_label(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => "CSV",
        FileFormat::Json => "JSON",
        FileFormat::Geojson => "GeoJSON",
    }
}

/// The CKAN resource fields for one distribution; `bydata_key` identifies it on later pushes.
pub(super) fn resource_fields(
    dataset: &str,
    d: &Distribution,
) -> Result<Map<String, Value>, CkanError> {
    let label = format_label(d.format);
    let last_modified = ckan_time(&d.issued).ok_or_else(|| CkanError::Dataset {
        dataset: dataset.to_owned(),
        reason: format!(
            "{} {}: issued {:?} is not RFC 3339",
            d.period,
            d.format.extension(),
            d.issued
        ),
    })?;
    let (da_state, en_state) = if d.complete {
        ("afsluttet", "complete")
    } else {
        ("løbende, opdateres", "running, updated as data arrives")
    };
    let description = format!(
        "Periode {p} ({da_state}), version {v}. Denne versions faste adresse: {u}\n\n\
         Period {p} ({en_state}), version {v}. This version's immutable URL: {u}",
        p = d.period,
        v = d.version,
        u = d.download_url,
    );
    let fields = json!({
        "bydata_key": format!("{}.{}", d.period, d.format.extension()),
        "name": format!("{} ({label})", d.period),
        "url": d.access_url,
        "format": label,
        "mimetype": d.format.media_type(),
        "hash": d.sha256,
        "hash_algorithm": SPDX_SHA256,
        "size": d.byte_size,
        "description": description,
        "last_modified": last_modified,
        "download_url": d.download_url,
    });
    match fields {
        Value::Object(map) => Ok(map),
        _ => unreachable!("json! of an object literal"),
    }
}

/// The resource fields of `existing` that differ from `want`.
fn resource_patch(existing: &Value, want: &Map<String, Value>) -> Map<String, Value> {
    want.iter()
        .filter(|(key, value)| {
            let have = existing.get(key.as_str());
            if key.as_str() == "last_modified" {
                let parse = |v: Option<&Value>| v.and_then(Value::as_str).and_then(parse_ckan_time);
                parse(have).is_none() || parse(have) != parse(Some(value))
            } else {
                !same(have, value)
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A resource of `package` with our key that is not already claimed.
fn find_resource(package: &Value, key: &str, claimed: &HashSet<String>) -> Option<Value> {
    items(package, "resources")
        .iter()
        .find(|r| text(r, "bydata_key") == key && !claimed.contains(text(r, "id")))
        .cloned()
}

impl Session<'_> {
    /// Creates, patches and deletes resources so `package` holds exactly `wanted` plus resources not ours.
    pub(super) async fn reconcile(
        &mut self,
        package: &Value,
        name: &str,
        wanted: &[Map<String, Value>],
        report: &mut PushReport,
    ) -> Result<(), CkanError> {
        // Resources present right after we created the package are ones we just sent.
        let fresh = report.package == PackageOutcome::Created;
        let existing = items(package, "resources");
        let mut claimed: HashSet<String> = HashSet::new();
        for want in wanted {
            let key = want.get("bydata_key").and_then(Value::as_str).unwrap_or("");
            let url = want.get("url").and_then(Value::as_str).unwrap_or("");
            let unclaimed = |r: &&Value| !claimed.contains(text(r, "id"));
            let found = existing
                .iter()
                .filter(unclaimed)
                .find(|r| text(r, "bydata_key") == key)
                .or_else(|| {
                    existing
                        .iter()
                        .filter(unclaimed)
                        .find(|r| text(r, "bydata_key").is_empty() && text(r, "url") == url)
                });
            match found {
                Some(have) => {
                    let id = text(have, "id").to_owned();
                    claimed.insert(id.clone());
                    let mut patch = resource_patch(have, want);
                    if patch.is_empty() {
                        if fresh {
                            report.resources_created += 1;
                        } else {
                            report.resources_unchanged += 1;
                        }
                    } else {
                        debug!(resource = key, fields = ?patch.keys().collect::<Vec<_>>(), "patching CKAN resource");
                        patch.insert("id".into(), id.into());
                        self.call("resource_patch", Request::Post(&Value::Object(patch)))
                            .await?;
                        report.resources_updated += 1;
                    }
                }
                None => {
                    let mut body = want.clone();
                    body.insert("package_id".into(), report.package_id.clone().into());
                    let taken = claimed.clone();
                    let (created, _) = self
                        .create("resource_create", &Value::Object(body), name, |p| {
                            find_resource(p, key, &taken)
                        })
                        .await?;
                    debug!(resource = key, "created CKAN resource");
                    claimed.insert(text(&created, "id").to_owned());
                    report.resources_created += 1;
                }
            }
        }
        let stale = existing
            .iter()
            .filter(|r| !text(r, "bydata_key").is_empty() && !claimed.contains(text(r, "id")));
        for resource in stale {
            info!(
                resource = text(resource, "bydata_key"),
                "deleting CKAN resource no longer published"
            );
            let body = json!({ "id": text(resource, "id") });
            match self.call("resource_delete", Request::Post(&body)).await {
                Ok(_) | Err(CkanError::NotFound { .. }) => report.resources_deleted += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

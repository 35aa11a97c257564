//! The package as we want it on the site, the patch that makes an existing one match, and the check that it
//! is ours to change.
use super::json::{items, same, text};
use super::names::{license_id, tag_name};
use super::report::CkanError;
use crate::model::{Agent, PublishedDataset};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The extras this client owns on a package; any other extra is left as the portal has it.
const OWN_EXTRAS: [&str; 14] = [
    "bydata_id",
    "title_en",
    "notes_en",
    "theme",
    "frequency",
    "spatial_uri",
    "spatial_text",
    "temporal_start",
    "temporal_end",
    "issued",
    "modified",
    "publisher_uri",
    "contact_uri",
    "language",
];
const EU_THEME: &str = "http://publications.europa.eu/resource/authority/data-theme/";
const EU_FREQUENCY: &str = "http://publications.europa.eu/resource/authority/frequency/";

/// The package as we want it: core fields, tag names and our extras.
pub(super) struct WantedPackage {
    core: Map<String, Value>,
    owner_org: String,
    tags: BTreeSet<String>,
    extras: BTreeMap<String, String>,
}

impl WantedPackage {
    pub(super) fn new(
        ds: &PublishedDataset,
        name: &str,
        owner_org: &str,
    ) -> Result<Self, CkanError> {
        let licence = license_id(&ds.licence).ok_or_else(|| CkanError::Dataset {
            dataset: ds.id.clone(),
            reason: format!(
                "licence {:?} has no CKAN licence id (expected CC0-1.0 or CC-BY-4.0)",
                ds.licence
            ),
        })?;
        let notes = format!(
            "{}\n\n---\n\n*English:* **{}**\n\n{}",
            ds.description.da, ds.title.en, ds.description.en
        );
        let email = |a: &Agent| a.email.clone().unwrap_or_default();
        let core = json!({
            "name": name,
            "title": ds.title.da,
            "notes": notes,
            "license_id": licence,
            "url": ds.landing_page,
            "maintainer": ds.contact_point.name,
            "maintainer_email": email(&ds.contact_point),
            "author": ds.publisher.name,
            "author_email": email(&ds.publisher),
            "private": false,
        });
        let Value::Object(core) = core else {
            unreachable!("json! of an object literal")
        };

        let mut extras = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            extras.insert(k.to_owned(), v);
        };
        put("bydata_id", ds.id.clone());
        put("title_en", ds.title.en.clone());
        put("notes_en", ds.description.en.clone());
        put(
            "frequency",
            format!("{EU_FREQUENCY}{}", ds.update_frequency),
        );
        put("issued", ds.issued.clone());
        put("modified", ds.modified.clone());
        put("language", r#"["da","en"]"#.into());
        if !ds.themes.is_empty() {
            let uris: Vec<String> = ds.themes.iter().map(|t| format!("{EU_THEME}{t}")).collect();
            put("theme", Value::from(uris).to_string());
        }
        match &ds.spatial {
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => {
                put("spatial_uri", s.clone())
            }
            Some(s) => put("spatial_text", s.clone()),
            None => {}
        }
        if let Some(t) = &ds.temporal_start {
            put("temporal_start", t.clone());
        }
        if let Some(t) = &ds.temporal_end {
            put("temporal_end", t.clone());
        }
        if let Some(u) = &ds.publisher.uri {
            put("publisher_uri", u.clone());
        }
        if let Some(u) = &ds.contact_point.uri {
            put("contact_uri", u.clone());
        }
        Ok(Self {
            core,
            owner_org: owner_org.to_owned(),
            tags: ds.keywords.iter().filter_map(|k| tag_name(k)).collect(),
            extras,
        })
    }

    fn tags_value(&self) -> Value {
        self.tags.iter().map(|t| json!({ "name": t })).collect()
    }

    pub(super) fn create_body(&self) -> Map<String, Value> {
        let mut body = self.core.clone();
        body.insert("owner_org".into(), self.owner_org.clone().into());
        body.insert("tags".into(), self.tags_value());
        let extras = self
            .extras
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        body.insert("extras".into(), Value::Array(extras));
        body
    }

    /// The fields of `existing` that differ from what we want, with our values; empty when all agree.
    pub(super) fn patch_for(&self, existing: &Value) -> Map<String, Value> {
        let mut patch = Map::new();
        for (key, want) in &self.core {
            if key != "name" && !same(existing.get(key), want) {
                patch.insert(key.clone(), want.clone());
            }
        }
        // CKAN answers with the organisation's id in `owner_org`; we may have been given its name.
        let org = existing.get("organization");
        let org_matches = [
            existing.get("owner_org"),
            org.and_then(|o| o.get("name")),
            org.and_then(|o| o.get("id")),
        ]
        .into_iter()
        .flatten()
        .any(|v| v.as_str() == Some(self.owner_org.as_str()));
        if !org_matches {
            patch.insert("owner_org".into(), self.owner_org.clone().into());
        }
        if existing
            .get("state")
            .and_then(Value::as_str)
            .is_some_and(|s| s != "active")
        {
            patch.insert("state".into(), "active".into());
        }
        let have_tags: BTreeSet<String> = items(existing, "tags")
            .iter()
            .map(|t| text(t, "name").to_owned())
            .collect();
        if have_tags != self.tags {
            patch.insert("tags".into(), self.tags_value());
        }
        let have_extras = items(existing, "extras");
        let have_own: BTreeMap<String, String> = have_extras
            .iter()
            .filter(|e| OWN_EXTRAS.contains(&text(e, "key")))
            .map(|e| (text(e, "key").to_owned(), text(e, "value").to_owned()))
            .collect();
        if have_own != self.extras {
            let mut merged: Vec<Value> = have_extras
                .iter()
                .filter(|e| !OWN_EXTRAS.contains(&text(e, "key")))
                .cloned()
                .collect();
            merged.extend(
                self.extras
                    .iter()
                    .map(|(k, v)| json!({ "key": k, "value": v })),
            );
            patch.insert("extras".into(), Value::Array(merged));
        }
        patch
    }
}

/// Refuses to take over a package made for another bydata dataset (ids that map to the same name).
pub(super) fn check_owner(
    existing: &Value,
    dataset: &PublishedDataset,
    name: &str,
) -> Result<(), CkanError> {
    let other = items(existing, "extras")
        .iter()
        .find(|e| text(e, "key") == "bydata_id")
        .map(|e| text(e, "value").to_owned());
    match other {
        Some(other) if other != dataset.id => Err(CkanError::NameTaken {
            name: name.to_owned(),
            dataset: dataset.id.clone(),
            other,
        }),
        _ => Ok(()),
    }
}

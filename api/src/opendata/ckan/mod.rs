//! CKAN push: publish one [`PublishedDataset`] to a CKAN site (Open Data DK runs CKAN 2.11) through the
//! Action API, idempotently: a second push of the same dataset only reads.
//!
//! [`Ckan::push`] reads the package (`package_show`), creates it with all its resources inline when missing
//! (one request, so a half-created package never exists), otherwise patches only the package fields that
//! differ (`package_patch`), then reconciles resources one per [`Distribution`]: `resource_create` for missing
//! ones, `resource_patch` for changed ones, `resource_delete` for resources *we* created (they carry a
//! `bydata_key`) whose distribution is gone; resources added by hand (no `bydata_key`) are never touched.
//!
//! Requests are retried on connect errors, timeouts, HTTP 5xx and 429 (honouring `Retry-After`), never on
//! other 4xx. A create whose response is lost is not simply re-sent: `package_show` first checks whether it
//! happened, so a retry never duplicates a resource.
//!
//! Decisions, and the documents behind them:
//! - Names: [`package_name`] is the dataset id itself (`.` becomes `-`), no `bydata-` prefix, so the portal URL
//!   reads like ours. Two ids differing only in `.`/`-` would collide; the `bydata_id` extra detects that
//!   ([`CkanError::NameTaken`]) instead of overwriting the other dataset.
//! - Licences: CKAN's default licence list (`ckan/model/license.py`): `CC0-1.0` → `cc-zero`, `CC-BY-4.0` →
//!   `cc-by` (the default list has no versioned CC-BY). A site with its own list needs the same ids.
//! - Extras use ckanext-dcat's key names (`frequency`, `theme` as a JSON list of URIs, `temporal_start`,
//!   `spatial_uri`, `issued`, …; `ckanext/dcat/profiles/euro_dcat_ap_base.py`) so a DCAT export of the portal
//!   maps them; other extras on the package are kept when we patch ours.
//! - Resource `hash` is the bare hex digest with `hash_algorithm` = the SPDX sha256 URI: core CKAN treats
//!   `hash` as free text, and ckanext-dcat exports the pair as `spdx:checksum`.
//! - `last_modified` is sent as naive UTC `YYYY-MM-DDTHH:MM:SS`: CKAN stores it in a `timestamp without
//!   time zone` column and returns `datetime.isoformat()` of it, so that form compares equal on the next push.
//! - Authorization: the raw API token in the `Authorization` header (CKAN 2.10+ tokens).
//!
//! Sources: the CKAN 2.11 API guide <https://docs.ckan.org/en/2.11/api/> (request/response envelope,
//! `Authorization` header, `ckan.logic.action.create.package_create`/`resource_create`,
//! `ckan.logic.action.patch.package_patch`/`resource_patch`, `ckan.logic.action.delete.resource_delete`), and
//! the ckan-2.11.5 source: `ckan/views/api.py` (error `__type` ↔ HTTP 403/404/409), `ckan/logic/schema.py`
//! (`default_resource_schema` keeps extra keys, `isodate` fields), `ckan/logic/validators.py`
//! (`name_validator`, `tag_name_validator`), `ckan/model/license.py`.
//!
//! Files: `config` (target and retry policy), `report` (what a push reports, or why it failed), `names`
//! (CKAN's spellings of names, tags, licences and times), `package` and `resource` (what we want on the site
//! and how it differs from what is there), `session` (one push's requests, retries and answers), `json`.
//!
//! [`Distribution`]: super::model::Distribution
mod config;
mod json;
mod names;
mod package;
mod report;
mod resource;
mod session;

pub use config::{CkanTarget, RetryPolicy};
pub use names::{license_id, package_name};
pub use report::{CkanError, PackageOutcome, PushReport};

use super::model::PublishedDataset;
use json::{items, text};
use package::{WantedPackage, check_owner};
use reqwest::header::HeaderValue;
use resource::resource_fields;
use serde_json::Value;
use session::{Request, Session};
use std::time::Duration;
use tracing::info;

/// A CKAN Action API client for one site.
#[derive(Debug, Clone)]
pub struct Ckan {
    http: reqwest::Client,
    target: CkanTarget,
    auth: HeaderValue,
    retry: RetryPolicy,
    timeout: Duration,
}

impl Ckan {
    /// A client with the default retry policy and a 30 s per-request timeout.
    pub fn new(target: CkanTarget) -> Result<Self, CkanError> {
        let mut auth =
            HeaderValue::from_str(target.token.trim()).map_err(|_| CkanError::Config {
                reason: "the API token is not a valid header value".into(),
            })?;
        auth.set_sensitive(true);
        if !(target.url.starts_with("http://") || target.url.starts_with("https://")) {
            return Err(CkanError::Config {
                reason: format!("url {:?} is not http(s)", target.url),
            });
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("bydata/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CkanError::Config {
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            target,
            auth,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The limit on each HTTP request (connect to last byte).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the site's package for `dataset` match it; see the module docs for the steps.
    #[tracing::instrument(skip_all, fields(dataset = %dataset.id))]
    pub async fn push(&self, dataset: &PublishedDataset) -> Result<PushReport, CkanError> {
        let name = package_name(&dataset.id);
        let wanted = WantedPackage::new(dataset, &name, &self.target.owner_org)?;
        let resources = dataset
            .distributions
            .iter()
            .map(|d| resource_fields(&dataset.id, d))
            .collect::<Result<Vec<_>, _>>()?;
        let mut session = Session {
            ckan: self,
            requests: 0,
        };

        let (package, outcome) = match session.show(&name).await? {
            None => {
                let mut body = wanted.create_body();
                let list = resources.iter().cloned().map(Value::Object).collect();
                body.insert("resources".into(), Value::Array(list));
                let (package, recovered) = session
                    .create("package_create", &Value::Object(body), &name, |p| {
                        Some(p.clone())
                    })
                    .await?;
                info!(package = %name, recovered, "created CKAN package");
                (package, PackageOutcome::Created)
            }
            Some(existing) => {
                check_owner(&existing, dataset, &name)?;
                let mut patch = wanted.patch_for(&existing);
                if patch.is_empty() {
                    (existing, PackageOutcome::Unchanged)
                } else {
                    info!(package = %name, fields = ?patch.keys().collect::<Vec<_>>(), "patching CKAN package");
                    patch.insert(
                        "id".into(),
                        existing.get("id").cloned().unwrap_or(Value::Null),
                    );
                    let updated = session
                        .call("package_patch", Request::Post(&Value::Object(patch)))
                        .await?;
                    (updated, PackageOutcome::Updated)
                }
            }
        };
        let package_id = text(&package, "id").to_owned();
        if package_id.is_empty() {
            let action = match outcome {
                PackageOutcome::Created => "package_create",
                PackageOutcome::Updated => "package_patch",
                PackageOutcome::Unchanged => "package_show",
            };
            return Err(CkanError::Protocol {
                action,
                status: 200,
                detail: "the package has no id".into(),
            });
        }
        let mut report = PushReport {
            package: outcome,
            package_id,
            resources_created: 0,
            resources_updated: 0,
            resources_unchanged: 0,
            resources_deleted: 0,
            attempts: 0,
        };
        session
            .reconcile(&package, &name, &resources, &mut report)
            .await?;
        report.attempts = session.requests;
        info!(
            package = %name,
            outcome = ?report.package,
            created = report.resources_created,
            updated = report.resources_updated,
            unchanged = report.resources_unchanged,
            deleted = report.resources_deleted,
            requests = report.attempts,
            "pushed dataset to CKAN"
        );
        Ok(report)
    }
}

impl Ckan {
    /// Withdraws a deleted dataset: `package_delete` of its package (CKAN moves it to the trash; its page and
    /// resources are no longer public). Only a package bydata made for this dataset (its `bydata_id` extra) is
    /// touched. `Ok(false)` when there is none.
    #[tracing::instrument(skip_all, fields(dataset = %dataset_id))]
    pub async fn withdraw(&self, dataset_id: &str) -> Result<bool, CkanError> {
        let name = package_name(dataset_id);
        let mut session = Session {
            ckan: self,
            requests: 0,
        };
        let Some(existing) = session.show(&name).await? else {
            return Ok(false);
        };
        let owner = items(&existing, "extras")
            .iter()
            .find(|e| text(e, "key") == "bydata_id")
            .map(|e| text(e, "value").to_owned());
        if owner.as_deref() != Some(dataset_id) {
            return Err(CkanError::NameTaken {
                name,
                dataset: dataset_id.to_owned(),
                other: owner.unwrap_or_default(),
            });
        }
        let id = existing.get("id").cloned().unwrap_or(Value::Null);
        session
            .call(
                "package_delete",
                Request::Post(&serde_json::json!({ "id": id })),
            )
            .await?;
        info!(package = %name, "withdrew CKAN package");
        Ok(true)
    }
}

impl Ckan {
    /// The message with the token blanked, in case a server echoes it.
    fn redact(&self, message: &str) -> String {
        let token = self.target.token.trim();
        if token.len() >= 4 {
            message.replace(token, "<redacted>")
        } else {
            message.to_owned()
        }
    }
}

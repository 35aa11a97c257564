//! A push (make the site's package match a published dataset) and a withdrawal (delete the package of a
//! deleted dataset); the steps are in the module docs of `ckan`.
use super::client::Ckan;
use super::json::{items, text};
use super::names::package_name;
use super::package::{WantedPackage, check_owner};
use super::report::{CkanError, PackageOutcome, PushReport};
use super::resource::resource_fields;
use super::session::{Request, Session};
use crate::model::PublishedDataset;
use serde_json::Value;
use tracing::info;

impl Ckan {
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

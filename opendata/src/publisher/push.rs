//! The CKAN push after a run: whether one is due, one at a time per dataset, and its status in the manifest.
use super::core::Publisher;
use crate::catalog::describe::describe;
use crate::definition::Dataset;
use crate::error::Result;
use crate::manifest::CkanStatus;

impl Publisher {
    /// Pushes to CKAN when the dataset asks for it and something changed or the last push failed. One push
    /// per dataset at a time, each describing the manifest as it is then (so an older run's push can never
    /// land last); the status is written under the dataset's lock, and not at all if it was deleted meanwhile.
    pub(super) async fn push_if_wanted(
        &self,
        stored: &Dataset,
        changed: bool,
    ) -> Result<Option<CkanStatus>> {
        if !stored.definition.ckan {
            return Ok(None);
        }
        let push_lock = self.push_lock(&stored.id);
        let _pushing = push_lock.lock().await;
        let previous = self.archive.manifest(&stored.id)?;
        let at = previous
            .last_run
            .as_ref()
            .map(|r| r.at.clone())
            .unwrap_or_default();
        let status = match &self.ckan {
            None => CkanStatus {
                at,
                ok: false,
                error: Some(
                    "no CKAN site configured: set [opendata.ckan] url and organization, and BYDATA_CKAN_TOKEN".into(),
                ),
                report: None,
            },
            Some(_) if !changed && previous.ckan.as_ref().is_some_and(|c| c.ok) => {
                return Ok(previous.ckan);
            }
            Some(ckan) => {
                let published = describe(&self.base_url, stored, &previous);
                match ckan.push(&published).await {
                    Ok(report) => {
                        tracing::info!(dataset = %stored.id, "pushed to CKAN");
                        CkanStatus {
                            at,
                            ok: true,
                            error: None,
                            report: serde_json::to_value(&report).ok(),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(dataset = %stored.id, error = %e, "CKAN push failed; retried at the next run");
                        CkanStatus {
                            at,
                            ok: false,
                            error: Some(e.to_string()),
                            report: None,
                        }
                    }
                }
            }
        };
        let lock = self.lock(&stored.id);
        let _guard = lock.lock().await;
        if !self.still_defined(stored).await? {
            return Ok(Some(status));
        }
        let mut manifest = self.archive.manifest(&stored.id)?;
        manifest.ckan = Some(status.clone());
        self.save_manifest(&stored.id, manifest).await?;
        Ok(Some(status))
    }
}

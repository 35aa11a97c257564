//! Withdrawing a deleted dataset: its files go, and its CKAN package when it was pushed there.
use super::core::Publisher;
use crate::definition::Dataset;
use crate::error::{Result, blocking};
use bydata_store::StoredDataset;

impl Publisher {
    /// Withdraws a deleted dataset (already gone from the registry): removes its files — deleting is how a
    /// publication is withdrawn, and a dataset defined later under the same id starts afresh — and, when it
    /// was pushed to CKAN, deletes its package there (logged if the site cannot be reached).
    pub async fn remove(&self, stored: &StoredDataset) -> Result<()> {
        let id = &stored.id;
        {
            let lock = self.lock(id);
            let _guard = lock.lock().await;
            let (archive, wanted) = (self.archive.clone(), id.clone());
            blocking(move || archive.remove(&wanted)).await?;
        }
        // An unreadable definition was never pushed: nothing to withdraw there.
        let wanted_ckan = Dataset::parse(stored).is_ok_and(|d| d.definition.ckan);
        if let (true, Some(ckan)) = (wanted_ckan, &self.ckan) {
            let push_lock = self.push_lock(id);
            let _pushing = push_lock.lock().await;
            match ckan.withdraw(id).await {
                Ok(found) => tracing::info!(dataset = %id, found, "withdrawn from CKAN"),
                Err(e) => {
                    tracing::warn!(dataset = %id, error = %e, "could not withdraw the dataset from CKAN; delete its package there by hand")
                }
            }
        }
        self.forget(id);
        Ok(())
    }
}

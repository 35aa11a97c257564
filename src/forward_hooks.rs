//! The seam between the API and the forwarder of data targets (`bydata-forward`): the API stores targets
//! in the registry and asks the forwarder for what only it knows or does.
use bydata_api::{HookFuture, TargetHooks};
use bydata_forward::Forwarder;
use bydata_schemas::TargetId;
use bydata_store::{Target, TargetDelivery, TargetSecrets, TargetStatus};
use std::sync::Arc;

pub(crate) struct ForwardHooks(pub(crate) Arc<Forwarder>);

impl TargetHooks for ForwardHooks {
    fn check(&self, target: &Target, secrets: &TargetSecrets) -> Result<(), String> {
        bydata_forward::check_settings(target, secrets)
    }
    fn journal_end(&self) -> u64 {
        self.0.journal_end()
    }
    fn changed(&self, id: &TargetId, replay: bool) {
        self.0.reload();
        self.0.kick(id, replay);
    }
    fn status(&self, target: Target) -> HookFuture<TargetStatus> {
        let f = self.0.clone();
        Box::pin(async move { f.status(&target).await.map_err(|e| e.to_string()) })
    }
    fn test(&self, target: Target) -> HookFuture<TargetDelivery> {
        let f = self.0.clone();
        Box::pin(async move { f.test(&target).await.map_err(|e| e.to_string()) })
    }
}

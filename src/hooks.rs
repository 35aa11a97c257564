//! The seams between crates that must not depend on each other: the API asks ingest to check codecs and
//! report integrations, and the broker hands inbound integration events to ingest.
use bydata_api::HookError;
use bydata_ingest::network_server::Hub;
use bydata_schemas::{DeviceId, IntegrationId, UnixNanos};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(crate) struct Hooks {
    pub(crate) hub: Arc<Hub>,
    pub(crate) config: bydata_ingest::Config,
    pub(crate) redecode: bydata_ingest::redecode::Deps,
}

impl bydata_api::IngestHooks for Hooks {
    fn check_codec(&self, script: &str, examples: &serde_json::Value) -> Result<(), String> {
        bydata_ingest::check_codec(&self.config, script, examples)
    }

    fn integration_status(&self, id: &IntegrationId) -> Option<serde_json::Value> {
        Some(self.hub.status(id))
    }

    fn redecode(
        &self,
        device: DeviceId,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, HookError>> + Send>> {
        use bydata_ingest::redecode::{Error, redecode};
        let (config, deps) = (self.config.clone(), self.redecode.clone());
        Box::pin(async move {
            match redecode(&config, &deps, &device, from, to).await {
                Ok(report) => serde_json::to_value(report).map_err(|e| HookError::Internal {
                    message: e.to_string(),
                }),
                Err(
                    e @ (Error::BadRange | Error::TooMany { .. } | Error::UnknownDevice { .. }),
                ) => Err(HookError::Invalid {
                    code: "invalid_redecode",
                    message: e.to_string(),
                }),
                Err(e) => {
                    tracing::error!(%device, error = %e, "re-decode failed");
                    Err(HookError::Internal {
                        message: e.to_string(),
                    })
                }
            }
        })
    }
}

pub(crate) struct Sink(pub(crate) Arc<Hub>);

impl bydata_broker::IntegrationSink for Sink {
    fn publish(
        &self,
        integration: &IntegrationId,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), String> {
        self.0.inbound(integration, topic, payload)
    }
}

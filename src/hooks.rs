//! The seams between crates that must not depend on each other: the API asks ingest to check codecs and
//! report integrations, and the broker hands inbound integration events to ingest.
use bydata_api::HookError;
use bydata_broker::SinkError;
use bydata_ingest::network_server::Hub;
use bydata_schemas::{CodecTrial, DeviceId, IntegrationId, RedecodeReport, UnixNanos};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(crate) struct Hooks {
    pub(crate) hub: Arc<Hub>,
    pub(crate) config: bydata_ingest::Config,
    pub(crate) redecode: bydata_ingest::redecode::Deps,
    /// Devices being re-decoded now.
    pub(crate) redecoding: Arc<std::sync::Mutex<std::collections::HashSet<DeviceId>>>,
}

impl bydata_api::IngestHooks for Hooks {
    fn check_codec(
        &self,
        script: &str,
        examples: &[serde_json::Value],
    ) -> Result<serde_json::Value, HookError> {
        use bydata_ingest::codec::script::{CodecCheckError, examples_json, parse_examples};
        let rejected = |e: CodecCheckError| HookError::CodecRejected {
            reason: e.to_string(),
        };
        let examples = parse_examples(examples).map_err(|problems| HookError::InvalidExamples {
            problems: problems.into_iter().map(|p| (p.field, p.message)).collect(),
        })?;
        bydata_ingest::check_codec(&self.config, script, &examples).map_err(rejected)?;
        Ok(examples_json(&examples))
    }

    fn test_codec(
        &self,
        script: &str,
        fport: u8,
        bytes: &[u8],
        recv_time: UnixNanos,
    ) -> Result<CodecTrial, HookError> {
        let limits = self.config.codec_limits();
        bydata_ingest::codec::script::trial(limits, script, fport, bytes, recv_time).map_err(|e| {
            tracing::error!(error = %e, "the codec sandbox failed");
            HookError::Internal {
                message: e.to_string(),
            }
        })
    }

    fn encode_downlink(
        &self,
        script: &str,
        fport: u8,
        data: &serde_json::Value,
    ) -> Result<bydata_ingest::codec::script::Encoded, HookError> {
        use bydata_ingest::codec::script::{ScriptCodec, ScriptError};
        let rejected = |e: ScriptError| match e {
            ScriptError::Internal { reason } => {
                tracing::error!(error = %reason, "the codec sandbox failed");
                HookError::Internal { message: reason }
            }
            e => HookError::CodecRejected {
                reason: e.to_string(),
            },
        };
        ScriptCodec::new(script, self.config.codec_limits())
            .map_err(rejected)?
            .encode_downlink(fport, data)
            .map_err(rejected)
    }

    fn integration_status(&self, id: &IntegrationId) -> Option<serde_json::Value> {
        // The status is ingest's type; `api` shows it as it is, without depending on `ingest`.
        serde_json::to_value(self.hub.status(id)).ok()
    }

    fn redecode(
        &self,
        device: DeviceId,
        from: UnixNanos,
        to: UnixNanos,
        force: bool,
    ) -> Pin<Box<dyn Future<Output = Result<RedecodeReport, HookError>> + Send>> {
        use bydata_ingest::redecode::{Error, redecode};
        let (config, deps) = (self.config.clone(), self.redecode.clone());
        let busy = self.redecoding.clone();
        Box::pin(async move {
            // One re-decode per device at a time.
            if !busy
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(device.clone())
            {
                return Err(HookError::RedecodeRunning { device });
            }
            // Spawned, so a client that hangs up cannot stop it between the delete and the write.
            let job = {
                let device = device.clone();
                tokio::spawn(
                    async move { redecode(&config, &deps, &device, from, to, force).await },
                )
            };
            let outcome = job.await;
            busy.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&device);
            let outcome = outcome.map_err(|e| HookError::Internal {
                message: e.to_string(),
            })?;
            match outcome {
                Ok(report) => Ok(report),
                Err(
                    e @ (Error::BadRange
                    | Error::TooMany { .. }
                    | Error::UnknownDevice { .. }
                    | Error::DecodeFailures { .. }
                    | Error::IngestBehind),
                ) => Err(HookError::RedecodeRefused {
                    reason: e.to_string(),
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
    ) -> Result<(), SinkError> {
        use bydata_ingest::network_server::InboundError;
        self.0
            .inbound(integration, topic, payload)
            .map_err(|e| match e {
                InboundError::NotRegistered { integration } => {
                    SinkError::NotRegistered { integration }
                }
                InboundError::Registry(e) => SinkError::Registry(e),
                InboundError::Journal(e) => SinkError::Journal(e),
            })
    }
}

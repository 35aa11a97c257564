//! An OTAA device joining over the air, through a simulated gateway.
use super::device::OtaaDevice;
use super::gateway::{RxParams, SimGateway};
use crate::error::{Error, Result};
use std::time::Duration;
use tokio::time::Instant;

/// Join-requests [`OtaaDevice::join`] sends before it gives up.
pub const JOIN_ATTEMPTS: u32 = 3;

impl OtaaDevice {
    /// Joins through `gateway`: sends a join-request and waits up to `timeout` for a join-accept it can take;
    /// if none comes, tries again with a fresh DevNonce, [`JOIN_ATTEMPTS`] requests in all. Downlinks for
    /// other devices (which fail this device's MIC check) are ignored, as a radio would.
    pub async fn join(&mut self, gateway: &SimGateway, timeout: Duration) -> Result<()> {
        self.join_with(gateway, &RxParams::default(), timeout, JOIN_ATTEMPTS)
            .await
    }

    /// [`OtaaDevice::join`] with the radio metadata the gateway reports and the number of attempts.
    pub async fn join_with(
        &mut self,
        gateway: &SimGateway,
        rx: &RxParams,
        timeout: Duration,
        attempts: u32,
    ) -> Result<()> {
        let mut last = String::from("no attempt made");
        for _ in 0..attempts {
            // Listening starts before the request goes out: the server may answer before the PUSH_ACK.
            let mut radio = gateway.listen();
            let request = self.join_request();
            match gateway.uplink(&request, rx.clone()).await {
                Ok(()) => {}
                Err(e @ Error::GatewayStopped { .. }) => return Err(e),
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            }
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Some(downlink) = radio.next(left).await? else {
                    last = format!("no join-accept within {timeout:?}");
                    break;
                };
                match self.accept_join(&downlink.phy) {
                    Ok(()) => {
                        tracing::debug!(dev_eui = %self.dev_eui(), "joined");
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::trace!(dev_eui = %self.dev_eui(), error = %e, "downlink not for this device")
                    }
                }
            }
        }
        Err(Error::JoinFailed {
            dev_eui: self.dev_eui(),
            attempts,
            last,
        })
    }
}

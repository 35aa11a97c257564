//! A class A exchange over the simulated radio (LoRaWAN 1.0.3 §3.3): the device sends an uplink through one
//! or more gateways, then listens in its two receive windows, timed by each gateway's own concentrator clock
//! (`tmst`, as on air):
//!
//! - RX1: `tmst` of the uplink + 1 s, on the uplink's frequency and data rate (EU868, RX1DROffset 0);
//! - RX2: `tmst` + 2 s, on 869.525 MHz at SF12BW125 (the EU868 defaults).
//!
//! A downlink heard at any other time, frequency or data rate, or without inverted polarity, is not heard
//! by the device (it is listed as missed, with why). A frame in a window that is not the device's (another
//! device's DevAddr, a MIC that fails) is ignored, as a radio would. The first frame the device takes ends
//! the exchange (a device that received in RX1 does not open RX2); otherwise it listens until RX2 has
//! passed. Downlinks reach the simulated device as soon as the gateway accepts the PULL_RESP, not at `tmst`:
//! only the timing written in them is checked, so an exchange lasts at most about two seconds.
use super::device::{AbpDevice, OtaaDevice};
use super::downlink::ReceivedDownlink;
use super::gateway::{DownlinkListener, RxParams, SimGateway};
use crate::error::Result;
use bydata_schemas::Eui64;
use std::time::Duration;
use tokio::time::Instant;

/// RECEIVE_DELAY1 and RECEIVE_DELAY2, µs of the concentrator counter.
const RX1_DELAY_US: u32 = 1_000_000;
const RX2_DELAY_US: u32 = 2_000_000;
const RX2_FREQ_MHZ: f64 = 869.525;
const RX2_DATR: &str = "SF12BW125";
/// How long after the uplink the device listens at most: RX2 has opened by then, and a downlink for it had
/// to reach the gateway before it opened.
const LISTEN: Duration = Duration::from_millis(2_100);
/// How long one gateway's radio is listened to before the next one's.
const POLL: Duration = Duration::from_millis(10);

/// A receive window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxWindow {
    Rx1,
    Rx2,
}

/// What one class A exchange brought.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassAOutcome {
    /// The gateways' concentrator time (`tmst`) of the uplink, one per gateway, in the order given.
    pub uplink_tmst: Vec<u32>,
    /// The downlink the device took, in which window, through which gateway; `None`: nothing for it.
    pub downlink: Option<(ReceivedDownlink, RxWindow, Eui64)>,
    /// How long before its window opened the downlink taken reached the gateway (on the gateway's counter):
    /// the server's margin.
    pub lead: Option<Duration>,
    /// Downlinks heard but not taken, and why (outside the windows, not this device's, …).
    pub missed: Vec<String>,
}

/// The window a downlink falls in, for an uplink heard as `rx` at `tmst`.
fn window_of(downlink: &super::gateway::Downlink, rx: &RxParams, tmst: u32) -> Option<RxWindow> {
    let on = |freq: f64| (downlink.freq - freq).abs() < 1e-4;
    let at = |delay: u32| downlink.tmst == Some(tmst.wrapping_add(delay));
    if at(RX1_DELAY_US) && on(rx.freq) && downlink.datr == rx.datr {
        Some(RxWindow::Rx1)
    } else if at(RX2_DELAY_US) && on(RX2_FREQ_MHZ) && downlink.datr == RX2_DATR {
        Some(RxWindow::Rx2)
    } else {
        None
    }
}

impl AbpDevice {
    /// Sends `payload` on `fport` (confirmed data up if `confirmed`) through every gateway in `radio` — each
    /// hearing it with its own signal — and listens in RX1 and RX2 (see the module docs).
    pub async fn class_a(
        &mut self,
        radio: &[(&SimGateway, RxParams)],
        fport: u8,
        payload: &[u8],
        confirmed: bool,
    ) -> Result<ClassAOutcome> {
        let phy = if confirmed {
            self.confirmed_uplink(fport, payload)?
        } else {
            self.uplink(fport, payload)?
        };
        // Listening starts before the uplink leaves: the answer may come before the PUSH_ACK.
        let mut heard: Vec<(&SimGateway, DownlinkListener, RxParams, u32)> = Vec::new();
        let start = Instant::now();
        for (gateway, rx) in radio {
            let tmst = rx.tmst.unwrap_or_else(|| gateway.tmst());
            let rx = RxParams {
                tmst: Some(tmst),
                ..rx.clone()
            };
            heard.push((gateway, gateway.listen(), rx, tmst));
        }
        for ((gateway, _), (_, _, rx, _)) in radio.iter().zip(&heard) {
            gateway.uplink(&phy, rx.clone()).await?;
        }
        let mut outcome = ClassAOutcome {
            uplink_tmst: heard.iter().map(|h| h.3).collect(),
            ..ClassAOutcome::default()
        };
        while start.elapsed() < LISTEN {
            for (gateway, listener, rx, tmst) in &mut heard {
                let Some(downlink) = listener.next(POLL).await? else {
                    continue;
                };
                let heard_at = gateway.tmst();
                let eui = gateway.eui();
                let Some(window) = window_of(&downlink, rx, *tmst) else {
                    outcome.missed.push(format!(
                        "through {eui}: tmst {:?}, {} MHz, {}: in no receive window of the uplink at tmst {tmst}",
                        downlink.tmst, downlink.freq, downlink.datr
                    ));
                    continue;
                };
                if !downlink.ipol {
                    outcome
                        .missed
                        .push(format!("through {eui}: polarity not inverted"));
                    continue;
                }
                match self.receive_downlink(&downlink.phy) {
                    Ok(received) => {
                        let opens = downlink.tmst.unwrap_or(heard_at);
                        let ahead = opens.wrapping_sub(heard_at);
                        outcome.lead = (ahead <= u32::MAX / 2)
                            .then(|| Duration::from_micros(u64::from(ahead)));
                        outcome.downlink = Some((received, window, eui));
                        return Ok(outcome);
                    }
                    Err(e) => outcome.missed.push(format!("through {eui}: {e}")),
                }
            }
        }
        Ok(outcome)
    }
}

impl OtaaDevice {
    /// [`AbpDevice::class_a`] with the joined session.
    pub async fn class_a(
        &mut self,
        radio: &[(&SimGateway, RxParams)],
        fport: u8,
        payload: &[u8],
        confirmed: bool,
    ) -> Result<ClassAOutcome> {
        self.joined_mut()?
            .class_a(radio, fport, payload, confirmed)
            .await
    }
}

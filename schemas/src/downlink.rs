//! Downlinks: bytes queued for one device, delivered by whichever edge the device is reached through (the
//! MQTT broker on `devices/{id}/down/{fport}`, or a LoRaWAN gateway in a class A receive window).
//!
//! A downlink is *open* while it may still be (re)sent — `Queued`, or `Sent` and `confirmed` (awaiting the
//! device's acknowledgement, retried) — and *finished* otherwise: `Acknowledged`, `Failed`, or `Sent` and
//! unconfirmed (nothing more will be sent; a late acknowledgement is still recorded). Each device has a FIFO
//! of open downlinks and a bounded history of finished ones.
use crate::{DeviceId, OrgId, UnixNanos};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a downlink is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownlinkState {
    /// Waiting for the device to be reachable.
    Queued,
    /// Handed to the device's transport (published to its MQTT connection, or transmitted by a gateway).
    Sent,
    /// The device confirmed it (its MQTT PUBACK, or a LoRaWAN uplink with the ACK bit).
    Acknowledged,
    /// Given up: cancelled, expired, or out of attempts; `error` says which.
    Failed,
}

impl DownlinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            DownlinkState::Queued => "queued",
            DownlinkState::Sent => "sent",
            DownlinkState::Acknowledged => "acknowledged",
            DownlinkState::Failed => "failed",
        }
    }

    /// No later update changes a downlink out of this state.
    pub fn is_final(self) -> bool {
        matches!(self, DownlinkState::Acknowledged | DownlinkState::Failed)
    }
}

impl fmt::Display for DownlinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A downlink as the registry keeps it and the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downlink {
    /// Unique across devices; increases with every enqueued downlink (so FIFO order is id order).
    pub id: u64,
    pub device: DeviceId,
    /// The device's organisation when it was enqueued.
    pub org: OrgId,
    /// 1–223 (the application ports LoRaWAN allows; MQTT devices get it as the last topic level).
    pub fport: u8,
    pub bytes: Vec<u8>,
    /// Whether the device must acknowledge it (retried until it does, or attempts run out).
    pub confirmed: bool,
    pub state: DownlinkState,
    /// How many times it was sent.
    pub attempts: u32,
    pub created_at: UnixNanos,
    pub updated_at: UnixNanos,
    /// Why it failed (or why the last attempt did), in the user's words.
    pub error: Option<String>,
    /// How it was last sent: `mqtt` or `gateway:{eui}`.
    pub via: Option<String>,
    /// The LoRaWAN downlink frame counter it was last sent with.
    pub fcnt: Option<u32>,
    /// The gateway's TX_ACK for the last transmission (`NONE` when it transmitted, else its error).
    pub tx_ack: Option<String>,
}

impl Downlink {
    /// May still be (re)sent: `Queued`, or `Sent` and confirmed but not yet acknowledged.
    pub fn is_open(&self) -> bool {
        match self.state {
            DownlinkState::Queued => true,
            DownlinkState::Sent => self.confirmed,
            DownlinkState::Acknowledged | DownlinkState::Failed => false,
        }
    }
}

/// A downlink to enqueue (validated by the caller: fport range, size for the device's transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDownlink {
    pub device: DeviceId,
    pub org: OrgId,
    pub fport: u8,
    pub bytes: Vec<u8>,
    pub confirmed: bool,
    pub at: UnixNanos,
}

/// A change to a downlink. Fields that are `None` (or `false`) leave it as it is. A finished state
/// ([`DownlinkState::is_final`]) is never left: an update asking to leave it changes only its other fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownlinkUpdate {
    pub at: UnixNanos,
    /// Apply only if the downlink is in this state now (else it is answered unchanged): a cancel that must
    /// not race a send, a send that must not overwrite a cancel.
    pub expect: Option<DownlinkState>,
    pub state: Option<DownlinkState>,
    /// Counts one more attempt.
    pub attempt: bool,
    pub via: Option<String>,
    pub fcnt: Option<u32>,
    pub tx_ack: Option<String>,
    pub error: Option<String>,
}

impl DownlinkUpdate {
    /// Handed to the transport `via` (`mqtt`, `gateway:{eui}`): state Sent, one more attempt.
    pub fn sent(via: impl Into<String>, at: UnixNanos) -> Self {
        Self {
            at,
            state: Some(DownlinkState::Sent),
            attempt: true,
            via: Some(via.into()),
            ..Self::default()
        }
    }

    /// The device acknowledged it.
    pub fn acknowledged(at: UnixNanos) -> Self {
        Self {
            at,
            state: Some(DownlinkState::Acknowledged),
            ..Self::default()
        }
    }

    /// Given up, for the reason `error` (in the user's words).
    pub fn failed(error: impl Into<String>, at: UnixNanos) -> Self {
        Self {
            at,
            state: Some(DownlinkState::Failed),
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// Only if the downlink is in `state` now.
    pub fn expecting(mut self, state: DownlinkState) -> Self {
        self.expect = Some(state);
        self
    }

    /// Applies this update to `d`; `false` (and `d` untouched) if `expect` does not hold.
    pub fn apply(&self, d: &mut Downlink) -> bool {
        if self.expect.is_some_and(|s| s != d.state) {
            return false;
        }
        if let Some(state) = self.state
            && !d.state.is_final()
        {
            d.state = state;
        }
        if self.attempt {
            d.attempts = d.attempts.saturating_add(1);
        }
        if let Some(via) = &self.via {
            d.via = Some(via.clone());
        }
        if let Some(fcnt) = self.fcnt {
            d.fcnt = Some(fcnt);
        }
        if let Some(ack) = &self.tx_ack {
            d.tx_ack = Some(ack.clone());
        }
        if let Some(error) = &self.error {
            d.error = Some(error.clone());
        }
        d.updated_at = self.at.max(d.updated_at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(confirmed: bool) -> Downlink {
        Downlink {
            id: 1,
            device: DeviceId::new("valve-1").expect("id"),
            org: OrgId::default(),
            fport: 10,
            bytes: vec![1, 2],
            confirmed,
            state: DownlinkState::Queued,
            attempts: 0,
            created_at: 5,
            updated_at: 5,
            error: None,
            via: None,
            fcnt: None,
            tx_ack: None,
        }
    }

    #[test]
    fn open_means_it_may_still_be_sent() {
        let cases = [
            (DownlinkState::Queued, false, true),
            (DownlinkState::Queued, true, true),
            (DownlinkState::Sent, true, true),
            (DownlinkState::Sent, false, false),
            (DownlinkState::Acknowledged, true, false),
            (DownlinkState::Failed, true, false),
        ];
        for (state, confirmed, open) in cases {
            let mut d = queued(confirmed);
            d.state = state;
            assert_eq!(d.is_open(), open, "{state} confirmed={confirmed}");
        }
    }

    #[test]
    fn updates_move_forward_and_never_leave_a_final_state() {
        let mut d = queued(true);
        assert!(DownlinkUpdate::sent("mqtt", 7).apply(&mut d));
        assert_eq!(
            (d.state, d.attempts, d.updated_at),
            (DownlinkState::Sent, 1, 7)
        );
        assert_eq!(d.via.as_deref(), Some("mqtt"));
        assert!(DownlinkUpdate::acknowledged(9).apply(&mut d));
        assert_eq!(d.state, DownlinkState::Acknowledged);
        // A late failure (say, an expiry timer) does not undo the acknowledgement.
        assert!(DownlinkUpdate::failed("expired", 10).apply(&mut d));
        assert_eq!(d.state, DownlinkState::Acknowledged);
    }

    #[test]
    fn expect_guards_a_cancel_against_a_send() {
        let mut d = queued(false);
        DownlinkUpdate::sent("mqtt", 7).apply(&mut d);
        let cancel = DownlinkUpdate::failed("cancelled", 8).expecting(DownlinkState::Queued);
        assert!(!cancel.apply(&mut d));
        assert_eq!((d.state, d.updated_at), (DownlinkState::Sent, 7));
    }

    #[test]
    fn states_serialise_in_lowercase() {
        for s in [
            DownlinkState::Queued,
            DownlinkState::Sent,
            DownlinkState::Acknowledged,
            DownlinkState::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::json!(s.as_str())
            );
        }
    }
}

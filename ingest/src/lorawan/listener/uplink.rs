//! One radio packet's frame: a JoinRequest goes to `join`; a data-up frame is routed by its DevAddr to the
//! device's session (`sessions`), its MIC checked with the full frame counter, a replay refused, its
//! FRMPayload decrypted, and — accepted — held (`dedup`) while its counter is committed (`counters`).
use super::dedup::FrameKey;
use super::downlink::{ClassA, Heard};
use super::{Listener, inc};
use crate::lorawan::{frame, semtech};
use bydata_schemas::{DeviceId, Eui64, Reception, RejectReason, Source, UnixNanos, Uplink};
use bydata_store::CounterAdvance;
use bydata_store::refusals::UnverifiedKind;

impl Listener {
    /// Routes one radio packet's frame; `Err` says why it went nowhere (for the gateway's status).
    pub(super) async fn frame(
        &mut self,
        rxpk: &semtech::Rxpk,
        gateway: Eui64,
        now: UnixNanos,
    ) -> Result<(), String> {
        let phy = rxpk.data.as_slice();
        let mtype = phy.first().map(|m| m >> 5);
        if mtype == Some(0b000) {
            return self.join(rxpk, gateway, now).await;
        }
        // MType 010 (unconfirmed) or 100 (confirmed) data up; DevAddr follows the MHDR, little-endian.
        let data_up = matches!(mtype, Some(0b010 | 0b100));
        let Some(&[a0, a1, a2, a3]) = phy.get(1..5).filter(|_| data_up) else {
            inc(&self.deps.metrics.frames_other);
            return Err("not a data-up frame (joins are not served yet)".into());
        };
        let dev_addr = u32::from_le_bytes([a0, a1, a2, a3]);
        let Some(cached) = self
            .sessions
            .get(self.deps.registry.as_ref(), dev_addr)
            .await?
        else {
            inc(&self.deps.metrics.frames_unknown_device);
            return Err(format!("frame from unknown DevAddr {dev_addr:08x}"));
        };
        let reception = Reception {
            gateway: gateway.to_string(),
            rssi: rxpk.rssi.map(f64::from),
            snr: rxpk.lsnr.filter(|s| s.is_finite()),
        };
        let heard = Heard::of(rxpk, gateway);
        let nwk_s_key = *cached.session.nwk_s_key.as_bytes();
        let key = |fcnt| FrameKey {
            dev_addr,
            fcnt,
            nwk_s_key,
        };
        match frame::decode_uplink(phy, &cached.session) {
            // A copy of the frame just accepted, heard by another gateway: not an attack.
            Err(frame::FrameError::Replay { got, last })
                if got == last && self.dedup.is_recent(&key(got)) =>
            {
                self.duplicate(&key(got), reception, heard)
            }
            // A copy of a frame accepted a moment ago, checked against a session read again since (whose
            // counter the registry has not reached yet): never held twice.
            Ok(up) if self.dedup.is_recent(&key(up.fcnt)) => {
                self.duplicate(&key(up.fcnt), reception, heard)
            }
            Ok(up) => {
                let fcnt = up.fcnt;
                self.sessions.accepted(dev_addr, fcnt);
                let uplink = Uplink {
                    received_at: now,
                    device: cached.device.clone(),
                    source: Source::Lorawan,
                    topic: String::new(),
                    fport: Some(up.fport.unwrap_or(0)),
                    payload: up.payload,
                    radio: vec![reception],
                };
                let class_a = ClassA {
                    session: cached.session.clone(),
                    confirmed: up.confirmed,
                    ack: up.ack,
                    heard: vec![heard],
                };
                self.dedup.hold(key(fcnt), uplink, gateway, class_a);
                self.counters.push(CounterAdvance {
                    dev_addr,
                    fcnt,
                    device: cached.device,
                    nwk_s_key,
                });
                Ok(())
            }
            Err(e) => Err(self.refuse(cached.device, now, e.code(), &e.to_string())),
        }
    }

    fn duplicate(
        &mut self,
        frame: &FrameKey,
        reception: Reception,
        heard: Heard,
    ) -> Result<(), String> {
        inc(&self.deps.metrics.frames_duplicate);
        self.dedup.add_reception(frame, reception, heard);
        Ok(())
    }

    /// Counts a refused frame or join of `device`; returns the reason (for the gateway's status).
    ///
    /// Only a refusal of something that verified as the device's (a replayed frame or join request: its MIC
    /// holds) reaches the device's status, aggregated, never the journal. Anything else from the air (a MIC
    /// that fails, a counter too far ahead to check, a malformed frame) could come from anyone with a radio:
    /// it is counted on the gateway, in `/metrics`, and in memory for the device (its owner sees the count).
    pub(super) fn refuse(
        &self,
        device: DeviceId,
        now: UnixNanos,
        code: &str,
        detail: &str,
    ) -> String {
        inc(&self.deps.metrics.frames_rejected);
        let reason = format!("frame of {device} refused ({code}): {detail}");
        if matches!(code, "replay" | "dev_nonce_reused") {
            let refusal = RejectReason::LorawanFrame {
                code: code.to_owned(),
                detail: detail.to_owned(),
            };
            if self.deps.refusals.record(&device, now, &refusal) {
                tracing::info!(%device, %refusal, "LoRaWAN frame refused");
            }
        } else {
            self.deps
                .refusals
                .record_unverified(&device, now, UnverifiedKind::UnverifiedFrame);
        }
        reason
    }
}

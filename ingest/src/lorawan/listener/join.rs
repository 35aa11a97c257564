//! OTAA joins through the listener: a JoinRequest checked, its DevNonce refused if used before, a session
//! derived and committed, and the JoinAccept sent back through the gateway that heard it.
use super::{Listener, MAX_RECENT, inc};
use crate::lorawan::{frame, semtech};
use bydata_schemas::{Eui64, UnixNanos};
use bydata_store::LorawanSession;
use std::time::{Duration, Instant};

/// How long after a join a copy of its request (heard by another gateway) counts as a duplicate; copies
/// arrive within milliseconds, and a request resent later is a reused DevNonce.
const JOIN_DEDUP_WINDOW: Duration = Duration::from_secs(1);

impl Listener {
    /// An OTAA JoinRequest: checked against the device's AppKey, its DevNonce refused if used before, and
    /// answered with a JoinAccept through the gateway that heard it, at RX1 (5 s after the request, EU868).
    pub(super) async fn join(
        &mut self,
        rxpk: &semtech::Rxpk,
        gateway: Eui64,
        now: UnixNanos,
    ) -> Result<(), String> {
        let metrics = self.deps.metrics.clone();
        // MHDR | JoinEUI | DevEUI | DevNonce | MIC, the EUIs least significant byte first.
        let Some(eui) = rxpk.data.get(9..17) else {
            inc(&metrics.frames_other);
            return Err("join request too short".into());
        };
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(eui);
        bytes.reverse();
        let dev_eui = Eui64::from_bytes(bytes);
        let otaa = self
            .deps
            .registry
            .otaa_device(&dev_eui)
            .await
            .map_err(|e| e.to_string())?;
        let Some(otaa) = otaa else {
            inc(&metrics.frames_unknown_device);
            return Err(format!("join request from unknown DevEUI {dev_eui}"));
        };
        let app_key = frame::AppKey::new(otaa.app_key);
        let request = match frame::verify_join_request(&rxpk.data, &app_key) {
            Ok(r) => r,
            Err(e) => {
                return Err(self.refuse(otaa.device, now, e.code(), &e.to_string()));
            }
        };
        if self
            .recent_joins
            .get(&(dev_eui, request.dev_nonce))
            .is_some_and(|at| at.elapsed() < JOIN_DEDUP_WINDOW)
        {
            inc(&metrics.frames_duplicate);
            return Ok(());
        }
        let app_nonce: [u8; 3] = rand::random();
        let net_id = [0u8; 3];
        // NetID 000000: the DevAddr's top seven bits are zero.
        let candidates: Vec<u32> = (0..32)
            .map(|_| rand::random::<u32>() & 0x01ff_ffff)
            .collect();
        let device = otaa.device.clone();
        let dev_nonce = request.dev_nonce;
        let key = app_key.clone();
        let session = Box::new(move |addr| {
            let s = frame::derive_session(
                &key,
                app_nonce,
                net_id,
                dev_nonce,
                frame::DevAddr::new(addr),
            );
            LorawanSession {
                device,
                dev_eui,
                dev_addr: addr,
                nwk_s_key: *s.nwk_s_key.as_bytes(),
                app_s_key: *s.app_s_key.as_bytes(),
                fcnt_up: None,
                fcnt_down: 0,
            }
        });
        let joined = self
            .deps
            .registry
            .complete_join(&dev_eui, dev_nonce, candidates, session)
            .await
            .map_err(|e| e.to_string())?;
        let Some(session) = joined else {
            return Err(self.refuse(
                otaa.device,
                now,
                "dev_nonce_reused",
                &format!("DevNonce {dev_nonce} was used before (a replayed join request)"),
            ));
        };
        self.recent_joins
            .insert((dev_eui, dev_nonce), Instant::now());
        if self.recent_joins.len() > MAX_RECENT {
            self.recent_joins.clear();
        }
        let accept = frame::build_join_accept(
            &app_key,
            app_nonce,
            net_id,
            frame::DevAddr::new(session.dev_addr),
            0,
            1,
        );
        let Some(route) = self.downlink.get(&gateway).copied() else {
            return Err("joined, but the gateway has no downlink route yet (no PULL_DATA)".into());
        };
        let txpk = semtech::Txpk {
            imme: rxpk.tmst.is_none(),
            tmst: rxpk
                .tmst
                .map(|t| semtech::rx1_tmst(t, semtech::JOIN_ACCEPT_DELAY1_SECS)),
            freq: rxpk.freq.unwrap_or(868.1),
            rfch: 0,
            powe: 14,
            datr: rxpk.datr.clone().unwrap_or_else(|| "SF7BW125".into()),
            codr: rxpk.codr.clone().unwrap_or_else(|| "4/5".into()),
            ipol: true,
            data: accept,
        };
        let token = rand::random();
        let packet = semtech::pull_resp(token, &txpk);
        if let Err(e) = self.socket.send_to(&packet, route).await {
            return Err(format!("cannot send the JoinAccept: {e}"));
        }
        self.sent_pull_resp(gateway, token);
        inc(&metrics.joins_accepted);
        self.pending.entry(gateway).or_default().tx_sent += 1;
        tracing::info!(device = %session.device, dev_addr = %format_args!("{:08x}", session.dev_addr), "OTAA join accepted");
        Ok(())
    }
}

//! Entry points for the fuzz targets in `fuzz/` (`mqtt`): the edge's CONNECT parsing (3.1.1 and 5) and the
//! protocol wrappers' handling of every packet of an authenticated connection (3.1.1 and 5). Not an API.
use crate::protocol::{DeviceProtocol, Session};
use crate::v5::DeviceProtocolV5;
use crate::{Deps, connect as edge, gate::Identity};
use bydata_schemas::{Codec, DeviceId, Domain, Transport};
use bydata_store::RedbRegistry;
use bydata_store::journal::{Journal, JournalConfig};
use bydata_store::refusals::Refusals;
use bytes::BytesMut;
use rumqttd::protocol::{Connect, Error, Login, Packet, Protocol};
use std::path::Path;
use std::sync::Arc;

/// The device every fuzzed session is authenticated as.
pub const DEVICE: &str = "fuzz-device";

/// Parses the first bytes of a connection as the edge does; whatever comes in, it must answer, not panic.
pub fn connect(bytes: &[u8]) {
    if let Ok(Some(connect)) = edge::parse_connect(&BytesMut::from(bytes)) {
        let _ = Identity::parse(&connect.client_id);
    }
}

/// A registry with [`DEVICE`], a journal and a refusal book in a directory of the caller's.
#[derive(Debug)]
pub struct Harness {
    deps: Deps,
}

impl Harness {
    pub fn new(dir: &Path) -> Self {
        let registry = RedbRegistry::open(
            &dir.join("registry.redb"),
            bydata_store::SecretKey::from_bytes([1; 32]),
        )
        .expect("registry")
        .shared();
        let device = bydata_store::Device {
            org: Default::default(),
            id: DeviceId::new(DEVICE).expect("id"),
            name: "fuzz".into(),
            transport: Transport::Mqtt,
            domain: Domain::new("building").expect("domain"),
            location: None,
            tags: Default::default(),
            codec: Codec::Auto,
            created_at: 0,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let _ = runtime.block_on(registry.create_device(device));
        let journal = Journal::open(
            &dir.join("journal"),
            JournalConfig {
                segment_bytes: 1 << 20,
            },
        )
        .expect("journal");
        let metrics: Arc<crate::Metrics> = Arc::default();
        let logins = bydata_store::logins::Gate::new(
            registry.clone(),
            metrics.clone(),
            crate::Config::default().login_gate(),
        )
        .expect("gate");
        Self {
            deps: Deps {
                journal: Arc::new(journal),
                refusals: Arc::new(Refusals::new(registry.clone(), 0)),
                registry,
                clock: Arc::new(|| 0),
                metrics,
                integrations: None,
                downlinks: None,
                logins,
            },
        }
    }

    /// One connection: [`DEVICE`]'s CONNECT, then `bytes` as the packets that follow it, each through the
    /// MQTT 3.1.1 protocol wrapper until it needs more bytes or closes the connection.
    pub fn session(&self, bytes: &[u8]) {
        run_session(
            DeviceProtocol::new(self.deps.clone(), 64 * 1024, 3600),
            bytes,
        );
    }

    /// The same through the MQTT 5 wrapper (topic aliases, properties, stand-in replies): every answer it
    /// writes must encode.
    pub fn session_v5(&self, bytes: &[u8]) {
        let session = Session::new(self.deps.clone(), 64 * 1024, 3600);
        run_session(DeviceProtocolV5::new(session, 100), bytes);
    }
}

/// Feeds a CONNECT then `bytes` to `protocol`, writing back what the router would answer to each packet.
fn run_session(mut protocol: impl Protocol, bytes: &[u8]) {
    {
        let mut stream = BytesMut::new();
        let connect = Packet::Connect(
            Connect {
                keep_alive: 30,
                client_id: DEVICE.into(),
                clean_session: true,
            },
            None,
            None,
            None,
            Some(Login {
                username: DEVICE.into(),
                password: "unused".into(),
            }),
        );
        protocol.write(connect, &mut stream).expect("encode");
        stream.extend_from_slice(bytes);
        let mut out = BytesMut::new();
        for _ in 0..10_000 {
            match protocol.read_mut(&mut stream, 64 * 1024) {
                // What the router answers to the packets that need a word from the wrapper.
                Ok(Packet::PingReq(_)) => {
                    let _ = protocol.write(Packet::PingResp(rumqttd::protocol::PingResp), &mut out);
                }
                Ok(Packet::Connect(..)) => {
                    let ack = rumqttd::protocol::ConnAck {
                        session_present: false,
                        code: rumqttd::protocol::ConnectReturnCode::Success,
                    };
                    let _ = protocol.write(Packet::ConnAck(ack, None), &mut out);
                }
                Ok(_) => {}
                Err(Error::InsufficientBytes(_)) => return,
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttd::protocol::v5::V5;
    use rumqttd::protocol::{PingResp, PubAck, PubAckReason};

    /// An MQTT 5 PUBLISH, QoS 1, packet id `pkid`, with a topic alias property if given (built by hand:
    /// rumqttd keeps QoS and packet id to itself).
    fn publish_v5(topic: &str, pkid: u8, alias: Option<u8>) -> Vec<u8> {
        let properties = alias.map_or(vec![], |a| vec![0x23, 0, a]);
        let mut body = u16::try_from(topic.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(&[0, pkid, u8::try_from(properties.len()).expect("short")]);
        body.extend_from_slice(&properties);
        body.extend_from_slice(br#"{"t": 1}"#);
        let mut out = vec![0x32, u8::try_from(body.len()).expect("short")];
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn mqtt5_refusals_are_answered_in_order_and_aliases_checked() {
        let dir = tempfile::tempdir().expect("tmp");
        let harness = Harness::new(dir.path());
        let session = Session::new(harness.deps.clone(), 1024, 60);
        let mut protocol = DeviceProtocolV5::new(session, 10);
        let mut stream = BytesMut::new();
        let connect = Packet::Connect(
            Connect {
                keep_alive: 0,
                client_id: DEVICE.into(),
                clean_session: false,
            },
            None,
            None,
            None,
            None,
        );
        V5.write(connect, &mut stream).expect("encode");
        let up = format!("devices/{DEVICE}/up");
        for (topic, pkid, alias) in [
            (up.as_str(), 1, Some(1)),
            ("devices/other/up", 2, Some(2)),
            ("", 3, Some(1)),
            ("", 4, Some(2)),
        ] {
            stream.extend_from_slice(&publish_v5(topic, pkid, alias));
        }
        let Ok(Packet::Connect(connect, ..)) = protocol.read_mut(&mut stream, 1024) else {
            panic!("the CONNECT passes");
        };
        // Keep-alive 0 becomes the maximum, told in the CONNACK; no session outlives the connection.
        assert_eq!((connect.keep_alive, connect.clean_session), (60, true));
        let mut router_got = Vec::new();
        for _ in 0..4 {
            router_got.push(protocol.read_mut(&mut stream, 1024).expect("a packet"));
        }
        // The router gets the journaled PUBLISHes (the alias replaced by its topic) and a PINGREQ for each
        // refusal; it answers in order, and the PINGRESPs become PUBACK 0x87.
        let mut written = Vec::new();
        for packet in &router_got {
            let answer = match packet {
                Packet::Publish(p, props) => {
                    assert_eq!(p.topic, up.as_bytes());
                    assert!(props.as_ref().is_none_or(|p| p.topic_alias.is_none()));
                    Packet::PubAck(
                        PubAck {
                            pkid: 0,
                            reason: PubAckReason::Success,
                        },
                        None,
                    )
                }
                Packet::PingReq(_) => Packet::PingResp(PingResp),
                other => panic!("{other:?}"),
            };
            let mut out = BytesMut::new();
            protocol.write(answer, &mut out).expect("encode");
            let mut reread = out.clone();
            written.push(V5.read_mut(&mut reread, 1024).expect("decodes"));
        }
        let reasons: Vec<_> = written
            .iter()
            .map(|p| match p {
                Packet::PubAck(ack, _) => (ack.pkid, ack.reason),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                (0, PubAckReason::Success),
                (2, PubAckReason::NotAuthorized),
                (0, PubAckReason::Success),
                (4, PubAckReason::NotAuthorized),
            ]
        );
    }

    #[test]
    fn sessions_take_any_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let harness = Harness::new(dir.path());
        let mut publish = BytesMut::new();
        let packet = Packet::Publish(
            rumqttd::protocol::Publish::new("devices/fuzz-device/up", r#"{"t": 1}"#, false),
            None,
        );
        DeviceProtocol::new(harness.deps.clone(), 1024, 60)
            .write(packet, &mut publish)
            .expect("encode");
        for bytes in [
            &publish[..],
            &[0xff; 100],
            &[],
            &[0x30, 0xff, 0xff, 0xff, 0x7f],
        ] {
            harness.session(bytes);
            connect(bytes);
        }
    }

    #[test]
    fn server_only_packets_are_refused_before_the_codec() {
        // rumqttd's v5 codec would panic on these (a CONNACK and an UNSUBACK with a body).
        for packet in [[0x20, 2, 0, 0], [0xb0, 2, 0, 1]] {
            shared().session_v5(&packet);
            let session = Session::new(shared().deps.clone(), 1024, 60);
            let mut protocol = DeviceProtocolV5::new(session, 10);
            assert!(
                protocol
                    .read_mut(&mut BytesMut::from(&packet[..]), 1024)
                    .is_err()
            );
        }
    }

    fn shared() -> &'static Harness {
        static HARNESS: std::sync::OnceLock<(tempfile::TempDir, Harness)> =
            std::sync::OnceLock::new();
        &HARNESS
            .get_or_init(|| {
                let dir = tempfile::tempdir().expect("tmp");
                let harness = Harness::new(dir.path());
                (dir, harness)
            })
            .1
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Valid MQTT 5 PUBLISHes with aliases, then any bytes, or the same with bytes changed anywhere: the
        /// CONNECT parser and the v5 wrapper answer without a panic, and every answer encodes.
        #[test]
        fn mqtt5_packets_never_panic(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            flips in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..4),
        ) {
            let up = format!("devices/{DEVICE}/up");
            let mut bytes = publish_v5(&up, 1, Some(1));
            bytes.extend(publish_v5("", 2, Some(1)));
            bytes.extend(publish_v5("devices/x/up", 3, Some(3)));
            bytes.extend_from_slice(&tail);
            let len = bytes.len();
            for (at, value) in flips {
                bytes[at % len] = value;
            }
            shared().session_v5(&bytes);
            let mut connect = BytesMut::from(&[0x10, 0x20, 0, 4, b'M', b'Q', b'T', b'T', 5][..]);
            connect.extend_from_slice(&bytes);
            super::connect(&connect);
        }
    }
}

//! Entry points for the fuzz targets in `fuzz/` (`mqtt`): the edge's CONNECT parsing and the protocol
//! wrapper's handling of every packet of an authenticated connection. Not an API.
use crate::protocol::DeviceProtocol;
use crate::{Deps, edge, gate::Identity};
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
                logins,
            },
        }
    }

    /// One connection: [`DEVICE`]'s CONNECT, then `bytes` as the packets that follow it, each through the
    /// protocol wrapper until it needs more bytes or closes the connection.
    pub fn session(&self, bytes: &[u8]) {
        let mut protocol = DeviceProtocol::new(self.deps.clone(), 64 * 1024, 3600);
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
        loop {
            match protocol.read_mut(&mut stream, 64 * 1024) {
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
}

use super::*;
use crate::registry::lorawan::LORAWAN_DEVICES;
use crate::registry::{DEVICES, Device, LorawanSession, OtaaDevice, Registry};
use bydata_schemas::{Codec, DeviceId, Domain, Eui64, IntegrationId, NetworkServer, Transport};

const REMOTE_PASSWORD: &str = "NNSXS.remote-broker-password-7Qx";

fn device(id: &str) -> Device {
    Device {
        org: Default::default(),
        id: DeviceId::new(id).expect("id"),
        name: id.into(),
        transport: Transport::Lorawan,
        domain: Domain::new("building").expect("domain"),
        location: None,
        tags: Default::default(),
        codec: Codec::Auto,
        created_at: 0,
    }
}

/// A key no other test byte pattern contains by chance.
fn key16(seed: u8) -> [u8; 16] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7) ^ 0xa5)
}

fn session(id: &str, n: u8) -> LorawanSession {
    LorawanSession {
        device: DeviceId::new(id).expect("id"),
        dev_eui: Eui64::from_bytes([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 1, n]),
        dev_addr: 0x2601_1b00 + u32::from(n),
        nwk_s_key: key16(n),
        app_s_key: key16(n.wrapping_add(100)),
        fcnt_up: None,
        fcnt_down: 0,
    }
}

fn otaa(id: &str, n: u8) -> OtaaDevice {
    OtaaDevice {
        device: DeviceId::new(id).expect("id"),
        dev_eui: Eui64::from_bytes([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 2, n]),
        join_eui: Eui64::from_bytes([0; 8]),
        app_key: key16(n.wrapping_add(200)),
        dev_nonces: Vec::new(),
    }
}

fn subscribe(id: &str) -> Integration {
    Integration {
        org: Default::default(),
        id: IntegrationId::new(id).expect("id"),
        name: "TTS".into(),
        network_server: NetworkServer::Tts,
        mode: IntegrationMode::Subscribe {
            host: "127.0.0.1".into(),
            port: 1883,
            username: Some("app@ttn".into()),
            topic: None,
            client_id: None,
        },
        created_at: 1,
    }
}

/// Which of `keys` (as bytes, lowercase and uppercase hex) and `texts` the file holds.
fn found_in(path: &Path, keys: &[[u8; 16]], texts: &[&str]) -> Vec<String> {
    let file = std::fs::read(path).expect("read the registry file");
    let mut needles: std::collections::HashMap<Vec<u8>, String> = std::collections::HashMap::new();
    for key in keys {
        let hex = hex::encode(key);
        needles.insert(key.to_vec(), format!("{hex} as bytes"));
        needles.insert(hex.to_uppercase().into_bytes(), format!("{hex} as HEX"));
        needles.insert(hex.clone().into_bytes(), format!("{hex} as hex"));
    }
    for text in texts {
        needles.insert(text.as_bytes().to_vec(), (*text).to_owned());
    }
    let mut lengths: Vec<usize> = needles.keys().map(Vec::len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    // One pass per needle length, each window looked up (the file is megabytes; tests run unoptimised).
    let mut found: Vec<String> = lengths
        .into_iter()
        .flat_map(|len| {
            file.windows(len)
                .filter_map(|w| needles.get(w).cloned())
                .collect::<Vec<_>>()
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

fn all_keys(sessions: &[LorawanSession], otaas: &[OtaaDevice]) -> Vec<[u8; 16]> {
    sessions
        .iter()
        .flat_map(|s| [s.nwk_s_key, s.app_s_key])
        .chain(otaas.iter().map(|o| o.app_key))
        .collect()
}

#[test]
fn secrets_are_sealed_on_disk_and_open_only_with_their_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("registry.redb");
    let key = SecretKey::from_bytes([0x42; 32]);
    assert!(!holds_sealed_secrets(&path).expect("no file yet"));
    let abp = session("lora-abp", 1);
    let otaa_device = otaa("lora-otaa", 2);
    let integration = subscribe("tts");
    let joined = {
        let reg = Registry::open_sealed(&path, key.clone()).expect("open");
        reg.create_lorawan_device(device("lora-abp"), abp.clone())
            .expect("abp");
        reg.create_otaa_device(device("lora-otaa"), otaa_device.clone())
            .expect("otaa");
        let joined = reg
            .complete_join(&otaa_device.dev_eui, 7, &[0x2602_0001], |dev_addr| {
                LorawanSession {
                    dev_addr,
                    nwk_s_key: key16(50),
                    app_s_key: key16(51),
                    ..session("lora-otaa", 2)
                }
            })
            .expect("join")
            .expect("a new DevNonce");
        reg.create_integration(integration.clone(), Some(REMOTE_PASSWORD.into()))
            .expect("integration");
        let advanced = reg
            .advance_uplink_counters(&[crate::CounterAdvance {
                dev_addr: abp.dev_addr,
                fcnt: 3,
                device: abp.device.clone(),
                nwk_s_key: abp.nwk_s_key,
            }])
            .expect("advance");
        assert_eq!(advanced, vec![crate::Advanced::Committed]);
        joined
    };

    let keys = all_keys(
        &[abp.clone(), joined.clone()],
        std::slice::from_ref(&otaa_device),
    );
    let found = found_in(&path, &keys, &[REMOTE_PASSWORD]);
    assert!(found.is_empty(), "registry.redb holds {found:?}");
    assert!(holds_sealed_secrets(&path).expect("look"));

    let reg = Registry::open_sealed(&path, key).expect("reopen with the same key");
    assert_eq!(
        reg.lorawan_session(abp.dev_addr).expect("read"),
        Some(LorawanSession {
            fcnt_up: Some(3),
            ..abp.clone()
        })
    );
    assert_eq!(
        reg.lorawan_session_of(&joined.device).expect("read"),
        Some(joined)
    );
    let stored = reg
        .otaa_device(&otaa_device.dev_eui)
        .expect("read")
        .expect("otaa");
    assert_eq!(stored.app_key, otaa_device.app_key);
    assert_eq!(stored.dev_nonces, vec![7]);
    assert_eq!(
        reg.integration_remote_password(&integration.id)
            .expect("read")
            .as_deref(),
        Some(REMOTE_PASSWORD)
    );
    assert!(
        reg.device_identifiers()
            .expect("ids")
            .contains(&"0000000000000000".to_owned())
    );
    drop(reg);

    let err = Registry::open_sealed(&path, SecretKey::from_bytes([0x43; 32]))
        .expect_err("another key is refused");
    assert!(matches!(err, Error::SecretsKey), "{err:?}");
    assert!(
        err.to_string()
            .contains("the secrets key does not open the stored LoRaWAN keys"),
        "{err}"
    );
}

#[test]
fn a_row_moved_to_another_row_does_not_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("registry.redb");
    let reg = Registry::open_sealed(&path, SecretKey::from_bytes([1; 32])).expect("open");
    let abp = session("lora-abp", 1);
    reg.create_lorawan_device(device("lora-abp"), abp.clone())
        .expect("abp");
    let txn = reg.db.begin_write().expect("txn");
    {
        let mut sessions = txn.open_table(LORAWAN_SESSIONS).expect("table");
        let sealed = sessions
            .get(crate::registry::lorawan::addr_key(abp.dev_addr).as_str())
            .expect("get")
            .expect("row")
            .value()
            .to_vec();
        sessions
            .insert("26019999", sealed.as_slice())
            .expect("insert");
    }
    txn.commit().expect("commit");
    let err = reg.lorawan_session(0x2601_9999).expect_err("refused");
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(reg.lorawan_session(abp.dev_addr).expect("read").is_some());
}

/// Writes rows as a bydata before sealing did: session and OTAA JSON and the remote password in clear.
fn write_clear_registry(path: &Path, sessions: &[LorawanSession], otaas: &[OtaaDevice]) {
    let db = redb::Database::create(path).expect("create");
    let txn = db.begin_write().expect("txn");
    {
        let mut devices = txn.open_table(DEVICES).expect("devices");
        let mut by_device = txn.open_table(LORAWAN_DEVICES).expect("by device");
        let mut rows = txn.open_table(LORAWAN_SESSIONS).expect("sessions");
        for s in sessions {
            let addr = crate::registry::lorawan::addr_key(s.dev_addr);
            let json = serde_json::to_vec(&device(s.device.as_str())).expect("json");
            devices
                .insert(s.device.as_str(), json.as_slice())
                .expect("insert");
            let json = serde_json::to_vec(s).expect("json");
            rows.insert(addr.as_str(), json.as_slice()).expect("insert");
            by_device
                .insert(s.device.as_str(), addr.as_str())
                .expect("insert");
        }
        let mut rows = txn.open_table(LORAWAN_OTAA).expect("otaa");
        for o in otaas {
            let json = serde_json::to_vec(&device(o.device.as_str())).expect("json");
            devices
                .insert(o.device.as_str(), json.as_slice())
                .expect("insert");
            let json = serde_json::to_vec(o).expect("json");
            rows.insert(o.dev_eui.to_string().as_str(), json.as_slice())
                .expect("insert");
        }
        let integration = subscribe("tts");
        let json = serde_json::to_vec(&integration).expect("json");
        txn.open_table(INTEGRATIONS)
            .expect("integrations")
            .insert("tts", json.as_slice())
            .expect("insert");
        txn.open_table(INTEGRATION_SECRETS)
            .expect("secrets")
            .insert("tts", REMOTE_PASSWORD)
            .expect("insert");
    }
    txn.commit().expect("commit");
}

#[test]
fn a_registry_written_in_clear_is_sealed_once_in_place() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("registry.redb");
    let sessions: Vec<LorawanSession> = (0..40).map(|n| session(&format!("abp-{n}"), n)).collect();
    let otaas: Vec<OtaaDevice> = (0..10).map(|n| otaa(&format!("otaa-{n}"), n)).collect();
    write_clear_registry(&path, &sessions, &otaas);
    let keys = all_keys(&sessions, &otaas);
    assert!(
        found_in(&path, &keys, &[REMOTE_PASSWORD]).len() > keys.len(),
        "the test wrote every key (as hex) and the password in clear"
    );
    assert!(!holds_sealed_secrets(&path).expect("look"));

    let key = SecretKey::from_bytes([0x42; 32]);
    {
        let reg = Registry::open_sealed(&path, key.clone()).expect("open and seal");
        let txn = reg.db.begin_write().expect("txn");
        assert_eq!(
            check_and_seal(&txn, &key).expect("again"),
            Sealed::default(),
            "idempotent"
        );
        txn.abort().expect("abort");
    }
    let found = found_in(&path, &keys, &[REMOTE_PASSWORD]);
    assert!(found.is_empty(), "still in clear: {found:?}");
    assert!(holds_sealed_secrets(&path).expect("look"));

    let reg = Registry::open_sealed(&path, key).expect("reopen");
    for s in &sessions {
        assert_eq!(
            reg.lorawan_session(s.dev_addr).expect("read").as_ref(),
            Some(s)
        );
    }
    for o in &otaas {
        assert_eq!(reg.otaa_device(&o.dev_eui).expect("read").as_ref(), Some(o));
    }
    let tts = IntegrationId::new("tts").expect("id");
    assert_eq!(
        reg.integration_remote_password(&tts)
            .expect("read")
            .as_deref(),
        Some(REMOTE_PASSWORD)
    );
    assert_eq!(
        reg.inbound_integration_password_hash(&tts).expect("read"),
        None
    );
    assert!(reg.delete_integration(&tts).expect("delete"));
    assert_eq!(reg.integration_remote_password(&tts).expect("read"), None);
}

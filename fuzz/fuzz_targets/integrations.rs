//! MQTT messages from a network server's integration (`integrations::parse`): ChirpStack v4 and The Things
//! Stack v3 events, a topic and a JSON body. Input: one byte choosing the server (low bit), the topic up to the
//! first `\n`, then the payload, so seeds can be real events under their real topics.
#![no_main]

use bydata_ingest::integrations::{self, Event, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let kind = if choice & 1 == 0 {
        Kind::Chirpstack
    } else {
        Kind::Tts
    };
    let (topic, payload) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    // MQTT topics are UTF-8 (the client refuses anything else before the parser sees it).
    let Ok(topic) = std::str::from_utf8(topic) else {
        return;
    };
    match integrations::parse(kind, topic, payload) {
        Ok(Event::Uplink(up)) => {
            assert!(up.f_port != Some(0), "FPort 0 is no application payload");
            if kind == Kind::Chirpstack {
                assert!(
                    topic
                        .to_ascii_lowercase()
                        .contains(&up.dev_eui.to_string().to_ascii_lowercase())
                );
            }
        }
        Ok(Event::Ignored { .. }) => {}
        Err(e) => {
            let _ = (e.code(), e.to_string());
        }
    }
});

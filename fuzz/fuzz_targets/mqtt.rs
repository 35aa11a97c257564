//! The MQTT edge: the first bytes of a connection as the edge parses its CONNECT (3.1.1 or 5; anyone on the
//! network sends these), and the packets after an authenticated CONNECT as the protocol wrappers handle them
//! (PUBLISH to any topic, SUBSCRIBE to any filter, sizes, QoS, MQTT 5 properties and topic aliases, garbage) —
//! journaling uplinks, refusing the rest.
#![no_main]

use bydata_broker::fuzzing::{Harness, connect};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<(tempfile::TempDir, Harness)> = OnceLock::new();
    &HARNESS
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let harness = Harness::new(dir.path());
            (dir, harness)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    match mode & 3 {
        1 => harness().session(bytes),
        3 => harness().session_v5(bytes),
        _ => connect(bytes),
    }
});

//! Semtech UDP packet-forwarder datagrams, exactly as a gateway (or anyone on the network) sends them.
#![no_main]

use bydata_ingest::lorawan::semtech::{self, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|datagram: &[u8]| {
    let Ok(packet) = semtech::parse(datagram) else {
        return;
    };
    // What the listener echoes back must be what came in.
    assert_eq!(packet.token().to_be_bytes(), datagram[1..3]);
    assert_eq!(packet.gateway().to_string().len(), 16);
    if let Packet::PushData { json, .. } = &packet {
        for rxpk in json.rxpk.iter().flatten() {
            if let Some(size) = rxpk.size {
                assert_eq!(usize::from(size), rxpk.data.len());
            }
        }
    }
});

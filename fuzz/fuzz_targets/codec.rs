//! Uplink payloads as the ingest pipeline decodes them (`codec::decode`): SenML JSON, flat JSON, the `auto`
//! choice between them, and Cayenne LPP, with the receive time somewhere from 2000 to 2136. An accepted
//! message must hold what `decode` promises: up to MAX_READINGS finite readings and up to MAX_TEXT_FIELDS texts
//! of at most MAX_TEXT_BYTES (at least one of either), none too old or too far ahead, no series and time twice.
#![no_main]

use bydata_ingest::codec::{
    self, DEFAULT_MIN_TIME, DecodeContext, MAX_READINGS, MAX_TEXT_BYTES, MAX_TEXT_FIELDS,
};
use bydata_schemas::Codec;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Some((&[choice, s0, s1, s2, s3], payload)) = data.split_first_chunk::<5>() else {
        return;
    };
    let codec = match choice & 3 {
        0 => Codec::Auto,
        1 => Codec::Senml,
        2 => Codec::Json,
        _ => Codec::Cayenne,
    };
    let received_at =
        DEFAULT_MIN_TIME + i64::from(u32::from_le_bytes([s0, s1, s2, s3])) * 1_000_000_000;
    let ctx = DecodeContext::new(received_at);
    if matches!(codec, Codec::Cayenne) {
        let _ = codec::cayenne::decode(payload);
    }
    let Ok(decoded) = codec::decode(&codec, payload, &ctx) else {
        return;
    };
    let (readings, state) = (&decoded.readings, &decoded.state);
    assert!(readings.len() <= MAX_READINGS && state.len() <= MAX_TEXT_FIELDS);
    assert!(!readings.is_empty() || !state.is_empty());
    let mut seen = HashSet::new();
    for r in readings {
        assert!(r.value.is_finite());
        assert!(r.time >= ctx.min_time && r.time <= received_at + ctx.max_future);
        assert!(seen.insert((r.measurement.as_str(), r.time)));
    }
    for t in state {
        assert!(t.value.len() <= MAX_TEXT_BYTES);
        assert!(t.time >= ctx.min_time && t.time <= received_at + ctx.max_future);
    }
});

//! Uplink payloads as the ingest pipeline decodes them (`codec::decode`): SenML JSON, flat JSON, the `auto`
//! choice between them, and Cayenne LPP, with the receive time somewhere from 2000 to 2136. An accepted
//! message must hold what `decode` promises: 1 to MAX_READINGS finite readings, none too old or too far ahead,
//! no series and time twice.
#![no_main]

use bydata_ingest::codec::{self, DEFAULT_MIN_TIME, DecodeContext, MAX_READINGS};
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
    let Ok(readings) = codec::decode(&codec, payload, &ctx) else {
        return;
    };
    assert!((1..=MAX_READINGS).contains(&readings.len()));
    let mut seen = HashSet::new();
    for r in &readings {
        assert!(r.value.is_finite());
        assert!(r.time >= ctx.min_time && r.time <= received_at + ctx.max_future);
        assert!(seen.insert((r.measurement.as_str(), r.time)));
    }
});

//! Bodies of `POST /api/v2/write` through the handler's own reading (`ingest::line_protocol::parse_body`: line
//! by line with its series cache, names validated, points grouped by series key), checked against the plain reading
//! of the same body (`line_protocol::parse`, one line at a time): the same bodies are refused, each series key
//! comes once (the store's `write_grouped` contract), and every series and time ends with the value written
//! last, as InfluxDB keeps it.
#![no_main]

use bydata_ingest::line_protocol::parse_body;
use bydata_schemas::line_protocol::{self, FieldValue, Precision};
use bydata_schemas::{MeasurementName, SeriesKey};
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, HashSet};

const NOW: i64 = 1_790_000_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let precision =
        [Precision::Ns, Precision::Us, Precision::Ms, Precision::S][usize::from(first & 3)];
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let expected = plain(body, precision);
    let groups = parse_body(body, precision, NOW).map(|body| body.groups);
    assert_eq!(groups.is_ok(), expected.is_some(), "{body:?}: {groups:?}");
    let (Ok(groups), Some(expected)) = (groups, expected) else {
        return;
    };
    let mut seen = HashSet::new();
    let mut stored: BTreeMap<(SeriesKey, i64), u64> = BTreeMap::new();
    for group in groups {
        assert!(
            seen.insert(group.series.clone()),
            "{:?} twice",
            group.series
        );
        for (time, value) in group.points {
            stored.insert((group.series.clone(), time), value.to_bits());
        }
    }
    assert_eq!(stored, expected, "{body:?}");
});

/// What the store should hold after the body, series and time → value bits (the last written wins), or `None`
/// when the body must be refused.
fn plain(body: &str, precision: Precision) -> Option<BTreeMap<(SeriesKey, i64), u64>> {
    let mut stored = BTreeMap::new();
    for line in line_protocol::parse(body, precision).ok()? {
        let measurement = MeasurementName::new(line.measurement.as_str()).ok()?;
        let time = line.time.unwrap_or(NOW);
        for (field, value) in line.fields {
            let value = match value {
                FieldValue::Float(v) => v,
                FieldValue::Integer(v) => v as f64,
                FieldValue::UInteger(v) => v as f64,
                FieldValue::Boolean(b) => f64::from(u8::from(b)),
                FieldValue::String(_) => continue,
            };
            let key = SeriesKey {
                measurement: measurement.clone(),
                tags: line.tags.clone(),
                field: MeasurementName::new(field.as_str()).ok()?,
            };
            stored.insert((key, time), value.to_bits());
        }
    }
    Some(stored)
}

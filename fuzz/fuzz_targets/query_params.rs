//! The query string of `GET /api/v1/query` (`api::fuzzing::query_params`, the handler's own parser), then
//! what the store does with an accepted query before it reads anything: the bucket boundaries. Structure-aware:
//! parameters are mostly known names with values shaped like times and bucket widths, so the fuzzer gets past
//! "unknown parameter" and reaches the combinations. Also `Every` on its own: a width that parses prints as a
//! width that parses to the same.
#![no_main]

use arbitrary::Arbitrary;
use bydata_api::fuzzing::query_params;
use bydata_store::query::{Every, MAX_BUCKETS, bucket_bounds};
use libfuzzer_sys::fuzz_target;

/// The most buckets the target asks `bucket_bounds` for.
const MAX_WALKED_BUCKETS: i128 = 4096;

#[derive(Debug, Arbitrary)]
struct Input {
    now: i64,
    params: Vec<(Key, Value)>,
    every: String,
}

#[derive(Debug, Arbitrary)]
enum Key {
    Measurement,
    Field,
    Device,
    From,
    To,
    Every,
    Fn,
    GroupBy,
    Tz,
    Format,
    Tag(String),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Text(String),
    /// An RFC 3339 time: seconds since the epoch (folded into 1600–2300), nanoseconds and an offset in minutes.
    Time {
        secs: i64,
        nanos: u32,
        offset_minutes: i16,
    },
    /// A bucket width: a number and a unit.
    Width(u32, Unit),
    Zone(Zone),
}

#[derive(Debug, Arbitrary)]
enum Unit {
    S,
    M,
    H,
    D,
    W,
    Mo,
    Y,
}

#[derive(Debug, Arbitrary)]
enum Zone {
    Utc,
    Copenhagen,
    Kolkata,
    Chatham,
    LordHowe,
    Apia,
}

fuzz_target!(|input: Input| {
    let pairs: Vec<(String, String)> = input
        .params
        .iter()
        .map(|(k, v)| (key(k), value(v)))
        .collect();
    if let Ok(query) = query_params(&pairs, input.now) {
        assert!(query.from < query.to);
        // bucket_bounds walks the range bucket by bucket (up to MAX_BUCKETS, about 0.1 s here with calendar
        // widths), which held the campaign to a few hundred inputs a second: longer ranges are left to its unit
        // tests.
        if let Some(every) = query.every
            && approximate_buckets(query.from, query.to, every) <= MAX_WALKED_BUCKETS
            && let Ok(bounds) = bucket_bounds(query.from, query.to, every, query.tz)
        {
            assert!(bounds.len() >= 2 || (bounds.len() == 1 && bounds[0] >= query.to));
            assert!(bounds.len() <= MAX_BUCKETS + 1);
            assert!(bounds[0] <= query.from);
            assert!(bounds[bounds.len() - 1] >= query.to);
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        }
    }
    if let Ok(every) = input.every.parse::<Every>() {
        assert_eq!(every.to_string().parse::<Every>().ok(), Some(every));
        let _ = every.approximate_secs();
    }
});

fn approximate_buckets(from: i64, to: i64, every: Every) -> i128 {
    let width = i128::from(every.approximate_secs().max(1)) * 1_000_000_000;
    (i128::from(to) - i128::from(from)) / width
}

fn key(key: &Key) -> String {
    match key {
        Key::Measurement => "measurement".into(),
        Key::Field => "field".into(),
        Key::Device => "device".into(),
        Key::From => "from".into(),
        Key::To => "to".into(),
        Key::Every => "every".into(),
        Key::Fn => "fn".into(),
        Key::GroupBy => "group_by".into(),
        Key::Tz => "tz".into(),
        Key::Format => "format".into(),
        Key::Tag(k) => format!("tag.{k}"),
        Key::Other(k) => k.clone(),
    }
}

fn value(value: &Value) -> String {
    match value {
        Value::Text(s) => s.clone(),
        Value::Time {
            secs,
            nanos,
            offset_minutes,
        } => {
            // Years 1600 to 2300: around both ends of what nanoseconds in an i64 can hold (1677–2262).
            const YEAR: i64 = 31_556_952;
            let secs = secs.rem_euclid(700 * YEAR) - 370 * YEAR;
            let (day_secs, day) = (secs.rem_euclid(86_400), secs.div_euclid(86_400));
            let (y, m, d) = civil_from_days(day);
            let offset = i32::from(*offset_minutes) % (24 * 60);
            let sign = if offset < 0 { '-' } else { '+' };
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}{sign}{:02}:{:02}",
                day_secs / 3600,
                day_secs / 60 % 60,
                day_secs % 60,
                nanos % 1_000_000_000,
                offset.abs() / 60,
                offset.abs() % 60,
            )
        }
        Value::Width(n, unit) => {
            let unit = match unit {
                Unit::S => "s",
                Unit::M => "m",
                Unit::H => "h",
                Unit::D => "d",
                Unit::W => "w",
                Unit::Mo => "mo",
                Unit::Y => "y",
            };
            format!("{n}{unit}")
        }
        Value::Zone(zone) => match zone {
            Zone::Utc => "UTC",
            Zone::Copenhagen => "Europe/Copenhagen",
            Zone::Kolkata => "Asia/Kolkata",
            Zone::Chatham => "Pacific/Chatham",
            Zone::LordHowe => "Australia/Lord_Howe",
            Zone::Apia => "Pacific/Apia",
        }
        .into(),
    }
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

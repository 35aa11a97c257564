//! Pure device models: state + seeded RNG in, flat JSON payload out. No I/O and no clock — the caller
//! passes the sample time, so a model fed the same seed and the same times yields the same payloads.
//!
//! Daily patterns use Europe/Copenhagen local time approximated as a fixed UTC+1: daylight saving time
//! is ignored, so in summer the patterns run one hour early by the wall clock. That is good enough for
//! load and dashboard realism and keeps the models free of a time-zone database.

mod climate;
mod meter;
mod traffic;

pub use climate::BuildingClimate;
pub use meter::ElectricityMeter;
pub use traffic::TrafficCounter;

use bydata_schemas::{UnixNanos, format_rfc3339};
use chrono::{Datelike, TimeZone, Timelike, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use std::fmt;

pub(crate) const NANOS_PER_SEC: f64 = 1e9;
pub(crate) const NANOS_PER_HOUR: f64 = 3600.0 * NANOS_PER_SEC;
/// Fixed offset standing in for Europe/Copenhagen (CET); DST is ignored on purpose, see the module docs.
const LOCAL_OFFSET_NANOS: i64 = 3600 * 1_000_000_000;

/// The kinds of device the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Indoor climate sensor in an office building: temperature, CO₂, humidity.
    Climate,
    /// A building's electricity meter: cumulative energy and current power.
    Meter,
    /// A road-side vehicle counter.
    Traffic,
}

impl DeviceKind {
    /// All kinds, in the order a fleet assigns them round-robin.
    pub const ALL: [DeviceKind; 3] = [DeviceKind::Climate, DeviceKind::Meter, DeviceKind::Traffic];

    /// The kind's slug as used in device ids (`sim-meter-3`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Climate => "climate",
            DeviceKind::Meter => "meter",
            DeviceKind::Traffic => "traffic",
        }
    }

    /// The slug of the bydata domain a device of this kind is registered under (a valid [`Domain`]).
    pub fn domain(self) -> &'static str {
        match self {
            DeviceKind::Climate => "building",
            DeviceKind::Meter => "energy",
            DeviceKind::Traffic => "mobility",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sample of a device: its measurements (in a stable order) and the time they were taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub time: UnixNanos,
    pub values: Vec<(&'static str, f64)>,
}

impl Sample {
    /// The flat JSON object bydata accepts on `devices/{id}/up`: `{"temperature": 21.5, …, "time": "…"}`.
    /// Whole numbers are written as JSON integers (counts and ppm read naturally); a non-finite value,
    /// which the models never produce, would be written as `null` rather than as invalid JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for (name, value) in &self.values {
            let number = if value.fract() == 0.0 && value.abs() < 9.0e15 {
                Some(serde_json::Number::from(*value as i64))
            } else {
                serde_json::Number::from_f64(*value)
            };
            object.insert(
                (*name).to_owned(),
                number.map_or(serde_json::Value::Null, serde_json::Value::Number),
            );
        }
        object.insert(
            "time".to_owned(),
            serde_json::Value::String(format_rfc3339(self.time)),
        );
        serde_json::Value::Object(object)
    }

    /// [`Sample::to_json`] as bytes, ready to publish.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// The value of one measurement, if the sample has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// A device model of any kind: what the fleet runner drives.
#[derive(Debug)]
pub enum DeviceModel {
    Climate(BuildingClimate),
    Meter(ElectricityMeter),
    Traffic(TrafficCounter),
}

impl DeviceModel {
    /// A model of `kind` whose parameters and noise come from `rng`.
    pub fn new(kind: DeviceKind, rng: StdRng) -> Self {
        match kind {
            DeviceKind::Climate => DeviceModel::Climate(BuildingClimate::new(rng)),
            DeviceKind::Meter => DeviceModel::Meter(ElectricityMeter::new(rng)),
            DeviceKind::Traffic => DeviceModel::Traffic(TrafficCounter::new(rng)),
        }
    }

    pub fn kind(&self) -> DeviceKind {
        match self {
            DeviceModel::Climate(_) => DeviceKind::Climate,
            DeviceModel::Meter(_) => DeviceKind::Meter,
            DeviceModel::Traffic(_) => DeviceKind::Traffic,
        }
    }

    /// Continues from values a previous run stored (the latest of each measurement, at `time`): a meter's
    /// counter carries on from its last reading instead of starting again.
    pub fn resume(&mut self, time: UnixNanos, values: &[(String, f64)]) {
        if let DeviceModel::Meter(m) = self
            && let Some((_, kwh)) = values.iter().find(|(name, _)| name == "energy_kwh")
        {
            m.resume(time, *kwh);
        }
    }

    /// The sample at `time`. Models are stateful (a meter's counter, a room's thermal lag), so samples are
    /// meant to be asked for in increasing time order; an earlier time is treated as "no time passed".
    pub fn sample(&mut self, time: UnixNanos) -> Sample {
        match self {
            DeviceModel::Climate(m) => m.sample(time),
            DeviceModel::Meter(m) => m.sample(time),
            DeviceModel::Traffic(m) => m.sample(time),
        }
    }
}

/// Local (UTC+1) calendar facts a daily pattern needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalTime {
    /// Hours since local midnight, fractional: 7.5 is 07:30.
    pub(crate) hour: f64,
    pub(crate) weekend: bool,
    /// 0-based day of the year.
    pub(crate) day_of_year: u32,
}

pub(crate) fn local_time(t: UnixNanos) -> LocalTime {
    let local = Utc.timestamp_nanos(t.saturating_add(LOCAL_OFFSET_NANOS));
    let hour = f64::from(local.hour())
        + f64::from(local.minute()) / 60.0
        + f64::from(local.second()) / 3600.0;
    LocalTime {
        hour,
        weekend: local.weekday().number_from_monday() >= 6,
        day_of_year: local.ordinal0(),
    }
}

/// 0 below `edge0`, 1 above `edge1`, a smooth S-curve between.
pub(crate) fn smoothstep(edge0: f64, edge1: f64, x: f64) -> f64 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Office presence on a weekday: arriving 7–9, leaving 16–18; nobody at weekends.
pub(crate) fn occupancy(lt: LocalTime) -> f64 {
    if lt.weekend {
        0.0
    } else {
        smoothstep(7.0, 9.0, lt.hour) * (1.0 - smoothstep(16.0, 18.0, lt.hour))
    }
}

/// A standard normal variate (Box–Muller; `rand_distr` is not a workspace dependency).
pub(crate) fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson variate with the given mean: exact (Knuth) for small means, normal approximation above 30.
pub(crate) fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut k = 0u64;
        let mut p = 1.0;
        loop {
            p *= rng.r#gen::<f64>();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }
    (mean + mean.sqrt() * gaussian(rng)).round().max(0.0) as u64
}

/// ∫ f dt over [t0, t1] in (f's unit)·seconds, midpoint rule on steps of at most 5 minutes (at most 4096
/// steps, so a huge gap costs bounded work). Zero for an empty or reversed interval.
pub(crate) fn integrate(t0: UnixNanos, t1: UnixNanos, f: impl Fn(UnixNanos) -> f64) -> f64 {
    if t1 <= t0 {
        return 0.0;
    }
    let span = (t1 - t0) as f64;
    let steps = (span / (300.0 * NANOS_PER_SEC)).ceil().clamp(1.0, 4096.0);
    let h = span / steps;
    let mut sum = 0.0;
    for i in 0..steps as i64 {
        let mid = t0 + (h * (i as f64 + 0.5)) as i64;
        sum += f(mid);
    }
    sum * h / NANOS_PER_SEC
}

#[cfg(test)]
pub(crate) mod testing {
    use bydata_schemas::{UnixNanos, parse_rfc3339};

    /// Monday 2026-11-23 00:00 local (UTC+1).
    pub(crate) fn monday_midnight() -> UnixNanos {
        parse_rfc3339("2026-11-23T00:00:00+01:00").expect("valid time")
    }

    pub(crate) const MINUTE: i64 = 60 * 1_000_000_000;
    pub(crate) const HOUR: i64 = 60 * MINUTE;
    pub(crate) const DAY: i64 = 24 * HOUR;
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use bydata_schemas::{Domain, parse_rfc3339};
    use rand::SeedableRng;

    #[test]
    fn domains_are_valid() {
        for kind in DeviceKind::ALL {
            assert!(Domain::new(kind.domain()).is_ok(), "{kind}");
        }
    }

    #[test]
    fn local_time_is_utc_plus_one() {
        let lt = local_time(monday_midnight() + 7 * HOUR + 30 * MINUTE);
        assert!((lt.hour - 7.5).abs() < 1e-9);
        assert!(!lt.weekend);
        assert!(
            local_time(monday_midnight() + 5 * DAY + HOUR).weekend,
            "Saturday"
        );
        assert!(local_time(monday_midnight() - HOUR).weekend, "Sunday 23:00");
    }

    #[test]
    fn poisson_mean_is_about_right() {
        let mut rng = StdRng::seed_from_u64(1);
        for mean in [0.5, 4.0, 25.0, 200.0] {
            let n = 4000;
            let total: u64 = (0..n).map(|_| poisson(&mut rng, mean)).sum();
            let avg = total as f64 / f64::from(n);
            assert!(
                (avg - mean).abs() < 0.1 * mean + 0.1,
                "mean {mean}: got {avg}"
            );
        }
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
    }

    #[test]
    fn integrate_constant() {
        let t0 = parse_rfc3339("2026-01-01T00:00:00Z").expect("valid");
        let got = integrate(t0, t0 + 2 * HOUR, |_| 3.0);
        assert!((got - 3.0 * 7200.0).abs() < 1e-6);
        assert_eq!(integrate(t0, t0, |_| 3.0), 0.0);
        assert_eq!(integrate(t0 + 1, t0, |_| 3.0), 0.0);
    }

    #[test]
    fn sample_json_shape() {
        let s = Sample {
            time: monday_midnight(),
            values: vec![("vehicles", 12.0), ("temperature", 21.25)],
        };
        let v = s.to_json();
        assert_eq!(v["vehicles"], serde_json::json!(12));
        assert_eq!(v["temperature"], serde_json::json!(21.25));
        assert_eq!(v["time"], serde_json::json!("2026-11-22T23:00:00Z"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use bydata_schemas::parse_rfc3339;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn run(kind: DeviceKind, seed: u64, start: UnixNanos, steps: &[u32]) -> Vec<serde_json::Value> {
        let mut model = DeviceModel::new(kind, StdRng::seed_from_u64(seed));
        let mut t = start;
        steps
            .iter()
            .map(|step| {
                t += i64::from(*step) * 1_000_000_000;
                model.sample(t).to_json()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn payloads_are_flat_finite_and_replayable(
            kind in prop::sample::select(DeviceKind::ALL.to_vec()),
            seed in any::<u64>(),
            // 2000–2100, any time of day
            start_s in 946_684_800i64..4_102_444_800,
            steps in prop::collection::vec(0u32..7_200, 1..40),
        ) {
            let start = start_s * 1_000_000_000;
            let first = run(kind, seed, start, &steps);
            prop_assert_eq!(&first, &run(kind, seed, start, &steps));
            for payload in &first {
                // Through bytes, as a subscriber sees it.
                let text = payload.to_string();
                let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
                let object = parsed.as_object().expect("a JSON object");
                let time = object.get("time").and_then(|t| t.as_str()).expect("a time");
                prop_assert!(parse_rfc3339(time).is_ok(), "{}", time);
                prop_assert!(object.len() >= 2);
                for (key, value) in object {
                    if key != "time" {
                        let number = value.as_f64();
                        prop_assert!(number.is_some_and(f64::is_finite), "{} = {}", key, value);
                    }
                }
            }
        }
    }
}

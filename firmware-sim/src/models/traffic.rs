use super::{LocalTime, Sample, integrate, local_time, poisson, smoothstep};
use bydata_schemas::UnixNanos;
use rand::Rng;
use rand::rngs::StdRng;

/// The interval a counter's first sample covers, as it has no previous sample to count from.
const FIRST_INTERVAL_NANOS: i64 = 60 * 1_000_000_000;

/// A road-side counter: `vehicles`, the number that passed since the previous sample (an integer).
///
/// The flow (vehicles per hour) has weekday rush-hour peaks around 07:45 and 16:15, a daytime plateau
/// and a near-empty night; weekends have one broad midday hump. A seeded scale (0.5–1.5) makes some sites
/// busier than others, and the count in an interval is Poisson-distributed around the flow's integral.
#[derive(Debug)]
pub struct TrafficCounter {
    rng: StdRng,
    scale: f64,
    last: Option<UnixNanos>,
}

fn bump(x: f64, centre: f64, width: f64) -> f64 {
    let z = (x - centre) / width;
    (-0.5 * z * z).exp()
}

impl TrafficCounter {
    pub fn new(mut rng: StdRng) -> Self {
        Self {
            scale: rng.gen_range(0.5..1.5),
            rng,
            last: None,
        }
    }

    /// The expected flow at `time`, in vehicles per hour.
    pub fn flow_per_hour(&self, time: UnixNanos) -> f64 {
        let LocalTime { hour, weekend, .. } = local_time(time);
        let flow = if weekend {
            15.0 + 500.0 * bump(hour, 13.0, 3.0)
                + 100.0 * smoothstep(8.0, 11.0, hour) * (1.0 - smoothstep(20.0, 23.0, hour))
        } else {
            15.0 + 850.0 * bump(hour, 7.75, 0.9)
                + 950.0 * bump(hour, 16.25, 1.1)
                + 450.0 * smoothstep(6.0, 9.0, hour) * (1.0 - smoothstep(18.0, 22.0, hour))
        };
        flow * self.scale
    }

    pub fn sample(&mut self, time: UnixNanos) -> Sample {
        let from = match self.last {
            Some(last) => last,
            None => time.saturating_sub(FIRST_INTERVAL_NANOS),
        };
        let mean = integrate(from, time, |t| self.flow_per_hour(t)) / 3600.0;
        let vehicles = poisson(&mut self.rng, mean);
        self.last = Some(self.last.map_or(time, |last| last.max(time)));
        Sample {
            time,
            values: vec![("vehicles", vehicles as f64)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rush_hour_beats_three_am() {
        for seed in 0..20 {
            let mut model = TrafficCounter::new(StdRng::seed_from_u64(seed));
            let start = monday_midnight();
            let mut rush = 0u64;
            let mut night = 0u64;
            for i in 0..(5 * DAY / (5 * MINUTE)) {
                let t = start + i * 5 * MINUTE;
                let s = model.sample(t);
                let v = s.get("vehicles").unwrap_or(f64::NAN);
                assert!(v >= 0.0 && v.fract() == 0.0, "{v}");
                let hour = local_time(t).hour;
                if (7.5..8.5).contains(&hour) || (16.0..17.0).contains(&hour) {
                    rush += v as u64;
                } else if (3.0..4.0).contains(&hour) {
                    night += v as u64;
                }
            }
            // Equal spans (5 × 1 h for night vs 5 × 2 h for rush): compare per hour.
            assert!(
                rush as f64 / 10.0 > 10.0 * (night as f64 / 5.0).max(1.0),
                "seed {seed}: {rush} vs {night}"
            );
        }
    }

    #[test]
    fn deterministic_and_interval_sensitive() {
        let run = |seed| {
            let mut model = TrafficCounter::new(StdRng::seed_from_u64(seed));
            (0..200)
                .map(|i| model.sample(monday_midnight() + i * 7 * MINUTE))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}

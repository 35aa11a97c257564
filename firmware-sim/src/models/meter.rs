use super::{NANOS_PER_SEC, Sample, gaussian, integrate, local_time, smoothstep};
use bydata_schemas::UnixNanos;
use rand::Rng;
use rand::rngs::StdRng;

const JOULES_PER_KWH: f64 = 3.6e6;

/// An office building's electricity meter: `energy_kwh`, a cumulative counter that never decreases, and
/// `power_w`, the average draw over the interval since the previous sample (so the two always agree:
/// `Δenergy_kwh = power_w · Δt`).
///
/// The load profile has a seeded base load (2–6 kW, nights), a working-day peak (06–19, 2.5–4× the base
/// on top) and a much smaller daytime bump at weekends. Each interval's consumption is the integral of the
/// profile times ±3 % noise.
#[derive(Debug)]
pub struct ElectricityMeter {
    rng: StdRng,
    base_w: f64,
    peak_w: f64,
    weekend_factor: f64,
    energy_kwh: f64,
    last: Option<UnixNanos>,
}

impl ElectricityMeter {
    pub fn new(mut rng: StdRng) -> Self {
        let base_w = rng.gen_range(2_000.0..6_000.0);
        Self {
            base_w,
            peak_w: base_w * rng.gen_range(2.5..4.0),
            weekend_factor: rng.gen_range(0.15..0.3),
            energy_kwh: rng.gen_range(1_000.0..50_000.0),
            rng,
            last: None,
        }
    }

    /// Sets the counter to a reading taken at `time` (a restarted simulator continuing a stored series).
    pub fn resume(&mut self, time: UnixNanos, energy_kwh: f64) {
        if energy_kwh.is_finite() && energy_kwh >= 0.0 {
            self.energy_kwh = energy_kwh;
            self.last = Some(time);
        }
    }

    /// The noise-free load in watts at `time`.
    pub fn profile_w(&self, time: UnixNanos) -> f64 {
        let lt = local_time(time);
        let day = smoothstep(6.0, 8.0, lt.hour) * (1.0 - smoothstep(17.0, 19.0, lt.hour));
        let factor = if lt.weekend { self.weekend_factor } else { 1.0 };
        self.base_w + self.peak_w * factor * day
    }

    pub fn sample(&mut self, time: UnixNanos) -> Sample {
        let noise = (1.0 + 0.03 * gaussian(&mut self.rng)).clamp(0.9, 1.1);
        let power_w = match self.last {
            Some(last) if time > last => {
                let joules = integrate(last, time, |t| self.profile_w(t)) * noise;
                self.energy_kwh += joules / JOULES_PER_KWH;
                joules / ((time - last) as f64 / NANOS_PER_SEC)
            }
            // First sample, or no time has passed: nothing to add, report the present draw.
            _ => self.profile_w(time) * noise,
        };
        self.last = Some(self.last.map_or(time, |last| last.max(time)));
        Sample {
            time,
            values: vec![
                // Rounding is monotone, so the rounded counter never decreases either.
                ("energy_kwh", (self.energy_kwh * 1000.0).round() / 1000.0),
                ("power_w", (power_w * 10.0).round() / 10.0),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn monotone_over_a_week_with_uneven_steps() {
        for seed in 0..10 {
            let mut model = ElectricityMeter::new(StdRng::seed_from_u64(seed));
            let mut steps = StdRng::seed_from_u64(seed + 100);
            let mut t = monday_midnight();
            let end = t + 7 * DAY;
            let mut previous = f64::MIN;
            while t < end {
                let s = model.sample(t);
                let e = s.get("energy_kwh").unwrap_or(f64::NAN);
                assert!(e >= previous, "seed {seed}: {e} < {previous}");
                assert!(s.get("power_w").unwrap_or(-1.0) > 0.0);
                previous = e;
                t += steps.gen_range(0..30 * MINUTE);
            }
        }
    }

    #[test]
    fn increments_agree_with_power_and_profile() {
        let mut model = ElectricityMeter::new(StdRng::seed_from_u64(3));
        let start = monday_midnight();
        let first = model.sample(start);
        let mut previous = first.get("energy_kwh").unwrap_or(f64::NAN);
        let mut daily = [0.0; 7];
        for i in 1..=7 * 24 * 4 {
            let s = model.sample(start + i * 15 * MINUTE);
            let e = s.get("energy_kwh").unwrap_or(f64::NAN);
            let expected = s.get("power_w").unwrap_or(f64::NAN) * 900.0 / 3.6e6;
            assert!(
                (e - previous - expected).abs() < 0.002,
                "{e} - {previous} vs {expected}"
            );
            daily[((i - 1) / 96) as usize] += e - previous;
            previous = e;
        }
        // Working days use clearly more than weekends.
        assert!(daily[2] > 1.5 * daily[5], "{daily:?}");
        assert!(daily[2] > 1.5 * daily[6], "{daily:?}");
    }

    #[test]
    fn working_hours_peak_over_night() {
        let model = ElectricityMeter::new(StdRng::seed_from_u64(1));
        let monday = monday_midnight();
        assert!(model.profile_w(monday + 11 * HOUR) > 2.0 * model.profile_w(monday + 3 * HOUR));
        let saturday = monday + 5 * DAY;
        assert!(model.profile_w(monday + 11 * HOUR) > model.profile_w(saturday + 11 * HOUR));
    }
}

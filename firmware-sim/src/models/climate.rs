use super::{LocalTime, NANOS_PER_HOUR, Sample, gaussian, local_time, occupancy, smoothstep};
use bydata_schemas::UnixNanos;
use rand::Rng;
use rand::rngs::StdRng;

/// CO₂ of outdoor air, the level an empty, ventilated room settles to.
const OUTDOOR_CO2_PPM: f64 = 420.0;
/// Thermal time constant of a room: how fast it follows the heating schedule.
const TEMPERATURE_LAG_HOURS: f64 = 0.75;
/// How fast CO₂ follows occupancy (ventilation rate).
const CO2_LAG_HOURS: f64 = 0.5;
/// Time constant of the slow, weather-like drift around the set point.
const DRIFT_HOURS: f64 = 6.0;
const DRIFT_SD: f64 = 0.25;

/// An office room's climate sensor: `temperature` (°C), `co2` (ppm), `humidity` (%RH).
///
/// Heating follows a weekday schedule (about 19 °C at night and at weekends, a seeded set point of
/// 21.5–22.5 °C from 07:30 to 17:00); CO₂ follows occupancy (arrivals 7–9, departures 16–18) up to a
/// seeded peak of 700–1200 ppm. Both approach their targets with a first-order lag, so the state depends
/// on the time since the previous sample; a slow random drift and small sensor noise are added.
#[derive(Debug)]
pub struct BuildingClimate {
    rng: StdRng,
    night_c: f64,
    setpoint_c: f64,
    co2_peak_ppm: f64,
    humidity_base: f64,
    state: Option<ClimateState>,
}

#[derive(Debug, Clone, Copy)]
struct ClimateState {
    time: UnixNanos,
    temperature: f64,
    co2: f64,
    drift: f64,
}

impl BuildingClimate {
    pub fn new(mut rng: StdRng) -> Self {
        Self {
            night_c: rng.gen_range(18.7..19.3),
            setpoint_c: rng.gen_range(21.5..22.5),
            co2_peak_ppm: rng.gen_range(280.0..780.0),
            humidity_base: rng.gen_range(37.0..45.0),
            rng,
            state: None,
        }
    }

    fn heating(&self, lt: LocalTime) -> f64 {
        if lt.weekend {
            0.0
        } else {
            smoothstep(5.5, 7.5, lt.hour) * (1.0 - smoothstep(17.0, 19.0, lt.hour))
        }
    }

    pub fn sample(&mut self, time: UnixNanos) -> Sample {
        let lt = local_time(time);
        let occ = occupancy(lt);
        let target_temperature = self.night_c + self.heating(lt) * (self.setpoint_c - self.night_c);
        let target_co2 = OUTDOOR_CO2_PPM + occ * self.co2_peak_ppm;
        let shock = gaussian(&mut self.rng);
        let next = match self.state {
            None => ClimateState {
                time,
                temperature: target_temperature,
                co2: target_co2,
                drift: shock * DRIFT_SD,
            },
            Some(prev) => {
                let dt_h = (time.saturating_sub(prev.time)).max(0) as f64 / NANOS_PER_HOUR;
                let lag = |tau: f64| (-dt_h / tau).exp();
                let keep = lag(DRIFT_HOURS);
                ClimateState {
                    time: time.max(prev.time),
                    temperature: target_temperature
                        + (prev.temperature - target_temperature) * lag(TEMPERATURE_LAG_HOURS),
                    co2: target_co2 + (prev.co2 - target_co2) * lag(CO2_LAG_HOURS),
                    // Ornstein–Uhlenbeck step: stationary spread DRIFT_SD whatever the sample interval.
                    drift: prev.drift * keep + shock * DRIFT_SD * (1.0 - keep * keep).sqrt(),
                }
            }
        };
        self.state = Some(next);

        let temperature = next.temperature
            + next.drift.clamp(-2.0 * DRIFT_SD, 2.0 * DRIFT_SD)
            + 0.05 * gaussian(&mut self.rng);
        let co2 = (next.co2 + 8.0 * gaussian(&mut self.rng)).max(380.0);
        let season = (std::f64::consts::TAU * f64::from(lt.day_of_year) / 365.0).cos();
        let humidity =
            (self.humidity_base - 4.0 * season + 5.0 * occ + 0.5 * gaussian(&mut self.rng))
                .clamp(30.0, 55.0);

        Sample {
            time,
            values: vec![
                ("temperature", round_to(temperature, 100.0)),
                ("co2", co2.round()),
                ("humidity", round_to(humidity, 10.0)),
            ],
        }
    }
}

fn round_to(value: f64, per_unit: f64) -> f64 {
    (value * per_unit).round() / per_unit
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use rand::SeedableRng;

    fn week(seed: u64, step: i64) -> Vec<Sample> {
        let mut model = BuildingClimate::new(StdRng::seed_from_u64(seed));
        let start = monday_midnight();
        (0..7 * DAY / step)
            .map(|i| model.sample(start + i * step))
            .collect()
    }

    fn mean_at(samples: &[Sample], name: &str, keep: impl Fn(LocalTime) -> bool) -> f64 {
        let picked: Vec<f64> = samples
            .iter()
            .filter(|s| keep(local_time(s.time)))
            .filter_map(|s| s.get(name))
            .collect();
        assert!(!picked.is_empty());
        picked.iter().sum::<f64>() / picked.len() as f64
    }

    #[test]
    fn deterministic() {
        assert_eq!(week(7, 10 * MINUTE), week(7, 10 * MINUTE));
        assert_ne!(week(7, 10 * MINUTE), week(8, 10 * MINUTE));
    }

    #[test]
    fn office_hours_pattern() {
        for seed in 0..20 {
            let samples = week(seed, 10 * MINUTE);
            let office = |lt: LocalTime| !lt.weekend && (10.0..15.0).contains(&lt.hour);
            let night = |lt: LocalTime| (2.0..4.0).contains(&lt.hour);
            let co2_office = mean_at(&samples, "co2", office);
            let co2_night = mean_at(&samples, "co2", night);
            assert!(
                co2_office > co2_night + 200.0,
                "seed {seed}: {co2_office} vs {co2_night}"
            );
            assert!(
                (650.0..1250.0).contains(&co2_office),
                "seed {seed}: {co2_office}"
            );
            assert!(
                (400.0..450.0).contains(&co2_night),
                "seed {seed}: {co2_night}"
            );

            let t_office = mean_at(&samples, "temperature", office);
            let t_night = mean_at(&samples, "temperature", night);
            assert!((21.0..23.0).contains(&t_office), "seed {seed}: {t_office}");
            assert!((18.3..19.7).contains(&t_night), "seed {seed}: {t_night}");

            for s in &samples {
                let h = s.get("humidity").unwrap_or(f64::NAN);
                assert!((30.0..=55.0).contains(&h), "humidity {h}");
            }
        }
    }
}

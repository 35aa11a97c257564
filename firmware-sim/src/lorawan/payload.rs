//! What the simulated LoRaWAN climate sensors say, and how they put it in bytes.
//!
//! [`ClimateReading`] is one sample of an office room. [`ClimateSensor`] makes them: temperature, CO₂ and
//! humidity from the seeded [`BuildingClimate`] model, and barometric pressure, light and battery voltage from
//! its own seeded RNG (the model has none of those). Two encodings:
//! - [`PayloadFormat::Cayenne`] — Cayenne LPP (myDevices' "Cayenne Low Power Payload"): channel 1 temperature
//!   (0x67, int16, 0.1 °C), 2 relative humidity (0x68, uint8, 0.5 %), 3 barometer (0x73, uint16, 0.1 hPa),
//!   4 illuminance (0x65, uint16, lux), 5 CO₂ as concentration (0x7d, uint16, ppm — the IPSO-derived id
//!   3325 − 3200 that device libraries write and bydata's decoder reads); all big-endian;
//! - [`PayloadFormat::Vendor`] — a vendor-style type–value list, the layout of Elsys' ERS sensors: 0x01
//!   temperature (int16, 0.1 °C), 0x02 humidity (uint8, %), 0x04 light (uint16, lux), 0x06 CO₂ (uint16, ppm),
//!   0x07 battery voltage (uint16, mV); big-endian. The kind of payload a JavaScript codec decodes.
//!
//! Values outside a field's range are clamped to it, never wrapped.
use crate::models::{BuildingClimate, gaussian, local_time, occupancy, smoothstep};
use bydata_schemas::UnixNanos;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One sample of an office room's climate sensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClimateReading {
    /// °C.
    pub temperature: f64,
    /// Relative humidity, %.
    pub humidity: f64,
    /// Barometric pressure, hPa.
    pub pressure: f64,
    /// Illuminance, lux.
    pub light: f64,
    /// CO₂, ppm.
    pub co2: f64,
    /// Battery voltage, mV.
    pub vdd: f64,
}

/// How a sensor encodes its readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadFormat {
    /// Cayenne LPP; bydata decodes it with its built-in `cayenne` codec.
    #[default]
    Cayenne,
    /// The vendor-style type–value list; needs a JavaScript codec.
    Vendor,
}

impl PayloadFormat {
    pub fn encode(self, reading: &ClimateReading) -> Vec<u8> {
        match self {
            PayloadFormat::Cayenne => cayenne(reading),
            PayloadFormat::Vendor => vendor(reading),
        }
    }

    /// The FPort the sensor sends on.
    pub fn fport(self) -> u8 {
        match self {
            PayloadFormat::Cayenne => 1,
            PayloadFormat::Vendor => 5,
        }
    }

    /// The bydata codec that reads the format, if one is built in.
    pub fn builtin_codec(self) -> Option<&'static str> {
        match self {
            PayloadFormat::Cayenne => Some("cayenne"),
            PayloadFormat::Vendor => None,
        }
    }
}

/// `value / step`, rounded and clamped to `[min, max]`.
fn scaled(value: f64, step: f64, min: i64, max: i64) -> i64 {
    let raw = (value / step).round();
    if raw.is_nan() {
        0
    } else {
        (raw as i64).clamp(min, max)
    }
}

fn i16_be(value: f64, step: f64) -> [u8; 2] {
    (scaled(value, step, i16::MIN.into(), i16::MAX.into()) as i16).to_be_bytes()
}

fn u16_be(value: f64, step: f64) -> [u8; 2] {
    (scaled(value, step, 0, u16::MAX.into()) as u16).to_be_bytes()
}

fn u8_of(value: f64, step: f64) -> u8 {
    scaled(value, step, 0, u8::MAX.into()) as u8
}

/// Writes Cayenne LPP records: channel, type, big-endian value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CayenneWriter {
    bytes: Vec<u8>,
}

impl CayenneWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&mut self, channel: u8, data_type: u8, value: &[u8]) -> &mut Self {
        self.bytes.push(channel);
        self.bytes.push(data_type);
        self.bytes.extend_from_slice(value);
        self
    }

    /// Type 0x67: int16, 0.1 °C.
    pub fn temperature(&mut self, channel: u8, celsius: f64) -> &mut Self {
        self.record(channel, 0x67, &i16_be(celsius, 0.1))
    }

    /// Type 0x68: uint8, 0.5 %RH.
    pub fn humidity(&mut self, channel: u8, percent: f64) -> &mut Self {
        self.record(channel, 0x68, &[u8_of(percent, 0.5)])
    }

    /// Type 0x73: uint16, 0.1 hPa.
    pub fn barometer(&mut self, channel: u8, hpa: f64) -> &mut Self {
        self.record(channel, 0x73, &u16_be(hpa, 0.1))
    }

    /// Type 0x65: uint16, lux.
    pub fn illuminance(&mut self, channel: u8, lux: f64) -> &mut Self {
        self.record(channel, 0x65, &u16_be(lux, 1.0))
    }

    /// Type 0x7d: uint16, ppm.
    pub fn concentration(&mut self, channel: u8, ppm: f64) -> &mut Self {
        self.record(channel, 0x7d, &u16_be(ppm, 1.0))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The Cayenne LPP payload of a reading (19 bytes); see the module docs for the channels.
pub fn cayenne(reading: &ClimateReading) -> Vec<u8> {
    let mut writer = CayenneWriter::new();
    writer
        .temperature(1, reading.temperature)
        .humidity(2, reading.humidity)
        .barometer(3, reading.pressure)
        .illuminance(4, reading.light)
        .concentration(5, reading.co2);
    writer.into_bytes()
}

/// The vendor-style payload of a reading (14 bytes); see the module docs for the types.
pub fn vendor(reading: &ClimateReading) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    out.push(0x01);
    out.extend_from_slice(&i16_be(reading.temperature, 0.1));
    out.push(0x02);
    out.push(u8_of(reading.humidity, 1.0));
    out.push(0x04);
    out.extend_from_slice(&u16_be(reading.light, 1.0));
    out.push(0x06);
    out.extend_from_slice(&u16_be(reading.co2, 1.0));
    out.push(0x07);
    out.extend_from_slice(&u16_be(reading.vdd, 1.0));
    out
}

/// Sea-level pressure the weather drifts around, hPa.
const MEAN_PRESSURE_HPA: f64 = 1013.0;
/// A fresh lithium cell.
const FULL_BATTERY_MV: f64 = 3600.0;

/// A seeded office-room sensor: [`BuildingClimate`] for temperature, CO₂ and humidity, plus pressure, light
/// and battery. Like the models it is pure: the caller passes the times, in increasing order.
#[derive(Debug)]
pub struct ClimateSensor {
    climate: BuildingClimate,
    rng: StdRng,
    pressure: f64,
    /// Lux from the ceiling lights when the room is in use.
    lights_lux: f64,
    /// Lux through the window at noon.
    daylight_lux: f64,
    battery: f64,
}

impl ClimateSensor {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let climate = BuildingClimate::new(StdRng::seed_from_u64(rng.r#gen()));
        Self {
            climate,
            pressure: MEAN_PRESSURE_HPA + rng.gen_range(-12.0..12.0),
            lights_lux: rng.gen_range(300.0..500.0),
            daylight_lux: rng.gen_range(50.0..400.0),
            battery: FULL_BATTERY_MV - rng.gen_range(0.0..250.0),
            rng,
        }
    }

    pub fn reading(&mut self, time: UnixNanos) -> ClimateReading {
        let sample = self.climate.sample(time);
        let value = |name, default| sample.get(name).unwrap_or(default);
        let lt = local_time(time);
        // Weather: a random walk pulled back to the mean.
        self.pressure += 0.02 * (MEAN_PRESSURE_HPA - self.pressure) + 0.3 * gaussian(&mut self.rng);
        let day = smoothstep(7.0, 10.0, lt.hour) * (1.0 - smoothstep(15.0, 18.0, lt.hour));
        let light = (day * self.daylight_lux
            + occupancy(lt) * self.lights_lux
            + 5.0 * gaussian(&mut self.rng))
        .max(0.0);
        self.battery = (self.battery - 0.01).max(2000.0);
        ClimateReading {
            temperature: value("temperature", 21.0),
            humidity: value("humidity", 40.0),
            pressure: (self.pressure * 10.0).round() / 10.0,
            light: light.round(),
            co2: value("co2", 420.0),
            vdd: (self.battery + 3.0 * gaussian(&mut self.rng)).round(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testing::{HOUR, monday_midnight};
    use proptest::prelude::*;

    #[test]
    fn cayenne_documentation_example() {
        // myDevices' Cayenne LPP documentation, "Device with 2 temperature sensors":
        // 03 67 01 10 05 67 00 FF = channel 3 27.2 °C, channel 5 25.5 °C.
        let mut writer = CayenneWriter::new();
        writer.temperature(3, 27.2).temperature(5, 25.5);
        assert_eq!(
            writer.bytes(),
            [0x03, 0x67, 0x01, 0x10, 0x05, 0x67, 0x00, 0xff]
        );
        // The other types, and the documentation's -4.1 °C on channel 1 (`01 67 FF D7`) on channel 9.
        let mut writer = CayenneWriter::new();
        writer
            .humidity(6, 41.5)
            .illuminance(7, 1000.0)
            .barometer(8, 1013.2)
            .temperature(9, -4.1);
        assert_eq!(
            writer.bytes(),
            [
                0x06, 0x68, 0x53, 0x07, 0x65, 0x03, 0xe8, 0x08, 0x73, 0x27, 0x94, 0x09, 0x67, 0xff,
                0xd7
            ]
        );
    }

    fn reading() -> ClimateReading {
        ClimateReading {
            temperature: 21.56,
            humidity: 41.3,
            pressure: 1008.4,
            light: 412.0,
            co2: 812.0,
            vdd: 3581.0,
        }
    }

    #[test]
    fn cayenne_climate_payload() {
        assert_eq!(
            cayenne(&reading()),
            [
                0x01, 0x67, 0x00, 0xd8, // 21.6 °C
                0x02, 0x68, 0x53, // 41.5 %
                0x03, 0x73, 0x27, 0x64, // 1008.4 hPa
                0x04, 0x65, 0x01, 0x9c, // 412 lx
                0x05, 0x7d, 0x03, 0x2c, // 812 ppm
            ]
        );
    }

    #[test]
    fn vendor_climate_payload() {
        assert_eq!(
            vendor(&reading()),
            [
                0x01, 0x00, 0xd8, // 21.6 °C
                0x02, 0x29, // 41 %
                0x04, 0x01, 0x9c, // 412 lx
                0x06, 0x03, 0x2c, // 812 ppm
                0x07, 0x0d, 0xfd, // 3581 mV
            ]
        );
        let cold = ClimateReading {
            temperature: -12.3,
            ..reading()
        };
        assert_eq!(vendor(&cold)[..3], [0x01, 0xff, 0x85]);
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let wild = ClimateReading {
            temperature: 5000.0,
            humidity: -3.0,
            pressure: f64::NAN,
            light: 1e9,
            co2: -1.0,
            vdd: f64::INFINITY,
        };
        assert_eq!(
            cayenne(&wild),
            [
                1, 0x67, 0x7f, 0xff, 2, 0x68, 0, 3, 0x73, 0, 0, 4, 0x65, 0xff, 0xff, 5, 0x7d, 0, 0
            ]
        );
        assert_eq!(vendor(&wild)[12..], [0xff, 0xff]);
    }

    #[test]
    fn sensor_is_seeded_and_plausible() {
        let run = |seed| {
            let mut sensor = ClimateSensor::new(seed);
            (0..48)
                .map(|i| sensor.reading(monday_midnight() + i * HOUR / 2))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        for r in run(3) {
            assert!((15.0..30.0).contains(&r.temperature), "{r:?}");
            assert!((30.0..=55.0).contains(&r.humidity), "{r:?}");
            assert!((980.0..1050.0).contains(&r.pressure), "{r:?}");
            assert!((0.0..2000.0).contains(&r.light), "{r:?}");
            assert!((380.0..2000.0).contains(&r.co2), "{r:?}");
            assert!((3300.0..3700.0).contains(&r.vdd), "{r:?}");
        }
    }

    proptest! {
        #[test]
        fn payloads_have_fixed_sizes(
            t in any::<f64>(), h in any::<f64>(), p in any::<f64>(),
            l in any::<f64>(), c in any::<f64>(), v in any::<f64>(),
        ) {
            let r = ClimateReading { temperature: t, humidity: h, pressure: p, light: l, co2: c, vdd: v };
            prop_assert_eq!(cayenne(&r).len(), 19);
            prop_assert_eq!(vendor(&r).len(), 14);
        }
    }
}

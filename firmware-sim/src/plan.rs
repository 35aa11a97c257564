//! Which devices a fleet has: ids, kinds, names, tags, places and seeds — all derived from the config's
//! seed, so the same config always describes the same fleet.

use crate::error::{Error, Result};
use crate::models::DeviceKind;
use bydata_schemas::{DeviceId, Domain, Location};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Aarhus city centre.
const AARHUS: (f64, f64) = (56.15, 10.20);

/// Arterial roads into Aarhus, where the traffic counters stand.
const SITES: [&str; 8] = [
    "randersvej",
    "viborgvej",
    "silkeborgvej",
    "skanderborgvej",
    "grenaavej",
    "ringgaden",
    "oester-alle",
    "marselisborg-alle",
];

#[derive(Debug, Clone)]
pub(crate) struct DevicePlan {
    pub(crate) kind: DeviceKind,
    pub(crate) id: DeviceId,
    pub(crate) name: String,
    pub(crate) domain: Domain,
    pub(crate) location: Location,
    pub(crate) tags: BTreeMap<String, String>,
    /// Seed of this device's own RNG (model parameters, noise, start phase).
    pub(crate) seed: u64,
}

/// SplitMix64's finaliser: spreads consecutive indices over the whole seed space.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Devices are spread round-robin over the kinds: climate-1, meter-1, traffic-1, climate-2, …; climate-k
/// and meter-k sit in building `bk` (same place), so a building has both its climate and its consumption.
pub(crate) fn plan(prefix: &str, devices: usize, seed: u64) -> Result<Vec<DevicePlan>> {
    let mut out = Vec::with_capacity(devices);
    for index in 0..devices {
        let kind = DeviceKind::ALL[index % DeviceKind::ALL.len()];
        let number = index / DeviceKind::ALL.len() + 1;
        let raw_id = format!("{prefix}-{kind}-{number}");
        let id = DeviceId::new(raw_id).map_err(|source| Error::IdPrefix {
            prefix: prefix.to_owned(),
            source,
        })?;
        let domain = Domain::new(kind.domain()).map_err(|e| Error::Config {
            reason: format!("built-in domain: {e}"),
        })?;
        let device_seed = seed ^ mix(index as u64);
        let mut tags = BTreeMap::new();
        let (name, place_seed) = match kind {
            DeviceKind::Climate | DeviceKind::Meter => {
                let building = format!("b{number}");
                let what = if kind == DeviceKind::Climate {
                    "Indoor climate"
                } else {
                    "Electricity meter"
                };
                let name = format!("{what}, building {building}");
                tags.insert("building".to_owned(), building);
                (name, seed ^ mix(0xB0_0000_0000 + number as u64))
            }
            DeviceKind::Traffic => {
                let base = SITES[(number - 1) % SITES.len()];
                let round = (number - 1) / SITES.len();
                let site = if round == 0 {
                    base.to_owned()
                } else {
                    format!("{base}-{}", round + 1)
                };
                let name = format!("Traffic counter, {site}");
                tags.insert("site".to_owned(), site);
                (name, device_seed ^ 0x5173)
            }
        };
        let mut place = StdRng::seed_from_u64(place_seed);
        let location = Location::new(
            AARHUS.0 + place.gen_range(-0.03..0.03),
            AARHUS.1 + place.gen_range(-0.06..0.06),
        )
        .map_err(|e| Error::Config {
            reason: format!("generated location: {e}"),
        })?;
        tags.insert("simulated".to_owned(), "true".to_owned());
        out.push(DevicePlan {
            kind,
            id,
            name,
            domain,
            location,
            tags,
            seed: device_seed,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_kinds_and_buildings() {
        let fleet = plan("sim", 7, 42).expect("valid plan");
        let ids: Vec<&str> = fleet.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "sim-climate-1",
                "sim-meter-1",
                "sim-traffic-1",
                "sim-climate-2",
                "sim-meter-2",
                "sim-traffic-2",
                "sim-climate-3"
            ]
        );
        assert_eq!(
            fleet[0].tags.get("building").map(String::as_str),
            Some("b1")
        );
        assert_eq!(
            fleet[0].location, fleet[1].location,
            "climate and meter share building b1"
        );
        assert_eq!(
            fleet[2].tags.get("site").map(String::as_str),
            Some("randersvej")
        );
        assert_eq!(fleet[4].domain.as_str(), "energy");
        for d in &fleet {
            assert!(
                (d.location.lat() - 56.15).abs() < 0.05 && (d.location.lon() - 10.2).abs() < 0.1
            );
        }
        let again = plan("sim", 7, 42).expect("valid plan");
        assert!(
            fleet
                .iter()
                .zip(&again)
                .all(|(a, b)| a.seed == b.seed && a.location == b.location)
        );
    }

    #[test]
    fn bad_prefix_is_an_error() {
        assert!(matches!(plan("Sim/x", 1, 0), Err(Error::IdPrefix { .. })));
    }
}

//! The privacy gate of open datasets, as pure functions: device identifiers become stable public ids, locations
//! are coarsened to a grid, small counts of people or vehicles are suppressed, and time is never finer than the
//! dataset's bucket. A dataset marked as containing personal data is refused unless its rules meet the
//! configured minimums, and the refusal names every rule that falls short.
use crate::{DeviceId, Location};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// What a dataset does to protect the people its data could describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Locations are snapped to the centre of a square grid cell this many metres wide (`None`: exact).
    pub location_grid_m: Option<u32>,
    /// Values of count measurements (people, vehicles) below this are published as suppressed (`None`).
    pub suppress_counts_below: Option<u32>,
    /// The measurements that count people or vehicles.
    #[serde(default)]
    pub count_measurements: Vec<String>,
}

/// The least a dataset marked as containing personal data must do (`[opendata]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Minimums {
    pub location_grid_m: u32,
    pub suppress_counts_below: u32,
    /// The finest time resolution published, seconds.
    pub bucket_secs: u64,
}

impl Default for Minimums {
    fn default() -> Self {
        Self {
            location_grid_m: 250,
            suppress_counts_below: 5,
            bucket_secs: 3600,
        }
    }
}

/// A rule a personal-data dataset falls short of; the text says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    ExactLocations { minimum_m: u32 },
    GridTooFine { grid_m: u32, minimum_m: u32 },
    CountsNotSuppressed { minimum: u32 },
    SuppressionTooLow { below: u32, minimum: u32 },
    BucketTooFine { bucket_secs: u64, minimum_secs: u64 },
    RawPoints { minimum_secs: u64 },
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::ExactLocations { minimum_m } => write!(
                f,
                "locations would be published exactly: set location_grid_m to at least {minimum_m}"
            ),
            Shortfall::GridTooFine { grid_m, minimum_m } => write!(
                f,
                "location_grid_m {grid_m} is finer than the minimum of {minimum_m} m"
            ),
            Shortfall::CountsNotSuppressed { minimum } => write!(
                f,
                "counts of people or vehicles would be published as they are: set suppress_counts_below to at least {minimum}"
            ),
            Shortfall::SuppressionTooLow { below, minimum } => write!(
                f,
                "suppress_counts_below {below} is lower than the minimum of {minimum}"
            ),
            Shortfall::BucketTooFine {
                bucket_secs,
                minimum_secs,
            } => write!(
                f,
                "the dataset's bucket of {bucket_secs} s is finer than the minimum of {minimum_secs} s"
            ),
            Shortfall::RawPoints { minimum_secs } => write!(
                f,
                "raw points would be published: aggregate into buckets of at least {minimum_secs} s"
            ),
        }
    }
}

/// Checks a dataset's rules. Datasets without personal data pass as they are (their rules still apply when
/// publishing); one with personal data must meet every minimum, and all its shortfalls are returned.
/// `bucket_secs` is the dataset's aggregation (`None` for raw points).
pub fn check(
    personal_data: bool,
    rules: &Rules,
    bucket_secs: Option<u64>,
    minimums: &Minimums,
) -> Result<(), Vec<Shortfall>> {
    if !personal_data {
        return Ok(());
    }
    let mut short = Vec::new();
    match rules.location_grid_m {
        None => short.push(Shortfall::ExactLocations {
            minimum_m: minimums.location_grid_m,
        }),
        Some(g) if g < minimums.location_grid_m => short.push(Shortfall::GridTooFine {
            grid_m: g,
            minimum_m: minimums.location_grid_m,
        }),
        Some(_) => {}
    }
    if !rules.count_measurements.is_empty() {
        match rules.suppress_counts_below {
            None => short.push(Shortfall::CountsNotSuppressed {
                minimum: minimums.suppress_counts_below,
            }),
            Some(b) if b < minimums.suppress_counts_below => {
                short.push(Shortfall::SuppressionTooLow {
                    below: b,
                    minimum: minimums.suppress_counts_below,
                })
            }
            Some(_) => {}
        }
    }
    match bucket_secs {
        None => short.push(Shortfall::RawPoints {
            minimum_secs: minimums.bucket_secs,
        }),
        Some(b) if b < minimums.bucket_secs => short.push(Shortfall::BucketTooFine {
            bucket_secs: b,
            minimum_secs: minimums.bucket_secs,
        }),
        Some(_) => {}
    }
    if short.is_empty() { Ok(()) } else { Err(short) }
}

/// A device's stable public id: `d-` and 16 base32 characters of HMAC-SHA256(secret, device id). The same
/// device always gets the same id under one secret (so a dataset's history lines up across releases), and
/// without the secret the id cannot be traced back to the device, its DevEUI or its MQTT id.
pub fn public_id(secret: &[u8; 32], device: &DeviceId) -> String {
    let mac = hmac_sha256(secret, device.as_str().as_bytes());
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits: u128 = 0;
    for b in &mac[..10] {
        bits = (bits << 8) | u128::from(*b);
    }
    let id: String = (0..16)
        .rev()
        .map(|i| char::from(ALPHABET[((bits >> (i * 5)) & 31) as usize]))
        .collect();
    format!("d-{id}")
}

/// A secret of its own for one scope (a personal-data dataset), derived from the instance's: public ids under
/// it cannot be matched with the same device's ids in any other dataset.
pub fn scoped_secret(secret: &[u8; 32], scope: &str) -> [u8; 32] {
    hmac_sha256(secret, format!("bydata public ids for {scope}").as_bytes())
}

/// RFC 2104 HMAC with SHA-256 (the key is 32 bytes, shorter than the block, so it is only padded).
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Metres per degree of latitude (mean; the grid only needs to be consistent, not geodetic).
const M_PER_DEG: f64 = 111_320.0;

/// The centre of the grid cell `grid_m` metres wide that holds `loc`. Cells are square in metres at the
/// cell row's latitude, so every location in a cell maps to the same point, and the point is at most
/// `grid_m / √2` metres from the original.
pub fn coarsen(loc: Location, grid_m: u32) -> Location {
    let g = f64::from(grid_m.max(1));
    let dlat = g / M_PER_DEG;
    let row = (loc.lat() / dlat).floor();
    let lat = ((row + 0.5) * dlat).clamp(-90.0, 90.0);
    // Longitude cells are sized at the row's centre latitude, so the whole row shares one width.
    let dlon = (g / (M_PER_DEG * lat.to_radians().cos().max(1e-6))).min(360.0);
    let col = ((loc.lon() + 180.0) / dlon).floor();
    let lon = ((col + 0.5) * dlon - 180.0).clamp(-180.0, 180.0);
    Location::new(lat, lon).unwrap_or(loc)
}

/// A count published only at or above the threshold; below it, `None` (suppressed).
pub fn suppress(value: f64, below: u32) -> Option<f64> {
    (value >= f64::from(below)).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(grid: Option<u32>, suppress: Option<u32>, counts: bool) -> Rules {
        Rules {
            location_grid_m: grid,
            suppress_counts_below: suppress,
            count_measurements: if counts {
                vec!["people".into()]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn personal_data_must_meet_every_minimum_and_the_refusal_names_each_rule() {
        let m = Minimums::default();
        assert_eq!(check(false, &rules(None, None, true), None, &m), Ok(()));
        assert_eq!(
            check(true, &rules(Some(250), Some(5), true), Some(3600), &m),
            Ok(())
        );
        let short = check(true, &rules(None, Some(3), true), Some(900), &m).expect_err("refused");
        assert_eq!(
            short,
            vec![
                Shortfall::ExactLocations { minimum_m: 250 },
                Shortfall::SuppressionTooLow {
                    below: 3,
                    minimum: 5
                },
                Shortfall::BucketTooFine {
                    bucket_secs: 900,
                    minimum_secs: 3600
                },
            ]
        );
        assert!(
            short[0]
                .to_string()
                .contains("location_grid_m to at least 250")
        );
        let raw = check(true, &rules(Some(1000), None, false), None, &m).expect_err("raw");
        assert_eq!(raw, vec![Shortfall::RawPoints { minimum_secs: 3600 }]);
    }

    #[test]
    fn public_ids_are_stable_secret_dependent_and_say_nothing_of_the_device() {
        let device = DeviceId::new("a840414e91833d5d").expect("id");
        let a = public_id(&[7; 32], &device);
        assert_eq!(a, public_id(&[7; 32], &device));
        assert_ne!(a, public_id(&[8; 32], &device));
        assert_ne!(a, public_id(&[7; 32], &DeviceId::new("other").expect("id")));
        assert!(a.starts_with("d-") && a.len() == 18, "{a}");
        assert!(!a.contains("a840414e"));
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key; with the key zero-padded to 32 bytes HMAC is unchanged
        // (keys shorter than the block are zero-padded by definition), so the published value applies.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn counts_below_the_threshold_are_suppressed() {
        assert_eq!(suppress(4.0, 5), None);
        assert_eq!(suppress(5.0, 5), Some(5.0));
    }

    proptest! {
        #[test]
        fn coarsened_locations_stay_within_a_cell_and_share_its_centre(
            lat in -80.0f64..80.0, lon in -179.0f64..179.0, grid in 10u32..5000,
        ) {
            let loc = Location::new(lat, lon).expect("valid");
            let c = coarsen(loc, grid);
            let dy = (c.lat() - lat) * M_PER_DEG;
            let dx = (c.lon() - lon) * M_PER_DEG * c.lat().to_radians().cos();
            let g = f64::from(grid);
            prop_assert!(dy.abs() <= g / 2.0 + 1e-6, "dy {dy} for grid {grid}");
            prop_assert!(dx.abs() <= g / 2.0 + 1e-3, "dx {dx} for grid {grid}");
            // Idempotent: a cell centre is its own cell's centre.
            let again = coarsen(c, grid);
            prop_assert!((again.lat() - c.lat()).abs() < 1e-9 && (again.lon() - c.lon()).abs() < 1e-9);
        }
    }
}

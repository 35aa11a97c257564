//! Who is in a LoRaWAN fleet: gateways and devices with their EUIs, keys, addresses, places and radio
//! conditions — all derived from the seed, so the same config always describes the same fleet.
//!
//! Key derivation: every identifier and key is `derive(seed, label)`, a stream of SplitMix64 outputs seeded by
//! `seed ⊕ FNV-1a(label)`, where the label names what is derived: `{device id}/dev_eui`, `{device id}/app_key`,
//! `{prefix}-gw-{n}/eui`, `{prefix}/join_eui`, …. Both functions are fixed here (unlike `StdRng`, whose
//! algorithm may change between `rand` versions), so a device keeps its keys across releases, and two fleets
//! with different prefixes or seeds do not share devices. EUIs are locally administered (second bit of the
//! first byte set), so they never collide with a manufacturer's. ABP addresses lie in NetID 000000 (top seven
//! bits zero), as bydata assigns to joining devices.
use super::device::{AppKey, AppSKey, DevAddr, NwkSKey};
use crate::error::{Error, Result};
use crate::plan::mix;
use bydata_schemas::{DeviceId, Eui64, Location};

/// Aarhus city centre.
const AARHUS: (f64, f64) = (56.15, 10.20);
/// The data rates a device may be given (the closer ones to the gateways use the faster).
const DATA_RATES: [&str; 3] = ["SF7BW125", "SF8BW125", "SF9BW125"];

/// `N` bytes derived from `seed` and `label`; see the module docs.
pub(crate) fn derive<const N: usize>(seed: u64, label: &str) -> [u8; N] {
    // FNV-1a, 64 bit.
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let base = seed ^ hash;
    let mut out = [0u8; N];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let word = mix(base.wrapping_add(i as u64)).to_be_bytes();
        chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or_default());
    }
    out
}

fn derive_u64(seed: u64, label: &str) -> u64 {
    u64::from_be_bytes(derive(seed, label))
}

/// A locally administered, unicast EUI-64.
fn local_eui(seed: u64, label: &str) -> Eui64 {
    let mut bytes: [u8; 8] = derive(seed, label);
    bytes[0] = (bytes[0] & 0xfc) | 0x02;
    Eui64::from_bytes(bytes)
}

/// A place within a few kilometres of Aarhus centre.
fn location(seed: u64, label: &str) -> Result<Location> {
    let [a, b, ..]: [u8; 8] = derive(seed, label);
    let unit = |x: u8| f64::from(x) / 255.0 - 0.5;
    Location::new(AARHUS.0 + 0.06 * unit(a), AARHUS.1 + 0.12 * unit(b)).map_err(|e| Error::Config {
        reason: format!("generated location: {e}"),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GatewayPlan {
    pub(crate) eui: Eui64,
    pub(crate) name: String,
    pub(crate) location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Activation {
    Abp {
        dev_addr: DevAddr,
        nwk_s_key: NwkSKey,
        app_s_key: AppSKey,
    },
    Otaa {
        join_eui: Eui64,
        app_key: AppKey,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DevicePlan {
    pub(crate) id: DeviceId,
    pub(crate) name: String,
    pub(crate) dev_eui: Eui64,
    pub(crate) activation: Activation,
    pub(crate) location: Location,
    pub(crate) datr: &'static str,
    /// Mean RSSI (dBm) at which each gateway hears the device, in gateway order.
    pub(crate) rssi: Vec<f64>,
    /// Seed of the device's own randomness: sensor values, DevNonces, radio noise.
    pub(crate) seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FleetPlan {
    pub(crate) gateways: Vec<GatewayPlan>,
    pub(crate) devices: Vec<DevicePlan>,
}

/// Gateways `{prefix}-gw-1..`, then devices `{prefix}-lora-abp-1..` and `{prefix}-lora-otaa-1..`.
pub(crate) fn plan(
    prefix: &str,
    gateways: usize,
    abp: usize,
    otaa: usize,
    seed: u64,
) -> Result<FleetPlan> {
    let gateways = (1..=gateways)
        .map(|n| {
            let label = format!("{prefix}-gw-{n}");
            Ok(GatewayPlan {
                eui: local_eui(seed, &format!("{label}/eui")),
                name: format!("Simulated gateway {n} ({prefix})"),
                location: location(seed, &format!("{label}/location"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let join_eui = local_eui(seed, &format!("{prefix}/join_eui"));
    let kinds = (1..=abp)
        .map(|n| ("abp", n))
        .chain((1..=otaa).map(|n| ("otaa", n)));
    let mut devices = Vec::with_capacity(abp + otaa);
    for (kind, n) in kinds {
        let id = DeviceId::new(format!("{prefix}-lora-{kind}-{n}")).map_err(|source| {
            Error::IdPrefix {
                prefix: prefix.to_owned(),
                source,
            }
        })?;
        let label = |what: &str| format!("{id}/{what}");
        let activation = if kind == "abp" {
            let raw = u32::from_be_bytes(derive(seed, &label("dev_addr"))) & 0x01ff_ffff;
            Activation::Abp {
                dev_addr: DevAddr::new(raw.max(1)),
                nwk_s_key: NwkSKey::new(derive(seed, &label("nwk_s_key"))),
                app_s_key: AppSKey::new(derive(seed, &label("app_s_key"))),
            }
        } else {
            Activation::Otaa {
                join_eui,
                app_key: AppKey::new(derive(seed, &label("app_key"))),
            }
        };
        let radio: [u8; 8] = derive(seed, &label("radio"));
        let rssi: Vec<f64> = (0..gateways.len())
            .map(|g| {
                let [x, ..]: [u8; 1] = derive(seed, &label(&format!("rssi/{g}")));
                -50.0 - 65.0 * f64::from(x) / 255.0
            })
            .collect();
        let best = rssi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // A device far from every gateway needs a slower data rate to be heard.
        let datr = match best {
            b if b > -90.0 => DATA_RATES[usize::from(radio[0] % 2)],
            b if b > -105.0 => DATA_RATES[1],
            _ => DATA_RATES[2],
        };
        devices.push(DevicePlan {
            name: format!("LoRaWAN climate sensor {n} ({})", kind.to_uppercase()),
            dev_eui: local_eui(seed, &label("dev_eui")),
            activation,
            location: location(seed, &label("location"))?,
            datr,
            rssi,
            seed: derive_u64(seed, &label("seed")),
            id,
        });
    }
    Ok(FleetPlan { gateways, devices })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_and_identities_are_deterministic_and_distinct() {
        let fleet = plan("sim", 2, 2, 3, 42).expect("valid plan");
        let ids: Vec<&str> = fleet.devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "sim-lora-abp-1",
                "sim-lora-abp-2",
                "sim-lora-otaa-1",
                "sim-lora-otaa-2",
                "sim-lora-otaa-3"
            ]
        );
        assert_eq!(fleet, plan("sim", 2, 2, 3, 42).expect("valid plan"));
        let other = plan("sim", 2, 2, 3, 43).expect("valid plan");
        assert_ne!(fleet.devices[0].dev_eui, other.devices[0].dev_eui);
        assert_ne!(fleet.gateways[0].eui, other.gateways[0].eui);

        let euis: HashSet<Eui64> = fleet
            .devices
            .iter()
            .map(|d| d.dev_eui)
            .chain(fleet.gateways.iter().map(|g| g.eui))
            .collect();
        assert_eq!(euis.len(), 7, "all EUIs distinct");
        for eui in &euis {
            assert_eq!(
                eui.to_bytes()[0] & 0x03,
                0x02,
                "locally administered unicast: {eui}"
            );
        }
        for d in &fleet.devices {
            assert_eq!(d.rssi.len(), 2);
            assert!(
                d.rssi.iter().all(|r| (-115.0..=-50.0).contains(r)),
                "{:?}",
                d.rssi
            );
            match &d.activation {
                Activation::Abp { dev_addr, .. } => {
                    assert!(
                        dev_addr.get() >> 25 == 0 && dev_addr.get() != 0,
                        "{dev_addr}"
                    );
                }
                Activation::Otaa { join_eui, .. } => {
                    assert_eq!(
                        *join_eui,
                        local_eui(42, "sim/join_eui"),
                        "one JoinEUI per fleet"
                    );
                }
            }
        }
    }

    #[test]
    fn derivation_is_fixed() {
        // Pinned (computed independently from SplitMix64 and FNV-1a): changing `derive` would give every
        // simulated device new keys, and a re-run would no longer match what an earlier run registered.
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(&derive::<16>(0, "sim-lora-abp-1/nwk_s_key")),
            "b3fe64fcb08658d1e6dd22f2d1eaae06"
        );
        assert_eq!(
            hex(&derive::<16>(42, "sim-lora-otaa-1/app_key")),
            "bd3751b9f1574a896892b03c0529031f"
        );
        assert_eq!(
            derive::<4>(3, "x"),
            derive::<8>(3, "x")[..4],
            "shorter is a prefix"
        );
        assert_ne!(derive::<8>(1, "a"), derive::<8>(1, "b"));
    }

    #[test]
    fn bad_prefix_is_an_error() {
        assert!(matches!(
            plan("Sim/x", 1, 1, 0, 0),
            Err(Error::IdPrefix { .. })
        ));
    }
}

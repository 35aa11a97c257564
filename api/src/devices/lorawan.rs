//! The LoRaWAN part of onboarding: activation (ABP keys, OTAA root key, or a network server) checked and
//! turned into what the registry stores.
use crate::Error;
use bydata_schemas::DeviceId;
use serde::Deserialize;

/// `{"activation": "abp", "dev_eui", "dev_addr", "nwk_s_key", "app_s_key"}`; the keys are never shown again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewLorawan {
    /// `abp`, `otaa` or `network_server`.
    #[schema(value_type = crate::openapi::ActivationDoc)]
    pub(super) activation: String,
    /// 16 hex digits.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{16}$")]
    pub(super) dev_eui: bydata_schemas::Eui64,
    pub(super) dev_addr: Option<String>,
    pub(super) nwk_s_key: Option<String>,
    pub(super) app_s_key: Option<String>,
    pub(super) join_eui: Option<String>,
    pub(super) app_key: Option<String>,
    /// For `network_server`: the one integration allowed to deliver this device's uplinks.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub(super) integration: Option<bydata_schemas::IntegrationId>,
}

impl std::fmt::Debug for NewLorawan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLorawan")
            .field("activation", &self.activation)
            .field("dev_eui", &self.dev_eui)
            .field("dev_addr", &self.dev_addr)
            .finish_non_exhaustive()
    }
}

/// `n` bytes from `2n` hex digits, or a 400 naming the field.
fn hex_field<const N: usize>(field: &str, value: Option<&String>) -> Result<[u8; N], Error> {
    let bad = || {
        Error::bad(
            "invalid_lorawan",
            format!("lorawan.{field} must be {} hex digits", 2 * N),
        )
    };
    let text = value.ok_or_else(bad)?;
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

/// The root key and JoinEUI of a new OTAA device.
pub(super) fn otaa_device(
    id: &DeviceId,
    l: &NewLorawan,
) -> Result<bydata_store::OtaaDevice, Error> {
    if l.dev_addr.is_some() || l.nwk_s_key.is_some() || l.app_s_key.is_some() {
        return Err(Error::bad(
            "invalid_lorawan",
            "dev_addr and session keys belong to ABP; an OTAA device has join_eui and app_key and gets its session by joining",
        ));
    }
    Ok(bydata_store::OtaaDevice {
        device: id.clone(),
        dev_eui: l.dev_eui,
        join_eui: bydata_schemas::Eui64::from_bytes(hex_field::<8>(
            "join_eui",
            l.join_eui.as_ref(),
        )?),
        app_key: hex_field::<16>("app_key", l.app_key.as_ref())?,
        dev_nonces: Vec::new(),
    })
}

/// The ABP session of a new LoRaWAN device.
pub(super) fn abp_session(
    id: &DeviceId,
    l: &NewLorawan,
) -> Result<bydata_store::LorawanSession, Error> {
    if l.join_eui.is_some() || l.app_key.is_some() {
        return Err(Error::bad(
            "invalid_lorawan",
            "join_eui and app_key belong to OTAA; an ABP device has dev_addr, nwk_s_key and app_s_key",
        ));
    }
    Ok(bydata_store::LorawanSession {
        device: id.clone(),
        dev_eui: l.dev_eui,
        dev_addr: u32::from_be_bytes(hex_field::<4>("dev_addr", l.dev_addr.as_ref())?),
        nwk_s_key: hex_field::<16>("nwk_s_key", l.nwk_s_key.as_ref())?,
        app_s_key: hex_field::<16>("app_s_key", l.app_s_key.as_ref())?,
        fcnt_up: None,
        fcnt_down: 0,
    })
}

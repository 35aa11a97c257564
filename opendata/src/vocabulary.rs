//! The words a definition may use (EU themes, frequencies, licences) and those it may not (identifying tags,
//! the files' own column names), and the measurements that count people or vehicles.

/// The EU data themes (the Publications Office's data-theme vocabulary, which DCAT-AP-DK uses).
pub(crate) const THEMES: [&str; 13] = [
    "AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI", "SOCI", "TECH",
    "TRAN",
];
/// Update frequencies (the EU frequency vocabulary's common ones).
pub(crate) const FREQUENCIES: [&str; 7] = [
    "CONT",
    "HOURLY",
    "DAILY",
    "WEEKLY",
    "MONTHLY",
    "QUARTERLY",
    "ANNUAL",
];
pub(crate) const LICENCES: [&str; 2] = ["CC0-1.0", "CC-BY-4.0"];

/// Tags that identify a device or a radio, or describe a reception: never a published column. Compared with
/// the tag name folded to lower-case letters and digits (`DevEUI`, `dev-eui` and `dev_eui` are one).
pub(crate) const IDENTIFYING_TAGS: [&str; 33] = [
    "device",
    "deviceid",
    "devicename",
    "deviceeui",
    "devid",
    "id",
    "gateway",
    "gatewayid",
    "gatewayeui",
    "gatewayname",
    "gw",
    "gweui",
    "eui",
    "deveui",
    "devaddr",
    "joineui",
    "appeui",
    "clientid",
    "username",
    "mac",
    "imei",
    "imsi",
    "iccid",
    "serial",
    "serialnumber",
    "rssi",
    "snr",
    "lsnr",
    "frequency",
    "freq",
    "datarate",
    "fcnt",
    "fport",
];
/// Column and property names of the published files.
pub(crate) const COLUMNS: [&str; 9] = [
    "time",
    "measurement",
    "value",
    "unit",
    "suppressed",
    "type",
    "geometry",
    "properties",
    "field",
];
/// Measurements that count people or vehicles whatever a dataset says.
pub(crate) const COUNT_MEASUREMENTS: [&str; 8] = [
    "people",
    "persons",
    "visitors",
    "occupancy",
    "vehicles",
    "cars",
    "bicycles",
    "count",
];

/// 2000-01-01T00:00:00Z: no dataset publishes from before (bounds the periods one run computes).
pub(crate) const MIN_TEMPORAL_FROM: i64 = 946_684_800 * 1_000_000_000;

//! The `*Doc` types: the JSON the handlers answer with (built with `json!`), mirrored for the document only.
//! Permissive on purpose (nullable where a value may be missing, extra properties allowed), so the document
//! never contradicts a real response.
#![allow(dead_code)] // the `*Doc` types exist for their schemas only

use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `{"lat", "lon"}` in WGS 84 degrees.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct LocationDoc {
    #[schema(minimum = -90, maximum = 90)]
    lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    lon: f64,
}

/// A new device's domain: one of `Domain::KNOWN` (so the document, the check and the list cannot drift).
pub(crate) fn domain_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(bydata_schemas::Domain::KNOWN))
        .description(Some(
            "What the device measures for; one of the known domains",
        ))
        .build()
}

/// How a device reaches bydata (`http` is refused: an `mqtt` device pushes over HTTP with the same credentials).
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportDoc {
    Mqtt,
    Lorawan,
    Http,
}

/// How a LoRaWAN device gets its session: its own keys (`abp`), by joining (`otaa`), or an external network
/// server that keeps the keys (`network_server`).
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActivationDoc {
    Abp,
    Otaa,
    NetworkServer,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NetworkServerDoc {
    Chirpstack,
    Tts,
}

/// `inbound`: the network server publishes into bydata's broker; `subscribe`: bydata subscribes to its broker.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ModeDoc {
    Inbound,
    Subscribe,
}

/// The Danish electricity price area.
#[derive(ToSchema, serde::Serialize)]
pub(crate) enum PriceAreaDoc {
    DK1,
    DK2,
}

/// A device as the API shows it.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceDoc {
    id: String,
    name: String,
    /// `mqtt`, `lorawan` or `http`.
    transport: String,
    domain: String,
    location: Option<LocationDoc>,
    tags: BTreeMap<String, String>,
    /// `auto`, `senml`, `json`, `cayenne`, `js:{name}` or `js:{name}@{version}`.
    codec: String,
    /// RFC 3339.
    created_at: String,
    /// Where an MQTT device publishes; null for other transports.
    publish_topic: Option<String>,
}

/// A new device: the device plus, once, its MQTT credentials (`mqtt`) or LoRaWAN summary (`lorawan`).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CreatedDeviceDoc {
    #[schema(inline)]
    #[serde(flatten)]
    device: DeviceDoc,
    mqtt: Option<Value>,
    lorawan: Option<Value>,
    note: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceListDoc {
    devices: Vec<DeviceDoc>,
}

/// `{"time", "reason"}`.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct EventDoc {
    time: String,
    reason: String,
}

/// What a device has sent and how decoding went.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceStatusDoc {
    id: String,
    last_seen: Option<String>,
    last_decoded: Option<String>,
    received: u64,
    decoded: u64,
    rejected: u64,
    values_stored: u64,
    last_error: Option<EventDoc>,
    last_warning: Option<EventDoc>,
    /// `[{"codec", "from", "to", "uplinks"}]`
    decoded_by: Vec<Value>,
    /// The gateways that heard the last LoRaWAN uplink, with their signal.
    last_radio: Vec<Value>,
    /// Fields the device sent as text, kept as its state (`/latest` shows their values) rather than as series.
    state_fields: Vec<String>,
    unverified_attempts: UnverifiedDoc,
}

/// Attempts with the device's identity that could not be verified, since bydata started (kept in memory
/// only: they are not written anywhere, so a stranger cannot fill the disk or the status with them).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct UnverifiedDoc {
    /// MQTT logins with the device's id and a wrong password.
    wrong_password: u64,
    /// LoRaWAN frames or join requests naming the device that could not be verified (a MIC that does not
    /// match, a frame counter too far ahead to check).
    unverified_frames: u64,
    /// When the last one arrived.
    last: Option<String>,
    /// When counting started (bydata's start).
    since: String,
}

/// The answer of `GET /api/v1/query` (JSON).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct QueryAnswerDoc {
    every: Option<String>,
    field: Option<String>,
    #[serde(rename = "fn")]
    func: Option<String>,
    from: String,
    measurement: Option<String>,
    /// Present when no series matched (what was asked, the nearest existing names, and where to list them), or
    /// when series matched but none has a point in the range (where the newest is).
    notice: Option<String>,
    series: Vec<SeriesDoc>,
    to: String,
    tz: String,
    /// The unit, when every series has the same one.
    unit: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct SeriesDoc {
    points: Vec<PointDoc>,
    tags: BTreeMap<String, String>,
    unit: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct PointDoc {
    time: String,
    /// Null for an empty bucket.
    value: Option<f64>,
    /// `true` when `from` or `to` cuts the bucket: it holds only the points inside the range. Absent otherwise.
    partial: Option<bool>,
}

/// A LoRaWAN gateway and what it has sent.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct GatewayDoc {
    eui: String,
    name: String,
    location: Option<LocationDoc>,
    created_at: String,
    /// `{"last_seen", "push_data", "pull_data", "rx_packets", "rx_rejected", "tx_sent", "tx_acked", "last_error"}`
    status: Value,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct GatewayListDoc {
    gateways: Vec<GatewayDoc>,
}

/// One codec version (`script` and the `examples` array only when one version is shown).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CodecDoc {
    name: String,
    version: u32,
    /// How a device names it: `js:{name}@{version}`.
    codec: String,
    description: String,
    sha256: String,
    /// The number of examples in a list, the examples themselves for one version.
    examples: Value,
    script_bytes: u64,
    created_at: String,
    script: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CodecListDoc {
    codecs: Vec<CodecDoc>,
}

/// An integration; `mqtt` for `inbound`, `host`/`port`/`username`/`topic`/`client_id` for `subscribe`.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct IntegrationDoc {
    id: String,
    name: String,
    /// `chirpstack` or `tts`.
    network_server: String,
    /// `inbound` or `subscribe`.
    mode: String,
    created_at: String,
    mqtt: Option<Value>,
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    topic: Option<String>,
    client_id: Option<String>,
    /// What the integration has received and how it went, if known.
    status: Option<Value>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct IntegrationListDoc {
    integrations: Vec<IntegrationDoc>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct BuildingDoc {
    id: String,
    name: String,
    floor_area_m2: f64,
    kind: String,
    location: Option<LocationDoc>,
    /// `DK1` or `DK2`.
    price_area: String,
    created_at: String,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct BuildingListDoc {
    buildings: Vec<BuildingDoc>,
}

/// A building's consumption per bucket, per m², a year earlier and in CO2e.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct KpisDoc {
    building: BuildingDoc,
    measurement: String,
    field: String,
    unit: Option<String>,
    every: String,
    tz: String,
    from: String,
    to: String,
    buckets: Vec<KpiBucketDoc>,
    totals: KpiTotalsDoc,
    /// Meters found: series of the measurement and field tagged with the building.
    meters: u64,
    /// Present when no meter was found: what was looked for and the nearest existing names.
    notice: Option<String>,
    /// `{"series", "fallback_g_per_kwh", "hours_on_fallback", "hours_by_source"}`: the hours whose CO2e used
    /// a stored factor, per `source` (`CO2Emis` measured, preferred; `CO2EmisProg` prognosis; others).
    emission_factor: Value,
    /// Always `consumption`: cumulative meters exact to the bucket boundary, interval meters summed.
    #[serde(rename = "fn")]
    func: String,
    /// Spans a meter's readings do not cover: left out, not guessed.
    gaps: Vec<crate::buildings::GapDoc>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct KpiBucketDoc {
    time: String,
    consumption: Option<f64>,
    per_m2: Option<f64>,
    last_year: Option<f64>,
    change_pct: Option<f64>,
    co2e_kg: Option<f64>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct KpiTotalsDoc {
    consumption: Option<f64>,
    per_m2: Option<f64>,
    last_year: Option<f64>,
    co2e_kg: Option<f64>,
}

/// A role in an organisation: `viewer` reads, `editor` also changes devices, gateways, codecs, buildings,
/// datasets and integrations and writes line protocol, `admin` also manages members and keys.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoleDoc {
    Viewer,
    Editor,
    Admin,
}

/// An API key's public description (never its secret).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct TokenDoc {
    id: String,
    name: String,
    /// The organisation; absent for a platform key.
    org: Option<String>,
    /// `viewer`, `editor` or `admin` (in `org`, or on the whole platform).
    role: String,
    /// Only these devices (absent: all of the organisation's).
    devices: Option<Vec<String>>,
    /// Only these measurements (absent: all).
    measurements: Option<Vec<String>>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; absent: never expires.
    expires_at: Option<String>,
    /// RFC 3339; absent: never used (updated at most every 30 s).
    last_used_at: Option<String>,
    /// RFC 3339; present once revoked.
    revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    state: String,
}

/// Keys.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct TokenListDoc {
    tokens: Vec<TokenDoc>,
}

/// A new key: the secret is shown only here.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CreatedTokenDoc {
    #[serde(flatten)]
    key: TokenDoc,
    /// The secret: send it as `Authorization: Bearer <token>`. Shown once.
    token: String,
    note: String,
}

// --- notify ---

/// `webhook` (a signed POST of JSON) or `email` (through the `[smtp]` relay).
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ChannelKindDoc {
    Webhook,
    Email,
}

/// A notification channel (never its secrets).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct ChannelDoc {
    id: String,
    name: String,
    org: String,
    kind: ChannelKindDoc,
    created_at: String,
    /// Webhook: where it POSTs.
    url: Option<String>,
    /// Webhook: the names of its extra headers (their values are sealed, never shown).
    headers: Option<Vec<String>>,
    /// E-mail: the recipients.
    to: Option<Vec<String>>,
    /// At creation only: the webhook's signing secret (`whsec_…`), shown once.
    signing_secret: Option<String>,
    note: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct ChannelListDoc {
    channels: Vec<ChannelDoc>,
}

/// One message sent (or to be sent) to a channel: a notification, or a digest of several.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeliveryDoc {
    /// Its idempotency key, sent as `X-Bydata-Delivery` (a digest's starts with `digest:`).
    delivery: String,
    org: String,
    channel: String,
    /// `webhook` or `email` (null: the channel did not exist).
    channel_kind: Option<String>,
    /// `firing`, `resolved` or `test`.
    kind: String,
    subject: String,
    group: Option<String>,
    digest: bool,
    /// How many notifications it carries.
    count: usize,
    /// `queued`, `retrying`, `delivered` or `failed`.
    status: String,
    attempts: u32,
    /// Why the last attempt failed, with the receiver's answer.
    last_error: Option<String>,
    /// The receiver's last answer (`HTTP 200 OK`, `250 …`).
    answer: Option<String>,
    created_at: String,
    updated_at: String,
    /// When it is tried again (queued or retrying).
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeliveryListDoc {
    notifications: Vec<DeliveryDoc>,
}

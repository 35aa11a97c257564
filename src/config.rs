//! The typed configuration: one TOML file with a section per crate, defaults in code, unknown keys refused.
mod sections;

use sections::{DASHBOARD_SECTION, energy_section, forward_section};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) data_dir: PathBuf,
    pub(crate) lorawan_addr: SocketAddr,
    pub(crate) lorawan: bydata_ingest::lorawan::listener::Config,
    pub(crate) journal: JournalConfig,
    pub(crate) store: StoreConfig,
    pub(crate) broker: bydata_broker::Config,
    pub(crate) api: bydata_api::Config,
    pub(crate) ingest: bydata_ingest::Config,
    pub(crate) opendata: bydata_opendata::Settings,
    pub(crate) supervise: SuperviseConfig,
    pub(crate) registry: RegistryConfig,
    /// Alert evaluation (`[alerts]`).
    pub(crate) alerts: bydata_alerts::Settings,
    /// Data targets: forwarding readings to HTTP endpoints and MQTT brokers (`[forward]`).
    pub(crate) forward: bydata_forward::Config,
    /// The certificate and key for `mqtts_addr` and `https_addr` (`[tls]`; absent: no TLS listener).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls: Option<TlsConfig>,
    /// The identity provider people log in with (`[oidc]`; absent: no login, API keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) oidc: Option<bydata_api::OidcConfig>,
    /// Notifications: digests, retries, webhooks (`[notify]`).
    pub(crate) notify: bydata_notify::Config,
    /// The SMTP relay e-mail notifications go through (`[smtp]`; no host: no e-mail).
    pub(crate) smtp: bydata_notify::SmtpConfig,
    /// The dashboard (`[dashboard]`): the map's street tiles (none by default: a plain background).
    pub(crate) dashboard: bydata_api::DashboardConfig,
    // --- energy ---
    /// Danish energy data: emission factors and Eloverblik meters (`[energy]`; default: nothing imported).
    pub(crate) energy: bydata_energy::Config,
}

/// PEM files for the TLS listeners (`[tls]`); renewed files are picked up without a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsConfig {
    /// The certificate chain, leaf first (PEM).
    pub(crate) cert_pem: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub(crate) key_pem: PathBuf,
}

impl TlsConfig {
    pub(crate) fn files(&self) -> bydata_admission::tls::TlsFiles {
        bydata_admission::tls::TlsFiles {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

/// The registry (`[registry]`): where the key its secrets are sealed under is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RegistryConfig {
    /// The secrets key file (64 hex digits), outside the data dir; created at the first start if missing.
    /// Absent: `$XDG_CONFIG_HOME/bydata/secrets.key`. `BYDATA_SECRETS_KEY` (the key itself) overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secrets_key_file: Option<PathBuf>,
}

/// How `serve` reacts to a failed component (`[supervise]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SuperviseConfig {
    /// After an essential component failed: how long bydata keeps answering (refusing new data, `/ready`
    /// saying why) before it shuts down, so monitors and load balancers see the cause.
    pub(crate) linger_ms: u64,
    /// How often the data directory's free space and the store's threads are checked.
    pub(crate) check_ms: u64,
}

impl Default for SuperviseConfig {
    fn default() -> Self {
        Self {
            linger_ms: 2_000,
            check_ms: 250,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JournalConfig {
    pub(crate) segment_bytes: u64,
}

/// Which store holds the series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Engine {
    /// The embedded engine in the data directory.
    #[default]
    Embedded,
    /// An InfluxDB 2 server (`[store.influxdb2]`; the token comes from `BYDATA_INFLUX_TOKEN`).
    Influxdb2,
}

/// Where an InfluxDB 2 store is; the token is not configured here (`BYDATA_INFLUX_TOKEN`), so config files
/// can be shared without a secret in them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct InfluxSection {
    pub(crate) url: String,
    pub(crate) org: String,
    pub(crate) bucket: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StoreConfig {
    pub(crate) engine: Engine,
    pub(crate) influxdb2: InfluxSection,
    pub(crate) block_points: usize,
    pub(crate) compact_after_points: u64,
    pub(crate) compact_when_idle_ms: u64,
    /// Days raw points of a measurement are kept; measurements not listed are kept forever.
    pub(crate) retention_days: std::collections::BTreeMap<String, u32>,
    /// Keep hourly and daily rollups.
    pub(crate) rollups: bool,
    /// Days rollups are kept; 0 keeps them forever.
    pub(crate) rollup_retention_days: u32,
    /// Free space the data directory's filesystem must keep: below it, new data is refused (MQTT: no
    /// PUBACK; HTTP writes: 507) while what was accepted is still stored.
    pub(crate) min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let d = bydata_store::EngineConfig::default();
        Self {
            engine: Engine::Embedded,
            influxdb2: InfluxSection::default(),
            block_points: d.block_points,
            compact_after_points: d.compact_after_points,
            compact_when_idle_ms: d.compact_when_idle.as_millis() as u64,
            retention_days: std::collections::BTreeMap::new(),
            rollups: d.rollups,
            rollup_retention_days: 0,
            min_free_bytes: 256 * 1024 * 1024,
        }
    }
}

impl StoreConfig {
    pub(crate) fn engine(&self) -> bydata_store::EngineConfig {
        bydata_store::EngineConfig {
            block_points: self.block_points.clamp(1, 65_535),
            compact_after_points: self.compact_after_points,
            compact_when_idle: std::time::Duration::from_millis(self.compact_when_idle_ms),
            retention: self
                .retention_days
                .iter()
                .map(|(m, days)| {
                    (
                        m.clone(),
                        std::time::Duration::from_secs(u64::from(*days) * 86_400),
                    )
                })
                .collect(),
            rollups: self.rollups,
            rollup_retention: (self.rollup_retention_days > 0).then(|| {
                std::time::Duration::from_secs(u64::from(self.rollup_retention_days) * 86_400)
            }),
            ..bydata_store::EngineConfig::default()
        }
    }
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: bydata_store::journal::JournalConfig::default().segment_bytes,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            lorawan_addr: SocketAddr::from(([127, 0, 0, 1], 1700)),
            lorawan: bydata_ingest::lorawan::listener::Config::default(),
            journal: JournalConfig::default(),
            store: StoreConfig::default(),
            broker: bydata_broker::Config::default(),
            api: bydata_api::Config::default(),
            ingest: bydata_ingest::Config::default(),
            opendata: bydata_opendata::Settings::default(),
            supervise: SuperviseConfig::default(),
            registry: RegistryConfig::default(),
            alerts: bydata_alerts::Settings::default(),
            forward: bydata_forward::Config::default(),
            tls: None,
            oidc: None,
            notify: bydata_notify::Config::default(),
            smtp: bydata_notify::SmtpConfig::default(),
            dashboard: bydata_api::DashboardConfig::default(),
            // --- energy ---
            energy: bydata_energy::Config::default(),
        }
    }
}

impl Config {
    /// Refuses, in words, an edge with no listener and a TLS listener without `[tls]`.
    pub(crate) fn check_listeners(&self) -> anyhow::Result<()> {
        let edges = [
            (
                "MQTT",
                "mqtt_addr",
                "mqtts_addr",
                self.broker.mqtt_addr,
                self.broker.mqtts_addr,
            ),
            (
                "HTTP",
                "http_addr",
                "https_addr",
                self.api.http_addr,
                self.api.https_addr,
            ),
        ];
        anyhow::ensure!(
            self.broker.wss_addr.is_none() || self.tls.is_some(),
            "wss_addr is set but the config has no [tls] section (cert_pem and key_pem)"
        );
        for (edge, plain_key, tls_key, plain, tls) in edges {
            anyhow::ensure!(
                plain.is_some() || tls.is_some(),
                "no {edge} listener: {plain_key} and {tls_key} are both \"off\"; set one of them"
            );
            anyhow::ensure!(
                tls.is_none() || self.tls.is_some(),
                "{tls_key} is set but the config has no [tls] section (cert_pem and key_pem)"
            );
        }
        Ok(())
    }

    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    /// The default configuration as commented TOML (`bydata config print`).
    pub(crate) fn commented_default() -> String {
        let d = Config::default();
        format!(
            r#"# bydata configuration. Every key is optional; these are the defaults.
# Command-line flags (--data-dir, --mqtt-addr, --http-addr, --lorawan-addr) override the file.

# Where the journal, the registry and the series live.
data_dir = "{data_dir}"
# Semtech UDP packet forwarder address: LoRaWAN gateways send here; only registered gateways are heard.
lorawan_addr = "{lorawan}"

[lorawan]
# Datagrams one source address may send per second on average (bursts of twice that); more are dropped and
# counted (bydata_lorawan_datagrams_total{{outcome="rate_limited"}}).
datagrams_per_sec = {datagrams}
# Transmissions of a confirmed downlink before it fails unacknowledged (also how often a downlink a gateway
# refused to transmit, TX_ACK error, is tried again).
downlink_attempts = {downlink_attempts}

[journal]
# Size of one raw-journal segment file, in bytes.
segment_bytes = {segment}

[store]
# "embedded" (in the data dir, no server needed) or "influxdb2" (see [store.influxdb2]).
engine = "embedded"
# Most points in one compressed block of a series (at most 65535).
block_points = {block_points}
# Acknowledged points wait in the write-ahead log (and memory) until this many are buffered, or writes pause
# for compact_when_idle_ms; then they are flushed into a compressed part, and parts are merged.
compact_after_points = {compact_after}
compact_when_idle_ms = {compact_idle}
# Days raw points of a measurement are kept (exactly, at the next merge); unlisted ones are kept forever.
# Example: retention_days = {{ co2 = 365, vehicles = 90 }}
retention_days = {{}}
# Hourly and daily rollups (count, sum, min, max, first, last, increase) of every series with at least three
# points per hour or day on average; they answer hour-aligned aggregates without reading points, and outlive
# the raw retention above.
rollups = {rollups}
# Days rollups are kept; 0 keeps them forever.
rollup_retention_days = 0
# Free bytes the data directory's filesystem keeps in reserve. Below this, new data is refused (MQTT: no
# PUBACK, the device status says "disk full"; line protocol: 507) so that the journal, the write-ahead log,
# parts and the registry can still finish what was accepted; accepting resumes by itself once space is freed.
min_free_bytes = {min_free}

[store.influxdb2]
# Used when engine = "influxdb2". The API token is read from the environment: BYDATA_INFLUX_TOKEN.
url = ""
org = ""
bucket = ""

[broker]
# Where devices connect with MQTT 3.1.1 or 5 (client id = username = device id); "off" turns it off.
mqtt_addr = "{mqtt}"
# MQTT over TLS (e.g. "0.0.0.0:8883"), with the certificate in [tls]; "off" turns it off.
mqtts_addr = "{mqtts}"
# MQTT (3.1.1 or 5) over WebSockets: ws://ADDR/mqtt, subprotocol "mqtt"; "off" turns it off.
ws_addr = "{ws}"
# MQTT over secure WebSockets (e.g. "0.0.0.0:8084"), with the certificate in [tls]; "off" turns it off.
wss_addr = "{wss}"
# Largest MQTT message accepted, in bytes; larger ones are refused, counted and shown on the device status.
max_message_bytes = {max_msg}
# Most simultaneous MQTT connections. Each costs three open files (the device's socket and the two ends of
# bydata's relay to the broker); at start the caps are lowered to what the open-file limit holds.
max_connections = {max_conn}
# Most simultaneous MQTT connections from one address (IPv6: one /64); more are closed at once.
max_connections_per_source = {max_conn_source}
# Most unacknowledged QoS 1 messages per connection.
max_inflight = {inflight}
# How long a new connection may take to send its whole CONNECT, in milliseconds.
connect_timeout_ms = {connect_timeout}
# Longest keep-alive granted, in seconds (longer ones are shortened; a silent connection closes after 1.5x).
max_keep_alive_secs = {keep_alive}
# Argon2 password checks run at once; 0 means one per CPU core. Each holds about 19 MiB while it runs.
password_checks = {checks}
# How long a login may wait for a password check before it is refused as busy (CONNACK 3), in milliseconds.
password_queue_ms = {queue_ms}
# How long a verified login is remembered (reconnects skip the slow check), in seconds.
verified_cache_secs = {verified}

[api]
# Where the HTTP API listens; "off" turns it off.
http_addr = "{http}"
# The API over HTTPS (e.g. "0.0.0.0:8443"), with the certificate in [tls]; "off" turns it off.
https_addr = "{https}"
# Most simultaneous HTTP connections, and from one address; over a cap a client gets 503 or 429 at once.
max_connections = {http_conn}
max_connections_per_source = {http_conn_source}
# A request's headers must arrive within this many milliseconds of bydata waiting for them (so an idle
# keep-alive connection also closes after it).
header_timeout_ms = {header_ms}
# A connection whose client stops reading the answer for this many seconds is closed.
idle_timeout_secs = {idle}
# Longest a request may take, body included, in seconds (re-decode and publish-on-demand are exempt).
request_timeout_secs = {request}
# Most series one API token may add by writing line protocol (a series is a measurement, a tag set and a
# field); a write that would add more is refused whole with a 400 (series_limit).
max_series_per_token = {series_per_token}

[api.query]
# Most values (series, or groups with group_by, × buckets) in one bucketed answer. A larger query is refused
# with a 400 (query_too_large) saying what it would cost and how to narrow it.
max_values = {max_values}
# Most points in one raw answer (no every): estimated from the index before reading, enforced while reading.
max_raw_points = {max_raw_points}
# Most series one query may match (group_by still reads every series it merges).
max_series = {max_series}
# A query whose work (series × buckets, or raw points) is above this is heavy: at most heavy_permits of them
# run at once, and lighter queries (dashboards) never wait for them.
heavy_work = {heavy_work}
# Heavy queries at once; 0: the number of cores, at least 2.
heavy_permits = {heavy_permits}
# How long a heavy query waits for its turn before a 503 (busy, with Retry-After).
queue_timeout_secs = {queue_timeout}
# How long one query may take: past it, a 503 (query_timeout) before the answer starts, a cut answer after.
deadline_secs = {deadline}

[ingest]
# Most journal entries decoded and committed together.
batch_max = {batch}
# Readings more than this many seconds ahead of their receive time are rejected.
max_future_secs = {future}
# Most series one device's readings may create (its measurements, and each gateway's signal); an uplink that
# would create more is refused with a reason on the device's status.
max_series_per_device = {series_per_device}

[opendata]
# The public base URL in catalogs and on CKAN (e.g. "https://iot.aarhus.dk"); empty: the API's own address.
public_url = ""
catalog_title_da = "{title_da}"
catalog_title_en = "{title_en}"
publisher_name = "{publisher}"
publisher_uri = ""
publisher_email = ""
# How often due datasets are looked for, in seconds (a dataset is due when its update frequency has passed).
schedule_secs = {schedule}
# How long after a period ends late data is awaited before its version 1 is written, in seconds.
settle_secs = {settle}

[opendata.minimums]
# What a dataset marked personal_data must at least do; its definition is refused otherwise.
location_grid_m = {grid}
suppress_counts_below = {suppress}
bucket_secs = {bucket}

[opendata.ckan]
# Datasets with "ckan": true are pushed here after each publication; the API token is read from the
# environment: BYDATA_CKAN_TOKEN. Empty url: no push.
url = ""
organization = ""

[supervise]
# After a component bydata cannot run without fails: how long it keeps answering (refusing new data, /ready
# naming the cause) before it shuts down in order and exits non-zero, in milliseconds.
linger_ms = {linger}
# How often the data directory's free space and the store's threads are checked, in milliseconds.
check_ms = {check}

[registry]
# LoRaWAN session and root keys and network-server broker passwords are sealed (ChaCha20-Poly1305) in the
# registry under a secrets key kept outside the data dir: BYDATA_SECRETS_KEY (64 hex digits or base64 of 32
# bytes), else this file. Unset: $XDG_CONFIG_HOME/bydata/secrets.key (~/.config/bydata/secrets.key). A missing
# file is created at the first start (mode 0600); once secrets are sealed, bydata starts only with their key.
# secrets_key_file = "/etc/bydata/secrets.key"

[alerts]
# How often the server evaluates every alert rule, in milliseconds: an alert fires within its rule's interval
# (and its `for`) plus this. Notifications go to the notifier once committed in the registry.
evaluate_every_ms = {alerts_every}
[notify]
# Notifications of one channel and digest group (e.g. the devices behind one gateway) arriving within this many
# seconds of the first are folded into one digest message when there are more than digest_threshold of them;
# fewer are sent one by one. Firing and resolved are never mixed. Ungrouped notifications are sent at once.
digest_window_secs = {digest_window}
digest_threshold = {digest_threshold}
# Attempts per message (webhook: no connection, no answer, 5xx, 408, 429; e-mail: any failure) before it is
# marked failed; the wait doubles from initial_backoff_ms up to max_backoff_secs, with jitter. A receiver's
# Retry-After is honoured (up to an hour).
max_attempts = {max_attempts}
initial_backoff_ms = {initial_backoff}
max_backoff_secs = {max_backoff}
webhook_timeout_secs = {webhook_timeout}
# Webhooks to loopback, private, link-local and other non-public addresses are refused unless this is true
# (so an organisation's admin cannot make bydata probe the network it runs in).
webhook_private_addresses = false
# Delivered and failed messages are kept this many days, and at most keep_deliveries of them.
retention_days = {retention}
keep_deliveries = {keep_deliveries}

[smtp]
# The relay e-mail notifications go through; empty host: e-mail channels cannot send (their messages wait,
# retrying, with the reason in GET /api/v1/notifications).
host = ""
port = {smtp_port}
# "required" (STARTTLS or no mail), "opportunistic" (STARTTLS when offered) or "off".
starttls = "required"
from = "{smtp_from}"
# EHLO name; empty: localhost.
helo_name = ""
# How long one mail may take, in seconds.
timeout_secs = {smtp_timeout}
# Login; the password is better in BYDATA_SMTP_PASSWORD (which overrides password).
# username = "bydata"
# A PEM file of the CA of a private relay's certificate (the public roots are always trusted).
# ca_file = "/etc/bydata/smtp-ca.pem"

# [tls]
# The certificate chain (leaf first) and its private key, PEM, for mqtts_addr and https_addr. Renewed files
# are picked up within seconds, without a restart.
# cert_pem = "/etc/bydata/fullchain.pem"
# key_pem = "/etc/bydata/privkey.pem"

# [oidc]
# People log in with OpenID Connect (authorization code + PKCE) at /auth/login; machines keep using API keys.
# The issuer exactly as the provider's discovery document names it (Entra ID: its v2.0 issuer of your tenant).
# issuer = "https://login.microsoftonline.com/<tenant-id>/v2.0"
# client_id = "<application (client) id>"
# The client secret, or a file holding it; neither with client_auth = "none" (a public client, PKCE only).
# client_secret_file = "/etc/bydata/oidc-secret"
# "basic" (client_secret_basic, the default) or "post" (client_secret_post) or "none".
# client_auth = "basic"
# bydata's public URL; register <public_url>/auth/callback as a redirect URI and <public_url>/ as the
# post-logout redirect URI at the provider. Browsers only keep the session cookie over HTTPS (or localhost).
# public_url = "https://iot.example.dk"
# Scopes asked for besides openid, email and profile.
# scopes = []
# The ID token claim whose values map to roles ("groups"; Entra ID app roles come in "roles").
# groups_claim = "groups"
# Holders of these claim values are platform admins.
# platform_admins = []
# How long a session lasts at most, and how long unused, in minutes.
# session_minutes = 480
# idle_minutes = 60
# Which claim value gives which role (viewer, editor, admin) in which organisation; organisation members
# added in bydata (by e-mail or subject) get their roles too.
# [[oidc.roles]]
# claim_value = "<group object id>"
# org = "buildings"
# role = "editor"
"#,
            data_dir = d.data_dir.display(),
            lorawan = d.lorawan_addr,
            datagrams = d.lorawan.datagrams_per_sec,
            downlink_attempts = d.lorawan.downlink_attempts,
            segment = d.journal.segment_bytes,
            block_points = d.store.block_points,
            compact_after = d.store.compact_after_points,
            compact_idle = d.store.compact_when_idle_ms,
            rollups = d.store.rollups,
            min_free = d.store.min_free_bytes,
            linger = d.supervise.linger_ms,
            alerts_every = d.alerts.evaluate_every_ms,
            check = d.supervise.check_ms,
            mqtt = bydata_schemas::listen::display(d.broker.mqtt_addr),
            mqtts = bydata_schemas::listen::display(d.broker.mqtts_addr),
            ws = bydata_schemas::listen::display(d.broker.ws_addr),
            wss = bydata_schemas::listen::display(d.broker.wss_addr),
            max_msg = d.broker.max_message_bytes,
            max_conn = d.broker.max_connections,
            inflight = d.broker.max_inflight,
            connect_timeout = d.broker.connect_timeout_ms,
            max_conn_source = d.broker.max_connections_per_source,
            keep_alive = d.broker.max_keep_alive_secs,
            checks = d.broker.password_checks,
            queue_ms = d.broker.password_queue_ms,
            verified = d.broker.verified_cache_secs,
            http = bydata_schemas::listen::display(d.api.http_addr),
            https = bydata_schemas::listen::display(d.api.https_addr),
            http_conn = d.api.max_connections,
            http_conn_source = d.api.max_connections_per_source,
            header_ms = d.api.header_timeout_ms,
            idle = d.api.idle_timeout_secs,
            request = d.api.request_timeout_secs,
            series_per_token = d.api.max_series_per_token,
            max_values = d.api.query.max_values,
            max_raw_points = d.api.query.max_raw_points,
            max_series = d.api.query.max_series,
            heavy_work = d.api.query.heavy_work,
            heavy_permits = d.api.query.heavy_permits,
            queue_timeout = d.api.query.queue_timeout_secs,
            deadline = d.api.query.deadline_secs,
            batch = d.ingest.batch_max,
            future = d.ingest.max_future_secs,
            series_per_device = d.ingest.max_series_per_device,
            title_da = d.opendata.catalog_title_da,
            title_en = d.opendata.catalog_title_en,
            publisher = d.opendata.publisher_name,
            schedule = d.opendata.schedule_secs,
            settle = d.opendata.settle_secs,
            grid = d.opendata.minimums.location_grid_m,
            suppress = d.opendata.minimums.suppress_counts_below,
            bucket = d.opendata.minimums.bucket_secs,
            digest_window = d.notify.digest_window_secs,
            digest_threshold = d.notify.digest_threshold,
            max_attempts = d.notify.max_attempts,
            initial_backoff = d.notify.initial_backoff_ms,
            max_backoff = d.notify.max_backoff_secs,
            webhook_timeout = d.notify.webhook_timeout_secs,
            retention = d.notify.retention_days,
            keep_deliveries = d.notify.keep_deliveries,
            smtp_port = d.smtp.port,
            smtp_from = d.smtp.from,
            smtp_timeout = d.smtp.timeout_secs,
        ) + &forward_section(&d.forward)
            + DASHBOARD_SECTION
            + &energy_section(&d.energy)
    }
}

#[cfg(test)]
mod tests;

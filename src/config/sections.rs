//! The commented `[dashboard]`, `[forward]` and `[energy]` parts of `Config::commented_default`.

// --- dashboard ---
/// The `[dashboard]` part of [`Config::commented_default`]: no tiles by default.
pub(super) const DASHBOARD_SECTION: &str = r#"
[dashboard]
# The map's street tiles. None by default: the map is a plain background and viewers' browsers contact only
# bydata. The page's Content-Security-Policy admits exactly the url's origin for images. `grid` is
# "web-mercator" (XYZ; WMTS GoogleMapsCompatible) or "dk-view1" (Dataforsyningen's WMTS, UTM 32N, View1);
# {zz} is the zoom with two digits. The README shows OpenStreetMap's and Dataforsyningen's settings.
# [dashboard.tiles]
# url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
# attribution = "© OpenStreetMap contributors"
# grid = "web-mercator"
# max_zoom = 19
"#;

// --- forward (data targets) ---
/// The `[forward]` part of [`Config::commented_default`].
pub(super) fn forward_section(f: &bydata_forward::Config) -> String {
    format!(
        r#"
[forward]
# Forward readings to the organisations' data targets (POST /api/v1/targets): HTTP endpoints and MQTT brokers.
enabled = {enabled}
# How often the targets are read again (changes through the API apply at once), in milliseconds.
reload_ms = {reload}
# Longest an HTTP request, or a batch's PUBACKs, may take before the attempt counts as failed, in milliseconds.
request_timeout_ms = {timeout}
# The wait after a failed attempt, doubling with each failure of the same batch up to backoff_max_ms. While a
# receiver is unreachable the target's cursor waits (the journal is the buffer), so it catches up in order.
backoff_initial_ms = {backoff}
backoff_max_ms = {backoff_max}
# Dead letters kept per target; when full, the target waits (nothing is dropped) until they are replayed or
# discarded.
max_dead_letters = {dead}
# Delivery attempts kept in each target's log.
delivery_log = {log}
# Most journal entries a target reads and decodes at once.
read_entries = {read}
# How often a target with nothing to send moves its cursor past other readings, in milliseconds.
idle_commit_ms = {idle}
"#,
        enabled = f.enabled,
        reload = f.reload_ms,
        timeout = f.request_timeout_ms,
        backoff = f.backoff_initial_ms,
        backoff_max = f.backoff_max_ms,
        dead = f.max_dead_letters,
        log = f.delivery_log,
        read = f.read_entries,
        idle = f.idle_commit_ms,
    )
}

// --- energy ---
/// The `[energy]` part of [`Config::commented_default`].
pub(super) fn energy_section(c: &bydata_energy::Config) -> String {
    let (e, o) = (&c.emission_factors, &c.eloverblik);
    let list = |v: Vec<String>| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"
# Danish energy data. Nothing here contacts the internet unless turned on.
[energy.emission_factors]
# Energinet's emission factors (g CO2e/kWh, 5-minute, per price area) from Energi Data Service into the series
# emission_factor,area=DK1|DK2,source=CO2Emis|CO2EmisProg — what the buildings' CO2e is computed with.
enabled = {enabled}
url = {url:?}
datasets = [{datasets}]
areas = [{areas}]
# Seconds between runs; the first run reaches backfill_days back, each run asks overlap_minutes again.
every_secs = {every}
backfill_days = {backfill}
overlap_minutes = {overlap}
# Hours ahead the prognosis (CO2EmisProg) is asked for.
prognosis_hours = {prognosis}
timeout_secs = {timeout}

[energy.eloverblik]
# Hourly consumption of the municipality's electricity meters from DataHub (eloverblik.dk) into the series
# energy_kwh,building=…,metering_point=…,org=…,reading=interval,source=eloverblik. Runs when metering points are
# listed below. api = "customer" (your own meters) or "thirdparty" (meters authorised to you).
api = "customer"
url = {o_url:?}
# The refresh token made on eloverblik.dk goes in a file (or BYDATA_ELOVERBLIK_TOKEN), not here:
# token_file = "/etc/bydata/eloverblik.token"
every_secs = {o_every}
backfill_days = {o_backfill}
# Days asked for again each run: DataHub's values arrive late and are corrected.
lookback_days = {lookback}
days_per_request = {per_request}
timeout_secs = {o_timeout}
# [[energy.eloverblik.metering_points]]
# id = "571313100000000000"   # 18 digits, from the bill or eloverblik.dk
# building = "town-hall"       # a registered building (POST /api/v1/buildings)
# org = "default"              # the building's organisation
"#,
        enabled = e.enabled,
        url = e.url,
        datasets = list(e.datasets.iter().map(|d| d.name().to_owned()).collect()),
        areas = list(e.areas.clone()),
        every = e.every_secs,
        backfill = e.backfill_days,
        overlap = e.overlap_minutes,
        prognosis = e.prognosis_hours,
        timeout = e.timeout_secs,
        o_url = o.url,
        o_every = o.every_secs,
        o_backfill = o.backfill_days,
        lookback = o.lookback_days,
        per_request = o.days_per_request,
        o_timeout = o.timeout_secs,
    )
}

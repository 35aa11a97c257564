//! `bydata serve --demo`: simulated MQTT devices and LoRaWAN gateways in-process, onboarded through the
//! HTTP API like any client, with demo buildings, an open dataset and a read-only dashboard link.
use crate::config::Config;
use bydata_schemas::UnixNanos;
use bydata_store::{NewToken, OrgId, Role, SharedRegistry};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DEMO_TOKEN_NAME: &str = "demo simulator (recreated at every --demo start)";
const DEMO_DASHBOARD_TOKEN_NAME: &str =
    "demo dashboard (read-only, recreated at every --demo start)";

pub(crate) async fn run_demo(
    registry: SharedRegistry,
    admin_token: Option<String>,
    config: &Config,
    shutdown: CancellationToken,
    clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
) -> anyhow::Result<impl std::future::Future<Output = ()> + use<>> {
    // The simulated devices speak plain MQTT and onboard over plain HTTP.
    let (Some(http_addr), Some(mqtt_addr)) = (config.api.http_addr, config.broker.mqtt_addr) else {
        anyhow::bail!(
            "the demo needs the plain listeners: http_addr and mqtt_addr must not be \"off\""
        );
    };
    // The simulator onboards through the HTTP API like any client; without the bootstrap secret at hand it
    // gets a token of its own, replaced at every demo start so they do not pile up.
    let token = match admin_token {
        Some(t) => t,
        None => {
            for t in registry.tokens().await? {
                if t.name == DEMO_TOKEN_NAME && t.revoked_at.is_none() {
                    registry.revoke_token(&t.id, clock()).await?;
                }
            }
            registry
                .create_token(NewToken::new(DEMO_TOKEN_NAME, None, Role::Admin), clock())
                .await?
                .1
        }
    };
    // The demo's buildings, so the dashboard has something to compare and divide by (their devices carry
    // `building=b1`, `b2`); and a read token for the dashboard link, replaced at every start.
    for (id, name, area, kind) in [
        ("b1", "Rådhuset (demo)", 19_500.0, "office"),
        ("b2", "Dokk1 (demo)", 17_600.0, "library"),
    ] {
        let building = bydata_store::Building {
            org: Default::default(),
            id: bydata_schemas::BuildingId::new(id)?,
            name: name.to_owned(),
            floor_area_m2: area,
            kind: kind.to_owned(),
            location: None,
            price_area: "DK1".to_owned(),
            created_at: clock(),
        };
        match registry.create_building(building).await {
            Ok(_) | Err(bydata_store::Error::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // An open dataset of the demo buildings' hourly consumption, so /opendata/catalog has something to list
    // (the scheduler publishes it within a minute).
    let dataset = bydata_store::StoredDataset {
        org: Default::default(),
        id: "demo-energy-hourly".to_owned(),
        definition: serde_json::json!({
            "id": "demo-energy-hourly",
            "title": {"da": "Energiforbrug pr. time (demo)", "en": "Hourly energy consumption (demo)"},
            "description": {
                "da": "Simulerede elmålere i to demo-bygninger: forbrug i kWh pr. time.",
                "en": "Simulated electricity meters in two demo buildings: consumption in kWh per hour."
            },
            "keywords": ["energi", "demo"],
            "themes": ["ENER"],
            "licence": "CC-BY-4.0",
            "update_frequency": "HOURLY",
            "publisher": {"name": "bydata demo"},
            "contact_point": {"name": "bydata demo", "email": "opendata@example.invalid"},
            "selection": {"measurement": "energy_kwh", "publish_tags": ["building"]},
            "aggregation": {"every": "1h", "fn": "increase"},
        }),
        created_at: clock(),
    };
    match registry.create_dataset(dataset).await {
        Ok(_) | Err(bydata_store::Error::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    println!(
        "  open data  http://{}/opendata/catalog  (DCAT-AP-DK; files under /opendata/datasets/)",
        http_addr
    );
    for t in registry.tokens().await? {
        if t.name == DEMO_DASHBOARD_TOKEN_NAME && t.revoked_at.is_none() {
            registry.revoke_token(&t.id, clock()).await?;
        }
    }
    let (_, dashboard_token) = registry
        .create_token(
            NewToken::new(
                DEMO_DASHBOARD_TOKEN_NAME,
                Some(OrgId::default_org()),
                Role::Viewer,
            ),
            clock(),
        )
        .await?;
    println!(
        "  dashboard  http://{}/#token={dashboard_token}  (a read-only token for this demo)",
        http_addr
    );
    let fleet = bydata_firmware_sim::FleetConfig {
        http_url: format!("http://{http_addr}"),
        mqtt_addr,
        token,
        devices: 6,
        rate: 0.2,
        seed: 2030,
        id_prefix: "demo".to_owned(),
        duration: None,
        max_messages_per_device: None,
        backfill: Some((Duration::from_secs(24 * 3600), Duration::from_secs(15 * 60))),
    };
    let lorawan = bydata_firmware_sim::lorawan::LorawanFleetConfig {
        api_url: fleet.http_url.clone(),
        admin_token: fleet.token.clone(),
        udp_server: config.lorawan_addr,
        gateways: 2,
        abp_devices: 1,
        otaa_devices: 1,
        interval: Duration::from_secs(30),
        prefix: "demo".to_owned(),
        seed: 2030,
        payload: bydata_firmware_sim::lorawan::PayloadFormat::Cayenne,
        codec: None,
        duration: None,
        uplinks_per_device: None,
    };
    println!("  demo       6 simulated devices (ids demo-*), with the last 24 h backfilled");
    println!(
        "             and 2 LoRaWAN gateways with an ABP and an OTAA device (demo-lora-*) over Semtech UDP"
    );
    Ok(async move {
        let lorawan_shutdown = shutdown.clone();
        let lorawan = async move {
            match bydata_firmware_sim::lorawan::run_lorawan_fleet(lorawan, lorawan_shutdown).await {
                Ok(report) => tracing::info!(
                    frames = report.frames,
                    joins = report.joins,
                    "demo LoRaWAN devices stopped"
                ),
                Err(e) => tracing::error!(error = %e, "demo LoRaWAN devices failed"),
            }
        };
        let mqtt = async move {
            match bydata_firmware_sim::run_fleet(fleet, shutdown).await {
                Ok(report) => tracing::info!(
                    published = report.published,
                    acknowledged = report.acknowledged,
                    "demo devices stopped"
                ),
                Err(e) => tracing::error!(error = %e, "demo devices failed"),
            }
        };
        tokio::join!(mqtt, lorawan);
    })
}

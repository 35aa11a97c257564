//! `bydata serve`: open the data directory, start every part, and shut down in order.
//!
//! Shutdown order: stop accepting (broker listener, HTTP), close the journal (final fsync; later appends fail,
//! so nothing more is acknowledged), let the ingest pipeline drain the journal into the store, exit 0.
use crate::cli::ServeArgs;
use crate::config::{Config, Engine};
use anyhow::Context;
use bydata_schemas::UnixNanos;
use bydata_store::journal::{Journal, JournalConfig};
use bydata_store::{
    EmbeddedEngine, InfluxConfig, InfluxStore, RedbRegistry, RegistryPort, Role, SeriesReader,
    SeriesWriter, SharedRegistry,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DEMO_TOKEN_NAME: &str = "demo simulator (recreated at every --demo start)";
const DEMO_DASHBOARD_TOKEN_NAME: &str =
    "demo dashboard (read-only, recreated at every --demo start)";

fn system_clock() -> UnixNanos {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(a) = args.mqtt_addr {
        config.broker.mqtt_addr = a;
    }
    if let Some(a) = args.http_addr {
        config.api.http_addr = a;
    }
    if let Some(a) = args.lorawan_addr {
        config.lorawan_addr = a;
    }

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let journal = Arc::new(
        Journal::open(
            &config.data_dir.join("journal"),
            JournalConfig {
                segment_bytes: config.journal.segment_bytes,
            },
        )
        .context("cannot open the journal")?,
    );
    let registry = RedbRegistry::open_async(&config.data_dir.join("registry.redb"))
        .await
        .context("cannot open the registry")?
        .shared();
    let (reader, writer, embedded) = open_store(&config)?;
    let clock: Arc<dyn Fn() -> UnixNanos + Send + Sync> = Arc::new(system_clock);

    let admin_token = bootstrap_admin(registry.as_ref()).await?;
    let refusals = Arc::new(bydata_store::refusals::Refusals::new(
        registry.clone(),
        clock(),
    ));
    let budget = connection_budget(&mut config);

    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());

    let hub = Arc::new(bydata_ingest::network_server::Hub::new(
        bydata_ingest::network_server::Deps {
            registry: registry.clone(),
            journal: journal.clone(),
            clock: clock.clone(),
            refusals: refusals.clone(),
        },
    ));
    let broker_metrics = Arc::new(bydata_broker::Metrics::default());
    let ingest_metrics = Arc::new(bydata_ingest::Metrics::default());
    let lorawan_metrics = Arc::new(bydata_ingest::lorawan::listener::Metrics::default());
    let opendata = Arc::new(
        bydata_opendata::Publisher::open(
            bydata_opendata::Deps {
                registry: registry.clone(),
                reader: reader.clone(),
                clock: clock.clone(),
            },
            &config.data_dir,
            config.opendata.clone(),
            format!("http://{}", config.api.http_addr),
            std::env::var("BYDATA_CKAN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        )
        .context("cannot open the open-data directory")?,
    );
    let write_metrics = Arc::new(bydata_api::WriteMetrics::default());
    let http_metrics = Arc::new(bydata_api::HttpMetrics::default());
    let series_quota = Arc::new(bydata_api::SeriesQuota::new(
        config.api.max_series_per_token,
    ));
    let queries = Arc::new(bydata_api::QueryGate::new(config.api.query.clone()));
    let state = bydata_api::AppState {
        opendata,
        registry: registry.clone(),
        reader: reader.clone(),
        writer: writer.clone(),
        write_metrics: write_metrics.clone(),
        clock: clock.clone(),
        metrics: Arc::new(crate::metrics::registry(
            vec![
                Box::new(broker_metrics.clone()),
                Box::new(ingest_metrics.clone()),
                Box::new(lorawan_metrics.clone()),
                Box::new(write_metrics),
                Box::new(http_metrics.clone()),
                Box::new(series_quota.clone()),
                Box::new(queries.clone()),
            ],
            embedded.clone(),
        )),
        ingest: Arc::new(crate::hooks::Hooks {
            hub: hub.clone(),
            config: config.ingest.clone(),
            redecode: bydata_ingest::redecode::Deps {
                journal: journal.clone(),
                registry: registry.clone(),
                reader: reader.clone(),
                writer: writer.clone(),
                clock: clock.clone(),
            },
            redecoding: Arc::default(),
        }),
        refusals: refusals.clone(),
        http_metrics,
        series_quota,
        queries,
    };
    let publisher = tokio::spawn(bydata_opendata::run_scheduler(
        state.opendata.clone(),
        shutdown.child_token(),
    ));
    let http = bydata_api::bind(config.api.clone(), state, shutdown.clone()).await?;
    let integrations = tokio::spawn(hub.clone().run(shutdown.child_token()));
    let http = tokio::spawn(http);

    let broker_deps = bydata_broker::Deps {
        journal: journal.clone(),
        registry: registry.clone(),
        clock: clock.clone(),
        metrics: broker_metrics,
        refusals: refusals.clone(),
        integrations: Some(Arc::new(crate::hooks::Sink(hub.clone()))),
    };
    let broker_shutdown = shutdown.child_token();
    let broker = bydata_broker::run(config.broker.clone(), broker_deps, broker_shutdown.clone());
    // Fail fast if the MQTT port is taken: run() checks the bind before anything else.
    let broker = tokio::spawn(broker);

    // Semtech UDP from LoRaWAN gateways; a taken port fails the start like a taken MQTT port.
    let udp = tokio::net::UdpSocket::bind(config.lorawan_addr)
        .await
        .with_context(|| format!("cannot bind the LoRaWAN UDP port {}", config.lorawan_addr))?;
    let lorawan = tokio::spawn(bydata_ingest::lorawan::listener::run(
        config.lorawan.clone(),
        udp,
        bydata_ingest::lorawan::listener::Deps {
            registry: registry.clone(),
            journal: journal.clone(),
            clock: clock.clone(),
            metrics: lorawan_metrics,
            refusals: refusals.clone(),
        },
        shutdown.child_token(),
    ));
    let refusals_shutdown = CancellationToken::new();
    let refusal_book = tokio::spawn(refusals.clone().run(refusals_shutdown.clone()));

    let ingest_shutdown = CancellationToken::new();
    let ingest = tokio::spawn(bydata_ingest::run(
        config.ingest.clone(),
        bydata_ingest::Deps {
            journal: journal.clone(),
            registry: registry.clone(),
            writer,
            reader: reader.clone(),
            metrics: ingest_metrics,
        },
        ingest_shutdown.clone(),
    ));

    println!("bydata is running");
    println!("  HTTP API   http://{}", config.api.http_addr);
    println!(
        "  MQTT       mqtt://{}  (devices/<device id>/up)",
        config.broker.mqtt_addr
    );
    println!("  data dir   {}", config.data_dir.display());
    println!(
        "  limits     {} MQTT connections ({} per address), {} HTTP connections ({} per address); file limit {}",
        budget.mqtt,
        config.broker.max_connections_per_source,
        budget.http,
        config.api.max_connections_per_source,
        budget.file_limit
    );
    println!(
        "  LoRaWAN    udp://{}  (Semtech UDP from registered gateways: POST /api/v1/gateways)",
        config.lorawan_addr
    );

    let demo = if args.demo {
        Some(tokio::spawn(
            run_demo(
                registry.clone(),
                admin_token,
                &config,
                shutdown.clone(),
                clock.clone(),
            )
            .await?,
        ))
    } else {
        None
    };

    // Run until a signal, or until a part stops on its own (an error).
    let broker_result = tokio::select! {
        () = shutdown.cancelled() => None,
        r = broker => Some(r),
    };
    shutdown.cancel();
    broker_shutdown.cancel();
    if let Some(demo) = demo {
        let _ = demo.await;
    }
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server failed"),
        Err(e) => tracing::error!(error = %e, "HTTP task failed"),
    }
    if let Err(e) = integrations.await {
        tracing::error!(error = %e, "integrations task failed");
    }
    if let Err(e) = publisher.await {
        tracing::error!(error = %e, "open-data publisher task failed");
    }
    if let Err(e) = lorawan.await {
        tracing::error!(error = %e, "LoRaWAN listener task failed");
    }
    // The edges are closed: write the last aggregated refusals.
    refusals_shutdown.cancel();
    if let Err(e) = refusal_book.await {
        tracing::error!(error = %e, "refusal book task failed");
    }
    journal.close().context("final journal fsync failed")?;
    ingest_shutdown.cancel();
    match ingest.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "ingest stopped with an error"),
        Err(e) => tracing::error!(error = %e, "ingest task failed"),
    }
    match broker_result {
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(e)) => Err(anyhow::anyhow!("broker task failed: {e}")),
        _ => {
            tracing::info!("bydata stopped cleanly");
            Ok(())
        }
    }
}

/// Raises the file limit and lowers the edges' connection caps to what it can hold (each MQTT connection
/// costs three descriptors: the device's socket and both ends of the relay to rumqttd).
fn connection_budget(config: &mut Config) -> bydata_admission::Budget {
    let budget = bydata_admission::Budget::share(
        bydata_admission::raise_file_limit(),
        config.broker.max_connections,
        3,
        config.api.max_connections,
    );
    if budget.mqtt < config.broker.max_connections || budget.http < config.api.max_connections {
        tracing::warn!(
            file_limit = budget.file_limit,
            mqtt = budget.mqtt,
            http = budget.http,
            "the open-file limit cannot hold the configured connection caps; lowered them (raise `ulimit -n` to keep them)"
        );
    }
    config.broker.max_connections = budget.mqtt;
    config.api.max_connections = budget.http;
    budget
}

/// The store's read and write sides, and the embedded engine itself when that is the store (for metrics).
type Store = (
    Arc<dyn SeriesReader>,
    Arc<dyn SeriesWriter>,
    Option<Arc<EmbeddedEngine>>,
);

fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(match config.store.engine {
        Engine::Embedded => {
            let engine = Arc::new(
                EmbeddedEngine::open_with(&config.data_dir.join("series"), config.store.engine())
                    .context("cannot open the series store")?,
            );
            (engine.clone(), engine.clone(), Some(engine))
        }
        Engine::Influxdb2 => {
            let section = &config.store.influxdb2;
            let token = std::env::var("BYDATA_INFLUX_TOKEN").context(
                "engine = \"influxdb2\" needs the InfluxDB API token in BYDATA_INFLUX_TOKEN",
            )?;
            let store = Arc::new(
                InfluxStore::new(InfluxConfig {
                    url: section.url.clone(),
                    org: section.org.clone(),
                    bucket: section.bucket.clone(),
                    token,
                })
                .context("[store.influxdb2]")?,
            );
            tracing::info!(url = %section.url, bucket = %section.bucket, "series are stored in InfluxDB 2");
            (store.clone(), store, None)
        }
    })
}

/// Sets or creates the bootstrap admin token. Returns a token the demo simulator may use, if one is at hand.
async fn bootstrap_admin(registry: &dyn RegistryPort) -> anyhow::Result<Option<String>> {
    let now = system_clock();
    if let Ok(token) = std::env::var("BYDATA_ADMIN_TOKEN") {
        if token.len() < 16 {
            anyhow::bail!("BYDATA_ADMIN_TOKEN must be at least 16 characters");
        }
        registry.set_bootstrap_token(&token, now).await?;
        tracing::info!("admin token taken from BYDATA_ADMIN_TOKEN");
        return Ok(Some(token));
    }
    if registry.has_admin_token().await? {
        return Ok(None);
    }
    let (_, token) = registry
        .create_token("bootstrap admin", Role::Admin, now)
        .await?;
    println!("Admin token (shown only once; bydata keeps only its hash):");
    println!("  {token}");
    Ok(Some(token))
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
    });
}

async fn run_demo(
    registry: SharedRegistry,
    admin_token: Option<String>,
    config: &Config,
    shutdown: CancellationToken,
    clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
) -> anyhow::Result<impl std::future::Future<Output = ()> + use<>> {
    // The simulator onboards through the HTTP API like any client; without the bootstrap secret at hand it
    // gets a token of its own, replaced at every demo start so they do not pile up.
    let token = match admin_token {
        Some(t) => t,
        None => {
            for t in registry.tokens().await? {
                if t.name == DEMO_TOKEN_NAME {
                    registry.delete_token(&t.id).await?;
                }
            }
            registry
                .create_token(DEMO_TOKEN_NAME, Role::Admin, clock())
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
        config.api.http_addr
    );
    for t in registry.tokens().await? {
        if t.name == DEMO_DASHBOARD_TOKEN_NAME {
            registry.delete_token(&t.id).await?;
        }
    }
    let (_, dashboard_token) = registry
        .create_token(DEMO_DASHBOARD_TOKEN_NAME, Role::Read, clock())
        .await?;
    println!(
        "  dashboard  http://{}/#token={dashboard_token}  (a read-only token for this demo)",
        config.api.http_addr
    );
    let fleet = bydata_firmware_sim::FleetConfig {
        http_url: format!("http://{}", config.api.http_addr),
        mqtt_addr: config.broker.mqtt_addr,
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

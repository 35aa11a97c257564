//! `bydata serve`: open the data directory, start every part under supervision, and shut down in order.
//!
//! Shutdown order: stop accepting (broker listener, HTTP), close the journal (final fsync; later appends fail,
//! so nothing more is acknowledged), let the ingest pipeline drain the journal into the store, close the
//! store (flushing its write-ahead log into a part when that is cheap), exit 0. The same order follows the
//! failure of an essential component (`supervise`), after new data was refused at once; then the exit is
//! non-zero.
use crate::cli::ServeArgs;
use crate::config::{Config, Engine};
use crate::supervise::Supervisor;
use anyhow::Context;
use bydata_schemas::UnixNanos;
use bydata_store::health::{Health, Lag};
use bydata_store::journal::{Journal, JournalConfig};
use bydata_store::{
    EmbeddedEngine, InfluxConfig, InfluxStore, RedbRegistry, SeriesReader, SeriesWriter,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

// --- energy ---
mod energy;

/// Most journal entries `/ready` counts as the ingest lag (counting reads record headers).
const LAG_COUNT_MAX: u64 = 100_000;

fn system_clock() -> UnixNanos {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The API's own base URL: plain HTTP if it listens, else HTTPS.
fn api_url(api: &bydata_api::Config) -> String {
    match (api.http_addr, api.https_addr) {
        (Some(addr), _) => format!("http://{addr}"),
        (None, Some(addr)) => format!("https://{addr}"),
        (None, None) => String::new(),
    }
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
        config.broker.mqtt_addr = Some(a);
    }
    if let Some(a) = args.ws_addr {
        config.broker.ws_addr = Some(a);
    }
    if let Some(a) = args.http_addr {
        config.api.http_addr = Some(a);
    }
    if let Some(a) = args.lorawan_addr {
        config.lorawan_addr = a;
    }
    config.check_listeners()?;
    // --- energy --- (checked, and its token read, before anything opens)
    let energy_token = energy::prepare(&config)?;

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
    // Files and a look into redb: off the async workers, as every registry call.
    let secrets = {
        let (file, dir) = (
            config.registry.secrets_key_file.clone(),
            config.data_dir.clone(),
        );
        tokio::task::spawn_blocking(move || crate::secrets::key(file.as_deref(), &dir)).await??
    };
    let registry = RedbRegistry::open_async(&config.data_dir.join("registry.redb"), secrets)
        .await
        .context("cannot open the registry")?
        .shared();
    let (reader, writer, embedded) = open_store(&config)?;
    let clock: Arc<dyn Fn() -> UnixNanos + Send + Sync> = Arc::new(system_clock);

    let (admin_token, admin) =
        crate::bootstrap::admin_token(registry.as_ref(), system_clock()).await?;
    let refusals = Arc::new(bydata_store::refusals::Refusals::new(
        registry.clone(),
        clock(),
    ));
    let budget = connection_budget(&mut config);

    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let health = Arc::new(Health::default());
    // Before any edge starts: every append asks whether new data is accepted.
    journal.guard_intake(health.clone());
    let mut supervisor = Supervisor::new(health.clone());
    let check_every = Duration::from_millis(config.supervise.check_ms);
    let disk_stop = CancellationToken::new();
    {
        let (health, dir, reserve, stop) = (
            health.clone(),
            config.data_dir.clone(),
            config.store.min_free_bytes,
            disk_stop.clone(),
        );
        supervisor.restartable("disk watcher", disk_stop.clone(), move || {
            crate::supervise::watch_disk(
                health.clone(),
                dir.clone(),
                reserve,
                check_every,
                stop.clone(),
            )
        });
    }

    let hub = Arc::new(bydata_ingest::network_server::Hub::new(
        bydata_ingest::network_server::Deps {
            registry: registry.clone(),
            journal: journal.clone(),
            clock: clock.clone(),
            refusals: refusals.clone(),
        },
    ));
    let broker_metrics = Arc::new(bydata_broker::Metrics::default());
    let downlinks = bydata_broker::Downlinks::new(
        registry.clone(),
        clock.clone(),
        config.broker.downlinks.clone(),
    );
    // One login gate for the broker and the HTTP push: one Argon2 pool, one memory, one backoff.
    let logins = bydata_store::logins::Gate::new(
        registry.clone(),
        broker_metrics.clone(),
        config.broker.login_gate(),
    )
    .context("cannot start the password checks")?;
    // Devices pushing over HTTP: the same journal append, gate and size limit as MQTT.
    let push = Arc::new(bydata_api::DevicePush::new(
        journal.clone(),
        &logins,
        config.broker.max_message_bytes,
    ));
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
            api_url(&config.api),
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
    // Notifications: a bad [smtp] (its CA file, its from address) fails the start, naming the key.
    let notify = {
        let mut smtp = config.smtp.clone();
        if let Ok(password) = std::env::var("BYDATA_SMTP_PASSWORD")
            && !password.is_empty()
        {
            smtp.password = Some(password);
        }
        bydata_notify::Notify::new(
            bydata_notify::Deps {
                registry: registry.clone(),
                clock: clock.clone(),
                metrics: Arc::default(),
            },
            config.notify.clone(),
            &smtp,
        )?
    };
    // --- forward (data targets) ---
    let forward_metrics = Arc::new(bydata_forward::Metrics::default());
    let forwarder = bydata_forward::Forwarder::new(
        config.forward.clone(),
        bydata_forward::Deps {
            journal: journal.clone(),
            registry: registry.clone(),
            ingest: config.ingest.clone(),
            clock: clock.clone(),
            metrics: forward_metrics.clone(),
        },
    );
    let mut metrics = crate::metrics::registry(
        vec![
            Box::new(broker_metrics.clone()),
            Box::new(ingest_metrics.clone()),
            Box::new(lorawan_metrics.clone()),
            Box::new(notify.metrics()),
            Box::new(forward_metrics),
            Box::new(push.metrics()),
        ],
        embedded.clone(),
    );
    bydata_api::register_metrics(
        &mut metrics,
        (&write_metrics, &http_metrics),
        (&series_quota, &queries),
        &health,
    );
    // --- energy ---
    let energy_metrics = Arc::new(bydata_energy::Metrics::default());
    metrics.register_collector(Box::new(energy_metrics.clone()));
    let energy_deps = energy::deps(
        registry.clone(),
        writer.clone(),
        clock.clone(),
        energy_metrics,
        energy_token,
    );
    // --- alerts --- (notifications go to the notifier's outbox)
    let alert_metrics = Arc::new(bydata_alerts::Metrics::default());
    metrics.register_collector(Box::new(alert_metrics.clone()));
    metrics.register_collector(Box::new(downlinks.metrics()));
    let alert_sink: Arc<dyn bydata_alerts::AlertSink> =
        Arc::new(crate::alert_sink::NotifierSink(Arc::new(notify.clone())));
    // [oidc] is checked (and its secret file read) at start; the provider is first asked at the first login.
    let login = match &config.oidc {
        Some(oidc) => Some(Arc::new(
            bydata_api::Login::new(oidc).map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
        None => None,
    };
    let state = bydata_api::AppState {
        opendata,
        registry: registry.clone(),
        reader: reader.clone(),
        writer: writer.clone(),
        write_metrics: write_metrics.clone(),
        clock: clock.clone(),
        metrics: Arc::new(metrics),
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
        health: health.clone(),
        auth_cache: Arc::default(),
        login,
        mqtt: bydata_api::MqttPorts {
            port: config.broker.mqtt_addr.map(|a| a.port()),
            tls_port: config.broker.mqtts_addr.map(|a| a.port()),
            ws_port: config.broker.ws_addr.map(|a| a.port()),
            wss_port: config.broker.wss_addr.map(|a| a.port()),
        },
        downlinks: bydata_api::Downlinks {
            // The topic (`devices/{id}/down/{fport}`, at most 82 bytes) counts towards the message size.
            max_mqtt_bytes: config.broker.max_message_bytes.saturating_sub(128),
            max_lorawan_bytes: bydata_api::MAX_LORAWAN_DOWNLINK_BYTES,
            wake: Some({
                let downlinks = downlinks.clone();
                Arc::new(move |device: &bydata_schemas::DeviceId| downlinks.wake(device))
            }),
        },
        notify: notify.clone(),
        targets: Arc::new(crate::forward_hooks::ForwardHooks(forwarder.clone())),
        push,
        dashboard: Arc::new(config.dashboard.clone()),
    };
    {
        // Restartable: the outbox is in the registry, so a new loop picks up where the last one stopped.
        let stop = shutdown.child_token();
        supervisor.restartable("notifications", stop.clone(), move || {
            notify.clone().run(stop.clone())
        });
    }
    {
        let (publisher, stop) = (state.opendata.clone(), shutdown.child_token());
        supervisor.restartable("open-data scheduler", stop.clone(), move || {
            bydata_opendata::run_scheduler(publisher.clone(), stop.clone())
        });
    }
    {
        // --- alerts ---
        let deps = bydata_alerts::Deps {
            registry: registry.clone(),
            reader: reader.clone(),
            clock: clock.clone(),
            sink: alert_sink,
            metrics: alert_metrics,
        };
        let (settings, stop) = (config.alerts.clone(), shutdown.child_token());
        supervisor.restartable("alert evaluator", stop.clone(), move || {
            bydata_alerts::run(settings.clone(), deps.clone(), stop.clone())
        });
    }
    // Loaded once for both edges; a bad pair of files fails the start, naming the file.
    let tls = match &config.tls {
        Some(tls) => Some(bydata_admission::tls::Tls::load(tls.files())?),
        None => None,
    };
    let http = bydata_api::bind(config.api.clone(), state, tls.clone(), shutdown.clone()).await?;
    {
        let (hub, stop) = (hub.clone(), shutdown.child_token());
        supervisor.restartable("integrations", stop.clone(), move || {
            hub.clone().run(stop.clone())
        });
    }
    supervisor.essential("HTTP server", shutdown.clone(), http);

    let broker_deps = bydata_broker::Deps {
        journal: journal.clone(),
        registry: registry.clone(),
        clock: clock.clone(),
        metrics: broker_metrics,
        refusals: refusals.clone(),
        integrations: Some(Arc::new(crate::hooks::Sink(hub.clone()))),
        downlinks: Some(downlinks),
        logins: logins.clone(),
    };
    let broker_shutdown = shutdown.child_token();
    let broker = bydata_broker::run(
        config.broker.clone(),
        broker_deps,
        tls,
        broker_shutdown.clone(),
    );
    // A taken MQTT port ends it at once (run() checks the bind before anything else): a failure.
    supervisor.essential("MQTT broker", broker_shutdown.clone(), broker);

    // Semtech UDP from LoRaWAN gateways; a taken port fails the start like a taken MQTT port.
    let udp = tokio::net::UdpSocket::bind(config.lorawan_addr)
        .await
        .with_context(|| format!("cannot bind the LoRaWAN UDP port {}", config.lorawan_addr))?;
    {
        // Restartable: a new run binds the port again (the first uses the socket bound above).
        let first = std::sync::Mutex::new(Some(udp));
        let (addr, listener_config, stop) = (
            config.lorawan_addr,
            config.lorawan.clone(),
            shutdown.child_token(),
        );
        let deps = bydata_ingest::lorawan::listener::Deps {
            registry: registry.clone(),
            journal: journal.clone(),
            clock: clock.clone(),
            metrics: lorawan_metrics,
            refusals: refusals.clone(),
        };
        supervisor.restartable("LoRaWAN listener", stop.clone(), move || {
            let socket = first
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let (config, deps, stop) = (listener_config.clone(), deps.clone(), stop.clone());
            async move {
                let socket = match socket {
                    Some(s) => s,
                    None => tokio::net::UdpSocket::bind(addr).await.map_err(|e| {
                        format!("cannot bind the LoRaWAN UDP port {addr} again: {e}")
                    })?,
                };
                bydata_ingest::lorawan::listener::run(config, socket, deps, stop).await;
                Ok::<(), String>(())
            }
        });
    }
    // --- energy --- (restartable: each import's cursor is in the registry)
    energy::start(&mut supervisor, &config, energy_deps, &shutdown);
    {
        // Restartable: each target's cursor is in the registry, so a new run resumes where the last stopped.
        let (forwarder, stop) = (forwarder.clone(), shutdown.child_token());
        supervisor.restartable("data targets", stop.clone(), move || {
            forwarder.clone().run(stop.clone())
        });
    }
    let refusals_shutdown = CancellationToken::new();
    {
        let (book, stop) = (refusals.clone(), refusals_shutdown.clone());
        supervisor.restartable("refusals flusher", stop.clone(), move || {
            book.clone().run(stop.clone())
        });
    }

    let ingest_shutdown = CancellationToken::new();
    supervisor.essential(
        "ingest pipeline",
        ingest_shutdown.clone(),
        bydata_ingest::run(
            config.ingest.clone(),
            bydata_ingest::Deps {
                journal: journal.clone(),
                registry: registry.clone(),
                writer,
                reader: reader.clone(),
                metrics: ingest_metrics.clone(),
            },
            ingest_shutdown.clone(),
        ),
    );
    {
        let (journal, ingest) = (journal.clone(), ingest_metrics);
        health.set_lag_source(move || {
            let position = ingest.position();
            Lag {
                bytes: journal.end_offset().saturating_sub(position),
                entries: journal.count_records(position, LAG_COUNT_MAX).unwrap_or(0),
            }
        });
    }
    let journal_watch = CancellationToken::new();
    {
        let journal = journal.clone();
        supervisor.watch("journal", check_every, journal_watch.clone(), move || {
            journal.check()
        });
    }
    let store_watch = CancellationToken::new();
    if let Some(engine) = &embedded {
        for (i, name) in ["store writer", "store merger"].into_iter().enumerate() {
            let engine = engine.clone();
            supervisor.watch(name, check_every, store_watch.clone(), move || {
                engine.check()[i].1.clone()
            });
        }
    }

    health.set_started();
    println!("bydata is running");
    if let Some(addr) = config.api.http_addr {
        println!("  HTTP API   http://{addr}");
    }
    if let Some(addr) = config.api.https_addr {
        println!("  HTTPS API  https://{addr}");
    }
    if let Some(addr) = config.broker.mqtt_addr {
        println!("  MQTT       mqtt://{addr}  (devices/<device id>/up)");
    }
    if let Some(addr) = config.broker.mqtts_addr {
        println!("  MQTTS      mqtts://{addr}  (devices/<device id>/up, TLS)");
    }
    if let Some(addr) = config.broker.ws_addr {
        println!("  MQTT/WS    ws://{addr}/mqtt  (MQTT 3.1.1 and 5 over WebSockets)");
    }
    if let Some(addr) = config.broker.wss_addr {
        println!("  MQTT/WSS   wss://{addr}/mqtt  (MQTT over WebSockets, TLS)");
    }
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
    println!("  admin      {}", admin.says());
    if !args.demo {
        // The demo prints a dashboard link with a fresh read token; otherwise say how to make one.
        println!(
            "  dashboard  {}/#token=<a read token>  (POST /api/v1/tokens {{\"name\": \"dashboard\", \"role\": \"read\"}})",
            api_url(&config.api)
        );
    }

    let demo = if args.demo {
        Some(tokio::spawn(
            crate::demo::run_demo(
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

    // Run until a signal, or until an essential part fails.
    let failure = tokio::select! {
        () = shutdown.cancelled() => None,
        f = supervisor.failure() => f,
    };
    if let Some(f) = &failure {
        // Refuse new data now; keep answering (so /ready shows why) for the linger, then stop in order.
        health.stop_intake(f.component);
        tracing::error!(component = f.component, cause = %f.cause,
            "{} failed: new data is refused and bydata shuts down", f.component);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(config.supervise.linger_ms)) => {}
            () = shutdown.cancelled() => {}
        }
    }
    shutdown.cancel();
    broker_shutdown.cancel();
    if let Some(demo) = demo {
        let _ = demo.await;
    }
    for name in [
        "MQTT broker",
        "HTTP server",
        "integrations",
        "open-data scheduler",
        "LoRaWAN listener",
        "alert evaluator",
        "notifications",
        "data targets",
    ] {
        supervisor.join(name).await;
    }
    // The edges are closed: write the last aggregated refusals.
    refusals_shutdown.cancel();
    supervisor.join("refusals flusher").await;
    journal_watch.cancel();
    supervisor.join("journal").await;
    let closed = journal.close().context("final journal fsync failed");
    ingest_shutdown.cancel();
    supervisor.join("ingest pipeline").await;
    store_watch.cancel();
    supervisor.join("store writer").await;
    supervisor.join("store merger").await;
    if let Some(engine) = embedded {
        // Flushes the write-ahead log into a part (when cheap), so a stopped data directory is compact.
        let _ = tokio::task::spawn_blocking(move || engine.close()).await;
    }
    disk_stop.cancel();
    supervisor.join("disk watcher").await;
    // Failures while stopping (after the first one, which was logged above).
    for f in supervisor.more_failures() {
        tracing::error!(component = f.component, cause = %f.cause, "{} failed while stopping", f.component);
    }
    closed?;
    match failure {
        Some(f) => Err(anyhow::anyhow!("the {} failed: {}", f.component, f.cause)),
        None => {
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

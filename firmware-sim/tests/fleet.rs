//! The fleet runner against an API that is not there: it must fail fast with a clear error, not hang.

use bydata_firmware_sim::{Error, FleetConfig, run_fleet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
    // the listener is dropped here, so nothing listens on the port
}

#[tokio::test]
async fn unreachable_api_is_a_quick_clear_error() {
    let http_port = free_port();
    let config = FleetConfig {
        http_url: format!("http://127.0.0.1:{http_port}"),
        mqtt_addr: format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address"),
        token: "secret".to_owned(),
        devices: 5,
        rate: 1.0,
        seed: 1,
        id_prefix: "sim".to_owned(),
        duration: None,
        max_messages_per_device: None,
        backfill: None,
    };
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        run_fleet(config, CancellationToken::new()),
    )
    .await
    .expect("run_fleet must not hang when the API is unreachable");
    let error = result.expect_err("nothing listens, so onboarding must fail");
    assert!(matches!(error, Error::Http { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{http_port}")), "{text}");
    assert!(
        text.to_lowercase().contains("refused"),
        "names the cause: {text}"
    );
}

#[tokio::test]
async fn invalid_configs_are_refused_before_any_io() {
    let base = FleetConfig {
        // Port 9 (discard) on a documentation address: never contacted, validation comes first.
        http_url: "http://192.0.2.1:9".to_owned(),
        ..FleetConfig::default()
    };
    let cases = [
        FleetConfig {
            devices: 0,
            ..base.clone()
        },
        FleetConfig {
            rate: -1.0,
            ..base.clone()
        },
        FleetConfig {
            rate: f64::NAN,
            ..base.clone()
        },
        FleetConfig {
            backfill: Some((Duration::from_secs(60), Duration::ZERO)),
            ..base.clone()
        },
        FleetConfig {
            http_url: "127.0.0.1:8080".to_owned(),
            ..base.clone()
        },
    ];
    for config in cases {
        let result = run_fleet(config.clone(), CancellationToken::new()).await;
        assert!(
            matches!(result, Err(Error::Config { .. })),
            "{config:?}: {result:?}"
        );
    }
    let bad_prefix = FleetConfig {
        id_prefix: "Sim".to_owned(),
        ..base
    };
    assert!(matches!(
        run_fleet(bad_prefix, CancellationToken::new()).await,
        Err(Error::IdPrefix { .. })
    ));
}

#[tokio::test]
async fn shutdown_during_onboarding_returns_an_empty_report() {
    // A listener that accepts but never answers: onboarding would wait for its timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let _server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    let config = FleetConfig {
        http_url: format!("http://{addr}"),
        ..FleetConfig::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(10), run_fleet(config, shutdown))
        .await
        .expect("shutdown is honoured")
        .expect("shutdown is not an error");
    assert_eq!(
        (report.devices, report.published, report.acknowledged),
        (0, 0, 0)
    );
    assert_eq!(report.acked_per_second(), 0.0);
}

mod support;

use bydata_firmware_sim::{FixedClock, run_fleet_with_clock};
use bydata_schemas::parse_rfc3339;
use std::collections::BTreeSet;
use std::sync::Arc;
use support::{Api, Broker};

async fn run_against_fakes(
    existing: &[&str],
) -> (bydata_firmware_sim::FleetReport, Arc<Api>, Arc<Broker>) {
    let api = Arc::new(Api {
        existing: existing.iter().map(|s| (*s).to_owned()).collect(),
        ..Api::default()
    });
    let broker = Arc::new(Broker::default());
    let http = support::serve_api(Arc::clone(&api)).await;
    let mqtt = support::serve_mqtt(Arc::clone(&broker)).await;
    let config = FleetConfig {
        http_url: format!("http://{http}/"),
        mqtt_addr: mqtt,
        token: "secret".to_owned(),
        devices: 4,
        rate: 0.0,
        seed: 7,
        id_prefix: "sim".to_owned(),
        duration: None,
        max_messages_per_device: Some(20),
        backfill: Some((Duration::from_secs(3600), Duration::from_secs(600))),
    };
    let now = parse_rfc3339("2026-11-24T10:00:00Z").expect("time");
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        run_fleet_with_clock(config, Arc::new(FixedClock(now)), CancellationToken::new()),
    )
    .await
    .expect("the fleet finishes")
    .expect("the fleet runs");
    (report, api, broker)
}

#[tokio::test]
async fn fleet_onboards_publishes_and_replays() {
    let (report, api, broker) = run_against_fakes(&["sim-meter-1"]).await;
    assert_eq!(report.devices, 4);
    assert_eq!(report.published, 80);
    assert_eq!(report.acknowledged, 80);
    assert!(report.acked_per_second() > 0.0);

    let requests = api.requests.lock().expect("lock").clone();
    let paths: BTreeSet<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        paths.contains("POST /api/v1/devices/sim-meter-1/credentials"),
        "{paths:?}"
    );
    let climate: serde_json::Value = requests
        .iter()
        .find(|(p, b)| p == "POST /api/v1/devices" && b.contains("sim-climate-1"))
        .map(|(_, b)| serde_json::from_str(b).expect("JSON"))
        .expect("climate-1 onboarded");
    assert_eq!(climate["transport"], "mqtt");
    assert_eq!(climate["domain"], "building");
    assert_eq!(climate["tags"]["building"], "b1");
    assert!((climate["location"]["lat"].as_f64().expect("lat") - 56.15).abs() < 0.05);

    let publishes = broker.publishes.lock().expect("lock").clone();
    assert_eq!(*broker.refused_logins.lock().expect("lock"), 0);
    let ids: Vec<&str> = publishes.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "sim-climate-1",
            "sim-climate-2",
            "sim-meter-1",
            "sim-traffic-1"
        ]
    );
    for (id, messages) in &publishes {
        assert_eq!(messages.len(), 20, "{id}");
        assert!(
            messages
                .iter()
                .all(|(topic, _)| *topic == format!("devices/{id}/up"))
        );
        let times: Vec<&str> = messages
            .iter()
            .filter_map(|(_, p)| p["time"].as_str())
            .collect();
        // Six backfill samples 10 minutes apart over the last hour, then live samples at the (fixed) now.
        assert_eq!(times[0], "2026-11-24T09:00:00Z");
        assert_eq!(times[5], "2026-11-24T09:50:00Z");
        assert!(times[6..].iter().all(|t| *t == "2026-11-24T10:00:00Z"));
    }
    let energy: Vec<f64> = publishes["sim-meter-1"]
        .iter()
        .filter_map(|(_, p)| p["energy_kwh"].as_f64())
        .collect();
    assert!(energy.windows(2).all(|w| w[0] <= w[1]), "{energy:?}");

    let (_, _, again) = run_against_fakes(&[]).await;
    assert_eq!(
        *again.publishes.lock().expect("lock"),
        publishes,
        "same seed and times, same payloads"
    );
}

#[tokio::test]
async fn refused_token_names_status_and_body() {
    let api = Arc::new(Api::default());
    let http = support::serve_api(Arc::clone(&api)).await;
    let config = FleetConfig {
        http_url: format!("http://{http}"),
        token: "wrong".to_owned(),
        devices: 1,
        ..FleetConfig::default()
    };
    let error = run_fleet(config, CancellationToken::new())
        .await
        .expect_err("401");
    let text = error.to_string();
    assert!(
        matches!(error, Error::Onboarding { status: 401, .. }),
        "{error:?}"
    );
    assert!(
        text.contains("sim-climate-1") && text.contains("bad token"),
        "{text}"
    );
}

//! The whole path over real sockets: onboard over HTTP, publish with a real MQTT client at QoS 1, read back.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, Mqtt};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_publish_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;

    // Onboarding returns credentials once; reading the device back shows no secret.
    let (code, created) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "office-b7-co2", "name": "Office B7 climate", "transport": "mqtt", "domain": "building",
                    "location": {"lat": 56.1572, "lon": 10.2107}, "tags": {"building": "b7"}}),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["mqtt"]["client_id"], "office-b7-co2");
    assert_eq!(created["mqtt"]["username"], "office-b7-co2");
    assert_eq!(created["mqtt"]["publish_topic"], "devices/office-b7-co2/up");
    let password = created["mqtt"]["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 32);
    let (_, fetched) = b.get("/api/v1/devices/office-b7-co2", ADMIN).await;
    assert!(!fetched.to_string().contains(&password));
    assert_eq!(fetched["location"], json!({"lat": 56.1572, "lon": 10.2107}));

    // A flat JSON object with an explicit time, then a SenML pack, both at QoS 1.
    let mut mqtt = Mqtt::device(b.mqtt, "office-b7-co2", &password).await;
    mqtt.publish_acked(
        "devices/office-b7-co2/up",
        r#"{"temperature": 21.5, "co2": 612, "time": "2026-11-20T10:15:00Z"}"#,
    )
    .await
    .unwrap();
    mqtt.publish_acked(
        "devices/office-b7-co2/up",
        r#"[{"bn": "", "bt": 1763633700, "n": "temperature", "u": "Cel", "v": 22.5}, {"n": "humidity", "u": "%RH", "v": 41}]"#,
    )
    .await
    .unwrap();

    let status = b
        .wait_status("office-b7-co2", "2 decoded messages", |s| s["decoded"] == 2)
        .await;
    assert_eq!(status["received"], 2);
    assert_eq!(status["rejected"], 0);
    assert_eq!(status["values_stored"], 4);

    // /latest: one entry per measurement, with unit and time.
    let (code, latest) = b.get("/api/v1/devices/office-b7-co2/latest", ADMIN).await;
    assert_eq!(code, 200);
    let temp = latest["latest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["measurement"] == "temperature")
        .unwrap()
        .clone();
    assert_eq!(temp["value"], 21.5, "{latest}");
    assert_eq!(temp["unit"], "Cel");
    assert_eq!(temp["time"], "2026-11-20T11:15:00+01:00");

    // /query: hourly mean in Copenhagen time, and the same as CSV.
    let q = "/api/v1/query?measurement=temperature&device=office-b7-co2&from=2025-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&every=1h&fn=mean";
    let (code, answer) = b.get(q, ADMIN).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["unit"], "Cel");
    assert_eq!(answer["fn"], "mean");
    assert_eq!(answer["tz"], "Europe/Copenhagen");
    let points: Vec<&Value> = answer["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["value"].is_null())
        .collect();
    assert_eq!(points.len(), 2, "{answer}");
    assert_eq!(points[1]["time"], "2026-11-20T11:00:00+01:00");
    assert_eq!(points[1]["value"], 21.5);
    let (_, raw) = b
        .get("/api/v1/query?measurement=co2&tag.building=b7&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z", ADMIN)
        .await;
    assert_eq!(raw["series"][0]["points"][0]["value"], 612.0, "{raw}");
    assert_eq!(raw["series"][0]["tags"]["building"], "b7");
    let csv = b
        .client
        .get(b.url(&format!("{q}&format=csv")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("time,building,device,domain,value,unit\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("2026-11-20T11:00:00+01:00,b7,office-b7-co2,building,21.5,Cel\r\n"),
        "{csv}"
    );

    // The parameters are validated, not ignored.
    let (code, err) = b
        .get(
            "/api/v1/query?measurement=temperature&every=1fortnight",
            ADMIN,
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(err["error"]["code"], "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let device = json!({"name": "x", "transport": "mqtt", "domain": "energy"});

    // No token, a wrong token: 401 with the error shape.
    let r = b.client.get(b.url("/api/v1/devices")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (code, _) = b
        .get("/api/v1/query?measurement=t", "bdt_not-a-token")
        .await;
    assert_eq!(code, 401);

    // A read-only token queries but cannot onboard.
    let (code, token) = b
        .post(
            "/api/v1/tokens",
            ADMIN,
            &json!({"name": "grafana", "role": "viewer"}),
        )
        .await;
    assert_eq!(code, 201);
    let read = token["token"].as_str().unwrap();
    let (code, _) = b.get("/api/v1/devices", read).await;
    assert_eq!(code, 200);
    let (code, err) = b.post("/api/v1/devices", read, &device).await;
    assert_eq!(code, 403, "{err}");
    let (code, _) = b
        .post(
            "/api/v1/tokens",
            read,
            &json!({"name": "y", "role": "admin"}),
        )
        .await;
    assert_eq!(code, 403);

    // Listing tokens never shows a secret; deleting one revokes it at once.
    let (_, list) = b.get("/api/v1/tokens", ADMIN).await;
    assert!(!list.to_string().contains(read));
    let id = token["id"].as_str().unwrap();
    let r = b
        .client
        .delete(b.url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (code, _) = b.get("/api/v1/devices", read).await;
    assert_eq!(code, 401);

    // Bad onboarding input gets a 400 that says what to fix.
    for (bad, needle) in [
        (
            json!({"name": "x", "transport": "mqtt", "domain": "energy", "location": {"lat": 95, "lon": 10}}),
            "location.lat: must be at most 90",
        ),
        (
            json!({"name": "x", "transport": "mqtt", "domain": "energy", "id": "a/b"}),
            "id: \"a/b\" is not valid",
        ),
        (
            json!({"name": "x", "transport": "mqtt", "domain": "energy", "tags": {"device": "y"}}),
            "reserved",
        ),
        (
            json!({"name": "x", "transport": "carrier-pigeon", "domain": "energy"}),
            "transport",
        ),
        (
            json!({"name": "x", "transport": "mqtt", "domain": "energy", "colour": "red"}),
            "colour",
        ),
    ] {
        let (code, err) = b.post("/api/v1/devices", ADMIN, &bad).await;
        assert_eq!(code, 400, "{bad} -> {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{bad} -> {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manages_devices_and_the_simulator_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let bin = env!("CARGO_BIN_EXE_bydata");
    let url = b.url("");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .env("BYDATA_URL", &url)
            .env("BYDATA_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let added = run(&[
        "device",
        "add",
        "--json",
        "--name",
        "Heat meter Dokk1",
        "--id",
        "dokk1-heat",
        "--domain",
        "energy",
        "--tag",
        "building=dokk1",
    ]);
    let added: Value = serde_json::from_str(&added).unwrap();
    assert_eq!(added["mqtt"]["username"], "dokk1-heat");
    assert!(run(&["device", "list"]).contains("dokk1-heat"));
    assert!(run(&["device", "rm", "dokk1-heat"]).contains("deleted"));
    assert!(!run(&["device", "list"]).contains("dokk1-heat"));

    let mqtt = b.mqtt.to_string();
    let sim = || {
        run(&[
            "sim",
            "--devices",
            "3",
            "--rate",
            "0",
            "--messages",
            "20",
            "--seed",
            "7",
            "--mqtt-addr",
            &mqtt,
        ])
    };
    let out = sim();
    assert!(out.contains("published 60 acknowledged 60"), "{out}");
    b.wait_status("sim-meter-1", "the simulated meter's 20 messages", |s| {
        s["decoded"] == 20
    })
    .await;
    let kwh = b.latest("sim-meter-1", "energy_kwh").await.unwrap();
    assert!(kwh > 0.0);

    // A second run of the same fleet continues the meters' counters instead of starting them again.
    let out = sim();
    assert!(out.contains("published 60 acknowledged 60"), "{out}");
    b.wait_status("sim-meter-1", "the second run's messages", |s| {
        s["decoded"] == 40
    })
    .await;
    let (_, raw) = b
        .get(
            "/api/v1/query?measurement=energy_kwh&device=sim-meter-1",
            ADMIN,
        )
        .await;
    let readings: Vec<f64> = raw["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(readings.len(), 40, "{raw}");
    assert!(
        readings.windows(2).all(|w| w[1] >= w[0]),
        "meter went backwards: {readings:?}"
    );

    let config = run(&["config", "print"]);
    assert!(config.contains("[broker]") && config.contains("mqtt_addr = \"127.0.0.1:1883\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cayenne_lpp_device_is_decoded_and_bad_payloads_explained() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let (status, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "lpp-1", "name": "LPP room sensor", "transport": "mqtt", "domain": "building", "codec": "cayenne"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["codec"], "cayenne");
    let password = body["mqtt"]["password"].as_str().unwrap().to_owned();
    let mut dev = Mqtt::device(b.mqtt, "lpp-1", &password).await;
    // The Cayenne LPP documentation's example: 27.2 °C on channel 3, 25.5 °C on channel 5.
    dev.publish_acked(
        "devices/lpp-1/up",
        vec![0x03, 0x67, 0x01, 0x10, 0x05, 0x67, 0x00, 0xff],
    )
    .await
    .unwrap();
    b.wait_status("lpp-1", "decoded", |s| s["decoded"] == 1)
        .await;
    assert_eq!(b.latest("lpp-1", "temperature_3").await, Some(27.2));
    assert_eq!(b.latest("lpp-1", "temperature_5").await, Some(25.5));
    // A record cut short: refused whole, with the offset and type named on the device status.
    dev.publish_acked("devices/lpp-1/up", vec![0x03, 0x67, 0x01])
        .await
        .unwrap();
    let s = b
        .wait_status("lpp-1", "rejected", |s| s["rejected"] == 1)
        .await;
    let reason = s["last_error"]["reason"].as_str().unwrap();
    assert!(reason.contains("Cayenne LPP"), "{reason}");
    assert!(reason.contains("temperature"), "{reason}");
}

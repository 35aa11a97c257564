//! MQTT over TLS and HTTPS, from PEM files named in the config: a CA and a server certificate for 127.0.0.1
//! made here (rcgen), and the stock clients (`curl --cacert`, `mosquitto_pub --cafile`) connecting with them.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, eventually, free_port};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Writes `ca.pem` and `server.pem` / `server.key` (127.0.0.1 and localhost, signed by the CA) into `dir`.
fn make_certs(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "bydata test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "bydata test server");
    leaf.use_authority_key_identifier_extension = true;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), leaf_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem()).unwrap();
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

/// `mosquitto_pub` as device `tls-1` at QoS 1, over TLS when given the CA file.
fn publish(port: &str, password: &str, cafile: Option<&str>, payload: &str) -> Output {
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "-i",
        "tls-1",
        "-u",
        "tls-1",
        "-P",
        password,
    ];
    if let Some(ca) = cafile {
        args.extend(["--cafile", ca]);
    }
    args.extend(["-q", "1", "-t", "devices/tls-1/up", "-m", payload]);
    run("mosquitto_pub", &args)
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A std TCP connection to `port` that sends nothing; returns how long until the server closed it.
fn closed_after(port: u16, send: &[u8]) -> Duration {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.write_all(send).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not closed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_over_tls_and_https_with_a_ca_made_here() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (mqtts, https) = (free_port(), free_port());
    let config = format!(
        "[broker]\nmqtts_addr = \"127.0.0.1:{mqtts}\"\nconnect_timeout_ms = 500\n\
         [api]\nhttps_addr = \"127.0.0.1:{https}\"\n\
         [tls]\ncert_pem = \"{cert}\"\nkey_pem = \"{key}\"\n",
        cert = dir.path().join("server.pem").display(),
        key = dir.path().join("server.key").display(),
    );
    let b = Bydata::start_with_config(dir.path(), &config).await;
    let ca = dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let base = format!("https://127.0.0.1:{https}");

    // HTTPS with the CA works; without it curl refuses the unknown issuer.
    let ok = run(
        "curl",
        &["-sS", "--fail", "--cacert", ca, &format!("{base}/health")],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let refused = run("curl", &["-sS", "--fail", &format!("{base}/health")]);
    assert!(!refused.status.success(), "{}", text(&refused));

    // Onboard over HTTPS.
    let body = r#"{"id": "tls-1", "name": "tls device", "transport": "mqtt", "domain": "building",
                   "location": {"lat": 56.1572, "lon": 10.2107}}"#;
    let auth = format!("authorization: Bearer {ADMIN}");
    let onboarded = run(
        "curl",
        &[
            "-sS",
            "--fail",
            "--cacert",
            ca,
            "-H",
            &auth,
            "-H",
            "content-type: application/json",
            "--data",
            body,
            &format!("{base}/api/v1/devices"),
        ],
    );
    assert!(onboarded.status.success(), "{}", text(&onboarded));
    let answer: serde_json::Value = serde_json::from_slice(&onboarded.stdout).unwrap();
    let password = answer["mqtt"]["password"].as_str().unwrap().to_owned();

    // The broker's listeners bind after the API's: wait for the MQTTS port.
    eventually(Duration::from_secs(10), "the MQTTS port", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", mqtts))
            .await
            .ok()
            .map(drop)
    })
    .await;

    // mosquitto_pub over TLS, QoS 1: exits 0 once PUBACKed, and the value is stored.
    let port = mqtts.to_string();
    let published = publish(&port, &password, Some(ca), r#"{"co2": 1}"#);
    assert!(published.status.success(), "{}", text(&published));
    let co2 = eventually(Duration::from_secs(10), "co2 stored", || {
        b.latest("tls-1", "co2")
    })
    .await;
    assert_eq!(co2, 1.0);

    // Plain MQTT on the TLS port fails (the CONNECT is no TLS handshake).
    let plain = publish(&port, &password, None, r#"{"co2": 2}"#);
    assert!(!plain.status.success(), "{}", text(&plain));

    // A client that starts nothing (no ClientHello) is closed by the CONNECT deadline (500 ms here), and so
    // is one that starts a handshake and stalls (a partial ClientHello record header).
    let silent = closed_after(mqtts, b"");
    assert!(silent < Duration::from_secs(5), "closed after {silent:?}");
    let stalled = closed_after(mqtts, &[0x16, 0x03, 0x01]);
    assert!(stalled < Duration::from_secs(5), "closed after {stalled:?}");

    // Renewed files (here from another CA) are served without a restart: key first, then the certificate,
    // each by rename, as a renewal tool writes them.
    let renewed = dir.path().join("renewed");
    std::fs::create_dir(&renewed).unwrap();
    make_certs(&renewed);
    for name in ["server.key", "server.pem"] {
        std::fs::rename(renewed.join(name), dir.path().join(name)).unwrap();
    }
    let new_ca = renewed.join("ca.pem");
    let new_ca = new_ca.to_str().unwrap();
    eventually(
        Duration::from_secs(15),
        "the renewed certificate served",
        || async {
            let out = run(
                "curl",
                &[
                    "-sS",
                    "--fail",
                    "--cacert",
                    new_ca,
                    &format!("{base}/health"),
                ],
            );
            out.status.success().then_some(())
        },
    )
    .await;
    let old = run(
        "curl",
        &["-sS", "--fail", "--cacert", ca, &format!("{base}/health")],
    );
    assert!(!old.status.success(), "{}", text(&old));
    assert!(b.log().contains("TLS certificate reloaded"), "{}", b.log());
}

#[test]
fn a_tls_listener_without_tls_files_or_no_listener_at_all_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    for (config, says) in [
        (
            "[api]\nhttps_addr = \"127.0.0.1:1\"\n",
            "https_addr is set but the config has no [tls] section",
        ),
        (
            "[broker]\nmqtt_addr = \"off\"\n",
            "no MQTT listener: mqtt_addr and mqtts_addr are both \"off\"",
        ),
        (
            "[tls]\ncert_pem = \"/nonexistent/cert.pem\"\nkey_pem = \"/nonexistent/key.pem\"\n[api]\nhttps_addr = \"127.0.0.1:0\"\n",
            "/nonexistent/cert.pem",
        ),
    ] {
        let path = dir.path().join("bydata.toml");
        std::fs::write(&path, config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_bydata"))
            .args(["serve", "--config", path.to_str().unwrap(), "--data-dir"])
            .arg(dir.path().join("data"))
            .env("BYDATA_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{config}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{config}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_listeners_turned_off_leave_only_tls_and_startup_says_so() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (mqtts, https) = (free_port(), free_port());
    let config = format!(
        "data_dir = \"{data}\"\nlorawan_addr = \"127.0.0.1:{udp}\"\n\
         [broker]\nmqtt_addr = \"off\"\nmqtts_addr = \"127.0.0.1:{mqtts}\"\n\
         [api]\nhttp_addr = \"off\"\nhttps_addr = \"127.0.0.1:{https}\"\n\
         [tls]\ncert_pem = \"{cert}\"\nkey_pem = \"{key}\"\n",
        data = dir.path().join("data").display(),
        udp = common::free_udp_port(),
        cert = dir.path().join("server.pem").display(),
        key = dir.path().join("server.key").display(),
    );
    let path = dir.path().join("bydata.toml");
    std::fs::write(&path, config).unwrap();
    let stdout = dir.path().join("stdout.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bydata"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("BYDATA_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn,rumqttd=off")
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ca = dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let health = format!("https://127.0.0.1:{https}/health");
    eventually(Duration::from_secs(30), "HTTPS /health", || async {
        let out = run("curl", &["-sS", "--fail", "--cacert", ca, &health]);
        out.status.success().then_some(())
    })
    .await;
    let printed = eventually(Duration::from_secs(10), "the startup lines", || async {
        let text = std::fs::read_to_string(&stdout).unwrap_or_default();
        text.contains("  LoRaWAN ").then_some(text)
    })
    .await;
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        printed.contains(&format!("HTTPS API  https://127.0.0.1:{https}")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("MQTTS      mqtts://127.0.0.1:{mqtts}")),
        "{printed}"
    );
    assert!(!printed.contains("HTTP API   http://"), "{printed}");
    assert!(!printed.contains("mqtt://"), "{printed}");
}

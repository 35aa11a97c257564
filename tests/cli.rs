//! The command line, run as the built binary: every flag has help; `device add` prints the broker, the
//! topic and a ready `mosquitto_pub` line; `device list` has a header, status and last seen; `device status`
//! shows a device's counts; a refusal is printed in words; logs carry no colour codes when redirected; a
//! restart says how to get an admin token back and how to make a dashboard link.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ADMIN, Bydata, Mqtt, eventually, free_port, free_udp_port};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn bydata(args: &[&str], url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bydata"))
        .args(args)
        .env("BYDATA_URL", url)
        .env("BYDATA_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap()
}

fn ok(args: &[&str], url: &str) -> String {
    let out = bydata(args, url);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_flag_has_help() {
    for command in [
        &["serve", "-h"][..],
        &["device", "add", "-h"],
        &["device", "list", "-h"],
        &["device", "status", "-h"],
        &["device", "rm", "-h"],
        &["sim", "-h"],
        &["store", "verify", "-h"],
    ] {
        let help = ok(command, "http://127.0.0.1:1");
        let mut options = 0;
        for line in help.lines().filter(|l| l.trim_start().starts_with('-')) {
            options += 1;
            let spec_end = line.trim_start().find("  ");
            assert!(
                spec_end.is_some_and(|i| !line.trim_start()[i..].trim().is_empty()),
                "{command:?}: no help for {line:?}\n{help}"
            );
        }
        assert!(options >= 2, "{command:?}\n{help}");
    }
    let serve = ok(&["serve", "--help"], "http://127.0.0.1:1");
    for flag in ["--data-dir", "--mqtt-addr", "--http-addr", "--lorawan-addr"] {
        assert!(serve.contains(flag), "{serve}");
    }
    let add = ok(&["device", "add", "--help"], "http://127.0.0.1:1");
    assert!(add.contains("js:NAME@VERSION"), "{add}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_added_listed_and_shown_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let url = b.url("");
    let broker = b.mqtt.to_string();
    let added = ok(
        &[
            "device",
            "add",
            "--name",
            "Dokk1 CO2",
            "--id",
            "dokk1-co2",
            "--tag",
            "building=dokk1",
            "--broker",
            &broker,
        ],
        &url,
    );
    let password = added
        .lines()
        .find_map(|l| l.strip_prefix("password"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    for needed in [
        format!("MQTT broker  {broker}"),
        "topic        devices/dokk1-co2/up".to_owned(),
        format!(
            "mosquitto_pub -h 127.0.0.1 -p {} -q 1 -i dokk1-co2 -u dokk1-co2 -P '{password}'",
            b.mqtt.port()
        ),
    ] {
        assert!(added.contains(&needed), "{needed:?} in:\n{added}");
    }

    let list = ok(&["device", "list"], &url);
    let mut lines = list.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "TRANSPORT",
            "DOMAIN",
            "STATUS",
            "LAST",
            "SEEN",
            "NAME"
        ]
    );
    let row = lines.find(|l| l.starts_with("dokk1-co2")).unwrap();
    assert!(
        row.contains("never seen") && row.contains("never"),
        "{list}"
    );

    let mut device = Mqtt::device(b.mqtt, "dokk1-co2", &password).await;
    device
        .publish_acked("devices/dokk1-co2/up", r#"{"co2": 640}"#)
        .await
        .unwrap();
    let status = eventually(
        Duration::from_secs(15),
        "device status after a publish",
        || {
            let out = ok(&["device", "status", "dokk1-co2"], &url);
            async move { out.contains("decoded 1").then_some(out) }
        },
    )
    .await;
    assert!(status.contains("status      ok"), "{status}");
    assert!(status.contains("received    1"), "{status}");
    let list = ok(&["device", "list"], &url);
    let row = list.lines().find(|l| l.starts_with("dokk1-co2")).unwrap();
    assert!(row.contains(" ok ") && !row.contains("never"), "{list}");

    // A refusal in the API's words, never HTTP's.
    let refused = bydata(&["device", "add", "--name", "Bad", "--id", "Bad Id"], &url);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.starts_with("error: ") && stderr.contains("id"),
        "{stderr}"
    );
    assert!(!stderr.contains("Bad Request"), "{stderr}");
    let missing = bydata(&["device", "status", "nope"], &url);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("nope") && stderr.contains("HTTP 404"),
        "{stderr}"
    );

    // Redirected logs carry no colour codes.
    assert!(
        !b.log().is_empty() && !b.log().contains('\u{1b}'),
        "{}",
        b.log()
    );
}

/// `serve`'s stdout once it says it is running.
async fn started(dir: &std::path::Path, run: &str) -> String {
    let http = format!("127.0.0.1:{}", free_port());
    let out = dir.join(format!("{run}.out"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_bydata"))
        .args(["serve", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--http-addr", &http])
        .args(["--mqtt-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--lorawan-addr", &format!("127.0.0.1:{}", free_udp_port())])
        .args(["--ws-addr", &format!("127.0.0.1:{}", free_port())])
        .env_remove("BYDATA_ADMIN_TOKEN")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let printed = eventually(Duration::from_secs(30), "serve to start", || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        async move { text.contains("  admin ").then_some(text) }
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_says_how_to_get_an_admin_token_back() {
    let dir = tempfile::tempdir().unwrap();
    let first = started(dir.path(), "first").await;
    assert!(first.contains("Admin token (shown only once"), "{first}");
    assert!(first.contains("/#token=<a read token>"), "{first}");
    let again = started(dir.path(), "again").await;
    assert!(!again.contains("Admin token (shown only once"), "{again}");
    assert!(
        again.contains("BYDATA_ADMIN_TOKEN=<16+ characters> bydata serve"),
        "{again}"
    );
    assert!(again.contains("/#token=<a read token>"), "{again}");
}

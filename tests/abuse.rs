//! Issue 12 — hold under attack — against the real binary on real sockets, loopback only, bounded in count
//! and time. Each probe an attacker ran is reproduced and its bound asserted: nothing unauthenticated reaches
//! the disk; a password storm costs bounded memory while a device still connects; slow and surplus
//! connections are cut; series cardinality is capped; PUBLISHes bydata would not journal are refused; forged
//! LoRaWAN frames write nothing. (The query probes are in `abuse_query.rs`.) Figures are printed so a run
//! shows them: `cargo test --test abuse -- --nocapture`.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::raw_mqtt::{self, closed_within, connack, dial};
use common::{ADMIN, Bydata, Mqtt, eventually, options};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => bytes_under(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn metrics(b: &Bydata) -> String {
    let (_, text) = b.get("/metrics", ADMIN).await;
    text.as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connects_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    b.onboard("meter-1", json!({})).await;
    let journal = b.data_dir.join("journal");
    let (journal_before, log_before) = (bytes_under(&journal), b.log().len());

    // 300 CONNECTs with a will outside the subtree (of 60 KB, or 1 KB): no password, a wrong one, for a
    // registered id and for made-up ones, from ten source addresses.
    let huge_will = format!("elsewhere/{}", "w".repeat(60 * 1024));
    let will = format!("elsewhere/{}", "w".repeat(1024));
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..300u32 {
        let id = if i % 2 == 0 {
            "meter-1".to_owned()
        } else {
            format!("made-up-{i}")
        };
        let login = (i % 3 == 0).then_some((id.as_str(), "not-the-password"));
        let topic = if i % 4 == 0 { &huge_will } else { &will };
        let packet = raw_mqtt::connect(&id, login, Some((topic.as_bytes(), b"gone")));
        let mut s = dial(loopback(2 + (i % 10) as u8), b.mqtt).await;
        *codes.entry(connack(&mut s, &packet).await).or_insert(0) += 1;
    }
    println!("CONNACK codes for 300 unauthenticated CONNECTs: {codes:?}");
    // 4 = bad username or password (3 = busy or backing off, once an address keeps failing); a CONNECT over
    // 8 KB (the 60 KB wills) is closed unanswered.
    assert!(
        codes.keys().all(|c| matches!(c, None | Some(3 | 4))),
        "{codes:?}"
    );
    assert_eq!(codes.get(&None), Some(&75), "{codes:?}");

    let grown = bytes_under(&journal) - journal_before;
    let log = b.log();
    let logged = log.len() - log_before;
    println!("journal grew {grown} bytes, log {logged} bytes");
    assert_eq!(grown, 0, "nothing unauthenticated is journaled");
    assert!(
        logged < 8 * 1024,
        "at most a line per source a minute: {logged} bytes"
    );
    assert!(
        !log.contains(&"w".repeat(200)),
        "attacker strings are never logged whole"
    );
    let s = b.status("meter-1").await;
    assert_eq!(
        (s["received"].clone(), s["rejected"].clone()),
        (json!(0), json!(0)),
        "{s}"
    );
    assert!(s["last_error"].is_null(), "{s}");
    assert!(
        s["unverified_attempts"]["wrong_password"].as_u64().unwrap() > 0,
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_storm_costs_bounded_memory_and_devices_still_connect() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let known = b.onboard("meter-1", json!({})).await;
    let fresh = b.onboard("meter-2", json!({})).await;
    // meter-1 has logged in before the storm; meter-2 never has.
    drop(Mqtt::device(b.mqtt, "meter-1", &known).await);

    let rss_before = b.memory("VmRSS");
    b.reset_peak_memory();
    let mqtt = b.mqtt;
    let storm: Vec<_> = (0..100u32)
        .map(|i| {
            tokio::spawn(async move {
                let mut s = dial(loopback(2 + (i % 10) as u8), mqtt).await;
                let packet = raw_mqtt::connect("meter-1", Some(("meter-1", "guess")), None);
                connack(&mut s, &packet).await
            })
        })
        .collect();
    let started = Instant::now();
    let fresh_device = Mqtt::connect(options(b.mqtt, "meter-2", "meter-2", &fresh)).await;
    let fresh_took = started.elapsed();
    let started = Instant::now();
    let known_device = Mqtt::connect(options(b.mqtt, "meter-1", "meter-1", &known)).await;
    let known_took = started.elapsed();
    let mut codes = std::collections::BTreeMap::new();
    for attempt in storm {
        *codes.entry(attempt.await.unwrap()).or_insert(0) += 1;
    }
    let peak = b.memory("VmHWM").saturating_sub(rss_before);
    println!(
        "100 parallel wrong passwords: CONNACK codes {codes:?}; peak RSS +{} MB; a fresh device connected in {fresh_took:?}, a known one in {known_took:?}",
        peak / (1024 * 1024)
    );
    assert!(fresh_device.is_ok() && known_device.is_ok());
    assert!(fresh_took < Duration::from_secs(2), "{fresh_took:?}");
    assert!(known_took < Duration::from_secs(2), "{known_took:?}");
    assert!(peak < 300 * 1024 * 1024, "peak RSS grew {peak} bytes");
    assert!(codes.keys().all(|c| matches!(c, Some(3 | 4))), "{codes:?}");
    let m = metrics(&b).await;
    println!(
        "{}",
        m.lines()
            .filter(|l| l.starts_with("bydata_mqtt_password_checks_total")
                || l.starts_with("bydata_mqtt_auth_failures_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_clients_are_cut_off_and_mqtt_keeps_accepting() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    // Caps raised (and MQTT's lowered, so both fit the file limit) so that all 1,500 connections from
    // loopback are admitted and must be cut by the header timeout itself (the caps are the next test's).
    let b = Bydata::start_with_config(
        dir.path(),
        "[api]\nheader_timeout_ms = 2000\nmax_connections = 3000\nmax_connections_per_source = 3000\n\n[broker]\nmax_connections = 2000\n",
    )
    .await;
    let password = b.onboard("meter-1", json!({})).await;
    let mut slow = Vec::new();
    for _ in 0..1500 {
        let mut s = tokio::net::TcpStream::connect(b.http).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let opened = Instant::now();
    // They trickle a header line every half second, never finishing.
    let trickle = tokio::spawn(async move {
        let mut closed_at = vec![None; slow.len()];
        let mut buf = [0u8; 512];
        let mut pace = tokio::time::interval(Duration::from_millis(500));
        while closed_at.iter().any(Option::is_none) && opened.elapsed() < Duration::from_secs(20) {
            pace.tick().await;
            for (i, s) in slow.iter_mut().enumerate() {
                if closed_at[i].is_some() {
                    continue;
                }
                let gone = match s.try_read(&mut buf) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        s.write_all(b"X-Slow: 1\r\n").await.is_err()
                    }
                    Err(_) => true,
                };
                if gone {
                    closed_at[i] = Some(opened.elapsed());
                }
            }
        }
        closed_at
    });
    // Meanwhile bydata answers, and a device connects and publishes.
    let started = Instant::now();
    let (code, _) = b.get("/health", ADMIN).await;
    let health_took = started.elapsed();
    assert_eq!(code, 200);
    let mut dev = Mqtt::device(b.mqtt, "meter-1", &password).await;
    dev.publish_acked("devices/meter-1/up", r#"{"energy_kwh": 1}"#)
        .await
        .unwrap();
    let closed_at = trickle.await.unwrap();
    let open = closed_at.iter().filter(|c| c.is_none()).count();
    let last = closed_at
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_default();
    println!(
        "1,500 slow-header connections: {open} still open after 20 s, the last closed after {last:?}; /health took {health_took:?} meanwhile"
    );
    assert_eq!(open, 0);
    assert!(
        last < Duration::from_secs(5),
        "header timeout 2 s (+ the trickle's 0.5 s rounds): {last:?}"
    );
    // Counted as header timeouts (idle keep-alive connections, such as this test's own client, count too).
    let m = metrics(&b).await;
    let header_timeouts: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("bydata_http_timeouts_total{kind=\"header\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(header_timeouts >= 1500, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_a_cap_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(
        dir.path(),
        "[api]\nmax_connections_per_source = 20\n\n[broker]\nmax_connections_per_source = 20\nconnect_timeout_ms = 1500\n",
    )
    .await;
    let password = b.onboard("meter-1", json!({})).await;
    // 25 idle HTTP connections from one address: 20 held, 5 told 429 at once.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..25 {
        let mut s = dial(loopback(7), b.http).await;
        let mut buf = [0u8; 256];
        match tokio::time::timeout(
            Duration::from_millis(300),
            tokio::io::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await
        {
            Ok(Ok(n)) if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 429") => {
                refused += 1
            }
            _ => held.push(s),
        }
    }
    assert_eq!((held.len(), refused), (20, 5));
    // Another address is not affected.
    let (code, _) = b.get("/health", ADMIN).await;
    assert_eq!(code, 200);
    // 25 silent MQTT connections from one address: 5 closed at once, the other 20 after the CONNECT deadline.
    let mut silent = Vec::new();
    for _ in 0..25 {
        silent.push(dial(loopback(8), b.mqtt).await);
    }
    let started = Instant::now();
    let mut at_once = 0;
    for s in &mut silent {
        if closed_within(s, Duration::from_millis(20)).await {
            at_once += 1;
        }
    }
    assert_eq!(at_once, 5);
    for s in &mut silent {
        assert!(closed_within(s, Duration::from_secs(5)).await);
    }
    println!(
        "MQTT: 5 refused at once, 20 silent ones closed after {:?}",
        started.elapsed()
    );
    // A trickled CONNECT is cut at the deadline too, and a device from elsewhere connects throughout.
    let mut trickler = dial(loopback(9), b.mqtt).await;
    let packet = raw_mqtt::connect("meter-1", Some(("meter-1", &password)), None);
    let started = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    for byte in &packet {
        pace.tick().await;
        if trickler.write_all(&[*byte]).await.is_err() {
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut at the 1.5 s CONNECT deadline"
    );
    Mqtt::device(b.mqtt, "meter-1", &password).await;
    let m = metrics(&b).await;
    assert!(
        m.contains("bydata_mqtt_connections_refused_total{reason=\"source_cap\"} 5"),
        "{m}"
    );
    assert!(
        m.contains("bydata_http_connections_refused_total{reason=\"source_cap\"} 5"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_cardinality_is_capped_per_token_and_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(
        dir.path(),
        "[api]\nmax_series_per_token = 1000\n\n[ingest]\nmax_series_per_device = 5\n",
    )
    .await;
    let (_, token) = b
        .post(
            "/api/v1/tokens",
            ADMIN,
            &json!({"name": "telegraf", "role": "editor"}),
        )
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    let write = |lines: String| {
        let (b, token) = (&b, &token);
        async move {
            let r = b
                .client
                .post(b.url("/api/v2/write?bucket=city&precision=s"))
                .header("Authorization", format!("Token {token}"))
                .body(lines)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let lines = |range: std::ops::Range<u32>| -> String {
        range
            .map(|i| format!("heat,meter=m{i} kwh=1 1763632800\n"))
            .collect()
    };
    // A large write is stopped while it is read (at the first 10,000 new series), not after.
    let (code, body) = write(lines(0..25_000)).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("at least 10000 new series"), "{body}");
    let (code, body) = write(lines(0..1001)).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("series_limit")
            && body.contains("1001 new series")
            && body.contains("max_series_per_token"),
        "{body}"
    );
    assert_eq!(write(lines(0..1000)).await.0, 204);
    assert_eq!(
        write(lines(0..1000)).await.0,
        204,
        "known series cost nothing"
    );
    assert_eq!(write(lines(1000..1001)).await.0, 400);
    let (_, q) = b
        .get("/api/v1/query?measurement=heat&field=kwh&from=2025-11-20T00:00:00Z&to=2025-11-21T00:00:00Z", ADMIN)
        .await;
    assert_eq!(q["series"].as_array().unwrap().len(), 1000);
    assert!(
        metrics(&b)
            .await
            .contains("bydata_write_series_limit_refused_total 3")
    );

    // A device whose payload keys change with every message.
    let password = b.onboard("chatty", json!({})).await;
    let mut dev = Mqtt::device(b.mqtt, "chatty", &password).await;
    dev.publish_acked("devices/chatty/up", r#"{"a1": 1, "a2": 2, "a3": 3}"#)
        .await
        .unwrap();
    dev.publish_acked("devices/chatty/up", r#"{"a4": 4, "a5": 5, "a6": 6}"#)
        .await
        .unwrap();
    dev.publish_acked("devices/chatty/up", r#"{"a1": 7, "a2": 8}"#)
        .await
        .unwrap();
    let s = b
        .wait_status("chatty", "two uplinks decoded, one refused", |s| {
            s["decoded"] == 2 && s["rejected"] == 1
        })
        .await;
    let reason = s["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("at most 5") && reason.contains("max_series_per_device"),
        "{reason}"
    );
    assert_eq!(b.latest("chatty", "a4").await, None);
    assert_eq!(b.latest("chatty", "a1").await, Some(7.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_bydata_would_not_journal_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let password = b.onboard("meter-1", json!({})).await;
    let login = Some(("meter-1", password.as_str()));
    for (n, topic) in [
        b"devices/meter-1/status".as_slice(),
        b"devices/meter-1/+",
        b"devices/meter-1/up\0",
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = dial(loopback(1), b.mqtt).await;
        assert_eq!(
            connack(&mut s, &raw_mqtt::connect("meter-1", login, None)).await,
            Some(0)
        );
        s.write_all(&raw_mqtt::publish(topic, b"{\"energy_kwh\": 1}"))
            .await
            .unwrap();
        // No PUBACK: the connection just ends.
        let mut reply = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut reply),
        )
        .await;
        assert!(read.is_ok() && reply.is_empty(), "{topic:?} got {reply:?}");
        b.wait_status("meter-1", "the refusal", |s| s["rejected"] == n + 1)
            .await;
    }
    let s = b.status("meter-1").await;
    assert!(
        s["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("publishes its uplinks on devices/meter-1/up"),
        "{s}"
    );
    // A will is refused at CONNECT, after the login, with the reason on the device's status.
    let mut s = dial(loopback(1), b.mqtt).await;
    let with_will = raw_mqtt::connect(
        "meter-1",
        login,
        Some((b"devices/meter-1/status", b"offline")),
    );
    assert_eq!(connack(&mut s, &with_will).await, Some(5));
    let s = b
        .wait_status("meter-1", "the will refusal", |s| s["rejected"] == 4)
        .await;
    assert!(
        s["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("last will"),
        "{s}"
    );
    assert_eq!(b.latest("meter-1", "energy_kwh").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_lorawan_frames_write_nothing() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    b.register_gateway("0016c001ff10a235", "roof").await;
    b.onboard_abp(
        "lora-1",
        "70b3d57ed0000001",
        "26011bda",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "000102030405060708090a0b0c0d0e0f",
    )
    .await;
    let journal = b.data_dir.join("journal");
    let before = bytes_under(&journal);
    let gw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw.connect(b.lorawan).await.unwrap();
    // 500 data-up frames for the device's DevAddr (26011bda, little-endian) with made-up MICs.
    for i in 0..500u16 {
        let mut phy = vec![0x40, 0xda, 0x1b, 0x01, 0x26, 0x00];
        phy.extend_from_slice(&(i + 1).to_le_bytes());
        phy.extend_from_slice(&[0x01, 0xaa, 0xbb, 0xcc]);
        phy.extend_from_slice(&(u32::from(i) * 7919).to_le_bytes());
        let data = base64::engine::general_purpose::STANDARD.encode(&phy);
        let json = json!({"rxpk": [{"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125",
            "codr": "4/5", "rssi": -60, "lsnr": 7.5, "size": phy.len(), "data": data}]});
        let mut datagram = vec![
            2,
            (i >> 8) as u8,
            i as u8,
            0x00,
            0x00,
            0x16,
            0xc0,
            0x01,
            0xff,
            0x10,
            0xa2,
            0x35,
        ];
        datagram.extend_from_slice(json.to_string().as_bytes());
        gw.send(&datagram).await.unwrap();
        // Its PUSH_ACK before the next: the listener keeps up, and no datagram is lost in the socket buffer.
        let mut ack = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), gw.recv(&mut ack))
            .await
            .expect("a PUSH_ACK within 10 s")
            .unwrap();
        assert_eq!(ack[..n], [2, (i >> 8) as u8, i as u8, 0x01]);
    }
    let s = eventually(Duration::from_secs(20), "the forgeries counted", || async {
        let s = b.status("lora-1").await;
        (s["unverified_attempts"]["unverified_frames"] == 500).then_some(s)
    })
    .await;
    let grown = bytes_under(&journal) - before;
    println!(
        "500 forged frames: journal grew {grown} bytes; device status {}",
        s["unverified_attempts"]
    );
    assert_eq!(grown, 0);
    assert_eq!(
        (s["received"].clone(), s["rejected"].clone()),
        (json!(0), json!(0)),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_behind_one_address_log_in_together() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let mut fleet = Vec::new();
    for i in 0..30 {
        let id = format!("nat-{i}");
        let password = b.onboard(&id, json!({})).await;
        fleet.push((id, password));
    }
    // After an outage they all reconnect at once through one NAT address: each waits its turn for a password
    // check, none is turned away as busy.
    let mqtt = b.mqtt;
    let started = Instant::now();
    let logins: Vec<_> = fleet
        .into_iter()
        .map(|(id, password)| {
            tokio::spawn(async move {
                let mut s = dial(loopback(3), mqtt).await;
                connack(
                    &mut s,
                    &raw_mqtt::connect(&id, Some((&id, &password)), None),
                )
                .await
            })
        })
        .collect();
    for login in logins {
        assert_eq!(login.await.unwrap(), Some(0));
    }
    println!(
        "30 first logins from one address in {:?}",
        started.elapsed()
    );
}

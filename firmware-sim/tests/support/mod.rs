//! Minimal fakes of the bydata API and broker, just enough for the fleet runner: the onboarding endpoints
//! (with a 409 for chosen ids) and an MQTT 3.1.1 server that checks credentials, PUBACKs QoS 1 publishes
//! and records them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
pub(crate) struct Api {
    /// Ids the fake registry already has: creating them answers 409.
    pub(crate) existing: BTreeSet<String>,
    /// `(method path, body)` of every request.
    pub(crate) requests: Mutex<Vec<(String, String)>>,
}

pub(crate) fn password_for(id: &str) -> String {
    format!("pw-{id}")
}

pub(crate) async fn serve_api(api: Arc<Api>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer_http(socket, Arc::clone(&api)));
        }
    });
    addr
}

async fn answer_http(mut socket: TcpStream, api: Arc<Api>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method_path = format!(
        "{} {}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    );
    api.requests
        .lock()
        .expect("lock")
        .push((method_path.clone(), body.clone()));

    let authorised = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("authorization: Bearer secret"));
    let (status, answer) = if !authorised {
        (
            "401 Unauthorized",
            r#"{"error":{"code":"unauthorized","message":"bad token"}}"#.to_owned(),
        )
    } else if method_path == "POST /api/v1/devices" {
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
        let id = json["id"].as_str().expect("an id").to_owned();
        if api.existing.contains(&id) {
            (
                "409 Conflict",
                r#"{"error":{"code":"conflict","message":"exists"}}"#.to_owned(),
            )
        } else {
            ("201 Created", credentials(&id, true))
        }
    } else if let Some(id) = method_path
        .strip_prefix("POST /api/v1/devices/")
        .and_then(|rest| rest.strip_suffix("/credentials"))
    {
        ("200 OK", credentials(id, false))
    } else if let Some(id) = method_path
        .strip_prefix("GET /api/v1/devices/")
        .and_then(|rest| rest.strip_suffix("/latest"))
    {
        ("200 OK", format!(r#"{{"device":"{id}","latest":[]}}"#))
    } else {
        (
            "404 Not Found",
            r#"{"error":{"code":"not_found","message":"no"}}"#.to_owned(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

fn credentials(id: &str, with_device: bool) -> String {
    let mqtt = serde_json::json!({
        "client_id": id, "username": id, "password": password_for(id), "publish_topic": format!("devices/{id}/up")
    });
    if with_device {
        serde_json::json!({"id": id, "mqtt": mqtt}).to_string()
    } else {
        serde_json::json!({"mqtt": mqtt}).to_string()
    }
}

/// What the fake broker received: client id → (topic, payload) in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Broker {
    pub(crate) publishes: Mutex<BTreeMap<String, Vec<(String, serde_json::Value)>>>,
    pub(crate) refused_logins: Mutex<u32>,
}

pub(crate) async fn serve_mqtt(broker: Arc<Broker>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(mqtt_connection(socket, Arc::clone(&broker)));
        }
    });
    addr
}

async fn read_packet(socket: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let first = socket.read_u8().await.ok()?;
    let mut length = 0usize;
    for shift in 0..4 {
        let byte = socket.read_u8().await.ok()?;
        length |= usize::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await.ok()?;
    Some((first, body))
}

fn string_at(body: &[u8], at: &mut usize) -> String {
    let len = usize::from(u16::from_be_bytes([body[*at], body[*at + 1]]));
    let s = String::from_utf8_lossy(&body[*at + 2..*at + 2 + len]).to_string();
    *at += 2 + len;
    s
}

async fn mqtt_connection(mut socket: TcpStream, broker: Arc<Broker>) {
    let Some((0x10, connect)) = read_packet(&mut socket).await else {
        return;
    };
    let mut at = 0;
    let _protocol = string_at(&connect, &mut at);
    let flags = connect[at + 1];
    at += 4;
    let client_id = string_at(&connect, &mut at);
    assert_eq!(flags & 0x04, 0, "no will expected");
    let username = (flags & 0x80 != 0).then(|| string_at(&connect, &mut at));
    let password = (flags & 0x40 != 0).then(|| string_at(&connect, &mut at));
    if username.as_deref() != Some(client_id.as_str()) || password != Some(password_for(&client_id))
    {
        *broker.refused_logins.lock().expect("lock") += 1;
        return; // like rumqttd: no CONNACK, the socket just closes
    }
    if socket.write_all(&[0x20, 0x02, 0x00, 0x00]).await.is_err() {
        return;
    }
    while let Some((first, body)) = read_packet(&mut socket).await {
        match first >> 4 {
            3 => {
                let qos = (first >> 1) & 0x03;
                let mut at = 0;
                let topic = string_at(&body, &mut at);
                let pkid = (qos > 0).then(|| [body[at], body[at + 1]]);
                at += if qos > 0 { 2 } else { 0 };
                let payload = serde_json::from_slice(&body[at..]).expect("a JSON payload");
                broker
                    .publishes
                    .lock()
                    .expect("lock")
                    .entry(client_id.clone())
                    .or_default()
                    .push((topic, payload));
                if let Some([hi, lo]) = pkid
                    && socket.write_all(&[0x40, 0x02, hi, lo]).await.is_err()
                {
                    return;
                }
            }
            12 => {
                let _ = socket.write_all(&[0xd0, 0x00]).await;
            }
            _ => return, // DISCONNECT or anything unexpected
        }
    }
}

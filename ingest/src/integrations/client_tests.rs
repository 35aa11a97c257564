//! The client's pieces, and the client against a scripted MQTT 3.1.1 peer on 127.0.0.1 that plays the broker
//! packet by packet (the end-to-end test against a real broker lives in the workspace's `tests/`).

use super::*;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(10);
const CS_TOPIC: &str = "application/a/device/0101010101010101/event/up";
const CS_UP: &str = include_str!("testdata/chirpstack_up.json");

fn remote(port: u16) -> RemoteBroker {
    RemoteBroker {
        host: "127.0.0.1".into(),
        port,
        username: Some("bydata".into()),
        password: Some("s3cret".into()),
        client_id: "bydata-test".into(),
        topic: None,
    }
}

#[test]
fn backoff_doubles_to_the_cap_and_resets() {
    let mut backoff = Backoff::new();
    let secs: Vec<u64> = (0..8).map(|_| backoff.next_delay().as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    backoff.reset();
    assert_eq!(backoff.next_delay(), FIRST_BACKOFF);
}

#[test]
fn password_is_never_shown() {
    let debug = format!("{:?}", remote(1883));
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
    let mut without = remote(1883);
    without.password = None;
    assert!(format!("{without:?}").contains("password: None"));
}

#[test]
fn settings_that_cannot_work() {
    assert_eq!(remote(1883).check(), Ok(()));
    type Edit = fn(&mut RemoteBroker);
    let cases: Vec<(Edit, ClientError)> = vec![
        (|r| r.host = " ".into(), ClientError::EmptyHost),
        (|r| r.port = 0, ClientError::ZeroPort),
        (|r| r.username = None, ClientError::PasswordWithoutUsername),
        (
            |r| r.topic = Some("application/#/up".into()),
            ClientError::InvalidTopic {
                topic: "application/#/up".into(),
            },
        ),
        (
            |r| r.topic = Some(String::new()),
            ClientError::InvalidTopic {
                topic: String::new(),
            },
        ),
    ];
    for (edit, expected) in cases {
        let mut r = remote(1883);
        edit(&mut r);
        assert_eq!(r.check(), Err(expected));
    }
}

#[test]
fn options() {
    let options = remote(1884).options();
    assert_eq!(options.broker_address(), ("127.0.0.1".to_owned(), 1884));
    assert_eq!(options.client_id(), "bydata-test");
    assert!(options.clean_session());
    assert_eq!(options.keep_alive(), KEEP_ALIVE);
    assert_eq!(options.max_packet_size(), MAX_PACKET_SIZE);
    let login = options.credentials().expect("credentials");
    assert_eq!(
        (login.username.as_str(), login.password.as_str()),
        ("bydata", "s3cret")
    );
    let mut anonymous = remote(1884);
    anonymous.username = None;
    anonymous.password = None;
    assert!(anonymous.options().credentials().is_none());
}

#[test]
fn config_from_json() {
    let r: RemoteBroker = serde_json::from_value(serde_json::json!({
        "host": "chirpstack.example", "client_id": "bydata"
    }))
    .expect("minimal config");
    assert_eq!((r.port, r.username, r.topic), (1883, None, None));
    assert!(
        serde_json::from_value::<RemoteBroker>(serde_json::json!({
            "host": "h", "client_id": "c", "pasword": "typo"
        }))
        .is_err()
    );
}

#[test]
fn status_counts_and_stamps() {
    let status = ClientStatus::new(|| 7);
    status.set_connected();
    status.count(&Ok(Event::Ignored {
        event: "join".into(),
    }));
    status.count(&Err(IntegrationError::Empty {
        kind: Kind::Chirpstack,
    }));
    status.set_error("connection to h:1: I/O: reset".into());
    status.set_disconnected();
    assert_eq!(
        status.snapshot(),
        StatusSnapshot {
            connected: false,
            last_connected: Some(7),
            last_error: Some(LastError {
                time: 7,
                reason: "connection to h:1: I/O: reset".into()
            }),
            messages_received: 2,
            parse_errors: 1,
        }
    );
    let json = serde_json::to_value(status.snapshot()).expect("serialise");
    assert_eq!(json["messages_received"], 2);
}

/// Reads one MQTT packet: the first byte of its fixed header and the rest after the remaining length.
async fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let header = stream.read_u8().await.expect("packet header");
    let (mut length, mut shift) = (0usize, 0);
    loop {
        let byte = stream.read_u8().await.expect("remaining length");
        length |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.expect("packet body");
    (header, body)
}

fn with_length(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    let mut length = body.len();
    loop {
        let byte = (length % 128) as u8;
        length /= 128;
        out.push(if length > 0 { byte | 0x80 } else { byte });
        if length == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn publish(topic: &str, payload: &[u8], pkid: Option<u16>) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(topic.as_bytes());
    if let Some(pkid) = pkid {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    body.extend_from_slice(payload);
    with_length(if pkid.is_some() { 0x32 } else { 0x30 }, &body)
}

/// Accepts the client's connection, answers CONNECT with CONNACK, and returns the stream, the CONNECT body and
/// the SUBSCRIBE's packet id, filter and QoS.
async fn accept(listener: &TcpListener) -> (TcpStream, Vec<u8>, u16, String, u8) {
    let (mut stream, _) = timeout(STEP, listener.accept())
        .await
        .expect("client connects in time")
        .expect("accept");
    let (header, connect) = read_packet(&mut stream).await;
    assert_eq!(header, 0x10, "CONNECT");
    stream.write_all(&[0x20, 2, 0, 0]).await.expect("CONNACK");
    let (header, subscribe) = read_packet(&mut stream).await;
    assert_eq!(header, 0x82, "SUBSCRIBE");
    let pkid = u16::from_be_bytes([subscribe[0], subscribe[1]]);
    let len = usize::from(u16::from_be_bytes([subscribe[2], subscribe[3]]));
    let filter = String::from_utf8(subscribe[4..4 + len].to_vec()).expect("UTF-8 filter");
    let qos = subscribe[4 + len];
    (stream, connect, pkid, filter, qos)
}

/// A running [`subscribe`] and its ends.
struct Running {
    task: JoinHandle<Result<(), ClientError>>,
    rx: mpsc::Receiver<Delivery>,
    status: Arc<ClientStatus>,
    shutdown: CancellationToken,
}

fn start(kind: Kind, remote: RemoteBroker, capacity: usize) -> Running {
    let (tx, rx) = mpsc::channel(capacity);
    let status = Arc::new(ClientStatus::new(|| 1));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(subscribe(
        kind,
        remote,
        tx,
        status.clone(),
        shutdown.clone(),
    ));
    Running {
        task,
        rx,
        status,
        shutdown,
    }
}

async fn ends_within(task: JoinHandle<Result<(), ClientError>>, limit: Duration) {
    let started = Instant::now();
    let ended = timeout(limit, task).await.expect("subscribe ends in time");
    assert_eq!(ended.expect("no panic"), Ok(()));
    assert!(started.elapsed() <= limit);
}

#[tokio::test]
async fn chirpstack_delivers_and_resubscribes_after_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let Running {
        task,
        mut rx,
        status,
        shutdown,
    } = start(Kind::Chirpstack, remote(port), 4);

    let (mut stream, connect, pkid, filter, qos) = accept(&listener).await;
    // Protocol "MQTT" level 4; flags: username, password, clean session; keep-alive 30 s.
    assert_eq!(&connect[..7], b"\x00\x04MQTT\x04");
    assert_eq!(connect[7], 0x80 | 0x40 | 0x02);
    assert_eq!(u16::from_be_bytes([connect[8], connect[9]]), 30);
    let payload = &connect[10..];
    assert_eq!(payload, b"\x00\x0bbydata-test\x00\x06bydata\x00\x06s3cret");
    assert_eq!(
        (filter.as_str(), qos),
        ("application/+/device/+/event/up", 1)
    );
    let [hi, lo] = pkid.to_be_bytes();
    stream
        .write_all(&[0x90, 3, hi, lo, 1])
        .await
        .expect("SUBACK");

    stream
        .write_all(&publish(CS_TOPIC, CS_UP.as_bytes(), Some(7)))
        .await
        .expect("PUBLISH");
    stream
        .write_all(&publish(CS_TOPIC, b"\x0a\x24protobuf", Some(8)))
        .await
        .expect("PUBLISH");
    let first = timeout(STEP, rx.recv())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(first.topic, CS_TOPIC);
    match first.result {
        Ok(Event::Uplink(up)) => assert_eq!(up.payload, [0xaa]),
        other => panic!("not an uplink: {other:?}"),
    }
    let second = timeout(STEP, rx.recv())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(second.result.map_err(|e| e.code()), Err("not_json"));
    assert_eq!(read_packet(&mut stream).await, (0x40, vec![0, 7]), "PUBACK");
    assert_eq!(read_packet(&mut stream).await, (0x40, vec![0, 8]), "PUBACK");

    // The broker goes away: the client reconnects after FIRST_BACKOFF and subscribes again.
    drop(stream);
    let (mut stream, _, _, filter, qos) = accept(&listener).await;
    assert_eq!(
        (filter.as_str(), qos),
        ("application/+/device/+/event/up", 1)
    );
    let snapshot = status.snapshot();
    assert!(snapshot.connected);
    assert_eq!((snapshot.messages_received, snapshot.parse_errors), (2, 1));
    let reason = snapshot.last_error.expect("the lost connection").reason;
    assert!(
        reason.starts_with(&format!("connection to 127.0.0.1:{port}")),
        "{reason}"
    );

    shutdown.cancel();
    assert_eq!(
        timeout(STEP, read_packet(&mut stream))
            .await
            .expect("in time"),
        (0xe0, vec![]),
        "DISCONNECT"
    );
    ends_within(task, STEP).await;
    assert!(!status.snapshot().connected);
}

#[tokio::test]
async fn tts_subscribes_at_qos_0_to_a_configured_topic() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let mut settings = remote(port);
    settings.username = None;
    settings.password = None;
    settings.topic = Some("v3/app1@ttn/devices/+/up".into());
    let Running {
        task,
        mut rx,
        status: _status,
        shutdown,
    } = start(Kind::Tts, settings, 1);
    let (mut stream, connect, pkid, filter, qos) = accept(&listener).await;
    assert_eq!(connect[7], 0x02, "clean session, no credentials");
    assert_eq!((filter.as_str(), qos), ("v3/app1@ttn/devices/+/up", 0));
    let [hi, lo] = pkid.to_be_bytes();
    stream
        .write_all(&[0x90, 3, hi, lo, 0])
        .await
        .expect("SUBACK");
    let join = publish("v3/app1@ttn/devices/dev1/join", b"{}", None);
    stream.write_all(&join).await.expect("PUBLISH");
    let delivery = timeout(STEP, rx.recv())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(
        delivery.result,
        Ok(Event::Ignored {
            event: "join".into()
        })
    );
    shutdown.cancel();
    ends_within(task, STEP).await;
}

#[tokio::test]
async fn refused_subscription_is_an_error_and_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let Running {
        task,
        rx: _rx,
        status,
        shutdown,
    } = start(Kind::Chirpstack, remote(port), 1);
    let (mut stream, _, pkid, _, _) = accept(&listener).await;
    let [hi, lo] = pkid.to_be_bytes();
    stream
        .write_all(&[0x90, 3, hi, lo, 0x80])
        .await
        .expect("SUBACK failure");
    // The client drops the connection and tries again.
    let (_stream, ..) = accept(&listener).await;
    let reason = status.snapshot().last_error.expect("refusal").reason;
    assert_eq!(
        reason,
        format!(
            "the broker at 127.0.0.1:{port} refused the subscription to application/+/device/+/event/up; \
             may this user read it?"
        )
    );
    shutdown.cancel();
    ends_within(task, STEP).await;
}

#[tokio::test]
async fn unreachable_broker_then_prompt_shutdown() {
    // A port that was just free: nothing listens on it, so every attempt is refused at once.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address").port()
    };
    let Running {
        task,
        rx: _rx,
        status,
        shutdown,
    } = start(Kind::Tts, remote(port), 1);
    let deadline = Instant::now() + STEP;
    while status.snapshot().last_error.is_none() {
        assert!(Instant::now() < deadline, "no connection error recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!status.snapshot().connected);
    shutdown.cancel();
    // Waiting out a backoff is interrupted.
    ends_within(task, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn stops_when_the_receiver_is_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let Running {
        task,
        rx,
        status: _status,
        shutdown: _shutdown,
    } = start(Kind::Chirpstack, remote(port), 1);
    let (mut stream, _, pkid, _, _) = accept(&listener).await;
    let [hi, lo] = pkid.to_be_bytes();
    stream
        .write_all(&[0x90, 3, hi, lo, 1])
        .await
        .expect("SUBACK");
    drop(rx);
    stream
        .write_all(&publish(CS_TOPIC, CS_UP.as_bytes(), Some(1)))
        .await
        .expect("PUBLISH");
    ends_within(task, STEP).await;
}

#[tokio::test]
async fn bad_settings_fail_at_once() {
    let mut settings = remote(1883);
    settings.host = String::new();
    let Running {
        task,
        rx: _rx,
        status: _status,
        shutdown: _shutdown,
    } = start(Kind::Chirpstack, settings, 1);
    let ended = timeout(STEP, task)
        .await
        .expect("in time")
        .expect("no panic");
    assert_eq!(ended, Err(ClientError::EmptyHost));
}

#[tokio::test]
async fn bad_credentials_are_reported_without_the_password() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let Running {
        task,
        rx: _rx,
        status,
        shutdown,
    } = start(Kind::Chirpstack, remote(port), 1);
    let (mut stream, _) = timeout(STEP, listener.accept())
        .await
        .expect("client connects in time")
        .expect("accept");
    assert_eq!(read_packet(&mut stream).await.0, 0x10, "CONNECT");
    // CONNACK, return code 4: bad user name or password.
    stream.write_all(&[0x20, 2, 0, 4]).await.expect("CONNACK");
    let deadline = Instant::now() + STEP;
    let reason = loop {
        if let Some(e) = status.snapshot().last_error {
            break e.reason;
        }
        assert!(Instant::now() < deadline, "no connection error recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        reason,
        format!(
            "the broker at 127.0.0.1:{port} refused the connection: check the username and password"
        )
    );
    assert!(!format!("{:?}", status.snapshot()).contains("s3cret"));
    shutdown.cancel();
    ends_within(task, STEP).await;
}

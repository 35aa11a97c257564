//! Notifications with real receivers: webhook receivers on loopback (axum) that check the signature exactly
//! as the README tells receivers to (their own HMAC-SHA256, not bydata's), and aiosmtpd (PyPI) as the SMTP
//! relay with STARTTLS required and a certificate from a test CA (rcgen). Through the real binary: the channel
//! test action, a receiver down then up, a refusing relay (retried, visible in `/api/v1/notifications`), and
//! `kill -9` during a delivery (delivered again with the same key). Through the crate's own API: digests.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{ADMIN, Bydata, eventually, free_port};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const AIOSMTPD: &str = "aiosmtpd==1.4.6";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- the webhook receiver

/// HMAC-SHA256 (RFC 2104), written out here so the receiver's check does not share bydata's code.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    headers: HeaderMap,
    body: Value,
    /// Whether the signature verified, as the README says: timestamp within 5 minutes, HMAC over
    /// "<timestamp>.<raw body>" with the secret's bytes, compared with `sha256=<hex>`.
    verified: bool,
}

const ANSWER_OK: u8 = 0;
const ANSWER_503: u8 = 1;
const ANSWER_400: u8 = 2;
/// Reports the request, then answers only after 30 s (bydata is killed meanwhile).
const HANG: u8 = 3;

#[derive(Clone)]
struct Receiver {
    port: u16,
    secret: Arc<Mutex<String>>,
    got: Arc<Mutex<Vec<Received>>>,
    /// How the next requests are answered; a 503 or a hang falls back to OK after one request.
    mode: Arc<AtomicU8>,
    hung: tokio::sync::mpsc::Sender<()>,
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn hook(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let ts = header("X-Bydata-Timestamp");
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    let secret = r.secret.lock().unwrap().clone();
    let signed = [ts.as_bytes(), b".", &body].concat();
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    );
    let verified = fresh && expected == header("X-Bydata-Signature");
    r.got.lock().unwrap().push(Received {
        delivery: header("X-Bydata-Delivery"),
        headers: headers.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified,
    });
    match r.mode.load(Ordering::SeqCst) {
        ANSWER_503 => {
            r.mode.store(HANG, Ordering::SeqCst);
            StatusCode::SERVICE_UNAVAILABLE
        }
        ANSWER_400 => StatusCode::BAD_REQUEST,
        HANG => {
            r.mode.store(ANSWER_OK, Ordering::SeqCst);
            let _ = r.hung.try_send(());
            // Never answers: bydata's request timeout ends it.
            std::future::pending::<StatusCode>().await
        }
        _ => StatusCode::OK,
    }
}

/// A receiver on `port` (free, or picked earlier for a receiver that is "down" until now).
async fn receiver_on(port: u16, mode: u8) -> (Receiver, tokio::sync::mpsc::Receiver<()>) {
    let (hung, hung_rx) = tokio::sync::mpsc::channel(4);
    let r = Receiver {
        port,
        secret: Arc::default(),
        got: Arc::default(),
        mode: Arc::new(AtomicU8::new(mode)),
        hung,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, hung_rx)
}

// ---------------------------------------------------------------- the SMTP relay (aiosmtpd)

/// A test CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it (`server.pem`, `server.key`).
fn make_certs(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "bydata SMTP test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    std::fs::write(
        dir.join("server.pem"),
        leaf.signed_by(&key, &issuer).unwrap().pem(),
    )
    .unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

/// Saves every accepted mail as JSON in the output directory; refuses recipients starting with "refuse".
const RELAY: &str = r#"
import email, email.policy, json, os, ssl, sys, time
from aiosmtpd.controller import Controller

class Save:
    def __init__(self, out):
        self.out, self.n = out, 0
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refuse"):
            return "550 5.7.1 relaying denied for " + address
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        path = os.path.join(self.out, "%d-%d.json" % (time.time_ns(), self.n))
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with open(path + ".tmp", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos, "tls": session.ssl is not None,
                       "subject": str(message["subject"]), "message_id": str(message["message-id"]),
                       "body": message.get_content()}, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 saved as %d" % self.n

port, out, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(Save(out), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
controller.start()
print("ready", flush=True)
sys.stdin.read()  # until the test binary exits (its end of the pipe closes)
controller.stop()
"#;

/// The relay every test of this binary shares (started once).
struct Relay {
    port: u16,
    dir: PathBuf,
    _child: Mutex<Child>,
}

impl Relay {
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Mails saved so far whose recipients include `to`.
    fn mails_to(&self, to: &str) -> Vec<Value> {
        let mut out: Vec<(String, Value)> = std::fs::read_dir(self.dir.join("mail"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                (p.display().to_string(), v)
            })
            .filter(|(_, v)| v["to"].as_array().unwrap().iter().any(|t| t == to))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, v)| v).collect()
    }
}

fn relay() -> &'static Relay {
    static RELAY_ONCE: OnceLock<Relay> = OnceLock::new();
    RELAY_ONCE.get_or_init(|| {
        let venv = common::python_venv("aiosmtpd-venv", &[AIOSMTPD]);
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("smtp-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        make_certs(&dir);
        std::fs::write(dir.join("relay.py"), RELAY).unwrap();
        let port = free_port();
        let mut child = Command::new(venv.join("bin/python"))
            .arg(dir.join("relay.py"))
            .arg(port.to_string())
            .arg(dir.join("mail"))
            .arg(dir.join("server.pem"))
            .arg(dir.join("server.key"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Relay {
            port,
            dir,
            _child: Mutex::new(child),
        }
    })
}

// ---------------------------------------------------------------- bydata

fn config(relay: &Relay) -> String {
    format!(
        "[notify]\nwebhook_private_addresses = true\ninitial_backoff_ms = 200\nmax_backoff_secs = 1\n\
         webhook_timeout_secs = 3\nmax_attempts = 50\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n\
         starttls = \"required\"\nfrom = \"bydata <alerts@bydata.test>\"\nca_file = \"{}\"\ntimeout_secs = 5\n",
        relay.port,
        relay.ca().display()
    )
}

async fn webhook_channel(b: &Bydata, id: &str, port: u16) -> String {
    let (code, body) = b
        .post(
            "/api/v1/notification-channels",
            ADMIN,
            &json!({"id": id, "name": id, "kind": "webhook", "url": format!("http://127.0.0.1:{port}/hook"),
                    "headers": {"Authorization": "Bearer receiver-token"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    body["signing_secret"].as_str().unwrap().to_owned()
}

async fn test_action(b: &Bydata, channel: &str) -> Value {
    let (code, body) = b
        .post(
            &format!("/api/v1/notification-channels/{channel}/test"),
            ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

/// The channel's latest delivery once `pred` holds for it.
async fn wait_delivery(
    b: &Bydata,
    channel: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    eventually(WAIT, what, || async {
        let (_, body) = b
            .get(&format!("/api/v1/notifications?channel={channel}"), ADMIN)
            .await;
        let latest = body["notifications"].get(0)?.clone();
        pred(&latest).then_some(latest)
    })
    .await
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_survive_a_kill() {
    let relay = relay();
    let dir = tempfile::tempdir().unwrap();
    let mut b = Bydata::start_with_config(dir.path(), &config(relay)).await;

    // Delivered at once, signed, with the channel's header; the list never shows the secret.
    let (ok, _) = receiver_on(free_port(), ANSWER_OK).await;
    let secret = webhook_channel(&b, "ops", ok.port).await;
    *ok.secret.lock().unwrap() = secret.clone();
    let answer = test_action(&b, "ops").await;
    assert_eq!(answer["status"], "delivered", "{answer}");
    assert_eq!(answer["answer"], "HTTP 200 OK", "{answer}");
    let got = ok.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].verified, "the signature verifies as the README says");
    assert_eq!(got[0].delivery, answer["delivery"].as_str().unwrap());
    assert_eq!(got[0].headers["authorization"], "Bearer receiver-token");
    assert_eq!(got[0].body["kind"], "test");
    assert_eq!(got[0].body["notifications"][0]["key"], answer["delivery"]);
    let (_, list) = b.get("/api/v1/notification-channels", ADMIN).await;
    assert!(!list.to_string().contains(&secret) && !list.to_string().contains("receiver-token"));

    // A receiver that is down, then up: retried until it is back, with the same key.
    let late_port = free_port();
    webhook_channel(&b, "late", late_port).await;
    let first = test_action(&b, "late").await;
    assert_eq!(first["status"], "retrying", "{first}");
    assert!(
        first["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{first}"
    );
    let (late, _) = receiver_on(late_port, ANSWER_OK).await;
    let done = wait_delivery(&b, "late", "the late receiver's delivery", |d| {
        d["status"] == "delivered"
    })
    .await;
    assert!(done["attempts"].as_u64().unwrap() >= 2, "{done}");
    assert!(
        late.received()
            .iter()
            .all(|r| r.delivery == first["delivery"].as_str().unwrap())
    );

    // Any other 4xx: refused for good at once.
    let (strict, _) = receiver_on(free_port(), ANSWER_400).await;
    webhook_channel(&b, "strict", strict.port).await;
    let refused = test_action(&b, "strict").await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["last_error"].as_str().unwrap().contains("HTTP 400"),
        "{refused}"
    );

    let (_, metrics) = b.get("/metrics", ADMIN).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    for counted in [
        "bydata_notifications_sent_total{kind=\"webhook\"} 2",
        "bydata_notifications_failed_total{kind=\"webhook\"} 1",
    ] {
        assert!(metrics.contains(counted), "{counted}: {metrics}");
    }

    // kill -9 while bydata waits for the receiver's answer: after the restart the same message again.
    let (crash, mut hung) = receiver_on(free_port(), ANSWER_503).await;
    let crash_secret = webhook_channel(&b, "crash", crash.port).await;
    *crash.secret.lock().unwrap() = crash_secret;
    let first = test_action(&b, "crash").await;
    assert_eq!(first["status"], "retrying", "{first}");
    tokio::time::timeout(WAIT, hung.recv())
        .await
        .expect("the retry reaches the receiver");
    b.kill9();
    let mut b = Bydata::start_with(
        &dir.path().join("data"),
        &["--config", dir.path().join("bydata.toml").to_str().unwrap()],
    )
    .await;
    wait_delivery(&b, "crash", "the delivery after the restart", |d| {
        d["status"] == "delivered"
    })
    .await;
    let got = crash.received();
    assert!(
        got.len() >= 3,
        "503, the attempt cut by kill -9, the one after: {got:?}"
    );
    assert!(
        got.iter()
            .all(|r| r.verified && r.delivery == first["delivery"].as_str().unwrap())
    );

    // This process (after the restart) sent one message.
    let (_, metrics) = b.get("/metrics", ADMIN).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("bydata_notifications_sent_total{kind=\"webhook\"} 1"),
        "{metrics}"
    );
    assert!(b.terminate().await.success());
}

#[tokio::test]
async fn mail_goes_through_starttls_and_a_refusing_relay_is_retried_and_visible() {
    let relay = relay();
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(dir.path(), &config(relay)).await;
    let mail = |id: &str, to: &str| json!({"id": id, "name": id, "kind": "email", "to": [to]});
    let (code, body) = b
        .post(
            "/api/v1/notification-channels",
            ADMIN,
            &mail("mail", "ops@bydata.test"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert!(body.get("signing_secret").is_none());
    let answer = test_action(&b, "mail").await;
    assert_eq!(answer["status"], "delivered", "{answer}");
    assert!(
        answer["answer"].as_str().unwrap().starts_with("250"),
        "{answer}"
    );
    let mails = relay.mails_to("ops@bydata.test");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["tls"], true, "STARTTLS was used");
    assert_eq!(mails[0]["from"], "alerts@bydata.test");
    assert_eq!(
        mails[0]["subject"],
        "[bydata] TEST: Test notification for channel \"mail\""
    );
    let id = mails[0]["message_id"].as_str().unwrap();
    assert!(id.starts_with('<') && id.ends_with("@bydata>"), "{id}");
    let text = mails[0]["body"].as_str().unwrap();
    assert!(
        text.contains("This is a test notification from bydata"),
        "{text}"
    );
    assert!(
        text.contains(answer["delivery"].as_str().unwrap()),
        "{text}"
    );

    // The relay refuses: retried, and visible with the relay's answer; webhooks go on meanwhile.
    let (code, body) = b
        .post(
            "/api/v1/notification-channels",
            ADMIN,
            &mail("refused", "refuse@bydata.test"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let first = test_action(&b, "refused").await;
    assert_eq!(first["status"], "retrying", "{first}");
    assert!(
        first["last_error"].as_str().unwrap().contains("550"),
        "{first}"
    );
    let (hook, _) = receiver_on(free_port(), ANSWER_OK).await;
    webhook_channel(&b, "hook", hook.port).await;
    assert_eq!(test_action(&b, "hook").await["status"], "delivered");
    let retried = wait_delivery(&b, "refused", "the refused mail retried", |d| {
        d["attempts"].as_u64().unwrap() >= 3
    })
    .await;
    assert_eq!(retried["status"], "retrying", "{retried}");
    assert!(
        retried["last_error"]
            .as_str()
            .unwrap()
            .contains("relaying denied"),
        "{retried}"
    );
    assert!(relay.mails_to("refuse@bydata.test").is_empty());
    let metrics = eventually(WAIT, "the retrying gauge", || async {
        let (_, m) = b.get("/metrics", ADMIN).await;
        let m = m.as_str()?.to_owned();
        m.contains("bydata_notifications_retrying{kind=\"email\"} 1")
            .then_some(m)
    })
    .await;
    assert!(
        metrics.contains("bydata_notifications_sent_total{kind=\"email\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn many_at_once_become_one_digest_per_channel_group_and_kind() {
    use bydata_notify::{
        Channel, ChannelId, ChannelTarget, Notification, NotificationKind, Notifier,
    };
    let relay = relay();
    let dir = tempfile::tempdir().unwrap();
    let registry = bydata_store::RedbRegistry::open(
        &dir.path().join("registry.redb"),
        bydata_store::SecretKey::from_bytes([3; 32]),
    )
    .unwrap()
    .shared();
    let org = bydata_store::OrgId::default();
    let (hook, _) = receiver_on(free_port(), ANSWER_OK).await;
    let channel = |id: &str, target: ChannelTarget| Channel {
        id: ChannelId::new(id).unwrap(),
        name: id.into(),
        org: org.clone(),
        target,
        created_at: 0,
    };
    let url = format!("http://127.0.0.1:{}/hook", hook.port);
    let (_, secret) = registry
        .create_channel(
            channel(
                "hook",
                ChannelTarget::Webhook {
                    url,
                    headers: vec![],
                },
            ),
            vec![],
        )
        .await
        .unwrap();
    *hook.secret.lock().unwrap() = secret.unwrap();
    let to = vec!["digest@bydata.test".to_owned()];
    registry
        .create_channel(channel("mail", ChannelTarget::Email { to }), vec![])
        .await
        .unwrap();
    let notify = bydata_notify::Notify::new(
        bydata_notify::Deps {
            registry,
            clock: Arc::new(|| chrono::Utc::now().timestamp_nanos_opt().unwrap()),
            metrics: Arc::default(),
        },
        bydata_notify::Config {
            digest_window_secs: 1,
            digest_threshold: 5,
            webhook_private_addresses: true,
            ..bydata_notify::Config::default()
        },
        &bydata_notify::SmtpConfig {
            host: "127.0.0.1".into(),
            port: relay.port,
            ca_file: Some(relay.ca()),
            from: "bydata <alerts@bydata.test>".into(),
            ..bydata_notify::SmtpConfig::default()
        },
    )
    .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(notify.clone().run(stop.clone()));

    let n =
        |channel: &str, key: String, kind: NotificationKind, group: &str, i: usize| Notification {
            org: org.clone(),
            channel: channel.into(),
            key,
            kind,
            subject: format!("dev-{i} went silent"),
            body: json!({"device": format!("dev-{i}")}),
            group: Some(group.into()),
            at: 0,
        };
    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(n(
            "hook",
            format!("fire-hook-{i}"),
            NotificationKind::Firing,
            "gateway:aa",
            i,
        ));
        batch.push(n(
            "hook",
            format!("ok-hook-{i}"),
            NotificationKind::Resolved,
            "gateway:aa",
            i,
        ));
        batch.push(n(
            "mail",
            format!("fire-mail-{i}"),
            NotificationKind::Firing,
            "gateway:aa",
            i,
        ));
    }
    for i in 0..3 {
        batch.push(n(
            "hook",
            format!("few-{i}"),
            NotificationKind::Firing,
            "gateway:bb",
            i,
        ));
    }
    notify.enqueue(batch.clone()).await.unwrap();
    // A restart enqueueing again sends nothing twice.
    notify.enqueue(batch.clone()).await.unwrap();
    for item in &batch {
        let key = item.key.clone();
        eventually(WAIT, &format!("{key} delivered"), || {
            let (notify, key) = (notify.clone(), key.clone());
            async move {
                let state = notify.delivery(&key).await.unwrap()?;
                (state.status == bydata_notify::DeliveryStatus::Delivered).then_some(())
            }
        })
        .await;
    }
    let got = hook.received();
    assert_eq!(got.len(), 5, "two digests and three single messages");
    assert!(got.iter().all(|r| r.verified));
    let digests: Vec<&Received> = got.iter().filter(|r| r.body["digest"] == true).collect();
    assert_eq!(digests.len(), 2);
    for d in &digests {
        assert_eq!(d.body["count"], 30);
        assert_eq!(d.body["notifications"].as_array().unwrap().len(), 30);
        assert!(d.delivery.starts_with("digest:hook:"), "{}", d.delivery);
        assert!(
            d.body["subject"].as_str().unwrap().starts_with("30 "),
            "{}",
            d.body
        );
    }
    let kinds: std::collections::BTreeSet<&str> = digests
        .iter()
        .map(|d| d.body["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["firing", "resolved"].into());
    assert!(
        got.iter()
            .filter(|r| r.body["digest"] == false)
            .all(|r| r.body["group"] == "gateway:bb")
    );
    let state = notify.delivery("fire-hook-7").await.unwrap().unwrap();
    assert!(state.digest && state.delivery.unwrap().starts_with("digest:hook:"));

    let mails = relay.mails_to("digest@bydata.test");
    assert_eq!(mails.len(), 1, "one mail for the 30");
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("[bydata] FIRING: 30 firing in gateway:aa")
    );
    let text = mails[0]["body"].as_str().unwrap();
    assert!(text.contains("30 notifications in gateway:aa"), "{text}");
    assert!(
        (0..30).all(|i| text.contains(&format!("dev-{i} went silent"))),
        "{text}"
    );
    stop.cancel();
}

//! Test harness: runs the real `bydata` binary on free ports with its own data directory, talks to it over
//! real HTTP and real MQTT, and polls with deadlines (never fixed sleeps).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod browser;
pub mod dcat;
pub mod oidc_provider;
pub mod raw_mqtt;
pub mod webdriver;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_or(timeout, f)
        .await
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls `f` until it returns `Some`; `None` after `timeout`, for a caller that says more about why.
pub async fn eventually_or<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

/// A running `bydata serve`.
pub struct Bydata {
    pub child: Child,
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    /// Semtech UDP (LoRaWAN gateways).
    pub lorawan: SocketAddr,
    /// MQTT over WebSockets (`ws://{ws}/mqtt`).
    pub ws: SocketAddr,
    pub client: reqwest::Client,
    log: PathBuf,
}

impl Bydata {
    /// Starts bydata on fresh ports over `data_dir` and waits until `/health` answers.
    pub async fn start(data_dir: &Path) -> Bydata {
        Self::start_with(data_dir, &[]).await
    }

    /// Starts bydata over `dir/data` with `toml` as its config file (`dir/bydata.toml`).
    pub async fn start_with_config(dir: &Path, toml: &str) -> Bydata {
        let config = dir.join("bydata.toml");
        std::fs::write(&config, toml).unwrap();
        Self::start_with(&dir.join("data"), &["--config", config.to_str().unwrap()]).await
    }

    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> Bydata {
        Self::start_with_env(data_dir, extra, &[]).await
    }

    pub async fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Bydata {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Self::start_at(http, data_dir, extra, env).await
    }

    /// Starts bydata with its HTTP API on `http` (for a peer that must know bydata's URL beforehand).
    pub async fn start_at(
        http: SocketAddr,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Bydata {
        let mqtt = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let lorawan = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let ws = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = data_dir.with_extension(format!("{}.log", http.port()));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_bydata"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http-addr")
            .arg(http.to_string())
            .arg("--mqtt-addr")
            .arg(mqtt.to_string())
            .arg("--lorawan-addr")
            .arg(lorawan.to_string())
            .arg("--ws-addr")
            .arg(ws.to_string())
            .args(extra)
            .env("BYDATA_ADMIN_TOKEN", ADMIN)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,rumqttd=off")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("bydata binary starts");
        let b = Bydata {
            child,
            data_dir: data_dir.to_owned(),
            http,
            mqtt,
            lorawan,
            ws,
            client: reqwest::Client::new(),
            log,
        };
        let url = b.url("/health");
        let client = b.client.clone();
        eventually(Duration::from_secs(30), "bydata /health", || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let r = client.get(url).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
        b
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends with a bearer token; returns the status and the JSON body (or the text as a JSON string).
    async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
        let r = request.bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path)), token).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(self.client.delete(self.url(path)), token).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(body), token)
            .await
    }

    /// Onboards an MQTT device with the admin token; returns its password.
    pub async fn onboard(&self, id: &str, tags: Value) -> String {
        let (status, body) = self
            .post(
                "/api/v1/devices",
                ADMIN,
                &serde_json::json!({
                    "id": id, "name": format!("test device {id}"), "transport": "mqtt",
                    "domain": "building", "location": {"lat": 56.1572, "lon": 10.2107}, "tags": tags,
                }),
            )
            .await;
        assert_eq!(status, 201, "onboarding {id}: {body}");
        body["mqtt"]["password"].as_str().unwrap().to_owned()
    }

    /// Uploads a JavaScript codec with the admin token: (status, answer).
    pub async fn upload_codec(&self, name: &str, script: &str, examples: Value) -> (u16, Value) {
        let body = serde_json::json!({"name": name, "description": "test", "script": script, "examples": examples});
        self.post("/api/v1/codecs", ADMIN, &body).await
    }

    /// Onboards an MQTT device decoded by `codec` (`js:NAME[@V]`, `cayenne`, …) and connects it.
    pub async fn codec_device(&self, id: &str, codec: &str) -> Mqtt {
        let body = serde_json::json!({"id": id, "name": id, "transport": "mqtt", "domain": "building", "codec": codec});
        let (code, body) = self.post("/api/v1/devices", ADMIN, &body).await;
        assert_eq!(code, 201, "{body}");
        Mqtt::device(self.mqtt, id, body["mqtt"]["password"].as_str().unwrap()).await
    }

    /// Registers a LoRaWAN gateway with the admin token.
    pub async fn register_gateway(&self, eui: &str, name: &str) {
        let (code, body) = self
            .post(
                "/api/v1/gateways",
                ADMIN,
                &serde_json::json!({"eui": eui, "name": name}),
            )
            .await;
        assert_eq!(code, 201, "registering gateway {eui}: {body}");
    }

    /// Onboards an ABP LoRaWAN device (Cayenne LPP codec) with the admin token.
    pub async fn onboard_abp(
        &self,
        id: &str,
        dev_eui: &str,
        dev_addr: &str,
        nwk_s_key: &str,
        app_s_key: &str,
    ) {
        let (code, body) = self
            .post(
                "/api/v1/devices",
                ADMIN,
                &serde_json::json!({"id": id, "name": format!("test device {id}"), "transport": "lorawan",
                    "domain": "building", "codec": "cayenne",
                    "lorawan": {"activation": "abp", "dev_eui": dev_eui, "dev_addr": dev_addr,
                        "nwk_s_key": nwk_s_key, "app_s_key": app_s_key}}),
            )
            .await;
        assert_eq!(code, 201, "onboarding {id}: {body}");
    }

    pub async fn status(&self, id: &str) -> Value {
        let (code, body) = self
            .get(&format!("/api/v1/devices/{id}/status"), ADMIN)
            .await;
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Waits until the device's status satisfies `pred`.
    pub async fn wait_status(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(20), what, || async {
            let s = self.status(id).await;
            pred(&s).then_some(s)
        })
        .await
    }

    pub async fn latest(&self, id: &str, measurement: &str) -> Option<f64> {
        let (code, body) = self
            .get(&format!("/api/v1/devices/{id}/latest"), ADMIN)
            .await;
        assert_eq!(code, 200, "{body}");
        body["latest"]
            .as_array()?
            .iter()
            .find(|l| l["measurement"] == measurement)
            .and_then(|l| l["value"].as_f64())
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// A `kB` line of the process's `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
    pub fn memory(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    /// Resets the process's peak RSS (`VmHWM`) to its current RSS (Linux `clear_refs` 5).
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").unwrap();
    }

    /// `kill -9`: no flush, no goodbye.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid()])
            .status()
            .unwrap();
        assert!(ok.success());
        let child = &mut self.child;
        eventually(
            Duration::from_secs(20),
            "bydata to exit after SIGTERM",
            || {
                let status = child.try_wait().unwrap();
                async move { status }
            },
        )
        .await
    }
}

impl Drop for Bydata {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real MQTT 3.1.1 client whose event loop runs in its own task; events arrive on a bounded channel.
pub struct Mqtt {
    pub client: AsyncClient,
    pub events: tokio::sync::mpsc::Receiver<Result<Event, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mqtt {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn options(addr: SocketAddr, client_id: &str, username: &str, password: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    o.set_credentials(username, password);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1024 * 1024, 1024 * 1024);
    o
}

fn spawn_loop(
    mut eventloop: EventLoop,
) -> (
    tokio::sync::mpsc::Receiver<Result<Event, String>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(10_000);
    let task = tokio::spawn(async move {
        loop {
            let e = eventloop.poll().await.map_err(|e| e.to_string());
            let stop = e.is_err();
            if tx.send(e).await.is_err() || stop {
                return;
            }
        }
    });
    (rx, task)
}

impl Mqtt {
    /// Connects and waits for the CONNACK; `Err` with the reason if the broker refuses or closes.
    pub async fn connect(opts: MqttOptions) -> Result<Mqtt, String> {
        let (client, eventloop) = AsyncClient::new(opts, 100);
        let (mut events, task) = spawn_loop(eventloop);
        let outcome = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(e) = events.recv().await {
                match e {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        return if ack.code == rumqttc::ConnectReturnCode::Success {
                            Ok(())
                        } else {
                            Err(format!("{:?}", ack.code))
                        };
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            Err("event loop ended".to_owned())
        })
        .await
        .unwrap_or_else(|_| Err("no CONNACK within 15 s".to_owned()));
        match outcome {
            Ok(()) => Ok(Mqtt {
                client,
                events,
                task,
            }),
            Err(e) => {
                task.abort();
                Err(e)
            }
        }
    }

    pub async fn device(addr: SocketAddr, id: &str, password: &str) -> Mqtt {
        Mqtt::connect(options(addr, id, id, password))
            .await
            .expect("device connects")
    }

    /// Publishes at QoS 1 and waits for its PUBACK (or the connection's end, as `Err`).
    pub async fn publish_acked(
        &mut self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), String> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .map_err(|e| e.to_string())?;
        let mut pkid = None;
        tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(e) = self.events.recv().await {
                match e? {
                    Event::Outgoing(Outgoing::Publish(id)) => pkid = Some(id),
                    Event::Incoming(Incoming::PubAck(ack)) if Some(ack.pkid) == pkid => {
                        return Ok(());
                    }
                    _ => {}
                }
            }
            Err("event loop ended".to_owned())
        })
        .await
        .unwrap_or_else(|_| Err("no PUBACK within 15 s".to_owned()))
    }

    /// Waits until the connection ends; returns the error text.
    pub async fn closed(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(e) = self.events.recv().await {
                if let Err(e) = e {
                    return e;
                }
            }
            "event loop ended".to_owned()
        })
        .await
        .expect("the broker closes the connection")
    }
}

/// Publishes `count` QoS 1 messages as fast as acknowledgements allow (up to `inflight` at once) and records
/// which ones the broker acknowledged, until `count` is reached or the connection breaks.
pub struct AckTracker {
    pub acked: HashSet<u64>,
    pub published: u64,
}

pub async fn publish_tracking_acks(
    opts: MqttOptions,
    topic: &str,
    count: u64,
    payload: impl Fn(u64) -> Vec<u8>,
    stop_after_acked: Option<(u64, tokio::sync::oneshot::Sender<()>)>,
) -> AckTracker {
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let mut acked = HashSet::new();
    let mut order: VecDeque<u64> = VecDeque::new();
    let mut by_pkid: HashMap<u16, u64> = HashMap::new();
    let mut next = 0u64;
    let mut signal = stop_after_acked;
    let mut in_flight = 0usize;
    loop {
        while in_flight < 20 && next < count {
            if client
                .try_publish(topic, QoS::AtLeastOnce, false, payload(next))
                .is_err()
            {
                break;
            }
            order.push_back(next);
            next += 1;
            in_flight += 1;
        }
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(seq) = order.pop_front() {
                    by_pkid.insert(pkid, seq);
                }
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                if let Some(seq) = by_pkid.remove(&ack.pkid) {
                    acked.insert(seq);
                    in_flight -= 1;
                }
                if let Some((n, _)) = &signal
                    && acked.len() as u64 >= *n
                {
                    let (_, tx) = signal.take().unwrap();
                    let _ = tx.send(());
                }
                if acked.len() as u64 == count {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    AckTracker {
        acked,
        published: next,
    }
}

/// A Python venv under `target/{name}` with these pinned PyPI packages (`name==version`), created and
/// installed when missing (the test command installs nothing else for Python); returns the venv's directory.
pub fn python_venv(name: &str, packages: &[&str]) -> PathBuf {
    // Tests of one binary run on threads of one process: one of them makes the venv, the others wait for it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p.split("==").next().unwrap_or(p))
        .collect();
    let installed = || {
        Command::new(venv.join("bin/pip"))
            .args(["show", "--quiet"])
            .args(&names)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !installed() {
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg("--clear")
            .arg(&venv)
            .status()
            .expect("run python3");
        assert!(
            ok.success(),
            "python3 -m venv failed (Debian: apt-get install python3-venv)"
        );
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages)
            .status()
            .expect("run pip");
        assert!(ok.success(), "pip install {packages:?} failed");
        assert!(installed());
    }
    venv
}

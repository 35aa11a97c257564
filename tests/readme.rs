//! The README, pasted: every command of its ```sh blocks, in order, in one `bash` session (so `export` and
//! `T=…` carry over), against the real binary started with `serve --demo` on free ports in a fresh data
//! directory — as a new user would, after the README's first command. Placeholders are filled with what was
//! printed before them: `<the admin token>` from serve's output, `<password>` from the device-create answer,
//! `<editor key>` from the token answer, `<device key>` from the device-key answer. Every command must exit 0
//! and answer no `error`; every read of data (query, KPIs, latest) must show a value, not only nulls —
//! polled, since a publish is stored a moment after its PUBACK. `mosquitto_pub` is Debian's `mosquitto-clients` (installed by `scripts/test.sh`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{eventually, free_port, free_udp_port};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The README's commands that are not pasted into a shell next to a running bydata: starting it (the test
/// starts the built binary itself) and the test suite.
const SKIPPED: [&str; 2] = ["cargo run -- serve --demo", "./scripts/test.sh"];
const DONE: &str = "__README_COMMAND_DONE__";

/// The commands of the README's ```sh blocks, in order: continuation lines joined (a quoted text keeps its
/// line breaks), comments left out.
fn commands(readme: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        let trimmed = line.trim();
        if !in_sh {
            in_sh = trimmed == "```sh";
            continue;
        }
        if trimmed == "```" {
            in_sh = false;
            continue;
        }
        let (start, mut text) = match pending.take() {
            Some((start, text)) if open_quote(&text) => (start, text + "\n"),
            Some(p) => p,
            None if trimmed.is_empty() || trimmed.starts_with('#') => continue,
            None => (i + 1, String::new()),
        };
        text.push_str(trimmed);
        match text.strip_suffix('\\') {
            Some(part) => pending = Some((start, part.to_owned())),
            None if open_quote(&text) => pending = Some((start, text)),
            None => out.push((start, text)),
        }
    }
    out
}

/// Whether `text` ends inside single quotes.
fn open_quote(text: &str) -> bool {
    text.matches('\'').count() % 2 == 1
}

/// bydata, started as the README's first command does, on free ports.
struct Server {
    child: Child,
    http: SocketAddr,
    mqtt: SocketAddr,
    ws: SocketAddr,
    stdout: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mqtt = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let lorawan = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let ws = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stdout = dir.join("serve.out");
        let child = Command::new(env!("CARGO_BIN_EXE_bydata"))
            .current_dir(dir)
            .args(["serve", "--demo", "--data-dir", "data"])
            .args(["--http-addr", &http.to_string()])
            .args(["--mqtt-addr", &mqtt.to_string()])
            .args(["--lorawan-addr", &lorawan.to_string()])
            .args(["--ws-addr", &ws.to_string()])
            .env_remove("BYDATA_ADMIN_TOKEN")
            .env("RUST_LOG", "warn,rumqttd=off")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
            .spawn()
            .expect("bydata binary starts");
        Server {
            child,
            http,
            mqtt,
            ws,
            stdout,
        }
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The command as it would run against this server: its ports instead of the defaults.
    fn here(&self, command: &str) -> String {
        command
            .replace("127.0.0.1:8080", &self.http.to_string())
            .replace("127.0.0.1:1883", &self.mqtt.to_string())
            .replace("-p 1883", &format!("-p {}", self.mqtt.port()))
            .replace("127.0.0.1:8083", &self.ws.to_string())
    }
}

/// One bash session; each command's output (stdout and stderr) and exit status.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Shell {
    fn start(dir: &std::path::Path) -> Shell {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env_remove("BYDATA_ADMIN_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash runs");
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        writeln!(stdin, "exec 2>&1").unwrap();
        Shell {
            child,
            stdin,
            lines,
        }
    }

    /// Runs `command`; its exit status and output.
    fn run(&mut self, command: &str) -> (i32, String) {
        writeln!(self.stdin, "{command}\nrc=$?; echo; echo \"{DONE} $rc\"").unwrap();
        self.stdin.flush().unwrap();
        let mut out = String::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| {
                    panic!("{command}: no end after 60 s ({e}); output so far:\n{out}")
                });
            if let Some(rc) = line.strip_prefix(DONE) {
                return (rc.trim().parse().unwrap(), out.trim_end().to_owned());
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// Whether an answer shows data: a number where JSON says `value` or `consumption`, or a CSV row whose
/// value cell is a number.
fn shows_data(output: &str) -> bool {
    let json_number = ["\"value\":", "\"consumption\":"].iter().any(|key| {
        output.match_indices(key).any(|(i, _)| {
            let rest = output[i + key.len()..].trim_start();
            rest.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        })
    });
    let csv_number = output.lines().any(|line| {
        let cells: Vec<&str> = line.split(',').collect();
        cells.len() >= 3 && cells[cells.len() - 2].parse::<f64>().is_ok()
    });
    json_number || csv_number
}

/// A command that only reads, so running it again changes nothing.
fn reads_only(command: &str) -> bool {
    command.starts_with("curl") && !["-X ", "-d ", "--data"].iter().any(|w| command.contains(w))
}

/// A read whose answer must hold data.
fn reads_data(command: &str) -> bool {
    ["/api/v1/query", "/kpis", "/latest"]
        .iter()
        .any(|p| command.contains(p))
}

fn placeholders(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = command;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        match after.find('>') {
            Some(j)
                if after[..j]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == ' ')
                    && j > 0 =>
            {
                out.push(format!("<{}>", &after[..j]));
                rest = &after[j + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_command_works_when_pasted_in_order_on_a_fresh_demo() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let all = commands(&readme);
    assert!(
        SKIPPED.iter().all(|s| all.iter().any(|(_, c)| c == s)),
        "the README's two commands are where the test expects them"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    let admin = eventually(
        Duration::from_secs(60),
        "serve to print the admin token and the demo",
        || {
            let printed = server.printed();
            async move {
                let mut lines = printed.lines();
                lines.find(|l| l.starts_with("Admin token"))?;
                let token = lines.next()?.trim().to_owned();
                printed.contains("  demo ").then_some(token)
            }
        },
    )
    .await;
    known.insert("<the admin token>".into(), admin);

    let mut shell = Shell::start(dir.path());
    for (line, command) in all
        .into_iter()
        .filter(|(_, c)| !SKIPPED.contains(&c.as_str()))
    {
        let mut command = server.here(&command);
        for p in placeholders(&command) {
            let value = known.get(&p).unwrap_or_else(|| {
                panic!("README.md:{line}: {p} is not printed by any command before it: {command}")
            });
            command = command.replace(&p, value);
        }
        let check = |(rc, out): &(i32, String)| {
            let fine = *rc == 0 && !out.contains("\"error\"");
            fine && (!reads_data(&command) || shows_data(out))
        };
        let mut result = shell.run(&command);
        if !check(&result) && reads_only(&command) {
            let shell = std::sync::Mutex::new(&mut shell);
            result = eventually(
                Duration::from_secs(60),
                &format!("README.md:{line} to show data"),
                || {
                    let r = shell.lock().unwrap().run(&command);
                    async move { check(&r).then_some(r) }
                },
            )
            .await;
        }
        let (rc, out) = &result;
        eprintln!(
            "README.md:{line} exit {rc}: {}",
            out.chars().take(300).collect::<String>()
        );
        assert!(
            check(&result),
            "README.md:{line}: {command}\nexit {rc}, answered:\n{out}\n(serve printed:\n{})",
            server.printed()
        );
        if let Ok(v) = serde_json::from_str::<Value>(out) {
            if let Some(p) = v["mqtt"]["password"].as_str() {
                known.insert("<password>".into(), p.to_owned());
            }
            if let (Some(t), Some("editor")) = (v["token"].as_str(), v["role"].as_str()) {
                known.insert("<editor key>".into(), t.to_owned());
            }
            if let Some(k) = v["secret"].as_str().filter(|k| k.starts_with("bdk_")) {
                known.insert("<device key>".into(), k.to_owned());
            }
        }
    }
    for needed in ["<password>", "<editor key>", "<device key>"] {
        assert!(
            known.contains_key(needed),
            "the README no longer uses {needed}: update this test"
        );
    }
}

#[test]
fn commands_are_read_as_pasted() {
    let readme =
        "text\n```sh\n# a comment\nexport A=1\ncurl -s x \\\n  -d 'y'\n```\n```json\n{}\n```\n";
    assert_eq!(
        commands(readme),
        [
            (4, "export A=1".to_owned()),
            (5, "curl -s x -d 'y'".to_owned())
        ]
    );
    assert_eq!(
        placeholders("a '<password>' b <editor key> c<d"),
        ["<password>", "<editor key>"]
    );
    assert!(shows_data("{\"points\":[{\"time\":\"t\",\"value\":640}]}"));
    assert!(!shows_data(
        "{\"points\":[{\"time\":\"t\",\"value\":null}]}"
    ));
    assert!(shows_data(
        "time,building,value,unit\r\n2026-01-01T00:00:00+01:00,b1,1.5,kWh\r\n"
    ));
    assert!(!shows_data(
        "time,building,value,unit\r\n2026-01-01T00:00:00+01:00,b1,,kWh\r\n"
    ));
}

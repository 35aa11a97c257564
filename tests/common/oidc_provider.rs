//! The test OpenID Provider (testing/oidc-provider: oidc-provider, a certified implementation, on loopback),
//! started by the tests that log people in.
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The provider's process, stopped when the test ends.
pub struct Provider {
    child: Child,
    pub issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider with one confidential client, `bydata` with `secret`, for bydata at `bydata`, and
/// `users` (`[{"sub", "email", "password", "name"?, "groups"?}]`).
pub fn start_provider(dir: &Path, bydata: SocketAddr, secret: &str, users: Value) -> Provider {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testing/oidc-provider");
    assert!(
        root.join("node_modules/oidc-provider").is_dir(),
        "the OpenID Provider is not installed: run scripts/test.sh (or `npm ci` in testing/oidc-provider)"
    );
    let config = json!({
        "port": 0,
        "clients": [{
            "client_id": "bydata",
            "client_secret": secret,
            "redirect_uris": [format!("http://{bydata}/auth/callback")],
            "post_logout_redirect_uris": [format!("http://{bydata}/")],
        }],
        "users": users,
    });
    let path = dir.join("op.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = Command::new("node")
        .arg(root.join("provider.mjs"))
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (scripts/test.sh installs it)");
    let stdout = child.stdout.take().unwrap();
    let mut provider = Provider {
        child,
        issuer: String::new(),
    };
    // One line matters ("ready …"); the reader keeps draining the pipe so the provider never blocks on it.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(issuer) = line.strip_prefix("ready ") {
                let _ = tx.try_send(issuer.to_owned());
            }
        }
    });
    provider.issuer = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the provider says ready");
    provider
}

//! A person's browser, driven: Debian's `chromium` through its `chromedriver` (package `chromium-driver`,
//! installed by the test command), spoken to over the W3C WebDriver protocol with plain HTTP — real clicks and
//! real typing into the real page.
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a fresh profile.
    pub async fn start() -> Browser {
        Self::start_with_env(&[]).await
    }

    /// As [`Browser::start`], with `env` for chromedriver and the Chromium it starts (e.g. `TZ`, the
    /// person's time zone).
    pub async fn start_with_env(env: &[(&str, &str)]) -> Browser {
        let port = super::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver runs (scripts/test.sh installs the Debian package chromium-driver)",
            );
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        super::eventually(Duration::from_secs(20), "chromedriver ready", || {
            let (client, url) = (client.clone(), format!("{base}/status"));
            async move {
                let v: Value = client.get(url).send().await.ok()?.json().await.ok()?;
                (v["value"]["ready"] == true).then_some(())
            }
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": super::browser::chromium(),
                // As the machine notes say: without the background-networking flags Chromium keeps trying
                // to reach Google, which a closed network refuses.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1360,1100",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let r: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Browser {
            driver,
            base: format!("{base}/session/{session}"),
            client,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The first element matching `css`, waiting up to 10 s for it to be there and displayed.
    pub async fn find(&self, css: &str) -> String {
        self.wait_for(
            &format!("a visible {css}"),
            Duration::from_secs(10),
            "const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null;",
            json!([css]),
        )
        .await;
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("find {css}: {v}"))
            .to_owned()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types `text` into the element, key by key (a line break is Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn clear(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
    }

    /// Runs `js` (a function body; `arguments` are `args`) in the page and answers what it returns.
    pub async fn script(&self, js: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": args})),
        )
        .await
    }

    /// Polls `js` until it returns something other than null/false/"" (which is answered), for `timeout`;
    /// on time-out the panic shows the page's text.
    pub async fn wait_for(&self, what: &str, timeout: Duration, js: &str, args: Value) -> Value {
        let answered = super::eventually_or(timeout, || async {
            let v = self.script(js, args.clone()).await;
            (!(v.is_null() || v == false || v == "")).then_some(v)
        })
        .await;
        match answered {
            Some(v) => v,
            None => {
                let page = self
                    .script("return document.body.innerText;", json!([]))
                    .await;
                panic!("timed out waiting for {what}; the page says:\n{page}");
            }
        }
    }

    pub async fn screenshot(&self, to: &Path) {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session first, so Chromium closes even when the test failed (plain HTTP: a drop cannot
        // await); killing chromedriver alone would leave Chromium running.
        use std::io::{Read, Write};
        if let Some(rest) = self.base.strip_prefix("http://")
            && let Some((host, path)) = rest.split_once('/')
            && let Ok(mut tcp) = std::net::TcpStream::connect(host)
        {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                tcp,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tcp.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

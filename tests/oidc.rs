//! Logging in with OpenID Connect against a real OpenID Provider on loopback (oidc-provider, certified; see
//! testing/oidc-provider), started here once, driven like a browser: bydata's login redirect, the provider's
//! login form, its redirect back, the session cookie; then what a session may do, and every refusal.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::oidc_provider::Provider;
use common::{ADMIN, Bydata, free_port};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

const SECRET: &str = "test-client-secret~with/odd+chars";

/// The provider with one confidential client for bydata at `bydata` and three people.
fn start_provider(dir: &Path, bydata: SocketAddr) -> Provider {
    common::oidc_provider::start_provider(
        dir,
        bydata,
        SECRET,
        json!([
            {"sub": "u-alice", "email": "Alice@Example.test", "password": "alice-pw",
             "name": "Alice", "groups": ["grp-buildings-editors", "grp-traffic-viewers"]},
            {"sub": "u-bob", "email": "bob@example.test", "password": "bob-pw",
             "groups": ["grp-traffic-viewers"]},
            {"sub": "u-carol", "email": "carol@example.test", "password": "carol-pw",
             "groups": ["grp-marketing"]},
        ]),
    )
}

/// A browser's cookies for one site (names are enough: each site's cookies go only to it).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || value == "\"\"" {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

struct Browser {
    http: reqwest::Client,
    provider: Jar,
    bydata: Jar,
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("a redirect, got {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            provider: Jar::default(),
            bydata: Jar::default(),
        }
    }

    async fn provider_get(&mut self, url: &str) -> reqwest::Response {
        let r = self
            .http
            .get(url)
            .header(COOKIE, self.provider.header())
            .send()
            .await
            .unwrap();
        self.provider.take(&r);
        r
    }

    /// From bydata's `/auth/login` through the provider's login form to the callback URL it sends back.
    async fn through_provider(
        &mut self,
        b: &Bydata,
        issuer: &str,
        email: &str,
        pw: &str,
    ) -> String {
        let r = self
            .http
            .get(b.url("/auth/login?next=/api/v1/devices"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        let to_provider = location(&r);
        assert!(to_provider.starts_with(issuer), "{to_provider}");
        for needed in [
            "code_challenge_method=S256",
            "state=",
            "nonce=",
            "scope=openid",
        ] {
            assert!(to_provider.contains(needed), "{needed} in {to_provider}");
        }
        let r = self.provider_get(&to_provider).await;
        let interaction = format!("{issuer}{}", location(&r));
        let r = self.provider_get(&interaction).await;
        assert!(
            r.text().await.unwrap().contains("name=\"password\""),
            "a login form"
        );
        let r = self
            .http
            .post(&interaction)
            .header(COOKIE, self.provider.header())
            .form(&[("prompt", "login"), ("login", email), ("password", pw)])
            .send()
            .await
            .unwrap();
        self.provider.take(&r);
        let resume = location(&r);
        let r = self.provider_get(&resume).await;
        let callback = location(&r);
        assert!(
            callback.starts_with(&b.url("/auth/callback?")),
            "{callback}"
        );
        callback
    }

    async fn bydata_get(&mut self, url: &str) -> reqwest::Response {
        let r = self
            .http
            .get(url)
            .header(COOKIE, self.bydata.header())
            .send()
            .await
            .unwrap();
        self.bydata.take(&r);
        r
    }

    /// Logs in; answers the session cookie's value.
    async fn login(&mut self, b: &Bydata, issuer: &str, email: &str, pw: &str) -> String {
        let callback = self.through_provider(b, issuer, email, pw).await;
        let r = self.bydata_get(&callback).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{}", r.text().await.unwrap());
        assert_eq!(location(&r), "/api/v1/devices");
        let set = r.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
        for attribute in [
            "__Host-bydata_session=",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
        ] {
            assert!(set.contains(attribute), "{attribute} in {set}");
        }
        self.bydata.0["__Host-bydata_session"].clone()
    }
}

async fn call(
    b: &Bydata,
    method: reqwest::Method,
    path: &str,
    session: &str,
    csrf: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = b
        .client
        .request(method, b.url(path))
        .header(COOKIE, format!("__Host-bydata_session={session}"));
    if let Some(csrf) = csrf {
        request = request.header("X-CSRF-Token", csrf);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn device(id: &str, org: &str) -> Value {
    json!({"id": id, "name": id, "transport": "mqtt", "domain": "building", "org": org})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_log_in_with_the_identity_provider() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let op = start_provider(dir.path(), http);
    let issuer = op.issuer.clone();
    let config = format!(
        r#"
[oidc]
issuer = "{issuer}"
client_id = "bydata"
client_secret_file = "{secret}"
public_url = "http://{http}"
scopes = ["groups"]
[[oidc.roles]]
claim_value = "grp-buildings-editors"
org = "buildings"
role = "editor"
[[oidc.roles]]
claim_value = "grp-traffic-viewers"
org = "traffic"
role = "viewer"
"#,
        secret = dir.path().join("secret").display(),
    );
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.path().join("bydata.toml"), config).unwrap();
    let config_path = dir.path().join("bydata.toml");
    let b = Bydata::start_at(
        http,
        &dir.path().join("data"),
        &["--config", config_path.to_str().unwrap()],
        &[],
    )
    .await;
    for org in ["buildings", "traffic"] {
        let (status, body) = b
            .post("/api/v1/orgs", ADMIN, &json!({"id": org, "name": org}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(
        b.post("/api/v1/devices", ADMIN, &device("t-1", "traffic"))
            .await
            .0,
        201
    );

    // Alice logs in: editor of buildings, viewer of traffic.
    let mut alice = Browser::new();
    let callback = alice
        .through_provider(&b, &issuer, "alice@example.test", "alice-pw")
        .await;
    let r = alice.bydata_get(&callback).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let session = alice.bydata.0["__Host-bydata_session"].clone();
    let (status, me) = call(&b, reqwest::Method::GET, "/auth/me", &session, None, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me["orgs"],
        json!({"buildings": "editor", "traffic": "viewer"})
    );
    assert_eq!(me["email"], "alice@example.test");
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let (status, list) = call(
        &b,
        reqwest::Method::GET,
        "/api/v1/devices",
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert!(list.to_string().contains("t-1"), "{list}");

    // Changing something takes the CSRF token, and the role.
    let post = |id: &str, org: &str| device(id, org);
    let (status, body) = call(
        &b,
        reqwest::Method::POST,
        "/api/v1/devices",
        &session,
        None,
        Some(&post("b-1", "buildings")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("csrf")),
        "{body}"
    );
    let (status, body) = call(
        &b,
        reqwest::Method::POST,
        "/api/v1/devices",
        &session,
        Some("wrong"),
        Some(&post("b-1", "buildings")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(
        &b,
        reqwest::Method::POST,
        "/api/v1/devices",
        &session,
        Some(&csrf),
        Some(&post("b-1", "buildings")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &b,
        reqwest::Method::POST,
        "/api/v1/devices",
        &session,
        Some(&csrf),
        Some(&post("t-2", "traffic")),
    )
    .await;
    assert_eq!(status, 403, "a viewer of traffic: {body}");

    // The same callback again: its state was used.
    let r = alice.bydata_get(&callback).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The same code under a fresh state: the provider refuses the replayed code.
    let fresh = alice.http.get(b.url("/auth/login")).send().await.unwrap();
    let fresh_state = reqwest::Url::parse(fresh.headers()[LOCATION].to_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let replay = format!(
        "{}&state={fresh_state}",
        b.url(&format!("/auth/callback?code={code}"))
    );
    let r = alice.http.get(replay).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.to_string().contains("invalid_grant"), "{body}");

    // A tampered state, with a good code.
    let mut eve = Browser::new();
    let callback = eve
        .through_provider(&b, &issuer, "bob@example.test", "bob-pw")
        .await;
    let tampered = callback.replace("state=", "state=x");
    assert_eq!(
        eve.bydata_get(&tampered).await.status(),
        StatusCode::BAD_REQUEST
    );
    // The provider's refusal.
    let r = eve
        .http
        .get(b.url("/auth/callback?error=access_denied&state=s"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Bob, a viewer: reads, but may not onboard.
    let mut bob = Browser::new();
    let bob_session = bob.login(&b, &issuer, "bob@example.test", "bob-pw").await;
    let (_, me) = call(
        &b,
        reqwest::Method::GET,
        "/auth/me",
        &bob_session,
        None,
        None,
    )
    .await;
    let bob_csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &b,
        reqwest::Method::POST,
        "/api/v1/devices",
        &bob_session,
        Some(&bob_csrf),
        Some(&post("t-3", "traffic")),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Carol's groups map to nothing: she can log in, and is told why she may do nothing.
    let mut carol = Browser::new();
    let carol_session = carol
        .login(&b, &issuer, "carol@example.test", "carol-pw")
        .await;
    let (status, body) = call(
        &b,
        reqwest::Method::GET,
        "/api/v1/devices",
        &carol_session,
        None,
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("grp-marketing"), "{body}");
    let (status, _) = call(
        &b,
        reqwest::Method::GET,
        "/auth/me",
        &carol_session,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);

    // A tampered cookie.
    let mut forged = session.clone().into_bytes();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for cookie in [forged.as_str(), "short"] {
        let (status, body) = call(
            &b,
            reqwest::Method::GET,
            "/api/v1/devices",
            cookie,
            None,
            None,
        )
        .await;
        assert_eq!(status, 401, "{body}");
    }

    // Logout: CSRF-checked, ends the session, sends the browser to the provider's end-session page.
    let (status, _) = call(
        &b,
        reqwest::Method::POST,
        "/auth/logout",
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let r = alice
        .http
        .post(b.url("/auth/logout"))
        .header(COOKIE, format!("__Host-bydata_session={session}"))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.starts_with(&format!("{issuer}/session/end?")), "{to}");
    assert!(
        to.contains("id_token_hint=") && to.contains("post_logout_redirect_uri="),
        "{to}"
    );
    for path in ["/auth/me", "/api/v1/devices"] {
        let (status, body) = call(&b, reqwest::Method::GET, path, &session, None, None).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // The provider's logout page takes the hint.
    let r = alice.provider_get(&to).await;
    assert_eq!(r.status(), StatusCode::OK);

    // API keys need no CSRF token.
    let (status, _) = b
        .post("/api/v1/devices", ADMIN, &device("k-1", "traffic"))
        .await;
    assert_eq!(status, 201);

    // Nothing secret in the log: no session id, no code, no client secret.
    let log = b.log();
    for secret in [
        session.as_str(),
        bob_session.as_str(),
        code.as_str(),
        SECRET,
    ] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
    assert!(log.contains("login refused"), "refusals are logged");
    eprintln!("oidc test took {:?}", started.elapsed());
}

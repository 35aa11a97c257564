//! The management pages in a real browser (Debian's Chromium, driven through chromedriver): a person logs in
//! through the test OpenID Provider (a real one, on loopback) as an editor of their organisation, onboards a
//! device through the form, runs the `mosquitto_pub`
//! line the page shows — for real — and sees the device turn to "sending" with its value; bulk onboarding
//! names every bad row and creates nothing, then creates a good file whole; with a viewer key no create
//! button is offered and the API refuses a create anyway. A screenshot lands in
//! `target/test-artifacts/manage.png`.
#![allow(clippy::unwrap_used)]
mod common;

use common::webdriver::Browser;
use common::{ADMIN, Bydata, free_port};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const SECRET: &str = "manage-test-client-secret";

/// bydata with login through a provider whose person erik@a.example is in the group that edits org a.
async fn with_login(dir: &Path) -> (Bydata, common::oidc_provider::Provider) {
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let op = common::oidc_provider::start_provider(
        dir,
        http,
        SECRET,
        json!([{"sub": "u-erik", "email": "erik@a.example", "password": "erik-pw",
                "name": "Erik", "groups": ["grp-a-editors"]}]),
    );
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    let config = dir.join("bydata.toml");
    std::fs::write(
        &config,
        format!(
            "[oidc]\nissuer = \"{}\"\nclient_id = \"bydata\"\nclient_secret_file = \"{}\"\n\
             public_url = \"http://{http}\"\nscopes = [\"groups\"]\n\
             [[oidc.roles]]\nclaim_value = \"grp-a-editors\"\norg = \"a\"\nrole = \"editor\"\n",
            op.issuer,
            dir.join("secret").display()
        ),
    )
    .unwrap();
    let b = Bydata::start_at(
        http,
        &dir.join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    )
    .await;
    (b, op)
}

/// Logs in as a person would: the page's "Log in", the provider's form, and back.
async fn log_in(browser: &Browser, b: &Bydata) {
    browser.goto(&b.url("/manage")).await;
    browser.click("#login").await;
    browser
        .type_into("input[name=login]", "erik@a.example")
        .await;
    browser.type_into("input[name=password]", "erik-pw").await;
    browser.click("button[type=submit]").await;
    browser.find("table#devices[data-loaded]").await;
}

async fn key(b: &Bydata, role: &str) -> String {
    let (code, body) = b
        .post(
            "/api/v1/tokens",
            ADMIN,
            &json!({"name": format!("{role} key"), "role": role, "org": "a"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn sign_in(browser: &Browser, b: &Bydata, key: &str) {
    browser.goto(&b.url("/manage")).await;
    browser.type_into("#key", key).await;
    browser.click("#key-form button").await;
    browser.find("table#devices[data-loaded]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_onboards_a_device_sees_it_send_and_a_viewer_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _provider) = with_login(dir.path()).await;
    let (code, body) = b
        .post("/api/v1/orgs", ADMIN, &json!({"id": "a", "name": "Org A"}))
        .await;
    assert_eq!(code, 201, "{body}");
    let viewer = key(&b, "viewer").await;
    let browser = Browser::start().await;

    // Log in as a person of org a's editors group and onboard a device through the form.
    log_in(&browser, &b).await;
    browser.click("a[data-create=device]").await;
    browser.type_into("#f-name", "Hall sensor").await;
    browser.type_into("#f-id", "hall-1").await;
    browser.type_into("#f-tags", "room=hall").await;
    browser.click("#f-submit").await;
    let line = browser
        .wait_for(
            "the mosquitto_pub line",
            Duration::from_secs(10),
            "const e = document.querySelector('#mosquitto-line'); return e && e.textContent;",
            json!([]),
        )
        .await;
    let line = line.as_str().unwrap();
    assert!(
        line.starts_with(&format!(
            "mosquitto_pub -h 127.0.0.1 -p {} -i hall-1 -u hall-1 -P '",
            b.mqtt.port()
        )),
        "{line}"
    );

    // Run the line as the person would paste it into a shell.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .output()
        .expect("mosquitto_pub runs (scripts/test.sh installs mosquitto-clients)");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The list turns to "sending" with the value (it refreshes every 5 s).
    browser.click("nav a[data-page=devices]").await;
    let row = browser
        .wait_for(
            "hall-1 sending with its value",
            Duration::from_secs(15),
            "const r = document.querySelector('#devices tr[data-id=\"hall-1\"]');
             return r && r.dataset.state === 'sending' && r.innerText.includes('21.5') && r.innerText;",
            json!([]),
        )
        .await;
    assert!(row.as_str().unwrap().contains("room=hall"), "{row}");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    browser.screenshot(&artifacts.join("manage.png")).await;

    // The device page draws a chart of it.
    browser.click("#devices tr[data-id=\"hall-1\"] a").await;
    browser
        .wait_for(
            "a temperature chart with a point",
            Duration::from_secs(10),
            "const s = document.querySelector('.chart[data-measurement=temperature] svg');
             return s && +s.dataset.points > 0;",
            json!([]),
        )
        .await;

    // Bulk onboarding: every bad row is named, nothing is created.
    browser.goto(&b.url("/manage#/bulk")).await;
    let bad = "id,name,domain,lat,lon,tag:room\n\
               bulk-1,One,building,56.15,10.2,1.01\n\
               bulk-2,Two,buildings,56.15,10.2,1.02\n\
               bulk-3,Three,building,56.15,north,1.03\n\
               hall-1,Four,building,,,\n";
    browser.type_into("#csv", bad).await;
    browser.click("#bulk-check").await;
    let named = browser
        .wait_for(
            "the bad rows",
            Duration::from_secs(10),
            "const l = [...document.querySelectorAll('#bulk-result .problems li')];
             return l.length ? l.map(li => li.dataset.field) : null;",
            json!([]),
        )
        .await;
    assert_eq!(
        named,
        json!(["line 3, domain", "line 4, lon", "line 5, id"]),
        "every bad row, by line and column"
    );
    let (_, list) = b.get("/api/v1/devices", ADMIN).await;
    assert_eq!(
        list["devices"].as_array().unwrap().len(),
        1,
        "nothing created"
    );

    // The good rows alone go in whole.
    browser.clear("#csv").await;
    browser
        .type_into(
            "#csv",
            "id,name,domain,tag:room\nbulk-1,One,building,1.01\nbulk-2,Two,building,1.02\n",
        )
        .await;
    browser.click("#bulk-check").await;
    browser.find("#bulk-preview").await;
    browser.click("#bulk-go").await;
    let created = browser
        .wait_for(
            "the created devices",
            Duration::from_secs(20),
            "const e = document.querySelector('#bulk-created'); return e ? e.querySelectorAll('tbody tr').length : null;",
            json!([]),
        )
        .await;
    assert_eq!(created, 2);
    let (_, list) = b.get("/api/v1/devices", ADMIN).await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 3);

    // The alerts page shows the organisation's rules and the counts of its alerts.
    let (code, rule) = b
        .post(
            "/api/v1/alert-rules",
            ADMIN,
            &json!({"name": "quiet halls", "condition": {"kind": "silence", "every": "1h"},
                    "select": {"devices": ["hall-1"]}, "org": "a"}),
        )
        .await;
    assert_eq!(code, 201, "{rule}");
    browser.goto(&b.url("/manage#/alerts")).await;
    let shown = browser
        .wait_for(
            "the alert rules",
            Duration::from_secs(10),
            "const r = [...document.querySelectorAll('#alert-rules tbody tr')];
             return r.length ? {rules: r.map(tr => tr.cells[0].textContent),
                                counts: [...document.querySelectorAll('#alert-counts [data-count]')].length,
                                form: !!document.getElementById('rule-form')} : null;",
            json!([]),
        )
        .await;
    assert_eq!(
        shown,
        json!({"rules": ["quiet halls"], "counts": 3, "form": true})
    );

    // A viewer: no create buttons or pages offered, and the API refuses a create anyway.
    browser.click("#sign-out").await;
    sign_in(&browser, &b, &viewer).await;
    let offered = browser
        .script(
            "return {create: document.querySelectorAll('[data-create]').length,
                     nav: [...document.querySelectorAll('#nav a')].filter(a => !a.hidden).map(a => a.dataset.page),
                     role: document.getElementById('who').dataset.role,
                     rows: document.querySelectorAll('#devices tbody tr').length};",
            json!([]),
        )
        .await;
    assert_eq!(
        offered,
        json!({"create": 0, "nav": ["devices", "codecs", "gateways", "alerts"], "role": "viewer", "rows": 3})
    );
    let (code, body) = b
        .post(
            "/api/v1/devices",
            &viewer,
            &json!({"name": "sneaky", "transport": "mqtt", "domain": "air"}),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    let code = b
        .client
        .post(b.url("/api/v1/devices/bulk"))
        .bearer_auth(&viewer)
        .header("content-type", "text/csv")
        .body("name,domain\nsneaky,air\n")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(code, 403);
}

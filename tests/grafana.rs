//! Grafana reads bydata through its built-in InfluxDB data source (InfluxQL): the exact requests Grafana sends,
//! and the InfluxDB 1.x Python client (PyPI `influxdb`), against the real binary over real HTTP.
//!
//! The requests are taken from Grafana's source (grafana/grafana):
//! - `pkg/tsdb/influxdb/influxql/influxql.go` (`createRequest`): `GET /query?db=…&epoch=ms&q=…`, or with HTTP
//!   method POST `POST /query?db=…&epoch=ms` with the form body `q=…` and
//!   `Content-type: application/x-www-form-urlencoded`; the data source's User and Password as HTTP Basic auth;
//! - `pkg/tsdb/influxdb/healthcheck.go` (`CheckInfluxQLHealth`): the health check is `SHOW measurements`;
//! - `public/app/plugins/datasource/influxdb/influxql_query_builder.ts` (`buildMetadataQuery`): the query
//!   builder's `SHOW MEASUREMENTS … LIMIT 100`, `SHOW TAG KEYS FROM "m"`, `SHOW TAG VALUES FROM "m" WITH KEY
//!   = "k"`, `SHOW FIELD KEYS FROM "m"`, `SHOW RETENTION POLICIES on "db"`;
//! - `pkg/tsdb/influxdb/models/query.go` (`Build`, `renderTimeFilter`, …) and `models/query_test.go`: a panel's
//!   `SELECT mean("value") FROM "m" WHERE ("tag" = 'v' OR …) AND time >= <ms>ms and time <= <ms>ms GROUP BY
//!   time(<interval>), "tag" fill(null) ORDER BY time DESC limit N tz('…')`.
#![allow(clippy::unwrap_used)]
mod common;

use base64::Engine;
use common::{ADMIN, Bydata};
use serde_json::{Value, json};
use std::process::Command;

const CLIENT: &str = "influxdb==5.3.2";
/// 2026-11-01T00:00:00Z, in seconds: the first hour of the test data.
const T0: i64 = 1_793_491_200;
const H: i64 = 3600;

/// Two days of hourly data: energy of two buildings (b2 has no readings in hours 10–13), and the climate of a
/// room with two fields.
fn lines() -> String {
    let mut out = String::new();
    for i in 0..48 {
        let t = T0 + i * H;
        out.push_str(&format!("energy_kwh,building=b1 value={i} {t}\n"));
        if !(10..14).contains(&i) {
            out.push_str(&format!("energy_kwh,building=b2 value={} {t}\n", 100 + i));
        }
        out.push_str(&format!(
            "climate,building=b1,room=r1 temperature={},humidity=40 {t}\n",
            20.0 + 0.5 * (i % 4) as f64
        ));
    }
    out
}

struct World {
    b: Bydata,
    /// A viewer key of the default organisation, which owns the data.
    viewer: String,
    /// A viewer key of another organisation.
    stranger: String,
}

async fn key(b: &Bydata, org: &str) -> String {
    let (code, token) = b
        .post(
            "/api/v1/tokens",
            ADMIN,
            &json!({"name": format!("grafana {org}"), "role": "viewer", "org": org}),
        )
        .await;
    assert_eq!(code, 201, "{token}");
    token["token"].as_str().unwrap().to_owned()
}

async fn world(dir: &std::path::Path) -> World {
    let b = Bydata::start(&dir.join("data")).await;
    let written = b
        .client
        .post(b.url("/api/v2/write?bucket=city&precision=s"))
        .header("Authorization", format!("Token {ADMIN}"))
        .body(lines())
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 204, "{}", written.text().await.unwrap());
    let (code, org) = b
        .post(
            "/api/v1/orgs",
            ADMIN,
            &json!({"id": "other", "name": "Other"}),
        )
        .await;
    assert_eq!(code, 201, "{org}");
    let viewer = key(&b, "default").await;
    let stranger = key(&b, "other").await;
    World {
        b,
        viewer,
        stranger,
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl World {
    /// Grafana's GET (`createRequest`, HTTP method GET): `db`, `epoch=ms`, `q` in the URL, Basic auth.
    async fn get(&self, q: &str, key: &str) -> (u16, Value) {
        let r = self
            .b
            .client
            .get(self.b.url("/query"))
            .query(&[("db", "bydata"), ("epoch", "ms"), ("q", q)])
            .header("Authorization", basic("grafana", key))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap())
    }

    /// Grafana's POST (`createRequest`, HTTP method POST): `db` and `epoch` in the URL, `q` in the form body.
    async fn post(&self, q: &str, key: &str) -> (u16, Value) {
        let body = format!(
            "q={}",
            q.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".to_owned(),
                    b => format!("%{b:02X}"),
                })
                .collect::<String>()
        );
        let r = self
            .b
            .client
            .post(self.b.url("/query?db=bydata&epoch=ms"))
            .header("Content-type", "application/x-www-form-urlencoded")
            .header("Authorization", basic("grafana", key))
            .body(body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap())
    }
}

fn ms(t: i64) -> i64 {
    t * 1000
}

/// The values of the series tagged `tags` in the first result.
fn values(answer: &Value, tags: Value) -> Vec<Value> {
    answer["results"][0]["series"]
        .as_array()
        .unwrap_or_else(|| panic!("no series: {answer}"))
        .iter()
        .find(|s| s.get("tags").cloned().unwrap_or(json!({})) == tags)
        .unwrap_or_else(|| panic!("no series {tags}: {answer}"))["values"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_and_the_influxdb_1x_client_read_bydata() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let key = w.viewer.clone();

    // The health check, both methods.
    for (code, answer) in [
        w.get("SHOW measurements", &key).await,
        w.post("SHOW measurements", &key).await,
    ] {
        assert_eq!(code, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"results": [{"statement_id": 0, "series": [{"name": "measurements", "columns": ["name"], "values": [["climate"], ["energy_kwh"]]}]}]})
        );
    }

    // The query builder.
    let (_, a) = w
        .get(
            "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)ENERG/ LIMIT 100",
            &key,
        )
        .await;
    assert_eq!(
        a["results"][0]["series"][0]["values"],
        json!([["energy_kwh"]]),
        "{a}"
    );
    let (_, a) = w
        .get(r#"SHOW MEASUREMENTS WHERE "room" = 'r1' LIMIT 100"#, &key)
        .await;
    assert_eq!(a["results"][0]["series"][0]["values"], json!([["climate"]]));
    let (_, a) = w.get(r#"SHOW TAG KEYS FROM "climate""#, &key).await;
    assert_eq!(
        a["results"][0]["series"],
        json!([{"name": "climate", "columns": ["tagKey"], "values": [["building"], ["room"]]}])
    );
    let (_, a) = w
        .post(
            r#"SHOW TAG VALUES FROM "energy_kwh" WITH KEY = "building""#,
            &key,
        )
        .await;
    assert_eq!(
        a["results"][0]["series"],
        json!([{"name": "energy_kwh", "columns": ["key", "value"], "values": [["building", "b1"], ["building", "b2"]]}])
    );
    let (_, a) = w.get(r#"SHOW FIELD KEYS FROM "climate""#, &key).await;
    assert_eq!(
        a["results"][0]["series"],
        json!([{"name": "climate", "columns": ["fieldKey", "fieldType"], "values": [["humidity", "float"], ["temperature", "float"]]}])
    );
    let (_, a) = w.get(r#"SHOW RETENTION POLICIES on "bydata""#, &key).await;
    assert_eq!(a["results"][0]["series"][0]["values"][0][0], "autogen");

    // A panel: hourly means of two buildings over the first six hours, grouped by building.
    let (from, to) = (ms(T0), ms(T0 + 6 * H) - 1);
    let q = format!(
        r#"SELECT mean("value") FROM "energy_kwh" WHERE ("building" = 'b1' OR "building" = 'b2') AND time >= {from}ms and time <= {to}ms GROUP BY time(1h), "building" fill(null)"#
    );
    let (code, a) = w.post(&q, &key).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["results"][0]["series"][0]["name"], "energy_kwh");
    assert_eq!(
        a["results"][0]["series"][0]["columns"],
        json!(["time", "mean"])
    );
    let b1 = values(&a, json!({"building": "b1"}));
    assert_eq!(b1.len(), 6);
    assert_eq!(b1[0], json!([ms(T0), 0.0]));
    assert_eq!(b1[5], json!([ms(T0 + 5 * H), 5.0]));
    assert_eq!(
        values(&a, json!({"building": "b2"}))[2],
        json!([ms(T0 + 2 * H), 102.0])
    );

    // Template-variable regex, 2-hour buckets across both buildings (no GROUP BY tag: one merged series).
    let q = format!(
        r#"SELECT mean("value") AS "avg", max("value") FROM "energy_kwh" WHERE "building" =~ /^(b1|b2)$/ AND time >= {from}ms and time <= {to}ms GROUP BY time(2h)"#
    );
    let (_, a) = w.get(&q, &key).await;
    assert_eq!(
        a["results"][0]["series"][0]["columns"],
        json!(["time", "avg", "max"])
    );
    assert_eq!(values(&a, json!({}))[0], json!([ms(T0), 50.5, 101.0]));

    // fill() over b2's gap (hours 10–13), ORDER BY time DESC and LIMIT.
    let gap = |fill: &str| {
        format!(
            r#"SELECT last("value") FROM "energy_kwh" WHERE "building" = 'b2' AND time >= {}ms and time < {}ms GROUP BY time(1h) fill({fill})"#,
            ms(T0 + 9 * H),
            ms(T0 + 15 * H)
        )
    };
    let column =
        |a: &Value| -> Vec<Value> { values(a, json!({})).iter().map(|r| r[1].clone()).collect() };
    let (_, a) = w.get(&gap("null"), &key).await;
    assert_eq!(
        column(&a),
        [
            json!(109.0),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            json!(114.0)
        ]
    );
    let (_, a) = w.get(&gap("none"), &key).await;
    assert_eq!(column(&a), [json!(109.0), json!(114.0)]);
    let (_, a) = w.get(&gap("0"), &key).await;
    assert_eq!(column(&a)[1], json!(0.0));
    let (_, a) = w.get(&gap("previous"), &key).await;
    assert_eq!(column(&a)[4], json!(109.0));
    let (_, a) = w.get(&gap("linear"), &key).await;
    assert_eq!(
        column(&a)[1..5],
        [json!(110.0), json!(111.0), json!(112.0), json!(113.0)]
    );
    let (_, a) = w
        .get(&format!("{} ORDER BY time DESC LIMIT 2", gap("none")), &key)
        .await;
    assert_eq!(
        values(&a, json!({})),
        [
            json!([ms(T0 + 14 * H), 114.0]),
            json!([ms(T0 + 9 * H), 109.0])
        ]
    );

    // tz(): days of Copenhagen (UTC+1 in November), times written with its offset when no epoch is asked.
    let q = format!(
        r#"SELECT count("value") FROM "energy_kwh" WHERE "building" = 'b1' AND time >= {}ms and time < {}ms GROUP BY time(1d) tz('Europe/Copenhagen')"#,
        ms(T0 - H),
        ms(T0 + 47 * H)
    );
    let (_, a) = w.get(&q, &key).await;
    assert_eq!(values(&a, json!({}))[0], json!([ms(T0 - H), 23]));
    let r =
        w.b.client
            .get(w.b.url("/query"))
            .query(&[("q", q.as_str())])
            .header("Authorization", format!("Token {key}"))
            .send()
            .await
            .unwrap();
    let a: Value = r.json().await.unwrap();
    assert_eq!(values(&a, json!({}))[1][0], "2026-11-02T00:00:00+01:00");

    // Raw points, and arithmetic on an aggregate.
    let q = format!(
        r#"SELECT "temperature", "humidity" FROM "climate" WHERE time >= {}ms and time < {}ms"#,
        ms(T0),
        ms(T0 + 2 * H)
    );
    let (_, a) = w.get(&q, &key).await;
    assert_eq!(
        values(&a, json!({})),
        [json!([ms(T0), 20.0, 40.0]), json!([ms(T0 + H), 20.5, 40.0])]
    );
    let q = format!(
        r#"SELECT mean("value") * 1000 FROM "energy_kwh" WHERE "building" = 'b1' AND time >= {}ms and time < {}ms"#,
        ms(T0),
        ms(T0 + 2 * H)
    );
    let (_, a) = w.get(&q, &key).await;
    assert_eq!(values(&a, json!({}))[0], json!([ms(T0), 500.0]));

    // Refusals: InfluxDB's shapes, the thing refused named.
    let (code, a) = w
        .get(&format!(r#"SELECT median("value") FROM "energy_kwh" WHERE time >= {from}ms GROUP BY time(1h)"#), &key)
        .await;
    assert_eq!(code, 200);
    assert!(
        a["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("the function median() is not supported"),
        "{a}"
    );
    let (code, a) = w.get("SELECT mean(value FROM x", &key).await;
    assert_eq!(code, 400);
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .starts_with("error parsing query: found FROM, expected )"),
        "{a}"
    );
    let (code, a) = w.get("SHOW measurements", "not-a-key").await;
    assert_eq!(code, 401, "{a}");
    assert!(a["error"].is_string(), "{a}");
    let r =
        w.b.client
            .get(w.b.url("/query?q=SHOW%20measurements"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    // Another organisation's key sees none of it.
    let (code, a) = w.get("SHOW measurements", &w.stranger).await;
    assert_eq!((code, a), (200, json!({"results": [{"statement_id": 0}]})));
    let (_, a) = w
        .get(&format!(r#"SELECT mean("value") FROM "energy_kwh" WHERE time >= {from}ms and time <= {to}ms GROUP BY time(1h)"#), &w.stranger)
        .await;
    assert_eq!(a, json!({"results": [{"statement_id": 0}]}));

    python_client(&w).await;
}

const SCRIPT: &str = r#"
import json, sys
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError

host, port, key, t0 = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
client = InfluxDBClient(host=host, port=port, username="grafana", password=key, database="bydata")
print(json.dumps({"databases": client.get_list_database()}))
print(json.dumps({"measurements": client.get_list_measurements()}))
rs = client.query(
    'SELECT mean("value") FROM "energy_kwh" WHERE time >= %dms AND time < %dms GROUP BY time(1h), "building" fill(none)'
    % (t0 * 1000, (t0 + 3 * 3600) * 1000),
    epoch="ms",
)
print(json.dumps({"b1": list(rs.get_points(tags={"building": "b1"})), "b2": list(rs.get_points(tags={"building": "b2"}))}))
rs = client.query('SELECT last("temperature") FROM "climate" WHERE time >= %dms AND time < %dms GROUP BY time(1d)' % (t0 * 1000, (t0 + 86400) * 1000))
print(json.dumps({"rfc3339": list(rs.get_points())}))
try:
    client.query('SELECT percentile("value", 95) FROM "energy_kwh" WHERE time >= now() - 1h GROUP BY time(1m)')
    print(json.dumps({"refused": None}))
except InfluxDBClientError as e:
    print(json.dumps({"refused": str(e)}))
try:
    InfluxDBClient(host=host, port=port, username="grafana", password="wrong", database="bydata").get_list_measurements()
    print(json.dumps({"unauthorized": None}))
except InfluxDBClientError as e:
    print(json.dumps({"unauthorized": e.code}))
"#;

async fn python_client(w: &World) {
    let venv = common::python_venv("influxdb1-venv", &[CLIENT]);
    let out = tokio::task::spawn_blocking({
        let (host, port, key) = (
            w.b.http.ip().to_string(),
            w.b.http.port().to_string(),
            w.viewer.clone(),
        );
        move || {
            Command::new(venv.join("bin/python"))
                .args(["-c", SCRIPT, &host, &port, &key, &T0.to_string()])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["databases"], json!([{"name": "bydata"}]));
    assert_eq!(
        lines[1]["measurements"],
        json!([{"name": "climate"}, {"name": "energy_kwh"}])
    );
    assert_eq!(
        lines[2]["b1"],
        json!([{"time": ms(T0), "mean": 0.0}, {"time": ms(T0 + H), "mean": 1.0}, {"time": ms(T0 + 2 * H), "mean": 2.0}])
    );
    assert_eq!(
        lines[2]["b2"][2],
        json!({"time": ms(T0 + 2 * H), "mean": 102.0})
    );
    assert_eq!(
        lines[3]["rfc3339"],
        json!([{"time": "2026-11-01T00:00:00Z", "last": 21.5}])
    );
    assert!(
        lines[4]["refused"]
            .as_str()
            .unwrap()
            .contains("the function percentile() is not supported"),
        "{}",
        lines[4]
    );
    assert_eq!(lines[5]["unauthorized"], 401);
}

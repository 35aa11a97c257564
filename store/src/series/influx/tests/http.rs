//! The adapter against a fake InfluxDB: a TCP listener on 127.0.0.1:0 that records each request and answers
//! with canned responses in the documented shapes (annotated CSV for queries, 204 for writes).

use super::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The Flux text of a query request.
    fn flux(&self) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body).expect("JSON body");
        assert_eq!(
            json["dialect"]["annotations"],
            serde_json::json!(["datatype", "group", "default"])
        );
        assert_eq!(json["dialect"]["header"], true);
        json["query"].as_str().expect("query text").to_owned()
    }
}

pub(super) struct Fake {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Fake {
    /// Answers the n-th connection with `responses[n]` (status, body), then 500.
    pub(super) async fn start(responses: Vec<(u16, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/influx", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        tokio::spawn(async move {
            let mut responses = responses.into_iter();
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let Some(request) = read_request(&mut socket).await else {
                    continue;
                };
                recorded.lock().expect("lock").push(request);
                let (status, body) = responses
                    .next()
                    .unwrap_or((500, "no more canned responses".to_owned()));
                let content_type = if body.starts_with('{') {
                    "application/json"
                } else {
                    "text/csv; charset=utf-8"
                };
                let answer = format!(
                    "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Self { url, requests }
    }

    pub(super) fn store(&self) -> InfluxStore {
        InfluxStore::new(InfluxConfig {
            url: self.url.clone(),
            org: "city org".to_owned(),
            bucket: "iot".to_owned(),
            token: "s3cret".to_owned(),
        })
        .expect("valid config")
    }

    pub(super) fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let method = start.next()?.to_owned();
    let target = start.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        target,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn assert_query_request(r: &Request) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/influx/api/v2/query?org=city+org");
    assert_eq!(r.header("authorization"), Some("Token s3cret"));
    assert_eq!(r.header("accept"), Some("application/csv"));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

pub(super) fn b7() -> SeriesKey {
    key(
        "temperature",
        &[("device", "b7"), ("domain", "building")],
        "value",
    )
}

pub(super) const T0: UnixNanos = 1_795_341_600_000_000_000; // 2026-11-22T10:00:00Z

/// What `range` gets for `b7()`: its own table, and one of a series with an extra tag (`floor`), which the
/// Flux filter also matches and the adapter must drop.
const RANGE_ANSWER: &str = "#group,false,false,false,false,true,true,true,true\r
#datatype,string,long,dateTime:RFC3339Nano,double,string,string,string,string\r
#default,_result,,,,,,,\r
,result,table,_time,_value,_field,_measurement,device,domain\r
,,0,2026-11-22T10:00:00Z,21.5,value,temperature,b7,building\r
,,0,2026-11-22T10:00:00.000000001Z,22,value,temperature,b7,building\r
,,0,2026-11-22T10:10:00Z,-3.25e2,value,temperature,b7,building\r
\r
#group,false,false,false,false,true,true,true,true,true\r
#datatype,string,long,dateTime:RFC3339Nano,double,string,string,string,string,string\r
#default,_result,,,,,,,,\r
,result,table,_time,_value,_field,_measurement,device,domain,floor\r
,,1,2026-11-22T10:05:00Z,99,value,temperature,b7,building,2\r
\r
";

#[tokio::test]
async fn range_queries_one_series_and_drops_series_with_more_tags() {
    let fake = Fake::start(vec![(200, RANGE_ANSWER.to_owned())]).await;
    let store = fake.store();
    let points = store
        .range(&b7(), T0, T0 + 3_600_000_000_000)
        .await
        .expect("range");
    assert_eq!(
        points,
        [(T0, 21.5), (T0 + 1, 22.0), (T0 + 600_000_000_000, -325.0)]
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_query_request(&requests[0]);
    let flux = requests[0].flux();
    assert!(flux.starts_with("from(bucket: \"iot\")"), "{flux}");
    assert!(
        flux.contains(&format!(
            "range(start: time(v: {T0}), stop: time(v: {}))",
            T0 + 3_600_000_000_000
        )),
        "{flux}"
    );
    assert!(
        flux.contains(r#"r._measurement == "temperature" and r._field == "value" and r["device"] == "b7" and r["domain"] == "building""#),
        "{flux}"
    );

    // An empty range asks nothing.
    assert_eq!(store.range(&b7(), T0, T0).await.expect("empty"), []);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn last_before_picks_the_exact_series() {
    let answer = "#group,false,false,false,false,true,true,true,true,true\r
#datatype,string,long,dateTime:RFC3339Nano,double,string,string,string,string,string\r
#default,_result,,,,,,,,\r
,result,table,_time,_value,_field,_measurement,device,domain,floor\r
,,0,2026-11-22T10:30:00Z,99,value,temperature,b7,building,2\r
\r
#group,false,false,false,false,true,true,true,true\r
#datatype,string,long,dateTime:RFC3339Nano,long,string,string,string,string\r
#default,_result,,,,,,,\r
,result,table,_time,_value,_field,_measurement,device,domain\r
,,1,2026-11-22T10:20:00.5Z,20,value,temperature,b7,building\r
\r
";
    let fake = Fake::start(vec![(200, answer.to_owned()), (200, String::new())]).await;
    let store = fake.store();
    let before = T0 + 3_600_000_000_000;
    assert_eq!(
        store.last_before(&b7(), before).await.expect("last"),
        Some((T0 + 1_200_500_000_000, 20.0))
    );
    assert_eq!(
        store.last_before(&b7(), i64::MAX).await.expect("none"),
        None,
        "an empty answer is no point"
    );
    let requests = fake.requests();
    assert_query_request(&requests[0]);
    let flux = requests[0].flux();
    assert!(
        flux.contains(&format!(
            "range(start: time(v: -9223372036854775806), stop: time(v: {before}))"
        )),
        "{flux}"
    );
    assert!(flux.contains("|> last()"), "{flux}");
    assert!(
        requests[1]
            .flux()
            .contains("stop: time(v: 9223372036854775807)")
    );
}

#[tokio::test]
async fn series_lists_keys_with_the_unit_of_the_latest_write() {
    // `last()` per series: value fields (double) and unit fields (string) in separate blocks; one series of a
    // name bydata does not accept (written by another tool) is skipped.
    let answer = "#group,false,false,false,false,true,true,true,true\r
#datatype,string,long,dateTime:RFC3339Nano,double,string,string,string,string\r
#default,_result,,,,,,,\r
,result,table,_time,_value,_field,_measurement,device,domain\r
,,0,2026-11-22T10:00:00Z,21.5,value,temperature,b7,building\r
,,1,2026-11-22T10:00:00Z,40,value,humidity,b7,building\r
,,2,2026-11-22T10:00:00Z,1,value,bad measurement,b7,building\r
\r
#group,false,false,false,false,true,true,true,true\r
#datatype,string,long,dateTime:RFC3339Nano,string,string,string,string,string\r
#default,_result,,,,,,,\r
,result,table,_time,_value,_field,_measurement,device,domain\r
,,3,2026-11-22T10:00:00Z,Cel,value#unit,temperature,b7,building\r
,,4,2026-11-22T10:00:00Z,,value#unit,humidity,b7,building\r
\r
#group,false,false,false,false,true,true,true\r
#datatype,string,long,dateTime:RFC3339Nano,double,string,string,string\r
#default,_result,,,,,,\r
,result,table,_time,_value,_field,_measurement,device\r
,,5,2026-11-22T10:00:00Z,3,energy,meter,m1\r
\r
";
    let fake = Fake::start(vec![(200, answer.to_owned())]).await;
    let store = fake.store();
    let filter = SeriesFilter {
        scope: None,
        measurement: None,
        field: None,
        tags: BTreeMap::new(),
    };
    let series = store.series(&filter).await.expect("series");
    assert_eq!(
        series,
        [
            SeriesInfo {
                key: key(
                    "humidity",
                    &[("device", "b7"), ("domain", "building")],
                    "value"
                ),
                unit: None,
            },
            SeriesInfo {
                key: key("meter", &[("device", "m1")], "energy"),
                unit: None,
            },
            SeriesInfo {
                key: b7(),
                unit: Some(Unit::new("Cel").expect("unit")),
            },
        ]
    );
    let requests = fake.requests();
    assert_query_request(&requests[0]);
    let flux = requests[0].flux();
    assert!(flux.contains("|> last()"), "{flux}");
    assert!(!flux.contains("filter"), "{flux}");
}

#[tokio::test]
async fn write_posts_line_protocol_in_batches_of_5000_lines() {
    let fake = Fake::start(vec![(204, String::new()), (204, String::new())]).await;
    let store = fake.store();
    let points: Vec<Point> = (0..MAX_LINES_PER_REQUEST as i64 + 1)
        .map(|i| point(b7(), Some("Cel"), T0 + i, i as f64))
        .collect();
    store.write(points.clone()).await.expect("write");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.target,
            "/influx/api/v2/write?org=city+org&bucket=iot&precision=ns"
        );
        assert_eq!(r.header("authorization"), Some("Token s3cret"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
    let first = line_protocol::parse(&requests[0].body, Precision::Ns).expect("line protocol");
    let second = line_protocol::parse(&requests[1].body, Precision::Ns).expect("line protocol");
    assert_eq!(first.len(), MAX_LINES_PER_REQUEST);
    assert_eq!(second.len(), 1, "the rest, in order");
    assert_eq!(first[0].time, Some(T0));
    assert_eq!(second[0].time, Some(T0 + MAX_LINES_PER_REQUEST as i64));
    assert_eq!(
        requests[0].body.lines().next(),
        Some(
            "temperature,device=b7,domain=building value=0.0,value#unit=\"Cel\" 1795341600000000000"
        )
    );

    // An unwritable point fails the batch before anything is sent.
    let mut bad = points;
    bad.push(point(b7(), None, T0, f64::NAN));
    assert!(matches!(
        store.write(bad).await,
        Err(Error::InvalidQuery { .. })
    ));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn http_errors_carry_status_and_body_but_not_the_token() {
    let rejected = r#"{"code":"invalid","message":"partial write: field type conflict: input field \"value\" on measurement \"temperature\" is type string, already exists as type float dropped=1"}"#;
    let long = format!(
        "{{\"code\":\"internal error\",\"message\":\"{}\"}}",
        "x".repeat(5000)
    );
    let fake = Fake::start(vec![
        (422, rejected.to_owned()),
        (
            401,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#.to_owned(),
        ),
        (500, long),
    ])
    .await;
    let store = fake.store();
    let err = store
        .write(vec![point(b7(), None, T0, 1.0)])
        .await
        .expect_err("422");
    let text = err.to_string();
    assert!(matches!(err, Error::Task { .. }), "{err:?}");
    assert!(
        text.contains("422") && text.contains("field type conflict"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");

    let err = store.range(&b7(), T0, T0 + 1).await.expect_err("401");
    assert!(
        err.to_string().contains("401") && err.to_string().contains("unauthorized"),
        "{err}"
    );

    let err = store.last_before(&b7(), T0).await.expect_err("500");
    let text = err.to_string();
    assert!(
        text.contains("500") && text.len() < 1_000,
        "the body is cut: {} bytes",
        text.len()
    );
}

#[tokio::test]
async fn error_tables_and_garbage_in_a_200_are_errors() {
    let partial = format!(
        "{}\r\n#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,\"runtime error: out of memory\",\r\n",
        RANGE_ANSWER.trim_end()
    );
    let fake = Fake::start(vec![
        (200, partial),
        (200, ",result,table,_time,_value,device,domain\r\n,,0,yesterday,1,b7,building\r\n".to_owned()),
        (200, ",result,table,_time,device,domain,_value\r\n,,0,2026-11-22T10:00:00Z,b7,building,\"1\r\n".to_owned()),
    ])
    .await;
    let store = fake.store();
    let err = store
        .range(&b7(), T0, T0 + 1)
        .await
        .expect_err("error table");
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("out of memory"), "{err}");
    let err = store.range(&b7(), T0, T0 + 1).await.expect_err("bad time");
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    // An unterminated quote swallows the rest: the value "1\r\n" is not a number.
    let err = store.range(&b7(), T0, T0 + 1).await.expect_err("bad value");
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let store = InfluxStore::new(InfluxConfig {
        url: format!("http://{addr}"),
        org: "o".to_owned(),
        bucket: "b".to_owned(),
        token: "s3cret".to_owned(),
    })
    .expect("valid");
    let err = store
        .write(vec![point(b7(), None, T0, 1.0)])
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Task { .. }), "{err:?}");
    assert!(!err.to_string().contains("s3cret"));
}

//! A fake CKAN (2.11 Action API) over real TCP for tests: an axum server speaking the documented request and
//! response shapes, in memory, recording every request and failing on cue. Used by `opendata/tests/ckan.rs` and,
//! through `#[path]`, by the root crate's `tests/opendata.rs`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "fake-ckan-token-7f3a9c";
pub const ORG: &str = "aarhus-kommune";
pub const ORG_ID: &str = "0c4a7e1e-org";

// ---------------------------------------------------------------------------------------------------------
// The fake CKAN

/// What the fake does to the next request for an action instead of (or besides) answering it.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer this status with CKAN's internal-error body, doing nothing.
    Status(u16),
    /// 429 with `Retry-After: {0}`.
    RetryAfter(u64),
    /// Do the action, then answer this status as a proxy would (the response is lost).
    AfterCommit(u16),
    /// Do the action, then never answer (the client times out and hangs up).
    SilentAfterCommit,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub action: String,
    pub query_id: Option<String>,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
pub struct FakeState {
    /// By package name.
    pub packages: BTreeMap<String, Value>,
    pub next_id: u32,
    pub log: Vec<Recorded>,
    pub faults: HashMap<String, VecDeque<Fault>>,
}

#[derive(Clone, Default)]
pub struct Fake(pub Arc<Mutex<FakeState>>);

impl Fake {
    pub async fn start() -> (Fake, String) {
        let fake = Fake::default();
        let app = Router::new()
            .route("/api/3/action/{action}", any(handle))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        (fake, url)
    }

    pub fn fail(&self, action: &str, faults: &[Fault]) {
        let mut s = self.0.lock().expect("lock");
        s.faults
            .entry(action.to_owned())
            .or_default()
            .extend(faults.iter().copied());
    }

    pub fn log(&self) -> Vec<Recorded> {
        self.0.lock().expect("lock").log.clone()
    }

    pub fn clear_log(&self) {
        self.0.lock().expect("lock").log.clear();
    }

    pub fn actions(&self) -> Vec<String> {
        self.log().into_iter().map(|r| r.action).collect()
    }

    pub fn writes(&self) -> Vec<Recorded> {
        self.log()
            .into_iter()
            .filter(|r| r.action != "package_show")
            .collect()
    }

    pub fn calls(&self, action: &str) -> Vec<Recorded> {
        self.log()
            .into_iter()
            .filter(|r| r.action == action)
            .collect()
    }

    pub fn package(&self, name: &str) -> Option<Value> {
        self.0.lock().expect("lock").packages.get(name).cloned()
    }

    pub fn package_count(&self) -> usize {
        self.0.lock().expect("lock").packages.len()
    }

    pub fn add_resource(&self, name: &str, resource: Value) {
        let mut s = self.0.lock().expect("lock");
        s.next_id += 1;
        let id = format!("res-{:04}", s.next_id);
        let package = s.packages.get_mut(name).expect("package");
        let mut resource = resource;
        resource["id"] = id.into();
        package["resources"]
            .as_array_mut()
            .expect("resources")
            .push(resource);
    }
}

pub fn ok(result: Value) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({"help": "http://fake/api/3/action/help_show", "success": true, "result": result}),
    )
}

pub fn err(status: StatusCode, error: Value) -> (StatusCode, Value) {
    (
        status,
        json!({"help": "http://fake/api/3/action/help_show", "success": false, "error": error}),
    )
}

pub fn not_found() -> (StatusCode, Value) {
    err(
        StatusCode::NOT_FOUND,
        json!({"__type": "Not Found Error", "message": "Not found"}),
    )
}

pub fn invalid(field: &str, message: &str) -> (StatusCode, Value) {
    err(
        StatusCode::CONFLICT,
        json!({"__type": "Validation Error", field: [message]}),
    )
}

pub async fn handle(
    State(fake): State<Fake>,
    Path(action): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fault = {
        let mut s = fake.0.lock().expect("lock");
        s.log.push(Recorded {
            method: method.clone(),
            action: action.clone(),
            query_id: query.get("id").cloned(),
            body: body.clone(),
            authorization: authorization.clone(),
        });
        s.faults.get_mut(&action).and_then(VecDeque::pop_front)
    };
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).expect("status");
            let error =
                json!({"__type": "Internal Server Error", "message": "Internal Server Error"});
            return (status, axum::Json(err(status, error).1)).into_response();
        }
        Some(Fault::RetryAfter(secs)) => {
            let headers = [(header::RETRY_AFTER, secs.to_string())];
            return (StatusCode::TOO_MANY_REQUESTS, headers, "Too Many Requests").into_response();
        }
        _ => {}
    }
    let (status, answer) = if authorization.as_deref() != Some(TOKEN) {
        err(
            StatusCode::FORBIDDEN,
            json!({"__type": "Authorization Error", "message": "Access denied"}),
        )
    } else {
        let params = if method == Method::GET {
            json!(query)
        } else {
            body
        };
        let mut s = fake.0.lock().expect("lock");
        s.act(&action, params)
    };
    match fault {
        Some(Fault::AfterCommit(code)) => (
            StatusCode::from_u16(code).expect("status"),
            "<html>Bad Gateway</html>",
        )
            .into_response(),
        Some(Fault::SilentAfterCommit) => {
            let _ = (status, answer);
            // Dropped with the connection when the client gives up.
            std::future::pending::<Response>().await
        }
        _ => (status, axum::Json(answer)).into_response(),
    }
}

pub fn valid_name(name: &str) -> bool {
    (2..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl FakeState {
    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:04}", self.next_id)
    }

    pub fn find_name(&self, id_or_name: &str) -> Option<String> {
        self.packages
            .iter()
            .find(|(n, p)| *n == id_or_name || p["id"] == id_or_name)
            .map(|(n, _)| n.clone())
    }

    /// Stores a resource the way CKAN returns it: all keys kept, plus id, package_id and position.
    pub fn new_resource(
        &mut self,
        package_id: &str,
        position: usize,
        mut r: Map<String, Value>,
    ) -> Value {
        r.insert("id".into(), self.id("res").into());
        r.insert("package_id".into(), package_id.into());
        r.insert("position".into(), position.into());
        r.entry("description").or_insert_with(|| "".into());
        Value::Object(r)
    }

    /// Applies package fields the way CKAN stores them: org by id, tags as objects.
    pub fn apply(package: &mut Value, fields: &Map<String, Value>) {
        for (key, value) in fields {
            match key.as_str() {
                "id" | "resources" => {}
                "owner_org" => {
                    package["owner_org"] = ORG_ID.into();
                    package["organization"] =
                        json!({"id": ORG_ID, "name": ORG, "title": "Aarhus Kommune"});
                }
                "tags" => {
                    let tags: Vec<Value> = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| json!({"name": t["name"], "display_name": t["name"], "id": "tag", "state": "active"}))
                        .collect();
                    package["tags"] = tags.into();
                }
                _ => package[key] = value.clone(),
            }
        }
    }

    pub fn act(&mut self, action: &str, params: Value) -> (StatusCode, Value) {
        let p = params.as_object().cloned().unwrap_or_default();
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match action {
            "package_show" => match self.find_name(&s("id")) {
                Some(name) => ok(self.packages[&name].clone()),
                None => not_found(),
            },
            "package_create" => {
                let name = s("name");
                if name.is_empty() {
                    return invalid("name", "Missing value");
                }
                if !valid_name(&name) {
                    return invalid(
                        "name",
                        "Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_",
                    );
                }
                if s("owner_org") != ORG && s("owner_org") != ORG_ID {
                    return invalid("owner_org", "Organization does not exist");
                }
                if self.packages.contains_key(&name) {
                    return invalid("name", "That URL is already in use.");
                }
                let id = self.id("pkg");
                let mut package = json!({"id": id, "name": name, "state": "active", "type": "dataset",
                    "private": false, "tags": [], "extras": [], "resources": []});
                Self::apply(&mut package, &p);
                let resources: Vec<Value> = p
                    .get("resources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, r)| {
                        self.new_resource(&id, i, r.as_object().cloned().unwrap_or_default())
                    })
                    .collect();
                package["resources"] = resources.into();
                self.packages.insert(name, package.clone());
                ok(package)
            }
            "package_patch" => {
                if s("id").is_empty() {
                    return invalid("id", "Missing value");
                }
                let Some(name) = self.find_name(&s("id")) else {
                    return not_found();
                };
                let package = self.packages.get_mut(&name).expect("package");
                Self::apply(package, &p);
                ok(package.clone())
            }
            "resource_create" => {
                if s("package_id").is_empty() {
                    return invalid("package_id", "Missing value");
                }
                let Some(name) = self.find_name(&s("package_id")) else {
                    return not_found();
                };
                let package_id = self.packages[&name]["id"].as_str().unwrap_or("").to_owned();
                let position = self.packages[&name]["resources"]
                    .as_array()
                    .map_or(0, Vec::len);
                let mut fields = p.clone();
                fields.remove("package_id");
                let resource = self.new_resource(&package_id, position, fields);
                self.packages.get_mut(&name).expect("package")["resources"]
                    .as_array_mut()
                    .expect("resources")
                    .push(resource.clone());
                ok(resource)
            }
            "package_delete" => match self.find_name(&s("id")) {
                Some(name) => {
                    self.packages.remove(&name);
                    ok(Value::Null)
                }
                None => not_found(),
            },
            "resource_patch" | "resource_delete" => {
                let id = s("id");
                if id.is_empty() {
                    return invalid("id", "Missing value");
                }
                for package in self.packages.values_mut() {
                    let resources = package["resources"].as_array_mut().expect("resources");
                    if let Some(i) = resources.iter().position(|r| r["id"] == id.as_str()) {
                        if action == "resource_delete" {
                            resources.remove(i);
                            return ok(Value::Null);
                        }
                        for (k, v) in &p {
                            resources[i][k] = v.clone();
                        }
                        return ok(resources[i].clone());
                    }
                }
                not_found()
            }
            other => err(
                StatusCode::BAD_REQUEST,
                json!({"message": format!("Bad request - Action name not known: {other}")}),
            ),
        }
    }
}

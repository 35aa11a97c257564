//! A target's body (create or change) checked and turned into the stored settings and secrets.
use crate::Error;
use bydata_schemas::{DeviceId, MeasurementName, OrgId, TargetId, UnixNanos};
use bydata_store::{HttpAuth, Target, TargetFilter, TargetKind, TargetSecrets};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Defaults of a new target.
const BATCH_SIZE: u32 = 100;
const MAX_DELAY_MS: u64 = 1_000;
const MAX_ATTEMPTS: u32 = 5;
const MAX_BATCH_SIZE: u32 = 10_000;
const MAX_DELAY_LIMIT_MS: u64 = 3_600_000;

/// `http` or `mqtt`.
#[derive(utoipa::ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // the document's schema only
pub(crate) enum KindDoc {
    Http,
    Mqtt,
}

/// `now` (readings from now on) or `beginning` (everything the journal holds).
#[derive(utoipa::ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // the document's schema only
pub(crate) enum StartDoc {
    Now,
    Beginning,
}

/// `none`, `bearer` or `basic`.
#[derive(utoipa::ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // the document's schema only
pub(crate) enum AuthTypeDoc {
    None,
    Bearer,
    Basic,
}

/// A target to create (`POST /api/v1/targets`), or the fields to change (`PATCH …/{id}`, every field
/// optional; `id`, `kind`, `start` and `org` are fixed at creation).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetBody {
    /// A slug (create only).
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub(super) id: Option<TargetId>,
    #[schema(min_length = 1, max_length = 200)]
    pub(super) name: Option<String>,
    /// `http` or `mqtt` (create only).
    #[schema(value_type = Option<KindDoc>)]
    pub(super) kind: Option<String>,
    /// HTTP: where batches are POSTed (`http://` or `https://`).
    #[schema(max_length = 2000)]
    pub(super) url: Option<String>,
    /// HTTP: `{"type": "none"}`, `{"type": "bearer", "token"}` or `{"type": "basic", "username", "password"}`.
    pub(super) auth: Option<AuthBody>,
    /// HTTP: extra headers (an API key, …); their values are kept sealed and never shown.
    pub(super) headers: Option<BTreeMap<String, String>>,
    /// MQTT: the broker's host.
    #[schema(max_length = 253)]
    pub(super) host: Option<String>,
    /// MQTT: the broker's port (1883; 8883 with TLS).
    #[schema(minimum = 1, maximum = 65535)]
    pub(super) port: Option<u16>,
    /// MQTT: connect with TLS (the broker's certificate checked against the Mozilla roots).
    pub(super) tls: Option<bool>,
    /// MQTT: login.
    #[schema(max_length = 200)]
    pub(super) username: Option<String>,
    /// MQTT: login; kept sealed and never shown.
    pub(super) password: Option<String>,
    /// MQTT: the client id (`bydata-{id}` when absent).
    #[schema(max_length = 128)]
    pub(super) client_id: Option<String>,
    /// MQTT: the topic of each reading; `{device}`, `{measurement}`, `{org}`, `{target}` are filled in.
    pub(super) topic: Option<String>,
    /// Which of the organisation's readings it receives (absent: all of them).
    pub(super) filter: Option<FilterBody>,
    /// Most readings per batch (default 100).
    #[schema(minimum = 1, maximum = 10000)]
    pub(super) batch_size: Option<u32>,
    /// Longest a reading waits for its batch to fill, ms (default 1000).
    #[schema(minimum = 0, maximum = 3600000)]
    pub(super) max_delay_ms: Option<u64>,
    /// Attempts a batch answered with a server error gets before it is a dead letter (default 5).
    #[schema(minimum = 1, maximum = 1000)]
    pub(super) max_attempts: Option<u32>,
    pub(super) enabled: Option<bool>,
    /// Create only: `now` (default: readings from now on) or `beginning` (everything the journal holds).
    #[schema(value_type = Option<StartDoc>)]
    pub(super) start: Option<String>,
    /// Create only: the organisation it belongs to; needed only by someone who may create in several.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub(super) org: Option<OrgId>,
}

impl std::fmt::Debug for TargetBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetBody")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthBody {
    /// `none`, `bearer` or `basic`.
    #[serde(rename = "type")]
    #[schema(value_type = AuthTypeDoc)]
    kind: String,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FilterBody {
    /// Only these devices.
    #[schema(value_type = Vec<String>)]
    devices: Vec<DeviceId>,
    /// Only devices with all these tags (`domain` included).
    tags: BTreeMap<String, String>,
    /// Only these measurements.
    #[schema(value_type = Vec<String>)]
    measurements: Vec<MeasurementName>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad("invalid_target", message)
}

/// A new target from its body (`org` decided by the caller).
pub(super) fn create(
    body: TargetBody,
    org: OrgId,
    now: UnixNanos,
) -> Result<(Target, TargetSecrets), Error> {
    let id = body
        .id
        .clone()
        .ok_or_else(|| bad("id is required: a slug such as \"city-webhook\""))?;
    let name = body.name.clone().ok_or_else(|| bad("name is required"))?;
    let kind = match body.kind.as_deref() {
        Some("http") => TargetKind::Http {
            url: String::new(),
            auth: HttpAuth::None,
            headers: Vec::new(),
        },
        Some("mqtt") => TargetKind::Mqtt {
            host: String::new(),
            port: 1883,
            tls: false,
            username: None,
            client_id: None,
            topic: "bydata/{device}/{measurement}".into(),
        },
        Some(other) => {
            return Err(bad(format!(
                "kind {other:?}: expected \"http\" or \"mqtt\""
            )));
        }
        None => return Err(bad("kind is required: \"http\" or \"mqtt\"")),
    };
    let base = Target {
        id,
        org,
        name,
        kind,
        filter: TargetFilter::default(),
        batch_size: BATCH_SIZE,
        max_delay_ms: MAX_DELAY_MS,
        max_attempts: MAX_ATTEMPTS,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let (target, secrets) = apply(base, TargetSecrets::default(), body, true, now)?;
    Ok((target, secrets.unwrap_or_default()))
}

/// `target` changed by `body`; the secrets too when the body gives new ones (`None`: keep them).
pub(super) fn change(
    target: Target,
    secrets: TargetSecrets,
    body: TargetBody,
    now: UnixNanos,
) -> Result<(Target, Option<TargetSecrets>), Error> {
    for (given, field) in [
        (body.id.is_some(), "id"),
        (body.kind.is_some(), "kind"),
        (body.start.is_some(), "start"),
        (body.org.is_some(), "org"),
    ] {
        if given {
            return Err(bad(format!(
                "{field} is fixed when a target is created: create a new target instead"
            )));
        }
    }
    apply(target, secrets, body, false, now)
}

fn apply(
    mut t: Target,
    mut secrets: TargetSecrets,
    body: TargetBody,
    creating: bool,
    now: UnixNanos,
) -> Result<(Target, Option<TargetSecrets>), Error> {
    let mut secrets_changed = creating;
    if let Some(name) = &body.name {
        t.name = crate::error::display_name(name)?.to_owned();
    }
    if let Some(n) = body.batch_size {
        if n == 0 || n > MAX_BATCH_SIZE {
            return Err(bad(format!("batch_size must be 1 to {MAX_BATCH_SIZE}")));
        }
        t.batch_size = n;
    }
    if let Some(ms) = body.max_delay_ms {
        if ms > MAX_DELAY_LIMIT_MS {
            return Err(bad("max_delay_ms must be at most 3600000 (an hour)"));
        }
        t.max_delay_ms = ms;
    }
    if let Some(n) = body.max_attempts {
        if n == 0 || n > 1000 {
            return Err(bad("max_attempts must be 1 to 1000"));
        }
        t.max_attempts = n;
    }
    if let Some(e) = body.enabled {
        t.enabled = e;
    }
    if let Some(f) = body.filter {
        t.filter = TargetFilter {
            devices: f.devices,
            tags: f.tags,
            measurements: f.measurements,
        };
    }
    match &mut t.kind {
        TargetKind::Http { url, auth, headers } => {
            let mqtt_only = [
                (body.host.is_some(), "host"),
                (body.port.is_some(), "port"),
                (body.tls.is_some(), "tls"),
                (body.username.is_some(), "username"),
                (body.password.is_some(), "password"),
                (body.client_id.is_some(), "client_id"),
                (body.topic.is_some(), "topic"),
            ];
            if let Some((_, field)) = mqtt_only.iter().find(|(given, _)| *given) {
                return Err(bad(format!(
                    "{field} belongs to an MQTT target; an HTTP target has url, auth and headers"
                )));
            }
            if let Some(u) = body.url {
                let parsed = reqwest::Url::parse(&u).map_err(|_| {
                    bad(format!(
                        "url {u:?} is not a URL: give http(s)://host[:port]/path"
                    ))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(bad("url must be an http:// or https:// URL with a host"));
                }
                if !parsed.username().is_empty() || parsed.password().is_some() {
                    return Err(bad(
                        "url may not carry a user or password: use auth (it is kept sealed)",
                    ));
                }
                *url = u;
            }
            if url.is_empty() {
                return Err(bad("an HTTP target needs url"));
            }
            if let Some(a) = body.auth {
                let (new_auth, secret) = match a.kind.as_str() {
                    "none" => (HttpAuth::None, None),
                    "bearer" => (
                        HttpAuth::Bearer,
                        Some(
                            a.token
                                .filter(|t| !t.is_empty())
                                .ok_or_else(|| bad("auth type \"bearer\" needs its token"))?,
                        ),
                    ),
                    "basic" => (
                        HttpAuth::Basic {
                            username: a.username.filter(|u| !u.is_empty()).ok_or_else(|| {
                                bad("auth type \"basic\" needs username and password")
                            })?,
                        },
                        Some(a.password.ok_or_else(|| {
                            bad("auth type \"basic\" needs username and password")
                        })?),
                    ),
                    other => {
                        return Err(bad(format!(
                            "auth type {other:?}: expected \"none\", \"bearer\" or \"basic\""
                        )));
                    }
                };
                *auth = new_auth;
                secrets.secret = secret;
                secrets_changed = true;
            }
            if let Some(h) = body.headers {
                if h.len() > 20 {
                    return Err(bad("at most 20 extra headers"));
                }
                *headers = h.keys().map(|k| k.to_ascii_lowercase()).collect();
                secrets.headers = h;
                secrets_changed = true;
            }
        }
        TargetKind::Mqtt {
            host,
            port,
            tls,
            username,
            client_id,
            topic,
        } => {
            let http_only = [
                (body.url.is_some(), "url"),
                (body.auth.is_some(), "auth"),
                (body.headers.is_some(), "headers"),
            ];
            if let Some((_, field)) = http_only.iter().find(|(given, _)| *given) {
                return Err(bad(format!(
                    "{field} belongs to an HTTP target; an MQTT target has host, port, tls, username, password, client_id and topic"
                )));
            }
            if let Some(h) = body.host {
                if h.trim().is_empty() || h.contains(['/', ' ']) {
                    return Err(bad("host must be the broker's host name or address"));
                }
                *host = h;
            }
            if host.is_empty() {
                return Err(bad("an MQTT target needs host"));
            }
            if let Some(tls_on) = body.tls {
                *tls = tls_on;
                if body.port.is_none() && creating && tls_on {
                    *port = 8883;
                }
            }
            if let Some(p) = body.port {
                if p == 0 {
                    return Err(bad("port must be 1 to 65535"));
                }
                *port = p;
            }
            if let Some(c) = body.client_id {
                if c.is_empty() || c.len() > 128 {
                    return Err(bad("client_id must be 1 to 128 characters"));
                }
                *client_id = Some(c);
            }
            if let Some(tp) = body.topic {
                *topic = tp;
            }
            if let Some(u) = body.username {
                *username = Some(u).filter(|u| !u.is_empty());
                if username.is_none() {
                    secrets.secret = None;
                    secrets_changed = true;
                }
            }
            if let Some(p) = body.password {
                if username.is_none() {
                    return Err(bad(
                        "a password needs a username: MQTT sends neither without one",
                    ));
                }
                secrets.secret = Some(p);
                secrets_changed = true;
            }
        }
    }
    t.updated_at = now.max(t.updated_at + 1);
    Ok((t, secrets_changed.then_some(secrets)))
}

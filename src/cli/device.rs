//! `bydata device add|list|status|rm`: through the HTTP API, so they work while `serve` runs. Errors are the
//! API's words: its message, and each problem of a refused body on a line of its own.
use super::show::{added, health, host_of, status_text, table, text};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The bydata HTTP API.
    #[arg(long, env = "BYDATA_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// An admin token (printed by `bydata serve` at its first start, or set with BYDATA_ADMIN_TOKEN there).
    #[arg(long, env = "BYDATA_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) token: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Onboard an MQTT device; prints its credentials (shown once), the broker, its topic and a ready
    /// `mosquitto_pub` line.
    Add {
        #[command(flatten)]
        api: ApiArgs,
        /// A name people read, e.g. "Dokk1 meeting room CO2".
        #[arg(long)]
        name: String,
        /// Device id: lowercase letters, digits and `-` (default: derived from the name, with a suffix).
        #[arg(long)]
        id: Option<String>,
        /// What the device measures for: building, energy, mobility, environment, water, … (the API lists
        /// them when one is refused).
        #[arg(long, default_value = "building")]
        domain: String,
        /// Latitude in degrees (WGS 84), with --lon.
        #[arg(long, requires = "lon", allow_hyphen_values = true)]
        lat: Option<f64>,
        /// Longitude in degrees (WGS 84), with --lat.
        #[arg(long, requires = "lat", allow_hyphen_values = true)]
        lon: Option<f64>,
        /// A tag, KEY=VALUE (e.g. building=dokk1); repeatable. Tags become query filters: tag.KEY=VALUE.
        #[arg(long = "tag", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        /// How payloads are decoded: auto (SenML or flat JSON), senml, json, cayenne (Cayenne LPP, binary),
        /// or js:NAME (the newest version of an uploaded JavaScript codec) or js:NAME@VERSION (pinned).
        #[arg(long, default_value = "auto")]
        codec: String,
        /// The MQTT broker as the device reaches it, HOST:PORT (default: the host of --url, port 1883).
        #[arg(long)]
        broker: Option<String>,
        /// Print the API's answer as JSON instead (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List devices: id, transport, domain, status, last seen, name.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// A device's status: last seen, received/decoded/rejected counts, the last error and warning in words.
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// The device id.
        id: String,
    },
    /// Delete a device (its stored data stays).
    Rm {
        #[command(flatten)]
        api: ApiArgs,
        /// The device id.
        id: String,
    },
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// One API call; a refusal becomes an error in the API's words.
async fn call(request: reqwest::RequestBuilder, token: &str) -> anyhow::Result<Value> {
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .context("cannot reach the bydata API (is `bydata serve` running? see --url)")?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{}", refusal(status.as_u16(), &text));
    }
    Ok(if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

/// What a refused request says: the API's message, or each problem of the body on its own line.
pub(crate) fn refusal(status: u16, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return format!("the API answered {status}: {}", body.trim());
    };
    let error = &v["error"];
    let message = error["message"].as_str().unwrap_or("").to_owned();
    let code = error["code"].as_str().unwrap_or("error");
    let problems = error["problems"].as_array().cloned().unwrap_or_default();
    if problems.is_empty() {
        return format!("{message} ({code}, HTTP {status})");
    }
    let mut out = format!(
        "the request was refused ({code}, HTTP {status}): {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in &problems {
        let field = p["field"]
            .as_str()
            .filter(|f| !f.is_empty())
            .unwrap_or("(the body)");
        out.push_str(&format!(
            "\n  {field}: {}",
            p["message"].as_str().unwrap_or("")
        ));
    }
    out
}

pub(crate) async fn run(command: DeviceCommand) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    match command {
        DeviceCommand::Add {
            api,
            name,
            id,
            domain,
            lat,
            lon,
            tags,
            codec,
            broker,
            json: as_json,
        } => {
            let mut body = json!({
                "name": name, "transport": "mqtt", "domain": domain, "codec": codec,
                "tags": tags.into_iter().collect::<BTreeMap<_, _>>(),
            });
            if let Some(id) = id {
                body["id"] = id.into();
            }
            if let (Some(lat), Some(lon)) = (lat, lon) {
                body["location"] = json!({"lat": lat, "lon": lon});
            }
            let url = format!("{}/api/v1/devices", api.url.trim_end_matches('/'));
            let created = call(http.post(url).json(&body), &api.token).await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&created)?);
                return Ok(());
            }
            let broker = broker.unwrap_or_else(|| format!("{}:1883", host_of(&api.url)));
            print!("{}", added(&created, &broker));
        }
        DeviceCommand::List { api } => {
            let base = api.url.trim_end_matches('/');
            let list = call(http.get(format!("{base}/api/v1/devices")), &api.token).await?;
            let mut rows = Vec::new();
            for d in list["devices"].as_array().into_iter().flatten() {
                let id = d["id"].as_str().unwrap_or("");
                let status = call(
                    http.get(format!("{base}/api/v1/devices/{id}/status")),
                    &api.token,
                )
                .await
                .unwrap_or(Value::Null);
                rows.push([
                    id.to_owned(),
                    text(&d["transport"]),
                    text(&d["domain"]),
                    health(&status).to_owned(),
                    status["last_seen"].as_str().unwrap_or("never").to_owned(),
                    text(&d["name"]),
                ]);
            }
            print!(
                "{}",
                table(
                    ["ID", "TRANSPORT", "DOMAIN", "STATUS", "LAST SEEN", "NAME"],
                    &rows
                )
            );
            if rows.is_empty() {
                println!("(no devices yet: bydata device add --name …)");
            }
        }
        DeviceCommand::Status { api, id } => {
            let base = api.url.trim_end_matches('/');
            let s = call(
                http.get(format!("{base}/api/v1/devices/{id}/status")),
                &api.token,
            )
            .await?;
            print!("{}", status_text(&s));
        }
        DeviceCommand::Rm { api, id } => {
            let url = format!("{}/api/v1/devices/{id}", api.url.trim_end_matches('/'));
            call(http.delete(url), &api.token).await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_speak_the_apis_words() {
        let body = r#"{"error": {"code": "invalid_body", "message": "2 problems: id: …; domain: …",
            "problems": [{"field": "id", "message": "use lowercase letters, digits and -"},
                         {"field": "domain", "message": "\"buildings\" is not a domain; use one of: building, energy"}]}}"#;
        assert_eq!(
            refusal(400, body),
            "the request was refused (invalid_body, HTTP 400): 2 problems\n  id: use lowercase letters, digits and -\n  domain: \"buildings\" is not a domain; use one of: building, energy"
        );
        assert_eq!(
            refusal(
                404,
                r#"{"error": {"code": "not_found", "message": "no device \"x\""}}"#
            ),
            "no device \"x\" (not_found, HTTP 404)"
        );
        assert_eq!(
            refusal(502, "bad gateway\n"),
            "the API answered 502: bad gateway"
        );
    }
}

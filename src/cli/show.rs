//! How device commands print: tables padded to their widest cell, a status in words, and what a new device
//! needs to publish (broker, topic, a ready `mosquitto_pub` line).
use serde_json::Value;

pub(super) fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

/// The host of an `http://host:port/…` URL.
pub(super) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// A status in one word: `never seen`, `ok`, or `error` when the last error is newer than the last decode.
pub(super) fn health(s: &Value) -> &'static str {
    if s.is_null() {
        return "unknown";
    }
    if s["last_seen"].is_null() {
        return "never seen";
    }
    let error = s["last_error"]["time"].as_str();
    let decoded = s["last_decoded"].as_str();
    match (error, decoded) {
        (Some(e), Some(d)) if e > d => "error",
        (Some(_), None) => "error",
        _ => "ok",
    }
}

/// Columns padded to their widest cell.
pub(super) fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = head.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(head.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// What `device add` prints: the device, its credentials, and how to publish as it.
pub(super) fn added(created: &Value, broker: &str) -> String {
    let id = created["id"].as_str().unwrap_or("");
    let mqtt = &created["mqtt"];
    let topic = mqtt["publish_topic"]
        .as_str()
        .map_or_else(|| format!("devices/{id}/up"), str::to_owned);
    let password = mqtt["password"].as_str().unwrap_or("<password>");
    let (host, port) = broker.rsplit_once(':').unwrap_or((broker, "1883"));
    let mut out = format!(
        "device {id} added ({})\n\
         MQTT broker  {broker}\n\
         client id    {client}\n\
         username     {user}\n\
         password     {password}   (shown only this once; bydata keeps only its hash)\n\
         topic        {topic}\n\n\
         Publish a reading:\n  \
         mosquitto_pub -h {host} -p {port} -q 1 -i {client} -u {user} -P '{password}' \\\n    \
         -t {topic} -m '{{\"temperature\": 21.5}}'\n",
        created["name"].as_str().unwrap_or(""),
        client = mqtt["client_id"].as_str().unwrap_or(id),
        user = mqtt["username"].as_str().unwrap_or(id),
    );
    out.push_str(&format!("Then: bydata device status {id}\n"));
    out
}

/// What `device status` prints.
pub(super) fn status_text(s: &Value) -> String {
    let or = |v: &Value, none: &str| v.as_str().unwrap_or(none).to_owned();
    let mut out = format!(
        "device      {}\nstatus      {}\nlast seen   {}\nlast decode {}\nreceived    {}   decoded {}   rejected {}   values stored {}\n",
        or(&s["id"], ""),
        health(s),
        or(&s["last_seen"], "never"),
        or(&s["last_decoded"], "never"),
        s["received"],
        s["decoded"],
        s["rejected"],
        s["values_stored"],
    );
    for (label, key) in [
        ("last error", "last_error"),
        ("last warning", "last_warning"),
    ] {
        if let Some(reason) = s[key]["reason"].as_str() {
            out.push_str(&format!(
                "{label:<11} {} ({})\n",
                reason,
                or(&s[key]["time"], "")
            ));
        }
    }
    for run in s["decoded_by"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "decoded by  {} ({} uplinks, {} to {})\n",
            or(&run["codec"], ""),
            run["uplinks"],
            or(&run["from"], ""),
            or(&run["to"], "")
        ));
    }
    let u = &s["unverified_attempts"];
    let wrong = u["wrong_password"].as_u64().unwrap_or(0);
    let frames = u["unverified_frames"].as_u64().unwrap_or(0);
    if wrong + frames > 0 {
        out.push_str(&format!(
            "unverified  {wrong} wrong passwords, {frames} frames whose MIC did not verify (since {})\n",
            or(&u["since"], "start")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts_and_tables() {
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_of("https://bydata.example.org/"), "bydata.example.org");
        assert_eq!(
            table(
                ["ID", "NAME"],
                &[["a".into(), "x".into()], ["long-id".into(), "y".into()]]
            ),
            "ID       NAME\na        x\nlong-id  y\n"
        );
        assert_eq!(health(&json!({"last_seen": null})), "never seen");
        assert_eq!(
            health(
                &json!({"last_seen": "t", "last_decoded": "2026-01-01T00:00:01Z",
                "last_error": {"time": "2026-01-01T00:00:02Z"}})
            ),
            "error"
        );
    }
}

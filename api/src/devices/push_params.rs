//! What an HTTP push says besides its bytes — its query (`?fport=N`) and its `Content-Type` — read by pure
//! functions that answer in the device owner's words and never panic on what a client sends
//! (property-tested).

/// The FPorts a push may name: the LoRaWAN application ports, as `devices/{id}/up/{fport}` over MQTT.
pub(crate) const FPORTS: std::ops::RangeInclusive<u8> = 1..=223;

/// Why a push's query or content type is refused: the error code and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

fn refused(code: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        code,
        message: message.into(),
    }
}

/// Longest piece of a client's text quoted back.
const QUOTED: usize = 40;

fn quoted(text: &str) -> String {
    bydata_store::refusals::truncate(text, QUOTED)
}

/// The FPort of a push from its raw query: `None` without one, `fport=N` with N written plainly in 1–223;
/// any other parameter, a repeated or empty `fport`, or another number is refused.
pub(crate) fn fport(query: Option<&str>) -> Result<Option<u8>, Refused> {
    let mut found = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "fport" {
            return Err(refused(
                "unknown_parameter",
                format!(
                    "unknown parameter {:?}; a push takes only fport (1-223)",
                    quoted(name)
                ),
            ));
        }
        if found.is_some() {
            return Err(refused(
                "invalid_fport",
                "fport is given twice; give it once",
            ));
        }
        let n = value
            .parse::<u8>()
            .ok()
            .filter(|n| FPORTS.contains(n) && n.to_string() == value);
        match n {
            Some(n) => found = Some(n),
            None => {
                return Err(refused(
                    "invalid_fport",
                    format!(
                        "fport {:?} is not an FPort: give a number from 1 to 223, as in ?fport=2",
                        quoted(value)
                    ),
                ));
            }
        }
    }
    Ok(found)
}

/// What a push's body is, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// JSON: flat JSON or SenML (`application/json`, `application/senml+json`, any `…+json`).
    Json,
    /// Bytes for the device's codec (`application/octet-stream`).
    Bytes,
}

const TYPES: &str = "application/json (flat JSON or SenML), application/senml+json, or \
                     application/octet-stream (bytes for the device's codec, with ?fport=N)";

/// Reads a `Content-Type` header's value (raw bytes; parameters such as `charset` are ignored, case is not
/// significant). A push without one is refused: curl's `-d` says form data, which a device never means.
pub(crate) fn kind(content_type: Option<&[u8]>) -> Result<Kind, Refused> {
    let Some(raw) = content_type else {
        return Err(refused(
            "unsupported_media_type",
            format!("no Content-Type: send {TYPES}"),
        ));
    };
    let text = String::from_utf8_lossy(raw);
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", "json" | "senml+json")) => Ok(Kind::Json),
        Some(("application", sub)) if sub.ends_with("+json") && sub.len() > "+json".len() => {
            Ok(Kind::Json)
        }
        Some(("application", "octet-stream")) => Ok(Kind::Bytes),
        _ => Err(refused(
            "unsupported_media_type",
            format!(
                "Content-Type {:?} is not taken: send {TYPES}",
                quoted(&text)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fports_are_read_plainly() {
        let ok = [
            (None, None),
            (Some(""), None),
            (Some("fport=1"), Some(1)),
            (Some("fport=223"), Some(223)),
            (Some("&fport=10&"), Some(10)),
        ];
        for (query, want) in ok {
            assert_eq!(fport(query), Ok(want), "{query:?}");
        }
        for (query, code) in [
            ("fport=0", "invalid_fport"),
            ("fport=224", "invalid_fport"),
            ("fport=007", "invalid_fport"),
            ("fport=+1", "invalid_fport"),
            ("fport=", "invalid_fport"),
            ("fport", "invalid_fport"),
            ("fport=1&fport=2", "invalid_fport"),
            ("port=1", "unknown_parameter"),
            ("fport=1&x", "unknown_parameter"),
        ] {
            assert_eq!(fport(Some(query)).map_err(|r| r.code), Err(code), "{query}");
        }
    }

    #[test]
    fn content_types_name_json_or_bytes() {
        for (header, want) in [
            ("application/json", Some(Kind::Json)),
            ("Application/JSON; charset=utf-8", Some(Kind::Json)),
            ("application/senml+json", Some(Kind::Json)),
            ("application/vnd.acme+json", Some(Kind::Json)),
            ("application/octet-stream", Some(Kind::Bytes)),
            ("application/+json", None),
            ("application/x-www-form-urlencoded", None),
            ("text/plain", None),
            ("json", None),
            ("", None),
        ] {
            assert_eq!(kind(Some(header.as_bytes())).ok(), want, "{header}");
        }
        assert_eq!(
            kind(None).map_err(|r| r.code),
            Err("unsupported_media_type")
        );
    }

    proptest::proptest! {
        #[test]
        fn any_query_and_content_type_is_read_without_panic(
            query in "\\PC{0,40}",
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..60),
            n in 0u32..1000,
        ) {
            if let Ok(Some(port)) = fport(Some(&query)) {
                proptest::prop_assert!(FPORTS.contains(&port));
            }
            let _ = kind(Some(&raw));
            let plain = fport(Some(&format!("fport={n}")));
            let fits = u8::try_from(n).ok().filter(|p| FPORTS.contains(p));
            proptest::prop_assert_eq!(plain.ok().flatten(), fits);
            // The message quotes at most a few dozen characters of what the client sent.
            if let Err(r) = fport(Some(&query)) {
                proptest::prop_assert!(r.message.chars().count() < 160, "{}", r.message);
            }
        }
    }
}

//! The ID token's claims checked (OpenID Connect Core §3.1.3.7) and read into who logged in. Pure: the time
//! is given.
use super::error::Refusal;
use serde_json::{Map, Value};

/// Clock difference tolerated between bydata and the provider, in seconds.
pub(crate) const LEEWAY_SECS: i64 = 60;

/// What the ID token must say.
#[derive(Debug)]
pub(crate) struct Expect<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) groups_claim: &'a str,
}

/// Who logged in, as the provider vouches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
    /// Their e-mail address, lower-case, if the provider sent one.
    pub email: Option<String>,
    /// A name to show: `name`, else `preferred_username`, else the e-mail, else the subject.
    pub name: String,
    /// The values of the configured groups claim (a string or an array of strings).
    pub groups: Vec<String>,
}

/// Checks the claims of an ID token whose signature was verified, at `now` (Unix seconds).
pub(crate) fn check(payload: &[u8], expect: &Expect<'_>, now: i64) -> Result<Identity, Refusal> {
    let claims: Map<String, Value> =
        serde_json::from_slice(payload).map_err(|_| Refusal::Claims {
            what: "they are not a JSON object".into(),
        })?;
    let text = |key: &str| claims.get(key).and_then(Value::as_str);
    let iss = text("iss").unwrap_or_default();
    if iss != expect.issuer {
        return Err(Refusal::WrongIssuer {
            got: iss.chars().take(200).collect(),
        });
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(Refusal::WrongAudience);
    }
    match text("azp") {
        Some(azp) if azp != expect.client_id => return Err(Refusal::WrongParty),
        None if audiences.len() > 1 => return Err(Refusal::WrongParty),
        _ => {}
    }
    let time = |key: &str| claims.get(key).and_then(Value::as_f64).map(|t| t as i64);
    let exp = time("exp").ok_or_else(|| Refusal::Claims {
        what: "exp is missing".into(),
    })?;
    if exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(Refusal::Expired);
    }
    if time("iat").is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS)) {
        return Err(Refusal::IssuedInFuture);
    }
    if text("nonce") != Some(expect.nonce) {
        return Err(Refusal::NonceMismatch);
    }
    let subject = text("sub")
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| Refusal::Claims {
            what: "sub is missing or not 1–255 characters".into(),
        })?
        .to_owned();
    let email = text("email").map(str::to_lowercase);
    let name = text("name")
        .or_else(|| text("preferred_username"))
        .map(str::to_owned)
        .or_else(|| email.clone())
        .unwrap_or_else(|| subject.clone());
    let groups = match claims.get(expect.groups_claim) {
        Some(Value::String(g)) => vec![g.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Identity {
        subject,
        email,
        name,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn expect() -> Expect<'static> {
        Expect {
            issuer: "https://idp",
            client_id: "bydata",
            nonce: "n1",
            groups_claim: "groups",
        }
    }

    fn good() -> Value {
        json!({"iss": "https://idp", "aud": "bydata", "sub": "s1", "exp": NOW + 300, "iat": NOW,
               "nonce": "n1", "email": "Alice@Example.TEST", "groups": ["g1", "g2", 3]})
    }

    fn run(claims: &Value) -> Result<Identity, Refusal> {
        check(claims.to_string().as_bytes(), &expect(), NOW)
    }

    #[test]
    fn good_claims_read_into_an_identity() {
        let id = run(&good()).expect("accepted");
        assert_eq!(id.subject, "s1");
        assert_eq!(id.email.as_deref(), Some("alice@example.test"));
        assert_eq!(id.name, "alice@example.test");
        assert_eq!(id.groups, ["g1", "g2"]);
        let mut one = good();
        one["groups"] = json!("solo");
        one["aud"] = json!(["bydata", "other"]);
        one["azp"] = json!("bydata");
        one["name"] = json!("Alice");
        let id = run(&one).expect("accepted");
        assert_eq!(
            (id.groups, id.name.as_str()),
            (vec!["solo".to_owned()], "Alice")
        );
    }

    #[test]
    fn each_broken_claim_is_refused_for_its_reason() {
        let cases: [(&str, Value, Refusal); 8] = [
            (
                "iss",
                json!("https://evil"),
                Refusal::WrongIssuer {
                    got: "https://evil".into(),
                },
            ),
            ("aud", json!("other"), Refusal::WrongAudience),
            ("aud", json!(["bydata", "other"]), Refusal::WrongParty),
            ("azp", json!("other"), Refusal::WrongParty),
            ("exp", json!(NOW - LEEWAY_SECS), Refusal::Expired),
            ("iat", json!(NOW + LEEWAY_SECS + 1), Refusal::IssuedInFuture),
            ("nonce", json!("n2"), Refusal::NonceMismatch),
            ("nonce", Value::Null, Refusal::NonceMismatch),
        ];
        for (key, value, refusal) in cases {
            let mut claims = good();
            claims[key] = value;
            assert_eq!(run(&claims), Err(refusal), "{key}");
        }
        let mut no_sub = good();
        no_sub.as_object_mut().expect("object").remove("sub");
        assert!(matches!(run(&no_sub), Err(Refusal::Claims { .. })));
        assert!(matches!(
            check(b"[1]", &expect(), NOW),
            Err(Refusal::Claims { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_payload_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = check(&bytes, &expect(), NOW);
        }

        #[test]
        fn any_claim_values_never_panic(exp in any::<f64>(), iat in any::<i64>(), aud in ".{0,8}",
                                        groups in proptest::collection::vec(".{0,8}", 0..4)) {
            let claims = json!({"iss": "https://idp", "aud": aud, "sub": "s", "exp": exp, "iat": iat,
                                "nonce": "n1", "groups": groups});
            let _ = run(&claims);
        }
    }
}

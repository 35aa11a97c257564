//! Compact JWS (an ID token as the token endpoint sends it) and JWK sets, read from outside bytes: pure
//! functions that answer a typed refusal and never panic, whatever they are given (property-tested below).
use super::error::Refusal;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

/// Longest ID token read (Entra ID's with many groups stay far below; its overage replaces them).
pub(crate) const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The signature algorithms accepted: what Entra ID, KOMBIT's context handler and most providers sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    fn parse(s: &str) -> Result<Self, Refusal> {
        match s {
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            other => Err(Refusal::UnsupportedAlgorithm {
                alg: other.chars().take(16).collect(),
            }),
        }
    }
}

/// A compact JWS split and decoded, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct Jws {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
    /// `header.payload` as sent: what the signature covers.
    signed: Vec<u8>,
    signature: Vec<u8>,
    /// The decoded payload (JSON claims).
    pub(crate) payload: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// A header parameter the verifier must understand; none is, so any is refused (RFC 7515 §4.1.11).
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Splits and decodes a compact JWS; refuses anything but three base64url parts with a JSON header
/// naming RS256 or ES256.
pub(crate) fn parse(token: &str) -> Result<Jws, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Malformed {
            what: "the ID token is too large",
        });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed {
            what: "the ID token is not three dot-separated parts",
        });
    };
    let decode = |part: &str, what| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| Refusal::Malformed { what })
    };
    let header: Header =
        serde_json::from_slice(&decode(h, "the ID token's header is not base64url")?).map_err(
            |_| Refusal::Malformed {
                what: "the ID token's header is not a JSON object with alg",
            },
        )?;
    if header.crit.is_some() {
        return Err(Refusal::Malformed {
            what: "the ID token has critical header parameters",
        });
    }
    let alg = Alg::parse(&header.alg)?;
    let payload = decode(p, "the ID token's payload is not base64url")?;
    let signature = decode(s, "the ID token's signature is not base64url")?;
    Ok(Jws {
        alg,
        kid: header.kid,
        signed: token.as_bytes()[..h.len() + 1 + p.len()].to_vec(),
        signature,
        payload,
    })
}

/// One public signing key of a JWK set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    kid: Option<String>,
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed P-256 point (`04 || x || y`).
    P256 { point: Vec<u8> },
}

/// A provider's signing keys (`jwks_uri`), the ones bydata can use; others are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Jwks {
    keys: Vec<Key>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

impl Jwks {
    /// Reads a JWK set; keys that are not RSA or P-256 signing keys, or that cannot be read, are skipped
    /// (a set may hold encryption keys and kinds bydata does not use).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Refusal> {
        let raw: RawSet = serde_json::from_slice(bytes).map_err(|_| Refusal::Malformed {
            what: "the provider's key set (jwks_uri) is not a JSON object with keys",
        })?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<RawKey>(v).ok())
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let b =
                    |s: &Option<String>| s.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
                let material = match (k.kty.as_str(), k.crv.as_deref()) {
                    ("RSA", _) => Material::Rsa {
                        n: b(&k.n)?,
                        e: b(&k.e)?,
                    },
                    ("EC", Some("P-256")) => {
                        let (x, y) = (b(&k.x)?, b(&k.y)?);
                        if x.len() != 32 || y.len() != 32 {
                            return None;
                        }
                        let mut point = vec![4];
                        point.extend(x);
                        point.extend(y);
                        Material::P256 { point }
                    }
                    _ => return None,
                };
                Some(Key {
                    kid: k.kid,
                    material,
                })
            })
            .collect();
        Ok(Self { keys })
    }

    /// Whether a key could check `jws` (its `kid`, or any key of its kind when it names none).
    pub(crate) fn has_key_for(&self, jws: &Jws) -> bool {
        self.candidates(jws).next().is_some()
    }

    fn candidates<'a>(&'a self, jws: &'a Jws) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            let kind = matches!(
                (&k.material, jws.alg),
                (Material::Rsa { .. }, Alg::Rs256) | (Material::P256 { .. }, Alg::Es256)
            );
            kind && (jws.kid.is_none() || k.kid == jws.kid)
        })
    }

    /// Checks `jws`'s signature with the key it names.
    pub(crate) fn verify(&self, jws: &Jws) -> Result<(), Refusal> {
        let mut tried = false;
        for key in self.candidates(jws) {
            tried = true;
            let ok = match &key.material {
                Material::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                    .verify(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        &jws.signed,
                        &jws.signature,
                    )
                    .is_ok(),
                Material::P256 { point } => {
                    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(&jws.signed, &jws.signature)
                        .is_ok()
                }
            };
            if ok {
                return Ok(());
            }
        }
        if tried {
            Err(Refusal::BadSignature)
        } else {
            Err(Refusal::UnknownKey {
                kid: jws
                    .kid
                    .as_deref()
                    .unwrap_or("(none)")
                    .chars()
                    .take(64)
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An ES256 key pair, its JWK set, and a signer.
    fn es256(kid: &str) -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let point = pair.public_key().as_ref().to_vec();
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
            {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
             "x": b64(&point[1..33]), "y": b64(&point[33..])}
        ]});
        (pair, serde_json::to_vec(&jwks).expect("json"))
    }

    fn sign(pair: &EcdsaKeyPair, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("sign");
        format!("{signed}.{}", b64(sig.as_ref()))
    }

    #[test]
    fn es256_round_trip_and_every_tampering_refused() {
        let (pair, set) = es256("k1");
        let jwks = Jwks::parse(&set).expect("set");
        let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let token = sign(&pair, &header, &serde_json::json!({"sub": "a"}));
        let jws = parse(&token).expect("parses");
        assert_eq!(jws.payload, br#"{"sub":"a"}"#);
        jwks.verify(&jws).expect("verifies");

        // Another payload under the same signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], b64(br#"{"sub":"b"}"#), parts[2]);
        assert_eq!(
            jwks.verify(&parse(&forged).expect("parses")),
            Err(Refusal::BadSignature)
        );
        // Another key id, and a key of another kind.
        let other = sign(
            &pair,
            &serde_json::json!({"alg": "ES256", "kid": "k2"}),
            &serde_json::json!({}),
        );
        assert!(matches!(
            jwks.verify(&parse(&other).expect("parses")),
            Err(Refusal::UnknownKey { .. })
        ));
        let rs = format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","kid":"k1"}"#),
            parts[1],
            parts[2]
        );
        assert!(matches!(
            jwks.verify(&parse(&rs).expect("parses")),
            Err(Refusal::UnknownKey { .. })
        ));
    }

    #[test]
    fn unsigned_and_odd_tokens_are_refused() {
        let cases = [
            (
                format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}")),
                "accepts RS256",
            ),
            (
                format!("{}.{}.", b64(br#"{"alg":"HS256"}"#), b64(b"{}")),
                "accepts RS256",
            ),
            ("a.b".to_owned(), "three"),
            ("a.b.c.d".to_owned(), "three"),
            (format!("{}.e30.AA", b64(b"[1]")), "header"),
            (format!("{}.!!.AA", b64(br#"{"alg":"RS256"}"#)), "payload"),
            (
                format!("{}.e30.AA", b64(br#"{"alg":"RS256","crit":["x"]}"#)),
                "critical",
            ),
            ("x".repeat(MAX_TOKEN_BYTES + 1), "too large"),
        ];
        for (token, says) in cases {
            let err = parse(&token).expect_err("refused").to_string();
            assert!(err.contains(says), "{token:.40}: {err}");
        }
    }

    proptest! {
        #[test]
        fn any_token_text_is_refused_or_read_without_panic(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn any_three_base64_parts_never_panic(h in proptest::collection::vec(any::<u8>(), 0..64),
                                              p in proptest::collection::vec(any::<u8>(), 0..64),
                                              s in proptest::collection::vec(any::<u8>(), 0..300),
                                              alg in prop::sample::select(vec!["RS256", "ES256"])) {
            let header = if h.is_empty() { format!(r#"{{"alg":"{alg}"}}"#).into_bytes() } else { h };
            let token = format!("{}.{}.{}", b64(&header), b64(&p), b64(&s));
            if let Ok(jws) = parse(&token) {
                let (_, set) = es256("k");
                let rsa = br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
                for set in [set.as_slice(), rsa.as_slice()] {
                    prop_assert!(Jwks::parse(set).expect("set").verify(&jws).is_err());
                }
            }
        }

        #[test]
        fn any_key_set_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Jwks::parse(&bytes);
        }

        #[test]
        fn any_key_material_never_panics(n in proptest::collection::vec(any::<u8>(), 0..300),
                                         e in proptest::collection::vec(any::<u8>(), 0..8),
                                         x in proptest::collection::vec(any::<u8>(), 32..=32),
                                         y in proptest::collection::vec(any::<u8>(), 32..=32)) {
            let set = serde_json::json!({"keys": [
                {"kty": "RSA", "n": b64(&n), "e": b64(&e)},
                {"kty": "EC", "crv": "P-256", "x": b64(&x), "y": b64(&y)}
            ]});
            let jwks = Jwks::parse(set.to_string().as_bytes()).expect("set");
            for alg in ["RS256", "ES256"] {
                let token = format!("{}.e30.{}", b64(format!(r#"{{"alg":"{alg}"}}"#).as_bytes()), b64(&[1; 64]));
                prop_assert!(jwks.verify(&parse(&token).expect("parses")).is_err());
            }
        }
    }
}

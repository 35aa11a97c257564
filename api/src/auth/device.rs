//! Device credentials, for the routes whose policy is `device` (a device pushing its own uplinks): HTTP Basic
//! with the device's id and MQTT password — checked by the same login gate as the broker's CONNECTs
//! (`bydata_store::logins`: remembered logins, a bounded Argon2 pool, backoff per address and per id) — or a
//! device key (`Authorization: Bearer bdk_…` or `X-Device-Key: bdk_…`), looked up by its SHA-256.
//!
//! The identity is the credential's device, never the path's or the payload's: the handler compares the
//! two. API keys and login sessions are people's credentials; on a `device` route they authenticate as
//! usual and the policy then refuses them (403), so an editor's key cannot push on a device's behalf.
use super::{Actor, Principal};
use crate::{AppState, ClientAddr, Error};
use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use bydata_schemas::{DeviceId, format_rfc3339};
use bydata_store::DEVICE_KEY_PREFIX;
use bydata_store::logins::{Identity, Verdict};
use bydata_store::refusals::UnverifiedKind;
use std::net::{IpAddr, Ipv4Addr};

/// The header a device key may come in, for clients that cannot set `Authorization`.
pub(crate) const DEVICE_KEY_HEADER: &str = "x-device-key";

/// What a request presents, read from its headers (pure: property-tested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented {
    /// HTTP Basic: the device id as the username, its MQTT password.
    Basic { id: String, password: String },
    /// A device key.
    Key(String),
    /// Something else that may be a person's credential (an API key, a session cookie): authenticated as
    /// usual, then refused by the policy.
    Other,
    /// Nothing at all.
    Nothing,
    /// A device credential that cannot be read: why, in words.
    Malformed(&'static str),
}

/// Reads the credentials of a request from its `Authorization` and `X-Device-Key` header values (raw bytes:
/// a header need not be text).
pub(crate) fn presented(authorization: Option<&[u8]>, device_key: Option<&[u8]>) -> Presented {
    let key = |raw: &[u8]| match std::str::from_utf8(raw).map(str::trim) {
        Ok(k) if k.starts_with(DEVICE_KEY_PREFIX) && k.len() > DEVICE_KEY_PREFIX.len() => {
            Presented::Key(k.to_owned())
        }
        _ => Presented::Malformed("X-Device-Key takes a device key (bdk_…)"),
    };
    let (scheme, rest) = match authorization {
        None => return device_key.map_or(Presented::Nothing, key),
        Some(_) if device_key.is_some() => {
            return Presented::Malformed("send either Authorization or X-Device-Key, not both");
        }
        Some(raw) => {
            let text = std::str::from_utf8(raw).unwrap_or_default().trim();
            match text.split_once(' ') {
                Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest.trim()),
                None => (text.to_ascii_lowercase(), ""),
            }
        }
    };
    match scheme.as_str() {
        "basic" => basic(rest),
        "bearer" if rest.starts_with(DEVICE_KEY_PREFIX) => key(rest.as_bytes()),
        _ => Presented::Other,
    }
}

/// `Basic base64(id:password)` (RFC 7617; the password may hold `:`).
fn basic(encoded: &str) -> Presented {
    const UNREADABLE: &str = "HTTP Basic credentials must be base64 of `device-id:password`";
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return Presented::Malformed(UNREADABLE);
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Presented::Malformed(UNREADABLE);
    };
    match text.split_once(':') {
        Some((id, password)) if !id.is_empty() => Presented::Basic {
            id: id.to_owned(),
            password: password.to_owned(),
        },
        _ => Presented::Malformed(UNREADABLE),
    }
}

/// What to send, said on every refusal of a device's credentials.
const HOW: &str = "a device pushes with its own credentials: HTTP Basic with its id and MQTT password \
                   (curl -u ID:PASSWORD), or a device key (Authorization: Bearer bdk_… or X-Device-Key)";

fn refused(reason: impl Into<String>) -> Error {
    Error::DeviceCredentials {
        reason: reason.into(),
    }
}

/// The principal behind a request to a `device` route: the device its credentials prove, or — for a
/// person's credentials — that person (whom the policy then refuses).
pub(crate) async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    source: Option<ClientAddr>,
) -> Result<Principal, Error> {
    let raw = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let ip = source.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    let metrics = &state.push.metrics;
    let outcome = match presented(raw(header::AUTHORIZATION.as_str()), raw(DEVICE_KEY_HEADER)) {
        Presented::Other => {
            return crate::login::session::authenticate(state, method, headers, source).await;
        }
        Presented::Nothing if headers.contains_key(header::COOKIE) => {
            return crate::login::session::authenticate(state, method, headers, source).await;
        }
        Presented::Nothing => Err(refused(format!("no credentials: {HOW}"))),
        Presented::Malformed(why) => Err(refused(format!("{why}; {HOW}"))),
        Presented::Basic { id, password } => basic_login(state, ip, &id, &password).await,
        Presented::Key(secret) => key_login(state, ip, &secret).await,
    };
    if outcome.is_err() {
        metrics.count(crate::devices::push::Outcome::Unauthenticated);
    }
    outcome
}

fn device_principal(id: DeviceId, key: Option<String>) -> Principal {
    Principal {
        actor: Actor::Device { id, key },
        ..Principal::anonymous()
    }
}

async fn basic_login(
    state: &AppState,
    ip: IpAddr,
    id: &str,
    password: &str,
) -> Result<Principal, Error> {
    const WRONG: &str = "unknown device or wrong password";
    // Not a device id: no device can have it. Slowed like any failed authentication from the address.
    let Ok(device) = DeviceId::new(id) else {
        return Err(state
            .auth_cache
            .refuse(ip, refused(format!("{WRONG}; {HOW}"))));
    };
    let who = Identity::Device(device.clone());
    match state.push.logins.check(ip, &who, password).await {
        Verdict::Valid => Ok(device_principal(device, None)),
        Verdict::Wrong => {
            // Its owner sees the attempts on the status, as for MQTT logins; nothing is written.
            state.refusals.record_unverified(
                &device,
                (state.clock)(),
                UnverifiedKind::WrongPassword,
            );
            Err(refused(format!("{WRONG}; {HOW}")))
        }
        Verdict::Unknown => Err(refused(format!("{WRONG}; {HOW}"))),
        Verdict::Backoff => Err(Error::Unavailable {
            code: "too_many_failures",
            message:
                "too many failed logins from your address or for this device id; wait and check \
                      the password"
                    .into(),
            retry_after_secs: Some(10),
        }),
        Verdict::Busy => Err(Error::Unavailable {
            code: "busy",
            message: "password checks are all busy; send again in a moment (a device key costs no \
                      password check)"
                .into(),
            retry_after_secs: Some(1),
        }),
        Verdict::Error => Err(Error::Unavailable {
            code: "unavailable",
            message: "the device registry could not be read; send again in a moment".into(),
            retry_after_secs: Some(5),
        }),
    }
}

async fn key_login(state: &AppState, ip: IpAddr, secret: &str) -> Result<Principal, Error> {
    if !state.auth_cache.may_try(ip) {
        return Err(super::keys::too_many());
    }
    match state.registry.device_key(secret).await? {
        None => Err(state
            .auth_cache
            .refuse(ip, refused(format!("this device key is not valid; {HOW}")))),
        Some(key) => match key.revoked_at {
            Some(at) => Err(state.auth_cache.refuse(
                ip,
                refused(format!(
                    "this device key ({}) of {} was revoked at {}; an editor of its organisation can make \
                     a new one (POST /api/v1/devices/{}/keys)",
                    key.id,
                    key.device,
                    format_rfc3339(at),
                    key.device
                )),
            )),
            None => Ok(device_principal(key.device, Some(key.id))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic_of(text: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn credentials_are_read_from_the_headers() {
        let cases: [(Option<String>, Option<&str>, Presented); 12] = [
            (None, None, Presented::Nothing),
            (
                Some(basic_of("room-1:p:w")),
                None,
                Presented::Basic {
                    id: "room-1".into(),
                    password: "p:w".into(),
                },
            ),
            (
                Some(format!("basic {}", &basic_of("a:b")[6..])),
                None,
                Presented::Basic {
                    id: "a".into(),
                    password: "b".into(),
                },
            ),
            (
                Some("Bearer bdk_abc".into()),
                None,
                Presented::Key("bdk_abc".into()),
            ),
            (None, Some(" bdk_abc "), Presented::Key("bdk_abc".into())),
            (Some("Bearer bdt_abc".into()), None, Presented::Other),
            (Some("Token bdt_abc".into()), None, Presented::Other),
            (
                Some("Basic !!!".into()),
                None,
                Presented::Malformed(
                    "HTTP Basic credentials must be base64 of `device-id:password`",
                ),
            ),
            (
                Some(basic_of("no-colon")),
                None,
                Presented::Malformed(
                    "HTTP Basic credentials must be base64 of `device-id:password`",
                ),
            ),
            (
                Some(basic_of(":password")),
                None,
                Presented::Malformed(
                    "HTTP Basic credentials must be base64 of `device-id:password`",
                ),
            ),
            (
                None,
                Some("bdt_abc"),
                Presented::Malformed("X-Device-Key takes a device key (bdk_…)"),
            ),
            (
                Some("Bearer bdk_abc".into()),
                Some("bdk_abc"),
                Presented::Malformed("send either Authorization or X-Device-Key, not both"),
            ),
        ];
        for (authorization, key, want) in cases {
            assert_eq!(
                presented(
                    authorization.as_deref().map(str::as_bytes),
                    key.map(str::as_bytes)
                ),
                want,
                "{authorization:?} {key:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_header_bytes_are_read_without_panic(
            authorization in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..80)),
            key in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..60)),
            id in "[a-z0-9:-]{0,12}",
            password in "\\PC{0,20}",
        ) {
            let _ = presented(authorization.as_deref(), key.as_deref());
            // Whatever the id and password, Basic gives them back exactly (the id up to its first colon).
            let header = basic_of(&format!("{id}:{password}"));
            match presented(Some(header.as_bytes()), None) {
                Presented::Basic { id: got_id, password: got_password } => {
                    let (want_id, rest) = id.split_once(':').map_or((id.as_str(), ""), |(a, b)| (a, b));
                    proptest::prop_assert_eq!(got_id, want_id);
                    let want_password = if rest.is_empty() && !id.contains(':') {
                        password.clone()
                    } else {
                        format!("{rest}:{password}")
                    };
                    proptest::prop_assert_eq!(got_password, want_password);
                }
                Presented::Malformed(_) => proptest::prop_assert!(id.is_empty() || id.starts_with(':')),
                other => proptest::prop_assert!(false, "{other:?}"),
            }
        }
    }
}

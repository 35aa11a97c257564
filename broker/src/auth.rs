//! The login rules of a CONNECT: client id == username == a registered device (or `integration:{id}`), its
//! password checked by the [`Gate`]. Used by the edge, which knows the client's address; rumqttd's own auth
//! handler only lets through logins the edge has just verified.
use crate::Deps;
use crate::gate::{Gate, Identity, Verdict};
use crate::metrics::inc;
use bydata_schemas::RejectReason;
use bydata_store::refusals::{UnverifiedKind, truncate};
use rumqttd::protocol::{ConnectReturnCode, Login};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

type AuthFuture = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A login refused: what the client is told, and what bydata logs.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: ConnectReturnCode,
    /// The code an MQTT 5 client gets, where MQTT 5 has a closer one (busy, rate exceeded).
    pub(crate) v5: ConnectReturnCode,
    pub(crate) reason: &'static str,
    /// The identity it claimed, if the client id named one (for the log; never the password).
    pub(crate) claimed: String,
}

/// Checks a CONNECT's login from `source`. Counts every outcome; records wrong passwords for a registered
/// device in memory only (its owner sees them on the status; nothing is written to disk).
pub(crate) async fn login(
    deps: &Deps,
    gate: &Gate,
    source: IpAddr,
    client_id: &str,
    login: Option<&Login>,
) -> Result<Identity, Refusal> {
    let refuse = |code, reason| Refusal {
        code,
        v5: code,
        reason,
        claimed: truncate(client_id, 64),
    };
    // A client id other than the username: the login is checked for the username's device, so that its owner
    // learns why the device cannot connect — only once the password verified, so a stranger cannot write to
    // a device's status this way.
    let mismatch = login.is_some_and(|l| l.username != client_id);
    let name = match login {
        Some(l) if mismatch => l.username.as_str(),
        _ => client_id,
    };
    let Some(who) = Identity::parse(name) else {
        inc(&deps.metrics.auth_bad_client_id);
        return Err(if mismatch {
            refuse(
                ConnectReturnCode::BadUserNamePassword,
                "the username is not a device id",
            )
        } else {
            refuse(
                ConnectReturnCode::ClientIdentifierNotValid,
                "the client id is not a device id",
            )
        });
    };
    let Some(login) = login else {
        inc(&deps.metrics.auth_bad_client_id);
        return Err(refuse(
            ConnectReturnCode::BadUserNamePassword,
            "a device logs in with its id as username and its password",
        ));
    };
    match gate.check(source, &who, &login.password).await {
        Verdict::Valid if mismatch => {
            inc(&deps.metrics.auth_bad_client_id);
            if let Identity::Device(device) = &who {
                let reason = RejectReason::ClientIdMismatch {
                    client_id: truncate(client_id, 64),
                };
                if deps.refusals.record(device, (deps.clock)(), &reason) {
                    tracing::warn!(%device, %reason, "MQTT connection refused");
                }
            }
            Err(Refusal {
                code: ConnectReturnCode::ClientIdentifierNotValid,
                v5: ConnectReturnCode::ClientIdentifierNotValid,
                reason: "the client id differs from the username (the device id)",
                claimed: truncate(name, 64),
            })
        }
        Verdict::Valid => {
            inc(&deps.metrics.connects_accepted);
            Ok(who)
        }
        Verdict::Wrong => {
            inc(&deps.metrics.auth_wrong_password);
            if let Identity::Device(device) = &who {
                deps.refusals.record_unverified(
                    device,
                    (deps.clock)(),
                    UnverifiedKind::WrongPassword,
                );
            }
            Err(refuse(
                ConnectReturnCode::BadUserNamePassword,
                "unknown id or wrong password",
            ))
        }
        Verdict::Unknown => {
            inc(&deps.metrics.auth_unknown_device);
            Err(refuse(
                ConnectReturnCode::BadUserNamePassword,
                "unknown id or wrong password",
            ))
        }
        Verdict::Backoff => {
            inc(&deps.metrics.auth_backoff);
            Err(Refusal {
                v5: ConnectReturnCode::ConnectionRateExceeded,
                ..refuse(
                    ConnectReturnCode::ServiceUnavailable,
                    "too many failed logins from this address or for this id; waiting",
                )
            })
        }
        Verdict::Busy => {
            inc(&deps.metrics.auth_busy);
            Err(Refusal {
                v5: ConnectReturnCode::ServerBusy,
                ..refuse(
                    ConnectReturnCode::ServiceUnavailable,
                    "password checks are all busy",
                )
            })
        }
        Verdict::Error => Err(refuse(
            ConnectReturnCode::ServiceUnavailable,
            "the registry could not be read",
        )),
    }
}

/// rumqttd's auth handler: accepts exactly the logins the edge verified a moment ago (so a process that
/// found the internal port cannot get around the edge's caps and backoff).
pub(crate) fn handler(
    gate: Arc<Gate>,
) -> impl Fn(String, String, String) -> AuthFuture + Send + Sync + 'static {
    move |client_id, username, password| {
        let gate = gate.clone();
        Box::pin(async move {
            let Some(who) = Identity::parse(&client_id).filter(|_| client_id == username) else {
                return false;
            };
            gate.verified(&who, &password).await
        })
    }
}

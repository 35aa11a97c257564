//! The CONNECT password check. rumqttd calls it after the protocol wrapper has seen the CONNECT; together they
//! bind the connection's identity: client id == username == a registered device, with that device's password.
use crate::Deps;
use crate::metrics::inc;
use bydata_schemas::{DeviceId, EdgeRejection, IntegrationId, JournalEntry, RejectReason};
use bydata_store::PasswordCheck;
use std::future::Future;
use std::pin::Pin;

type AuthFuture = Pin<Box<dyn Future<Output = bool> + Send>>;

pub(crate) fn handler(
    deps: Deps,
) -> impl Fn(String, String, String) -> AuthFuture + Send + Sync + 'static {
    move |client_id, username, password| {
        let deps = deps.clone();
        Box::pin(async move { check(deps, client_id, username, password).await })
    }
}

async fn check(deps: Deps, client_id: String, username: String, password: String) -> bool {
    if let Some(integration) = IntegrationId::from_mqtt_identity(&username) {
        if client_id != username {
            inc(&deps.metrics.auth_bad_client_id);
            tracing::warn!(%integration, "MQTT connect refused: client id differs from username");
            return false;
        }
        let registry = deps.registry.clone();
        let id = integration.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            registry.check_integration_password(&id, &password)
        })
        .await;
        return match outcome {
            Ok(Ok(PasswordCheck::Valid)) => {
                inc(&deps.metrics.connects_accepted);
                tracing::info!(%integration, "integration connected");
                true
            }
            Ok(Ok(_)) => {
                inc(&deps.metrics.auth_wrong_password);
                tracing::warn!(%integration, "MQTT connect refused: unknown integration or wrong password");
                false
            }
            Ok(Err(e)) => {
                tracing::error!(%integration, error = %e, "MQTT connect refused: registry error");
                false
            }
            Err(e) => {
                tracing::error!(%integration, error = %e, "MQTT connect refused: password check failed");
                false
            }
        };
    }
    let Ok(id) = DeviceId::new(username.as_str()) else {
        inc(&deps.metrics.auth_unknown_device);
        tracing::warn!(username = %username.escape_debug(), "MQTT connect refused: not a device id");
        return false;
    };
    if client_id != username {
        inc(&deps.metrics.auth_bad_client_id);
        tracing::warn!(device = %id, "MQTT connect refused: client id differs from username");
        return false;
    }
    let registry = deps.registry.clone();
    let check_id = id.clone();
    // Argon2 is deliberately slow: keep it off the async workers.
    let outcome =
        tokio::task::spawn_blocking(move || registry.check_password(&check_id, &password)).await;
    match outcome {
        Ok(Ok(PasswordCheck::Valid)) => {
            inc(&deps.metrics.connects_accepted);
            tracing::info!(device = %id, "device connected");
            true
        }
        Ok(Ok(PasswordCheck::Wrong)) => {
            inc(&deps.metrics.auth_wrong_password);
            tracing::warn!(device = %id, "MQTT connect refused: wrong password");
            let entry = JournalEntry::Rejected(EdgeRejection {
                received_at: (deps.clock)(),
                device: id,
                reason: RejectReason::AuthenticationFailed,
            });
            if let Err(e) = deps.journal.append(&entry) {
                inc(&deps.metrics.journal_errors);
                tracing::error!(error = %e, "cannot journal an authentication failure");
            }
            false
        }
        Ok(Ok(PasswordCheck::UnknownDevice)) => {
            inc(&deps.metrics.auth_unknown_device);
            tracing::warn!(device = %id, "MQTT connect refused: unknown device");
            false
        }
        Ok(Err(e)) => {
            tracing::error!(device = %id, error = %e, "MQTT connect refused: registry error");
            false
        }
        Err(e) => {
            tracing::error!(device = %id, error = %e, "MQTT connect refused: password check failed");
            false
        }
    }
}

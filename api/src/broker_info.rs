//! `GET /api/v1/broker`: where devices connect, so an onboarding answer can be turned into a working
//! `mosquitto_pub` line. Only the ports are known here: the host is the one the client reached the API at
//! (bydata may listen on every address, and only the client knows which name reaches it).
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::json;

/// The broker's device-facing ports, as configured (`[broker] mqtt_addr`, `mqtts_addr`, `ws_addr`,
/// `wss_addr`). Every listener speaks MQTT 3.1.1 and MQTT 5.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MqttPorts {
    /// Plain MQTT, or null when that listener is off.
    pub port: Option<u16>,
    /// MQTT over TLS, or null when that listener is off.
    pub tls_port: Option<u16>,
    /// MQTT over WebSockets (path `/mqtt`, subprotocol `mqtt`), or null when that listener is off.
    pub ws_port: Option<u16>,
    /// MQTT over secure WebSockets, or null when that listener is off.
    pub wss_port: Option<u16>,
}

/// Where MQTT over WebSockets is served on `ws_port` and `wss_port`.
pub(crate) const WS_PATH: &str = "/mqtt";

#[utoipa::path(
    get,
    path = "/api/v1/broker",
    operation_id = "broker",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "devices",
    summary = "Where MQTT devices connect (ports; the host is the one you reach this API at)",
    responses(
        (status = 200, description = "The ports and the topic pattern", body = MqttPorts),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn broker(State(state): State<crate::AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "port": state.mqtt.port,
        "tls_port": state.mqtt.tls_port,
        "ws_port": state.mqtt.ws_port,
        "wss_port": state.mqtt.wss_port,
        "ws_path": crate::broker_info::WS_PATH,
        "mqtt_versions": ["3.1.1", "5"],
        "publish_topic": "devices/{id}/up",
    }))
}

//! MQTT over WebSockets (MQTT 5.0 §6, the same for 3.1.1): the handshake on [`PATH`] with the `mqtt`
//! subprotocol, then binary frames carry the MQTT byte stream.
//!
//! The edge terminates the WebSocket and turns it back into a byte stream ([`pump`] between the socket and one
//! end of an in-memory pipe), so the CONNECT deadline, the login gate, the relay to rumqttd and everything
//! after are the code TCP connections take. A frame may hold part of a packet or several: MQTT's own framing
//! is all that counts.
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Where MQTT over WebSockets is served.
pub(crate) const PATH: &str = "/mqtt";
/// The subprotocol a client must offer (and the answer names).
const SUBPROTOCOL: &str = "mqtt";
/// Bytes of one direction's in-memory pipe and of one frame sent to the client.
const PIPE: usize = 4 * 1024;

/// Whether the handshake asks for MQTT over WebSocket on the right path; the refusal says what to change.
fn check_request(request: &Request) -> Result<(), (StatusCode, &'static str)> {
    if request.uri().path() != PATH {
        return Err((
            StatusCode::NOT_FOUND,
            "MQTT over WebSocket is served on the path /mqtt",
        ));
    }
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL));
    if !offered {
        return Err((
            StatusCode::BAD_REQUEST,
            "offer the WebSocket subprotocol \"mqtt\" (Sec-WebSocket-Protocol: mqtt)",
        ));
    }
    Ok(())
}

/// Why a WebSocket handshake was not completed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// Not a WebSocket request for MQTT (answered with an HTTP status and why).
    Refused(&'static str),
    /// The connection broke or spoke no HTTP.
    Broken,
}

/// Completes the server handshake: path [`PATH`], subprotocol `mqtt`. Frames and messages are bounded by
/// `max_message` bytes.
pub(crate) async fn accept<S>(
    stream: S,
    max_message: usize,
) -> Result<WebSocketStream<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut refused = None;
    #[expect(
        clippy::result_large_err,
        reason = "the signature tungstenite's handshake callback has"
    )]
    let callback = |request: &Request, mut response: Response| match check_request(request) {
        Ok(()) => {
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
            Ok(response)
        }
        Err((status, why)) => {
            refused = Some(why);
            let mut answer = ErrorResponse::new(Some(why.to_owned()));
            *answer.status_mut() = status;
            Err(answer)
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .max_write_buffer_size(4 * max_message.max(PIPE));
    match tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await {
        Ok(ws) => Ok(ws),
        Err(_) => Err(refused.map_or(HandshakeError::Broken, HandshakeError::Refused)),
    }
}

/// Carries bytes between the WebSocket and `pipe` (the other end is the edge's connection) until either
/// side closes. Text frames are not MQTT: the connection closes.
pub(crate) async fn pump<S>(ws: WebSocketStream<S>, pipe: DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut to_client, mut from_client) = ws.split();
    let (mut from_edge, mut to_edge) = tokio::io::split(pipe);
    let inbound = async {
        while let Some(Ok(message)) = from_client.next().await {
            match message {
                Message::Binary(bytes) => {
                    if to_edge.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Text(_) | Message::Close(_) => break,
            }
        }
    };
    let outbound = async {
        let mut buffer = vec![0u8; PIPE];
        loop {
            match from_edge.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Message::binary(buffer[..n].to_vec());
                    if to_client.send(frame).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _: Result<(), WsError> = to_client.close().await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}

/// An in-memory pipe for one WebSocket connection: one end for [`pump`], one for the edge.
pub(crate) fn pipe() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(PIPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, protocol: Option<&str>) -> Request {
        let mut r = Request::builder().uri(path);
        if let Some(p) = protocol {
            r = r.header("Sec-WebSocket-Protocol", p);
        }
        r.body(()).expect("request")
    }

    #[test]
    fn handshakes_name_path_and_subprotocol() {
        assert!(check_request(&request("/mqtt", Some("mqtt"))).is_ok());
        assert!(check_request(&request("/mqtt", Some("mqttv3.1, mqtt"))).is_ok());
        assert_eq!(
            check_request(&request("/", Some("mqtt"))).map_err(|e| e.0),
            Err(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            check_request(&request("/mqtt", None)).map_err(|e| e.0),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            check_request(&request("/mqtt", Some("graphql-ws"))).map_err(|e| e.0),
            Err(StatusCode::BAD_REQUEST)
        );
    }
}

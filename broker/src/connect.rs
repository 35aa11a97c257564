//! The first packet of a device connection, read by the edge: an MQTT 3.1.1 (level 4) or MQTT 5 (level 5)
//! CONNECT, at most [`MAX_CONNECT_BYTES`], and the CONNACK that refuses one in the client's own version.
use crate::v5::user_properties_ok;
use bytes::{Buf, BytesMut};
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::v5::V5;
use rumqttd::protocol::{
    ConnAck, ConnAckProperties, ConnectReturnCode, Error, LastWill, Login, Packet, Protocol,
};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most bytes a CONNECT may take (client id, username, password, properties, a will to be refused).
pub(crate) const MAX_CONNECT_BYTES: usize = 8 * 1024;

/// The MQTT version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// The parts of a CONNECT the edge decides on.
#[derive(Debug)]
pub(crate) struct Connect {
    pub(crate) version: Version,
    pub(crate) client_id: String,
    pub(crate) keep_alive: u16,
    pub(crate) login: Option<Login>,
    pub(crate) will: Option<LastWill>,
    /// MQTT 5: the client wants reason strings (Request Problem Information, 1 unless it said 0).
    pub(crate) problem_info: bool,
    /// MQTT 5: extended authentication was asked for (bydata has none).
    pub(crate) auth_method: bool,
    /// MQTT 5: the user properties are within bounds.
    pub(crate) user_properties_ok: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// The client closed before a whole CONNECT arrived.
    Closed,
    /// A CONNECT of another MQTT version (the level it asked for).
    Protocol(u8),
    /// A CONNECT larger than [`MAX_CONNECT_BYTES`] (an MQTT 5 client is told so).
    TooLarge(Version),
    /// Not a CONNECT, or not a well-formed one; says what, in words.
    Malformed(String),
}

/// The protocol level a CONNECT at the front of `bytes` asks for, once its first bytes are there.
fn peek_level(bytes: &[u8]) -> Option<u8> {
    if bytes.first()? != &0x10 {
        return None;
    }
    let mut at = 1;
    while bytes.get(at)? & 0x80 != 0 {
        at += 1;
        if at > 4 {
            return None;
        }
    }
    let header = bytes.get(at + 1..at + 8)?;
    (header[..6] == [0, 4, b'M', b'Q', b'T', b'T']).then_some(header[6])
}

/// Parses the first packet of a connection from `bytes` without consuming them: `Ok(None)` wants more bytes.
/// Pure, so it can be fuzzed.
pub(crate) fn parse_connect(bytes: &BytesMut) -> Result<Option<Connect>, ConnectError> {
    let version = match peek_level(bytes) {
        Some(5) => Version::V5,
        _ => Version::V4,
    };
    let mut scratch = bytes.clone();
    let read = match version {
        Version::V4 => V4.read_mut(&mut scratch, MAX_CONNECT_BYTES),
        Version::V5 => V5.read_mut(&mut scratch, MAX_CONNECT_BYTES),
    };
    match read {
        Ok(Packet::Connect(connect, properties, will, _, login)) => Ok(Some(Connect {
            version,
            client_id: connect.client_id,
            keep_alive: connect.keep_alive,
            login,
            will,
            problem_info: properties
                .as_ref()
                .and_then(|p| p.request_problem_info)
                .is_none_or(|r| r != 0),
            auth_method: properties
                .as_ref()
                .is_some_and(|p| p.authentication_method.is_some()),
            user_properties_ok: properties
                .as_ref()
                .is_none_or(|p| user_properties_ok(&p.user_properties)),
        })),
        Ok(_) => Err(ConnectError::Malformed(
            "the first packet was not a CONNECT".into(),
        )),
        Err(Error::InsufficientBytes(_)) if bytes.len() < MAX_CONNECT_BYTES => Ok(None),
        Err(Error::InsufficientBytes(_) | Error::PayloadSizeLimitExceeded(_)) => {
            Err(ConnectError::TooLarge(version))
        }
        Err(Error::InvalidProtocolLevel(level)) => Err(ConnectError::Protocol(level)),
        Err(e) => Err(ConnectError::Malformed(format!("malformed CONNECT: {e}"))),
    }
}

/// Reads until `buffer` holds a whole CONNECT (and maybe more).
pub(crate) async fn read_connect(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut BytesMut,
) -> Result<Connect, ConnectError> {
    loop {
        if let Some(connect) = parse_connect(buffer)? {
            return Ok(connect);
        }
        let room = MAX_CONNECT_BYTES.saturating_sub(buffer.len()).max(1);
        let mut chunk = [0u8; 1024];
        let want = room.min(chunk.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return Err(ConnectError::Closed),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The MQTT 5 code for a 3.1.1 one (the two 3.1.1 codes MQTT 5 renamed; the rest are shared).
fn v5_code(code: ConnectReturnCode) -> ConnectReturnCode {
    match code {
        ConnectReturnCode::RefusedProtocolVersion => ConnectReturnCode::UnsupportedProtocolVersion,
        ConnectReturnCode::ServiceUnavailable => ConnectReturnCode::ServerUnavailable,
        other => other,
    }
}

/// What a refusing CONNACK says.
#[derive(Debug)]
pub(crate) struct Refuse<'a> {
    pub(crate) version: Version,
    /// The 3.1.1 code.
    pub(crate) code: ConnectReturnCode,
    /// The MQTT 5 code (often the same).
    pub(crate) v5: ConnectReturnCode,
    /// An MQTT 5 reason string, when the client asked for them.
    pub(crate) reason: Option<&'a str>,
}

/// Sends a CONNACK refusing the connection in the client's version, then closes the connection.
pub(crate) async fn connack(stream: &mut (impl AsyncWrite + Unpin), refuse: Refuse<'_>) {
    let mut out = BytesMut::new();
    let ack = |code| ConnAck {
        session_present: false,
        code,
    };
    let written = match refuse.version {
        Version::V4 => V4.write(Packet::ConnAck(ack(refuse.code), None), &mut out),
        Version::V5 => {
            let properties = ConnAckProperties {
                reason_string: refuse.reason.map(str::to_owned),
                ..Default::default()
            };
            V5.write(
                Packet::ConnAck(ack(v5_code(refuse.v5)), Some(properties)),
                &mut out,
            )
        }
    };
    if written.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(out.chunk())).await;
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttd::protocol::{ConnectProperties, QoS};

    fn encoded(version: Version, packet: Packet) -> BytesMut {
        let mut out = BytesMut::new();
        match version {
            Version::V4 => V4.write(packet, &mut out),
            Version::V5 => V5.write(packet, &mut out),
        }
        .expect("encode");
        out
    }

    fn connect(
        version: Version,
        client_id: &str,
        will: Option<LastWill>,
        properties: Option<ConnectProperties>,
    ) -> BytesMut {
        encoded(
            version,
            Packet::Connect(
                rumqttd::protocol::Connect {
                    keep_alive: 30,
                    client_id: client_id.into(),
                    clean_session: true,
                },
                properties,
                will,
                None,
                Some(Login {
                    username: client_id.into(),
                    password: "pw".into(),
                }),
            ),
        )
    }

    #[test]
    fn connects_are_read_whole_or_refused_in_words() {
        for version in [Version::V4, Version::V5] {
            let full = connect(version, "meter-1", None, None);
            for cut in 0..full.len() {
                assert!(
                    matches!(parse_connect(&BytesMut::from(&full[..cut])), Ok(None)),
                    "{cut}"
                );
            }
            let c = parse_connect(&full).expect("valid").expect("whole");
            assert_eq!(
                (c.version, c.client_id.as_str(), c.keep_alive),
                (version, "meter-1", 30)
            );
            assert_eq!(c.login.map(|l| l.password), Some("pw".to_owned()));
            assert!(c.problem_info && !c.auth_method && c.user_properties_ok);
            let will = LastWill {
                topic: "devices/meter-1/status".into(),
                message: "offline".into(),
                qos: QoS::AtLeastOnce,
                retain: false,
            };
            assert!(
                parse_connect(&connect(version, "meter-1", Some(will), None))
                    .expect("valid")
                    .expect("whole")
                    .will
                    .is_some()
            );
        }
        // Another level (MQTT 3.1 says 3, a future MQTT 6).
        let mut v6 = connect(Version::V4, "meter-1", None, None);
        v6[8] = 6;
        assert_eq!(parse_connect(&v6).err(), Some(ConnectError::Protocol(6)));
        // A PUBLISH first, garbage, or a CONNECT that never ends.
        let ping = encoded(Version::V4, Packet::PingReq(rumqttd::protocol::PingReq));
        assert!(matches!(
            parse_connect(&ping),
            Err(ConnectError::Malformed(_))
        ));
        assert!(matches!(
            parse_connect(&BytesMut::from(&[0xff; 16][..])),
            Err(ConnectError::Malformed(_))
        ));
        let mut endless = BytesMut::from(&[0x10, 0xff, 0xff, 0x7f][..]);
        endless.resize(MAX_CONNECT_BYTES, 0);
        assert!(matches!(
            parse_connect(&endless),
            Err(ConnectError::TooLarge(Version::V4))
        ));
        let mut endless_v5 =
            BytesMut::from(&[0x10, 0xff, 0xff, 0x7f, 0, 4, b'M', b'Q', b'T', b'T', 5][..]);
        endless_v5.resize(MAX_CONNECT_BYTES, 0);
        assert_eq!(
            parse_connect(&endless_v5).err(),
            Some(ConnectError::TooLarge(Version::V5))
        );
    }

    #[test]
    fn mqtt5_properties_are_read() {
        let properties = ConnectProperties {
            session_expiry_interval: Some(60),
            receive_maximum: None,
            max_packet_size: None,
            topic_alias_max: Some(10),
            request_response_info: None,
            request_problem_info: Some(0),
            user_properties: (0..40).map(|i| (format!("k{i}"), "v".into())).collect(),
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: None,
        };
        let c = parse_connect(&connect(Version::V5, "meter-1", None, Some(properties)))
            .expect("valid")
            .expect("whole");
        assert!(!c.problem_info && c.auth_method && !c.user_properties_ok);
    }

    #[tokio::test]
    async fn refusals_are_answered_in_the_clients_version() {
        for (version, want) in [(Version::V4, vec![0x20, 2, 0, 3]), (Version::V5, vec![])] {
            let mut out = Vec::new();
            connack(
                &mut out,
                Refuse {
                    version,
                    code: ConnectReturnCode::ServiceUnavailable,
                    v5: ConnectReturnCode::ServiceUnavailable,
                    reason: Some("busy"),
                },
            )
            .await;
            if version == Version::V4 {
                assert_eq!(out, want);
            } else {
                // CONNACK, flags, 0x88 server unavailable, then the reason string property.
                assert_eq!((out[0], out[3]), (0x20, 0x88));
                assert!(out.ends_with(b"busy"));
            }
        }
    }
}

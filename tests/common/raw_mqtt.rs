//! MQTT 3.1.1 packets built by hand (OASIS MQTT 3.1.1 §3.1 CONNECT, §3.2 CONNACK, §3.3 PUBLISH), for tests
//! that must send what no well-behaved client library would: no login, a huge will, a wildcard topic, a
//! source address of their choosing.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A CONNECT (clean session, keep-alive 30 s).
pub fn connect(
    client_id: &str,
    login: Option<(&str, &str)>,
    will: Option<(&[u8], &[u8])>,
) -> Vec<u8> {
    let mut flags = 0x02u8;
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(4);
    if will.is_some() {
        flags |= 0x04 | 0x08; // will, QoS 1
    }
    if login.is_some() {
        flags |= 0xC0;
    }
    body.push(flags);
    body.extend_from_slice(&30u16.to_be_bytes());
    string(client_id.as_bytes(), &mut body);
    if let Some((topic, message)) = will {
        string(topic, &mut body);
        string(message, &mut body);
    }
    if let Some((user, password)) = login {
        string(user.as_bytes(), &mut body);
        string(password.as_bytes(), &mut body);
    }
    let mut out = vec![0x10];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// A QoS 1 PUBLISH with packet id 1.
pub fn publish(topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic, &mut body);
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(payload);
    let mut out = vec![0x32];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// A TCP connection to `to` from the loopback address `from` (Linux routes all of 127/8 to loopback).
pub async fn dial(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends `connect` and returns the CONNACK's return code, or `None` if the server closed without one.
pub async fn connack(stream: &mut TcpStream, connect: &[u8]) -> Option<u8> {
    stream.write_all(connect).await.ok()?;
    let mut ack = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut ack)).await {
        Ok(Ok(_)) if ack[0] == 0x20 => Some(ack[3]),
        _ => None,
    }
}

/// Reads until the server closes the connection (`true`) or `within` passes (`false`).
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

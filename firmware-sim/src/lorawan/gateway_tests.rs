//! The simulated gateway against a local UDP socket playing the server. Every wait has a deadline; nothing
//! sleeps a fixed time.
use super::*;
use crate::clock::FixedClock;
use base64::Engine as _;
use serde_json::Value;

const EUI: [u8; 8] = [0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35];
const WAIT: Duration = Duration::from_secs(10);

/// A fake LoRaWAN server: one UDP socket, and the gateway's address once it has heard from it.
struct Server {
    socket: UdpSocket,
    gateway: Option<SocketAddr>,
}

/// One upstream datagram: token, identifier, the EUI, and the JSON (`Null` if none).
#[derive(Debug)]
struct Up {
    token: [u8; 2],
    identifier: u8,
    eui: [u8; 8],
    json: Value,
}

impl Server {
    async fn bind() -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            gateway: None,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    async fn recv(&mut self) -> Up {
        let mut buf = [0u8; 4096];
        let (n, from) = tokio::time::timeout(WAIT, self.socket.recv_from(&mut buf))
            .await
            .expect("a datagram in time")
            .expect("recv");
        self.gateway = Some(from);
        assert!(n >= 12, "upstream header: {:?}", &buf[..n]);
        assert_eq!(buf[0], 2, "protocol version");
        Up {
            token: [buf[1], buf[2]],
            identifier: buf[3],
            eui: buf[4..12].try_into().expect("8 bytes"),
            json: if n > 12 {
                serde_json::from_slice(&buf[12..n]).expect("JSON")
            } else {
                Value::Null
            },
        }
    }

    /// The next datagram of this kind; keep-alives and status reports in between are skipped.
    async fn recv_kind(&mut self, identifier: u8) -> Up {
        loop {
            let up = self.recv().await;
            if up.identifier == identifier {
                return up;
            }
        }
    }

    async fn send(&self, datagram: &[u8]) {
        let to = self.gateway.expect("the gateway's address is known");
        self.socket.send_to(datagram, to).await.expect("send");
    }
}

fn options() -> GatewayOptions {
    GatewayOptions {
        stat_interval: None,
        ack_timeout: Duration::from_millis(300),
        attempts: 3,
        clock: Arc::new(FixedClock(1_364_746_877_528_002_000)),
        ..GatewayOptions::default()
    }
}

async fn start(server: &Server, options: GatewayOptions) -> SimGateway {
    SimGateway::start_with(
        Eui64::from_bytes(EUI),
        server.addr(),
        options,
        CancellationToken::new(),
    )
    .await
    .expect("gateway starts")
}

#[tokio::test]
async fn pulls_at_once_and_is_connected_by_the_pull_ack() {
    let mut server = Server::bind().await;
    let gateway = start(&server, options()).await;
    let pull = server.recv_kind(0x02).await;
    assert_eq!(pull.eui, EUI);
    assert_eq!(pull.json, Value::Null, "PULL_DATA has no JSON");
    assert!(
        gateway.connected(Duration::from_millis(1)).await.is_err(),
        "not before the PULL_ACK"
    );
    server.send(&[2, pull.token[0], pull.token[1], 0x04]).await;
    gateway.connected(WAIT).await.expect("PULL_ACK heard");
    assert_eq!(gateway.stats().pull_ack, 1);
    assert_eq!(gateway.local_addr().ok(), server.gateway);
}

#[tokio::test]
async fn an_uplink_is_a_push_data_with_one_rxpk_and_waits_for_its_ack() {
    let mut server = Server::bind().await;
    let gateway = start(&server, options()).await;
    let phy = [0x40, 0x04, 0x03, 0x02, 0x01, 0x80, 0x01, 0x00, 0x01, 0xa6];
    let rx = RxParams {
        rssi: -97,
        lsnr: -3.25,
        freq: 868.3,
        datr: "SF9BW125".into(),
        tmst: Some(123_456),
    };
    let (sent, push) = tokio::join!(gateway.uplink(&phy, rx), async {
        let push = server.recv_kind(0x00).await;
        server
            .send(&[2, push.token[0], push.token[1] ^ 0xff, 0x01])
            .await; // not its token
        server.send(&[2, push.token[0], push.token[1], 0x01]).await;
        push
    });
    sent.expect("PUSH_ACK received");
    assert_eq!(push.eui, EUI);
    let rxpk = &push.json["rxpk"];
    assert_eq!(rxpk.as_array().map(Vec::len), Some(1));
    let rxpk = &rxpk[0];
    assert_eq!(rxpk["tmst"], 123_456);
    assert_eq!(rxpk["time"], "2013-03-31T16:21:17.528002Z");
    assert_eq!(rxpk["freq"], 868.3);
    assert_eq!(rxpk["chan"], 1);
    assert_eq!(rxpk["rfch"], 0);
    assert_eq!(rxpk["stat"], 1);
    assert_eq!(rxpk["modu"], "LORA");
    assert_eq!(rxpk["datr"], "SF9BW125");
    assert_eq!(rxpk["codr"], "4/5");
    assert_eq!(rxpk["rssi"], -97);
    assert_eq!(rxpk["lsnr"], -3.3);
    assert_eq!(rxpk["size"], 10);
    let data = base64::engine::general_purpose::STANDARD
        .decode(rxpk["data"].as_str().expect("a string"))
        .expect("base64");
    assert_eq!(data, phy);
    let stats = gateway.stats();
    assert_eq!(
        (stats.rx_packets, stats.push_data, stats.push_ack),
        (1, 1, 2)
    );
}

#[tokio::test]
async fn a_lost_push_ack_is_retried_with_the_same_token_then_given_up() {
    let mut server = Server::bind().await;
    let gateway = start(&server, options()).await;
    let (sent, ()) = tokio::join!(gateway.uplink(&[0x40; 12], RxParams::default()), async {
        let first = server.recv_kind(0x00).await;
        let again = server.recv_kind(0x00).await; // the first one is "lost"
        assert_eq!(first.token, again.token);
        assert_eq!(first.json, again.json);
        server
            .send(&[2, again.token[0], again.token[1], 0x01])
            .await;
    });
    sent.expect("acknowledged the second time");

    let (sent, ()) = tokio::join!(gateway.uplink(&[0x40; 12], RxParams::default()), async {
        for _ in 0..3 {
            server.recv_kind(0x00).await;
        }
    });
    match sent {
        Err(Error::NoAck {
            what: "PUSH_ACK",
            attempts: 3,
            ..
        }) => {}
        other => panic!("expected NoAck, got {other:?}"),
    }
    // The gateway's own tmst counter counts microseconds since it started.
    let (a, b) = (gateway.tmst(), gateway.tmst());
    assert!(b >= a && a > 0, "{a} {b}");
}

#[tokio::test]
async fn a_pull_resp_is_answered_with_tx_ack_and_delivered() {
    let mut server = Server::bind().await;
    let gateway = start(&server, options()).await;
    let mut listener = gateway.listen();
    server.recv_kind(0x02).await;
    // Garbage first: counted, and the gateway carries on.
    server.send(&[0xff, 0x00]).await;
    let accept = [
        0x20, 0x49, 0x3e, 0xeb, 0x51, 0xfb, 0xa2, 0x11, 0x6f, 0x81, 0x0e, 0xdb,
    ];
    let json = serde_json::json!({"txpk": {"imme": false, "tmst": 6_000_000u32, "freq": 868.3, "rfch": 0,
        "powe": 14, "modu": "LORA", "datr": "SF9BW125", "codr": "4/5", "ipol": true, "size": accept.len(),
        "data": base64::engine::general_purpose::STANDARD.encode(accept)}});
    let mut resp = vec![2, 0x5a, 0xa5, 0x03];
    resp.extend_from_slice(json.to_string().as_bytes());
    server.send(&resp).await;

    let ack = server.recv_kind(0x05).await;
    assert_eq!(ack.token, [0x5a, 0xa5], "TX_ACK echoes the PULL_RESP token");
    assert_eq!(ack.eui, EUI);
    assert_eq!(ack.json, serde_json::json!({"txpk_ack": {"error": "NONE"}}));
    let expected = Downlink {
        phy: accept.to_vec(),
        tmst: Some(6_000_000),
        freq: 868.3,
        datr: "SF9BW125".into(),
        ipol: true,
    };
    assert_eq!(
        gateway.next_downlink(WAIT).await.expect("running"),
        Some(expected.clone())
    );
    assert_eq!(listener.next(WAIT).await.expect("running"), Some(expected));
    assert_eq!(
        gateway
            .next_downlink(Duration::from_millis(20))
            .await
            .expect("running"),
        None,
        "nothing more"
    );
    let stats = gateway.stats();
    assert_eq!((stats.downlinks, stats.invalid), (1, 1));
}

#[tokio::test]
async fn status_reports_and_shutdown() {
    let mut server = Server::bind().await;
    let shutdown = CancellationToken::new();
    let gateway = SimGateway::start_with(
        Eui64::from_bytes(EUI),
        server.addr(),
        GatewayOptions {
            stat_interval: Some(Duration::from_millis(50)),
            ..options()
        },
        shutdown.clone(),
    )
    .await
    .expect("gateway starts");
    let report = loop {
        let up = server.recv_kind(0x00).await;
        if up.json.get("stat").is_some() {
            break up.json;
        }
    };
    assert_eq!(report["stat"]["rxnb"], 0);
    assert_eq!(report["stat"]["time"], "2013-03-31 16:21:17 GMT");

    shutdown.cancel();
    assert!(matches!(
        gateway.uplink(&[0x40; 12], RxParams::default()).await,
        Err(Error::GatewayStopped { .. })
    ));
    assert!(matches!(
        gateway.next_downlink(WAIT).await,
        Err(Error::GatewayStopped { .. })
    ));
    tokio::time::timeout(WAIT, gateway.stop())
        .await
        .expect("the task ends");
}

/// A PULL_RESP carrying `phy`, as a server sends it.
fn pull_resp(token: u16, phy: &[u8]) -> Vec<u8> {
    let json = serde_json::json!({"txpk": {"imme": false, "tmst": 5_000_000u32, "freq": 868.1, "rfch": 0,
        "powe": 14, "modu": "LORA", "datr": "SF7BW125", "codr": "4/5", "ipol": true, "size": phy.len(),
        "data": base64::engine::general_purpose::STANDARD.encode(phy)}});
    let mut out = vec![2, (token >> 8) as u8, token as u8, 0x03];
    out.extend_from_slice(json.to_string().as_bytes());
    out
}

fn join_accept(app_key: [u8; 16], dev_addr: [u8; 4]) -> Vec<u8> {
    let mut creator = lorawan::creator::JoinAcceptCreator::new();
    creator
        .set_app_nonce(&[1, 2, 3])
        .set_net_id(&[0, 0, 0])
        .set_dev_addr(&dev_addr)
        .set_dl_settings(0)
        .set_rx_delay(1);
    creator
        .build(&lorawan::keys::AES128(app_key))
        .expect("buffer fits")[..17]
        .to_vec()
}

#[tokio::test]
async fn an_otaa_device_joins_through_the_gateway_retrying_with_a_new_dev_nonce() {
    use crate::lorawan::{AppKey, OtaaDevice};
    let mut server = Server::bind().await;
    let gateway = start(&server, options()).await;
    let pull = server.recv_kind(0x02).await;
    server.send(&[2, pull.token[0], pull.token[1], 0x04]).await;
    gateway.connected(WAIT).await.expect("PULL_ACK heard");

    let app_key = [0x5d; 16];
    let mut device = OtaaDevice::new(
        Eui64::new("0004a30b001f2c3d").expect("valid"),
        Eui64::new("70b3d57ed0000001").expect("valid"),
        AppKey::new(app_key),
        11,
    );
    let data = |up: &Up| {
        base64::engine::general_purpose::STANDARD
            .decode(up.json["rxpk"][0]["data"].as_str().expect("data"))
            .expect("base64")
    };
    let (joined, nonces) = tokio::join!(device.join(&gateway, Duration::from_millis(500)), async {
        // The first request is acknowledged but never answered: the device must ask again.
        let first = server.recv_kind(0x00).await;
        server
            .send(&[2, first.token[0], first.token[1], 0x01])
            .await;
        let second = server.recv_kind(0x00).await;
        // The answer comes before the PUSH_ACK, after a join-accept for another device.
        server
            .send(&pull_resp(1, &join_accept([0x11; 16], [9, 9, 9, 0])))
            .await;
        server
            .send(&pull_resp(
                2,
                &join_accept(app_key, [0xda, 0x1b, 0x01, 0x00]),
            ))
            .await;
        server
            .send(&[2, second.token[0], second.token[1], 0x01])
            .await;
        let request = data(&second);
        let mic = lorawan::parser::JoinRequestPayload::new(&request[..])
            .expect("a join-request")
            .validate_mic(&lorawan::keys::AES128(app_key));
        assert!(mic, "the join-request's MIC holds under the AppKey");
        (data(&first)[17..19].to_vec(), request[17..19].to_vec())
    });
    joined.expect("joined on the second attempt");
    assert_ne!(
        nonces.0, nonces.1,
        "a fresh DevNonce for the second request"
    );
    assert_eq!(
        device.session().map(|s| s.dev_addr.get()),
        Some(0x0001_1bda)
    );
    for token in [[0, 1], [0, 2]] {
        assert_eq!(
            server.recv_kind(0x05).await.token,
            token,
            "each PULL_RESP is TX_ACKed"
        );
    }
}

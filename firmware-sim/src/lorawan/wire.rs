//! The Semtech UDP packet-forwarder protocol, version 2, from the gateway's side (`PROTOCOL.TXT` of Semtech's
//! packet_forwarder, revision 1.3): the datagrams a gateway sends (PUSH_DATA, PULL_DATA, TX_ACK) are built
//! here, and the ones it receives (PUSH_ACK, PULL_ACK, PULL_RESP) read. Pure: bytes and values only.
//!
//! Upstream datagrams are version, token (2 bytes, echoed by the server as sent), identifier and the gateway
//! EUI (8 bytes, as written), then JSON; downstream ones have no EUI. Like the reference forwarder, replies of
//! another protocol version are not taken.
use super::gateway::Downlink;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bydata_schemas::{Eui64, UnixNanos};
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) const PROTOCOL_VERSION: u8 = 2;

const PUSH_DATA: u8 = 0x00;
const PUSH_ACK: u8 = 0x01;
const PULL_DATA: u8 = 0x02;
const PULL_RESP: u8 = 0x03;
const PULL_ACK: u8 = 0x04;
const TX_ACK: u8 = 0x05;

const HEADER_LEN: usize = 4;

/// `txpk.data`: standard alphabet, padding optional (servers differ).
const TXPK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A datagram from the server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Downstream {
    PushAck {
        token: u16,
    },
    PullAck {
        token: u16,
    },
    /// A downlink to send; answered with a TX_ACK of the same token, whether the `txpk` is usable or not.
    PullResp {
        token: u16,
        txpk: Result<Downlink, WireError>,
    },
}

/// Why a datagram from the server (or the `txpk` of a PULL_RESP) was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("datagram of {got} bytes is too short; expected at least {expected}")]
    Truncated { expected: usize, got: usize },
    #[error("protocol version {version}; this gateway speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion { version: u8 },
    #[error("identifier 0x{identifier:02x} is not a datagram a server sends")]
    UnexpectedIdentifier { identifier: u8 },
    #[error("PULL_RESP JSON is not a txpk object: {reason}")]
    Json { reason: String },
    #[error("txpk.data is not base64: {reason}")]
    Base64 { reason: String },
    #[error("txpk.data decodes to {decoded} bytes but its size says {size}")]
    SizeMismatch { size: usize, decoded: usize },
}

fn upstream(token: u16, identifier: u8, eui: Eui64, json: &[u8]) -> Vec<u8> {
    let [hi, lo] = token.to_be_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + json.len());
    out.extend_from_slice(&[PROTOCOL_VERSION, hi, lo, identifier]);
    out.extend_from_slice(&eui.to_bytes());
    out.extend_from_slice(json);
    out
}

/// PUSH_DATA: received packets (`{"rxpk":[…]}`) and/or a status report (`{"stat":{…}}`).
pub(crate) fn push_data(token: u16, eui: Eui64, json: &Value) -> Vec<u8> {
    upstream(token, PUSH_DATA, eui, json.to_string().as_bytes())
}

/// PULL_DATA: the keep-alive that opens (and holds open) the downlink route through NATs.
pub(crate) fn pull_data(token: u16, eui: Eui64) -> Vec<u8> {
    upstream(token, PULL_DATA, eui, &[])
}

/// TX_ACK for the PULL_RESP of `token`; `error` is `"NONE"` when the downlink was sent.
pub(crate) fn tx_ack(token: u16, eui: Eui64, error: &str) -> Vec<u8> {
    let json = json!({"txpk_ack": {"error": error}});
    upstream(token, TX_ACK, eui, json.to_string().as_bytes())
}

/// What the radio and the concentrator say about one received packet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RxMeta<'a> {
    /// Concentrator counter (µs) at the end of reception.
    pub(crate) tmst: u32,
    pub(crate) time: UnixNanos,
    pub(crate) freq: f64,
    pub(crate) chan: u8,
    pub(crate) datr: &'a str,
    pub(crate) rssi: i32,
    pub(crate) lsnr: f64,
}

/// One `rxpk` element: a LoRa packet with a good CRC.
pub(crate) fn rxpk(phy: &[u8], meta: &RxMeta<'_>) -> Value {
    json!({
        "time": Utc
            .timestamp_nanos(meta.time)
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        "tmst": meta.tmst,
        "chan": meta.chan,
        "rfch": 0,
        "freq": (meta.freq * 1e6).round() / 1e6,
        "stat": 1,
        "modu": "LORA",
        "datr": meta.datr,
        "codr": "4/5",
        "rssi": meta.rssi,
        "lsnr": (meta.lsnr * 10.0).round() / 10.0,
        "size": phy.len(),
        "data": STANDARD.encode(phy),
    })
}

/// Counters a gateway reports in `stat`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct StatCounts {
    pub(crate) rxnb: u64,
    pub(crate) rxok: u64,
    pub(crate) rxfw: u64,
    /// Percentage of upstream datagrams acknowledged.
    pub(crate) ackr: f64,
    pub(crate) dwnb: u64,
    pub(crate) txnb: u64,
}

/// The `stat` object of a status report (no GPS: no position).
pub(crate) fn stat(time: UnixNanos, counts: &StatCounts) -> Value {
    json!({
        "time": Utc.timestamp_nanos(time).format("%Y-%m-%d %H:%M:%S GMT").to_string(),
        "rxnb": counts.rxnb,
        "rxok": counts.rxok,
        "rxfw": counts.rxfw,
        "ackr": (counts.ackr * 10.0).round() / 10.0,
        "dwnb": counts.dwnb,
        "txnb": counts.txnb,
    })
}

#[derive(Deserialize)]
struct PullRespJson {
    txpk: TxpkJson,
}

#[derive(Deserialize)]
struct TxpkJson {
    #[serde(default)]
    imme: bool,
    tmst: Option<u32>,
    freq: f64,
    /// A string for LoRa (`"SF9BW125"`), a number (bit/s) for FSK.
    datr: Value,
    size: Option<usize>,
    data: String,
    #[serde(default)]
    ipol: bool,
}

/// Reads one datagram from the server.
pub(crate) fn parse(bytes: &[u8]) -> Result<Downstream, WireError> {
    let Some((&[version, hi, lo, identifier], body)) = bytes.split_first_chunk::<HEADER_LEN>()
    else {
        return Err(WireError::Truncated {
            expected: HEADER_LEN,
            got: bytes.len(),
        });
    };
    if version != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion { version });
    }
    let token = u16::from_be_bytes([hi, lo]);
    match identifier {
        PUSH_ACK => Ok(Downstream::PushAck { token }),
        PULL_ACK => Ok(Downstream::PullAck { token }),
        PULL_RESP => Ok(Downstream::PullResp {
            token,
            txpk: txpk(body),
        }),
        identifier => Err(WireError::UnexpectedIdentifier { identifier }),
    }
}

fn txpk(body: &[u8]) -> Result<Downlink, WireError> {
    // Some servers send the C string terminator too.
    let end = body.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let json: PullRespJson =
        serde_json::from_slice(body.get(..end).unwrap_or_default()).map_err(|e| {
            WireError::Json {
                reason: e.to_string(),
            }
        })?;
    let txpk = json.txpk;
    let phy = TXPK_BASE64
        .decode(txpk.data.as_bytes())
        .map_err(|e| WireError::Base64 {
            reason: e.to_string(),
        })?;
    if let Some(size) = txpk.size
        && size != phy.len()
    {
        return Err(WireError::SizeMismatch {
            size,
            decoded: phy.len(),
        });
    }
    let datr = match txpk.datr {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Ok(Downlink {
        phy,
        tmst: if txpk.imme { None } else { txpk.tmst },
        freq: txpk.freq,
        datr,
        ipol: txpk.ipol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUI: [u8; 8] = [0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35];

    fn eui() -> Eui64 {
        Eui64::from_bytes(EUI)
    }

    fn body(datagram: &[u8]) -> Value {
        serde_json::from_slice(&datagram[12..]).expect("JSON after the header")
    }

    #[test]
    fn upstream_headers() {
        assert_eq!(
            pull_data(0x1234, eui()),
            [
                2, 0x12, 0x34, 0x02, 0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35
            ]
        );
        let ack = tx_ack(0xbeef, eui(), "NONE");
        assert_eq!(
            ack[..12],
            [
                2, 0xbe, 0xef, 0x05, 0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35
            ]
        );
        assert_eq!(body(&ack), json!({"txpk_ack": {"error": "NONE"}}));
    }

    #[test]
    fn rxpk_has_the_fields_of_the_spec() {
        let meta = RxMeta {
            tmst: 3_512_348_611,
            time: 1_364_746_877_528_002_000,
            freq: 868.1,
            chan: 0,
            datr: "SF7BW125",
            rssi: -35,
            lsnr: 5.12,
        };
        let push = push_data(
            7,
            eui(),
            &json!({"rxpk": [rxpk(&[0x40, 1, 1, 1, 1], &meta)]}),
        );
        assert_eq!(push[..4], [2, 0, 7, 0x00]);
        assert_eq!(
            body(&push),
            json!({"rxpk": [{"time": "2013-03-31T16:21:17.528002Z", "tmst": 3_512_348_611u32, "chan": 0,
                "rfch": 0, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125", "codr": "4/5",
                "rssi": -35, "lsnr": 5.1, "size": 5, "data": "QAEBAQE="}]})
        );
        let report = stat(
            1_389_517_168_000_000_000,
            &StatCounts {
                rxnb: 2,
                rxok: 2,
                rxfw: 2,
                ackr: 100.0,
                dwnb: 1,
                txnb: 1,
            },
        );
        assert_eq!(report["time"], "2014-01-12 08:59:28 GMT");
        assert_eq!(report["ackr"], 100.0);
    }

    #[test]
    fn downstream_datagrams() {
        assert_eq!(
            parse(&[2, 0xbe, 0xef, 0x01]),
            Ok(Downstream::PushAck { token: 0xbeef })
        );
        assert_eq!(
            parse(&[2, 0x12, 0x34, 0x04]),
            Ok(Downstream::PullAck { token: 0x1234 })
        );
        assert_eq!(
            parse(&[1, 0, 0, 0x01]),
            Err(WireError::UnsupportedVersion { version: 1 })
        );
        assert_eq!(
            parse(&[2, 0]),
            Err(WireError::Truncated {
                expected: 4,
                got: 2
            })
        );
        assert_eq!(
            parse(&[2, 0, 0, 0x00]),
            Err(WireError::UnexpectedIdentifier { identifier: 0 })
        );
        // The spec's PULL_RESP example shape, as bydata sends it (with a NUL after it).
        let mut resp = vec![2, 0xab, 0xcd, 0x03];
        resp.extend_from_slice(
            br#"{"txpk":{"imme":false,"tmst":6000000,"freq":868.3,"rfch":0,"powe":14,"modu":"LORA","datr":"SF9BW125","codr":"4/5","ipol":true,"size":3,"data":"IAEC"}}"#,
        );
        resp.push(0);
        assert_eq!(
            parse(&resp),
            Ok(Downstream::PullResp {
                token: 0xabcd,
                txpk: Ok(Downlink {
                    phy: vec![0x20, 0x01, 0x02],
                    tmst: Some(6_000_000),
                    freq: 868.3,
                    datr: "SF9BW125".into(),
                    ipol: true,
                }),
            })
        );
        let bad = |json: &str| {
            let mut d = vec![2, 0, 1, 0x03];
            d.extend_from_slice(json.as_bytes());
            match parse(&d) {
                Ok(Downstream::PullResp { token: 1, txpk }) => txpk,
                other => panic!("{other:?}"),
            }
        };
        assert!(matches!(bad(""), Err(WireError::Json { .. })));
        assert!(matches!(
            bad(r#"{"txpk":{"freq":869.525}}"#),
            Err(WireError::Json { .. })
        ));
        assert!(matches!(
            bad(r#"{"txpk":{"freq":869.5,"datr":"SF12BW125","data":"!!"}}"#),
            Err(WireError::Base64 { .. })
        ));
        assert_eq!(
            bad(r#"{"txpk":{"freq":869.5,"datr":"SF12BW125","size":4,"data":"IAEC"}}"#),
            Err(WireError::SizeMismatch {
                size: 4,
                decoded: 3
            })
        );
        let immediate =
            bad(r#"{"txpk":{"imme":true,"tmst":5,"freq":869.5,"datr":50000,"data":"IA"}}"#)
                .expect("valid");
        assert_eq!((immediate.tmst, immediate.datr.as_str()), (None, "50000"));
    }
}

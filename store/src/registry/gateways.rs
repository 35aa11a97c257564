//! LoRaWAN gateways: only registered gateways are heard (the Semtech UDP protocol has no authentication, so
//! the registered EUI is the allow-list), and each has a status the UDP edge keeps up to date.
use super::{LastError, Registry};
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{Eui64, Location, OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

pub(super) const GATEWAYS: TableDefinition<&str, &[u8]> = TableDefinition::new("gateways");
pub(super) const GATEWAY_STATUS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("gateway_status");

/// A registered gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gateway {
    pub eui: Eui64,
    pub name: String,
    pub location: Option<Location>,
    pub created_at: UnixNanos,
    #[serde(default)]
    pub org: OrgId,
}

/// What a gateway sent and how it went, kept by the UDP edge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStatus {
    pub last_seen: Option<UnixNanos>,
    /// PUSH_DATA datagrams (uplinks and statistics).
    pub push_data: u64,
    /// PULL_DATA keep-alives (the gateway's downlink path is open).
    pub pull_data: u64,
    /// Radio packets (`rxpk`) received.
    pub rx_packets: u64,
    /// Radio packets refused (bad CRC, undecodable, unknown device, bad MIC, replay…).
    pub rx_rejected: u64,
    /// Downlinks sent and acknowledged (TX_ACK).
    pub tx_sent: u64,
    pub tx_acked: u64,
    pub last_error: Option<LastError>,
}

impl GatewayStatus {
    /// Adds `d` (counters) and takes its newer times and error.
    pub fn merge(&mut self, d: &GatewayStatus) {
        self.last_seen = self.last_seen.max(d.last_seen);
        self.push_data += d.push_data;
        self.pull_data += d.pull_data;
        self.rx_packets += d.rx_packets;
        self.rx_rejected += d.rx_rejected;
        self.tx_sent += d.tx_sent;
        self.tx_acked += d.tx_acked;
        if d.last_error.is_some() {
            self.last_error = d.last_error.clone();
        }
    }
}

impl Registry {
    /// Registers a gateway; `Conflict` if its EUI is registered already.
    pub(crate) fn create_gateway(&self, gateway: Gateway) -> Result<Gateway> {
        let key = gateway.eui.to_string();
        let json = serde_json::to_vec(&gateway).map_err(corrupt("gateway"))?;
        let txn = self.db.begin_write().map_err(db("registering a gateway"))?;
        {
            let mut gateways = txn
                .open_table(GATEWAYS)
                .map_err(db("registering a gateway"))?;
            if gateways
                .get(key.as_str())
                .map_err(db("registering a gateway"))?
                .is_some()
            {
                return Err(Error::Conflict {
                    what: "gateway",
                    id: key,
                });
            }
            gateways
                .insert(key.as_str(), json.as_slice())
                .map_err(db("registering a gateway"))?;
        }
        self.commit(txn, "registering a gateway")?;
        Ok(gateway)
    }

    pub(crate) fn gateway(&self, eui: &Eui64) -> Result<Option<Gateway>> {
        let txn = self.db.begin_read().map_err(db("reading a gateway"))?;
        let gateways = txn.open_table(GATEWAYS).map_err(db("reading a gateway"))?;
        let value = gateways
            .get(eui.to_string().as_str())
            .map_err(db("reading a gateway"))?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("gateway")))
            .transpose()
    }

    pub(crate) fn gateways(&self) -> Result<Vec<Gateway>> {
        let txn = self.db.begin_read().map_err(db("listing gateways"))?;
        let gateways = txn.open_table(GATEWAYS).map_err(db("listing gateways"))?;
        let mut out = Vec::new();
        for row in gateways.iter().map_err(db("listing gateways"))? {
            let (_, v) = row.map_err(db("listing gateways"))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("gateway"))?);
        }
        Ok(out)
    }

    /// Removes a gateway and its status; its packets are refused from then on.
    pub(crate) fn delete_gateway(&self, eui: &Eui64) -> Result<bool> {
        let key = eui.to_string();
        let txn = self.db.begin_write().map_err(db("removing a gateway"))?;
        let existed = {
            let mut gateways = txn.open_table(GATEWAYS).map_err(db("removing a gateway"))?;
            let existed = gateways
                .remove(key.as_str())
                .map_err(db("removing a gateway"))?
                .is_some();
            let mut status = txn
                .open_table(GATEWAY_STATUS)
                .map_err(db("removing a gateway"))?;
            status
                .remove(key.as_str())
                .map_err(db("removing a gateway"))?;
            existed
        };
        self.commit_if(txn, "removing a gateway", existed)?;
        Ok(existed)
    }

    pub(crate) fn gateway_status(&self, eui: &Eui64) -> Result<GatewayStatus> {
        let txn = self.db.begin_read().map_err(db("reading gateway status"))?;
        let status = txn
            .open_table(GATEWAY_STATUS)
            .map_err(db("reading gateway status"))?;
        let value = status
            .get(eui.to_string().as_str())
            .map_err(db("reading gateway status"))?;
        Ok(value
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("gateway status")))
            .transpose()?
            .unwrap_or_default())
    }

    /// Adds what the UDP edge counted since its last report, for registered gateways only (a removed
    /// gateway's late counts are dropped), in one transaction.
    pub(crate) fn record_gateways(&self, deltas: &[(Eui64, GatewayStatus)]) -> Result<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(db("recording gateway status"))?;
        {
            let gateways = txn
                .open_table(GATEWAYS)
                .map_err(db("recording gateway status"))?;
            let mut status = txn
                .open_table(GATEWAY_STATUS)
                .map_err(db("recording gateway status"))?;
            for (eui, delta) in deltas {
                let key = eui.to_string();
                if gateways
                    .get(key.as_str())
                    .map_err(db("recording gateway status"))?
                    .is_none()
                {
                    continue;
                }
                let mut current: GatewayStatus = match status
                    .get(key.as_str())
                    .map_err(db("recording gateway status"))?
                {
                    Some(v) => {
                        serde_json::from_slice(v.value()).map_err(corrupt("gateway status"))?
                    }
                    None => GatewayStatus::default(),
                };
                current.merge(delta);
                let json = serde_json::to_vec(&current).map_err(corrupt("gateway status"))?;
                status
                    .insert(key.as_str(), json.as_slice())
                    .map_err(db("recording gateway status"))?;
            }
        }
        txn.commit().map_err(db("recording gateway status"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(eui: &str) -> Gateway {
        Gateway {
            org: Default::default(),
            eui: Eui64::new(eui).expect("eui"),
            name: "Dokk1 roof".into(),
            location: None,
            created_at: 1,
        }
    }

    #[test]
    fn register_count_and_remove() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Registry::open(&dir.path().join("r.redb")).expect("open");
        let a = gw("0016c001ff10a235");
        r.create_gateway(a.clone()).expect("create");
        assert!(matches!(
            r.create_gateway(gw("0016C001FF10A235")),
            Err(Error::Conflict { .. })
        ));
        assert_eq!(r.gateways().expect("list"), vec![a.clone()]);
        let delta = GatewayStatus {
            last_seen: Some(10),
            push_data: 2,
            rx_packets: 3,
            rx_rejected: 1,
            ..GatewayStatus::default()
        };
        let unknown = Eui64::new("aaaaaaaaaaaaaaaa").expect("eui");
        r.record_gateways(&[(a.eui, delta.clone()), (unknown, delta.clone())])
            .expect("record");
        r.record_gateways(&[(a.eui, delta)]).expect("record");
        let s = r.gateway_status(&a.eui).expect("status");
        assert_eq!((s.push_data, s.rx_packets, s.rx_rejected), (4, 6, 2));
        assert_eq!(
            r.gateway_status(&unknown).expect("status"),
            GatewayStatus::default(),
            "an unregistered gateway gets no status"
        );
        assert!(r.delete_gateway(&a.eui).expect("delete"));
        assert!(!r.delete_gateway(&a.eui).expect("delete again"));
        assert_eq!(
            r.gateway_status(&a.eui).expect("status"),
            GatewayStatus::default()
        );
    }
}

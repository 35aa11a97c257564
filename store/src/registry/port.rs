//! The registry port: every registry call made from async code goes through [`RegistryPort`], so no redb
//! transaction ever runs on a tokio worker, and a second backend (PostgreSQL, for several bydata nodes) can be
//! added later without touching its callers.
//!
//! [`RedbRegistry`] is the embedded backend: each call runs the synchronous [`Registry`] on tokio's blocking
//! pool. The synchronous type is private to this crate, so code outside it cannot open a redb transaction on
//! an async worker by accident. Method names and meanings are those of the backend's, documented there.
use super::{
    Advanced, Building, CodecAdded, CodecSummary, CounterAdvance, Device, DeviceKey, DeviceStatus,
    ExternalDevice, Gateway, GatewayStatus, Integration, LorawanSession, Member, MqttCredentials,
    NewToken, OrgContents, Organisation, OtaaDevice, PasswordCheck, Registry, Session, StoredCodec,
    StoredDataset, TokenInfo,
};
use super::{AlertCommit, PendingNotification, StatusChanges, StatusCursor, StoredAlert};
use super::{StoredAlertRule, StoredSilence};
use crate::audit::{AuditEntry, AuditFilter, Pending};
// --- forward (data targets) ---
use super::{DeadLetter, Target, TargetCommit, TargetDelivery, TargetSecrets};
use crate::{Error, Result};
use bydata_schemas::TargetId;
use bydata_schemas::{
    BuildingId, Codec, CodecName, DeviceId, Downlink, DownlinkUpdate, Eui64, IntegrationId,
    NewDownlink, OrgId, UnixNanos,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A registry shared by every part of bydata.
pub type SharedRegistry = Arc<dyn RegistryPort>;

/// Builds a new OTAA session from the DevAddr chosen for it (see [`RegistryPort::complete_join`]).
pub type SessionForAddr = Box<dyn FnOnce(u32) -> LorawanSession + Send>;

/// Devices, credentials, tokens, catalog entries, LoRaWAN sessions, integrations and ingest state.
#[async_trait::async_trait]
pub trait RegistryPort: Send + Sync + std::fmt::Debug {
    // Devices and their MQTT credentials.
    async fn create_device(&self, device: Device) -> Result<(Device, MqttCredentials)>;
    /// Many MQTT devices in one transaction: all of them, or none (`Conflict` names an id that exists).
    async fn create_devices(&self, devices: Vec<Device>) -> Result<Vec<(Device, MqttCredentials)>>;
    async fn device(&self, id: &DeviceId) -> Result<Option<Device>>;
    async fn devices(&self) -> Result<Vec<Device>>;
    async fn delete_device(&self, id: &DeviceId) -> Result<bool>;
    async fn set_codec(&self, id: &DeviceId, codec: Codec) -> Result<Option<Device>>;
    async fn move_device(&self, id: &DeviceId, org: OrgId) -> Result<Option<Device>>;
    async fn rotate_credentials(&self, id: &DeviceId) -> Result<MqttCredentials>;
    async fn check_password(&self, id: &DeviceId, password: &str) -> Result<PasswordCheck>;
    async fn device_password_hash(&self, id: &DeviceId) -> Result<Option<String>>;
    async fn device_identifiers(&self) -> Result<Vec<String>>;

    // Ingest state: per-device status and consumer positions.
    async fn status(&self, id: &DeviceId) -> Result<DeviceStatus>;
    async fn position(&self, consumer: &str) -> Result<u64>;
    async fn commit_ingest(
        &self,
        consumer: &str,
        position: u64,
        deltas: HashMap<DeviceId, DeviceStatus>,
    ) -> Result<()>;
    async fn add_statuses(&self, deltas: Vec<(DeviceId, DeviceStatus)>) -> Result<()>;
    async fn record_redecode(
        &self,
        id: &DeviceId,
        codec: &str,
        from: UnixNanos,
        to: UnixNanos,
        times: Vec<UnixNanos>,
    ) -> Result<()>;

    // Organisations and their members.
    async fn create_org(&self, org: Organisation) -> Result<Organisation>;
    async fn org(&self, id: &OrgId) -> Result<Option<Organisation>>;
    async fn orgs(&self) -> Result<Vec<Organisation>>;
    async fn org_contents(&self, id: &OrgId) -> Result<OrgContents>;
    async fn delete_org(&self, id: &OrgId) -> Result<bool>;
    async fn put_member(&self, member: Member) -> Result<Member>;
    async fn remove_member(&self, org: &OrgId, member: &str) -> Result<bool>;
    async fn members(&self) -> Result<Vec<Member>>;

    // API keys.
    async fn create_token(&self, new: NewToken, now: UnixNanos) -> Result<(TokenInfo, String)>;
    async fn set_bootstrap_token(&self, token: &str, now: UnixNanos) -> Result<()>;
    async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>>;
    async fn tokens(&self) -> Result<Vec<TokenInfo>>;
    async fn has_admin_token(&self) -> Result<bool>;
    async fn token_series(&self, id: &str) -> Result<u64>;
    async fn add_token_series(&self, id: &str, n: u64) -> Result<()>;
    async fn revoke_token(&self, id: &str, now: UnixNanos) -> Result<Option<TokenInfo>>;
    async fn record_token_use(&self, uses: Vec<(String, UnixNanos)>) -> Result<()>;

    // Codecs, buildings and datasets.
    async fn add_codec_version(
        &self,
        name: &CodecName,
        description: String,
        script: String,
        examples: serde_json::Value,
        org: OrgId,
        now: UnixNanos,
    ) -> Result<CodecAdded>;
    async fn codec(&self, name: &CodecName, version: Option<u32>) -> Result<Option<StoredCodec>>;
    async fn codec_latest_version(&self, name: &CodecName) -> Result<Option<u32>>;
    async fn codecs(&self) -> Result<Vec<CodecSummary>>;
    async fn create_building(&self, building: Building) -> Result<Building>;
    async fn building(&self, id: &BuildingId) -> Result<Option<Building>>;
    async fn buildings(&self) -> Result<Vec<Building>>;
    async fn delete_building(&self, id: &BuildingId) -> Result<bool>;
    async fn create_dataset(&self, dataset: StoredDataset) -> Result<StoredDataset>;
    async fn dataset(&self, id: &str) -> Result<Option<StoredDataset>>;
    async fn datasets(&self) -> Result<Vec<StoredDataset>>;
    async fn delete_dataset(&self, id: &str) -> Result<bool>;

    // LoRaWAN gateways, devices and sessions.
    async fn create_gateway(&self, gateway: Gateway) -> Result<Gateway>;
    async fn gateway(&self, eui: &Eui64) -> Result<Option<Gateway>>;
    async fn gateways(&self) -> Result<Vec<Gateway>>;
    async fn delete_gateway(&self, eui: &Eui64) -> Result<bool>;
    async fn gateway_status(&self, eui: &Eui64) -> Result<GatewayStatus>;
    async fn record_gateways(&self, deltas: Vec<(Eui64, GatewayStatus)>) -> Result<()>;
    async fn create_lorawan_device(
        &self,
        device: Device,
        session: LorawanSession,
    ) -> Result<Device>;
    async fn create_otaa_device(&self, device: Device, otaa: OtaaDevice) -> Result<Device>;
    async fn create_external_lorawan_device(
        &self,
        device: Device,
        dev_eui: Eui64,
        integration: Option<IntegrationId>,
    ) -> Result<Device>;
    async fn external_device(&self, dev_eui: &Eui64) -> Result<Option<ExternalDevice>>;
    async fn otaa_device(&self, dev_eui: &Eui64) -> Result<Option<OtaaDevice>>;
    async fn complete_join(
        &self,
        dev_eui: &Eui64,
        dev_nonce: u16,
        candidates: Vec<u32>,
        session: SessionForAddr,
    ) -> Result<Option<LorawanSession>>;
    async fn lorawan_session(&self, dev_addr: u32) -> Result<Option<LorawanSession>>;
    async fn lorawan_session_of(&self, device: &DeviceId) -> Result<Option<LorawanSession>>;
    /// Advances many frames' uplink counters in one transaction (the LoRaWAN listener's group commit).
    async fn advance_uplink_counters(&self, advances: Vec<CounterAdvance>)
    -> Result<Vec<Advanced>>;
    /// Changes after every write that can change which session a DevAddr has: a session cache read at one
    /// generation is stale once this differs. Cheap (no I/O): asked for every frame.
    fn lorawan_generation(&self) -> u64;
    /// Changes after every change the API makes (devices, their organisations, keys, …): a cache read at one
    /// value is stale once this differs. Cheap (no I/O): asked for every request that reads series.
    fn changes(&self) -> u64;

    // Integrations (network servers).
    async fn create_integration(
        &self,
        integration: Integration,
        remote_password: Option<String>,
    ) -> Result<(Integration, Option<String>)>;
    async fn integration(&self, id: &IntegrationId) -> Result<Option<Integration>>;
    async fn integrations(&self) -> Result<Vec<Integration>>;
    async fn delete_integration(&self, id: &IntegrationId) -> Result<bool>;
    async fn check_integration_password(
        &self,
        id: &IntegrationId,
        password: &str,
    ) -> Result<PasswordCheck>;
    async fn inbound_integration_password_hash(&self, id: &IntegrationId)
    -> Result<Option<String>>;
    async fn integration_remote_password(&self, id: &IntegrationId) -> Result<Option<String>>;

    // login sessions (the id is the cookie's secret; only its hash is stored)
    async fn create_session(&self, session: Session) -> Result<String>;
    async fn session(&self, id: &str) -> Result<Option<Session>>;
    async fn touch_session(&self, id: &str, now: UnixNanos) -> Result<()>;
    async fn delete_session(&self, id: &str) -> Result<Option<Session>>;
    async fn purge_sessions(&self, now: UnixNanos, idle_before: UnixNanos) -> Result<usize>;
    // The audit log (entries of registry changes are written by the changes themselves, see `crate::audit`).
    /// Appends an entry for a change made outside the registry; answers its `seq`.
    async fn append_audit(&self, entry: AuditEntry) -> Result<u64>;
    /// Entries matching the filter, newest first.
    async fn audit(&self, filter: AuditFilter) -> Result<Vec<AuditEntry>>;

    // --- downlinks --- (the per-device queue, `downlinks.rs`)
    /// Queues a downlink: state Queued, id assigned. `NotFound` if the device does not exist, `QueueFull`
    /// if it has `MAX_OPEN_DOWNLINKS` open already.
    async fn enqueue_downlink(&self, d: NewDownlink) -> Result<Downlink>;
    /// The device's downlinks, newest first: open ones and a bounded history of finished ones.
    async fn downlinks(&self, device: &DeviceId) -> Result<Vec<Downlink>>;
    /// The oldest open downlink (Queued, or Sent + confirmed awaiting acknowledgement or a retry).
    async fn next_downlink(&self, device: &DeviceId) -> Result<Option<Downlink>>;
    /// Applies an update; the downlink as it now is, or `None` if the device has no downlink `id`.
    async fn update_downlink(
        &self,
        device: &DeviceId,
        id: u64,
        update: DownlinkUpdate,
    ) -> Result<Option<Downlink>>;

    // --- lorawan-down --- (class A downlinks, `lorawan_downlink.rs`)
    /// Takes the next LoRaWAN downlink frame counter (NFCntDown) of the session `dev_addr` has, if it is
    /// still `device`'s with `nwk_s_key`, committed before this returns; `None` if not (or used up).
    async fn reserve_fcnt_down(
        &self,
        dev_addr: u32,
        device: &DeviceId,
        nwk_s_key: [u8; 16],
    ) -> Result<Option<u32>>;
    // --- alerts --- (rules, silences, alerts and their history, the outbox; see `alerts.rs`)
    /// Device statuses changed after `cursor` (all of them for a cursor of another process).
    async fn statuses_since(&self, cursor: StatusCursor) -> Result<StatusChanges>;
    async fn gateway_statuses(&self) -> Result<Vec<(Eui64, GatewayStatus)>>;
    async fn create_alert_rule(&self, rule: StoredAlertRule) -> Result<StoredAlertRule>;
    async fn update_alert_rule(&self, rule: StoredAlertRule) -> Result<Option<StoredAlertRule>>;
    async fn alert_rule(&self, id: &str) -> Result<Option<StoredAlertRule>>;
    async fn alert_rules(&self) -> Result<Vec<StoredAlertRule>>;
    async fn delete_alert_rule(&self, id: &str) -> Result<bool>;
    async fn create_silence(&self, silence: StoredSilence) -> Result<StoredSilence>;
    async fn silence(&self, id: &str) -> Result<Option<StoredSilence>>;
    async fn silences(&self) -> Result<Vec<StoredSilence>>;
    async fn delete_silence(&self, id: &str) -> Result<bool>;
    async fn alerts(&self) -> Result<Vec<StoredAlert>>;
    async fn alert(&self, id: &str) -> Result<Option<StoredAlert>>;
    async fn alert_history(&self, id: &str, limit: usize) -> Result<Vec<serde_json::Value>>;
    /// One evaluation pass's alerts, history and notifications, in one transaction.
    async fn commit_alerts(&self, commit: AlertCommit) -> Result<()>;
    async fn alert_outbox(&self) -> Result<Vec<PendingNotification>>;
    /// Forgets notifications the notifier has, by `(channel, key)`.
    async fn alert_outbox_handed(&self, handed: Vec<(String, String)>) -> Result<()>;
    // --- notify --- (notification channels and the outbox; see `notify.rs`)
    async fn create_channel(
        &self,
        channel: super::Channel,
        header_values: Vec<String>,
    ) -> Result<(super::Channel, Option<String>)>;
    async fn channel(&self, id: &str) -> Result<Option<super::Channel>>;
    async fn channels(&self) -> Result<Vec<super::Channel>>;
    async fn delete_channel(&self, id: &str) -> Result<bool>;
    async fn webhook_secrets(&self, id: &str) -> Result<Option<super::WebhookSecrets>>;
    /// Commits the notifications whose key is new (one transaction); answers how many were new.
    async fn enqueue_notifications(
        &self,
        notifications: Vec<super::Notification>,
        now: UnixNanos,
    ) -> Result<usize>;
    /// A notification and its delivery in one transaction; `false` if the key is present.
    async fn enqueue_delivery(
        &self,
        notification: super::Notification,
        delivery: super::Delivery,
    ) -> Result<bool>;
    async fn outbox(&self, now: UnixNanos) -> Result<super::Outbox>;
    async fn create_deliveries(&self, deliveries: Vec<super::Delivery>) -> Result<()>;
    async fn delivery_members(
        &self,
        delivery: &super::Delivery,
    ) -> Result<Vec<super::Notification>>;
    async fn record_attempt(
        &self,
        key: &str,
        attempt: super::Attempt,
    ) -> Result<Option<super::Delivery>>;
    async fn delivery_state(&self, key: &str) -> Result<Option<super::DeliveryState>>;
    /// Every delivery, newest first.
    async fn deliveries(&self) -> Result<Vec<super::Delivery>>;
    async fn prune_deliveries(&self, before: UnixNanos, keep: usize) -> Result<usize>;
    // --- forward (data targets) ---
    /// Registers a target with its secrets (sealed) and the journal position it starts from.
    async fn create_target(
        &self,
        target: Target,
        secrets: TargetSecrets,
        cursor: u64,
    ) -> Result<Target>;
    /// Replaces a target's settings (and its secrets when given); `None` if there is no such target.
    async fn update_target(
        &self,
        target: Target,
        secrets: Option<TargetSecrets>,
    ) -> Result<Option<Target>>;
    async fn target(&self, id: &TargetId) -> Result<Option<Target>>;
    async fn targets(&self) -> Result<Vec<Target>>;
    /// Removes a target with its secrets, cursor, delivery log and dead letters.
    async fn delete_target(&self, id: &TargetId) -> Result<bool>;
    async fn target_secrets(&self, id: &TargetId) -> Result<Option<TargetSecrets>>;
    async fn target_cursor(&self, id: &TargetId) -> Result<Option<u64>>;
    /// One forwarder step in one transaction; `false` if the target was deleted meanwhile.
    async fn commit_target(&self, id: &TargetId, step: TargetCommit) -> Result<bool>;
    /// The last `limit` delivery attempts, newest first.
    async fn target_deliveries(&self, id: &TargetId, limit: usize) -> Result<Vec<TargetDelivery>>;
    /// How many dead letters the target holds, and the oldest `limit`.
    async fn dead_letters(&self, id: &TargetId, limit: usize) -> Result<(usize, Vec<DeadLetter>)>;
    /// Asks for dead letters (`ids`, or all) to be sent again; answers how many.
    async fn replay_dead_letters(&self, id: &TargetId, ids: Option<Vec<u64>>) -> Result<usize>;
    /// Removes every dead letter of the target; answers how many.
    async fn discard_dead_letters(&self, id: &TargetId) -> Result<usize>;
    // --- httppush: device keys (`bdk_…`, SHA-256 at rest) ---
    /// A new key for an existing device (`NotFound` otherwise); the key is answered once.
    async fn create_device_key(
        &self,
        device: &DeviceId,
        name: String,
        now: UnixNanos,
    ) -> Result<(DeviceKey, String)>;
    /// A device's keys, revoked ones included, oldest first.
    async fn device_keys(&self, device: &DeviceId) -> Result<Vec<DeviceKey>>;
    /// Revokes one of a device's keys; `None` if it has no such key.
    async fn revoke_device_key(
        &self,
        device: &DeviceId,
        id: &str,
        now: UnixNanos,
    ) -> Result<Option<DeviceKey>>;
    /// The description of the key `secret`, if it is one (revoked or not).
    async fn device_key(&self, secret: &str) -> Result<Option<DeviceKey>>;

    // --- energy imports --- (cursors of the Danish energy data imports; see `energy.rs`)
    /// Where the import named `key` stands (`eds/CO2Emis`, `eloverblik/571313…`); `None` before its first run.
    async fn energy_cursor(&self, key: &str) -> Result<Option<super::EnergyCursor>>;
    /// Every import's cursor, by key.
    async fn energy_cursors(&self) -> Result<Vec<(String, super::EnergyCursor)>>;
    /// Saves the import's cursor (after the points it covers are durable in the series store).
    async fn set_energy_cursor(&self, key: &str, cursor: super::EnergyCursor) -> Result<()>;
}

/// The embedded registry: one redb file, each call on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct RedbRegistry {
    inner: Arc<Registry>,
}

impl RedbRegistry {
    /// Opens (or creates) the registry file, its secrets sealed under `key` ([`Error::SecretsKey`] if `key`
    /// does not open those already sealed). Call it from outside the runtime or in `spawn_blocking`, or
    /// use [`RedbRegistry::open_async`].
    pub fn open(path: &Path, key: crate::SecretKey) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Registry::open_sealed(path, key)?),
        })
    }

    pub async fn open_async(path: &Path, key: crate::SecretKey) -> Result<Self> {
        let path = path.to_owned();
        run_blocking(move || Self::open(&path, key)).await
    }

    /// Whether the registry file at `path` (of a bydata not running) holds secrets sealed under some key:
    /// then only that key opens it. `false` if there is no file.
    pub fn holds_sealed_secrets(path: &Path) -> Result<bool> {
        super::unsealed::holds_sealed_secrets(path)
    }

    /// This registry as the shared port.
    pub fn shared(self) -> SharedRegistry {
        Arc::new(self)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Registry) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        // A change made inside an audit scope carries its entry into the transaction that makes it.
        let audit = Pending::current();
        run_blocking(move || Pending::enter(audit, || f(&inner))).await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task {
            detail: format!("registry call: {e}"),
        })?
}

#[async_trait::async_trait]
impl RegistryPort for RedbRegistry {
    async fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
        let id = id.clone();
        self.run(move |r| r.device(&id)).await
    }
    async fn devices(&self) -> Result<Vec<Device>> {
        self.run(move |r| r.devices()).await
    }
    async fn delete_device(&self, id: &DeviceId) -> Result<bool> {
        let id = id.clone();
        self.run(move |r| r.delete_device(&id)).await
    }
    async fn move_device(&self, id: &DeviceId, org: OrgId) -> Result<Option<Device>> {
        let id = id.clone();
        self.run(move |r| r.move_device(&id, org)).await
    }
    async fn set_codec(&self, id: &DeviceId, codec: Codec) -> Result<Option<Device>> {
        let id = id.clone();
        self.run(move |r| r.set_codec(&id, codec)).await
    }
    async fn rotate_credentials(&self, id: &DeviceId) -> Result<MqttCredentials> {
        let id = id.clone();
        self.run(move |r| r.rotate_credentials(&id)).await
    }
    async fn check_password(&self, id: &DeviceId, password: &str) -> Result<PasswordCheck> {
        let (id, password) = (id.clone(), password.to_owned());
        self.run(move |r| r.check_password(&id, &password)).await
    }
    async fn device_password_hash(&self, id: &DeviceId) -> Result<Option<String>> {
        let id = id.clone();
        self.run(move |r| r.device_password_hash(&id)).await
    }
    async fn device_identifiers(&self) -> Result<Vec<String>> {
        self.run(move |r| r.device_identifiers()).await
    }
    async fn status(&self, id: &DeviceId) -> Result<DeviceStatus> {
        let id = id.clone();
        self.run(move |r| r.status(&id)).await
    }
    async fn position(&self, consumer: &str) -> Result<u64> {
        let consumer = consumer.to_owned();
        self.run(move |r| r.position(&consumer)).await
    }
    async fn create_org(&self, org: Organisation) -> Result<Organisation> {
        self.run(move |r| r.create_org(org)).await
    }
    async fn org(&self, id: &OrgId) -> Result<Option<Organisation>> {
        let id = id.clone();
        self.run(move |r| r.org(&id)).await
    }
    async fn orgs(&self) -> Result<Vec<Organisation>> {
        self.run(move |r| r.orgs()).await
    }
    async fn org_contents(&self, id: &OrgId) -> Result<OrgContents> {
        let id = id.clone();
        self.run(move |r| r.org_contents(&id)).await
    }
    async fn delete_org(&self, id: &OrgId) -> Result<bool> {
        let id = id.clone();
        self.run(move |r| r.delete_org(&id)).await
    }
    async fn put_member(&self, member: Member) -> Result<Member> {
        self.run(move |r| r.put_member(member)).await
    }
    async fn remove_member(&self, org: &OrgId, member: &str) -> Result<bool> {
        let (org, member) = (org.clone(), member.to_owned());
        self.run(move |r| r.remove_member(&org, &member)).await
    }
    async fn members(&self) -> Result<Vec<Member>> {
        self.run(move |r| r.members()).await
    }
    async fn create_token(&self, new: NewToken, now: UnixNanos) -> Result<(TokenInfo, String)> {
        self.run(move |r| r.create_token(new, now)).await
    }
    async fn set_bootstrap_token(&self, token: &str, now: UnixNanos) -> Result<()> {
        let token = token.to_owned();
        self.run(move |r| r.set_bootstrap_token(&token, now)).await
    }
    async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        let token = token.to_owned();
        self.run(move |r| r.authenticate(&token)).await
    }
    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.run(move |r| r.tokens()).await
    }
    async fn has_admin_token(&self) -> Result<bool> {
        self.run(move |r| r.has_admin_token()).await
    }
    async fn token_series(&self, id: &str) -> Result<u64> {
        let id = id.to_owned();
        self.run(move |r| r.token_series(&id)).await
    }
    async fn add_token_series(&self, id: &str, n: u64) -> Result<()> {
        let id = id.to_owned();
        self.run(move |r| r.add_token_series(&id, n)).await
    }
    async fn revoke_token(&self, id: &str, now: UnixNanos) -> Result<Option<TokenInfo>> {
        let id = id.to_owned();
        self.run(move |r| r.revoke_token(&id, now)).await
    }
    async fn record_token_use(&self, uses: Vec<(String, UnixNanos)>) -> Result<()> {
        self.run(move |r| r.record_token_use(&uses)).await
    }
    async fn codec(&self, name: &CodecName, version: Option<u32>) -> Result<Option<StoredCodec>> {
        let name = name.clone();
        self.run(move |r| r.codec(&name, version)).await
    }
    async fn codec_latest_version(&self, name: &CodecName) -> Result<Option<u32>> {
        let name = name.clone();
        self.run(move |r| r.codec_latest_version(&name)).await
    }
    async fn codecs(&self) -> Result<Vec<CodecSummary>> {
        self.run(move |r| r.codecs()).await
    }
    async fn building(&self, id: &BuildingId) -> Result<Option<Building>> {
        let id = id.clone();
        self.run(move |r| r.building(&id)).await
    }
    async fn buildings(&self) -> Result<Vec<Building>> {
        self.run(move |r| r.buildings()).await
    }
    async fn delete_building(&self, id: &BuildingId) -> Result<bool> {
        let id = id.clone();
        self.run(move |r| r.delete_building(&id)).await
    }
    async fn dataset(&self, id: &str) -> Result<Option<StoredDataset>> {
        let id = id.to_owned();
        self.run(move |r| r.dataset(&id)).await
    }
    async fn datasets(&self) -> Result<Vec<StoredDataset>> {
        self.run(move |r| r.datasets()).await
    }
    async fn delete_dataset(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |r| r.delete_dataset(&id)).await
    }
    async fn gateway(&self, eui: &Eui64) -> Result<Option<Gateway>> {
        let eui = *eui;
        self.run(move |r| r.gateway(&eui)).await
    }
    async fn gateways(&self) -> Result<Vec<Gateway>> {
        self.run(move |r| r.gateways()).await
    }
    async fn delete_gateway(&self, eui: &Eui64) -> Result<bool> {
        let eui = *eui;
        self.run(move |r| r.delete_gateway(&eui)).await
    }
    async fn gateway_status(&self, eui: &Eui64) -> Result<GatewayStatus> {
        let eui = *eui;
        self.run(move |r| r.gateway_status(&eui)).await
    }
    async fn external_device(&self, dev_eui: &Eui64) -> Result<Option<ExternalDevice>> {
        let dev_eui = *dev_eui;
        self.run(move |r| r.external_device(&dev_eui)).await
    }
    async fn otaa_device(&self, dev_eui: &Eui64) -> Result<Option<OtaaDevice>> {
        let dev_eui = *dev_eui;
        self.run(move |r| r.otaa_device(&dev_eui)).await
    }
    async fn lorawan_session(&self, dev_addr: u32) -> Result<Option<LorawanSession>> {
        self.run(move |r| r.lorawan_session(dev_addr)).await
    }
    async fn lorawan_session_of(&self, device: &DeviceId) -> Result<Option<LorawanSession>> {
        let device = device.clone();
        self.run(move |r| r.lorawan_session_of(&device)).await
    }
    async fn advance_uplink_counters(
        &self,
        advances: Vec<CounterAdvance>,
    ) -> Result<Vec<Advanced>> {
        self.run(move |r| r.advance_uplink_counters(&advances))
            .await
    }
    fn lorawan_generation(&self) -> u64 {
        self.inner.lorawan_generation()
    }
    fn changes(&self) -> u64 {
        self.inner.changes()
    }
    async fn integration(&self, id: &IntegrationId) -> Result<Option<Integration>> {
        let id = id.clone();
        self.run(move |r| r.integration(&id)).await
    }
    async fn integrations(&self) -> Result<Vec<Integration>> {
        self.run(move |r| r.integrations()).await
    }
    async fn delete_integration(&self, id: &IntegrationId) -> Result<bool> {
        let id = id.clone();
        self.run(move |r| r.delete_integration(&id)).await
    }
    async fn check_integration_password(
        &self,
        id: &IntegrationId,
        password: &str,
    ) -> Result<PasswordCheck> {
        let (id, password) = (id.clone(), password.to_owned());
        self.run(move |r| r.check_integration_password(&id, &password))
            .await
    }
    async fn inbound_integration_password_hash(
        &self,
        id: &IntegrationId,
    ) -> Result<Option<String>> {
        let id = id.clone();
        self.run(move |r| r.inbound_integration_password_hash(&id))
            .await
    }
    async fn integration_remote_password(&self, id: &IntegrationId) -> Result<Option<String>> {
        let id = id.clone();
        self.run(move |r| r.integration_remote_password(&id)).await
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<u64> {
        self.run(move |r| r.append_audit(entry)).await
    }
    async fn audit(&self, filter: AuditFilter) -> Result<Vec<AuditEntry>> {
        self.run(move |r| r.audit(&filter)).await
    }

    async fn create_device(&self, device: Device) -> Result<(Device, MqttCredentials)> {
        self.run(move |r| r.create_device(device)).await
    }
    async fn create_devices(&self, devices: Vec<Device>) -> Result<Vec<(Device, MqttCredentials)>> {
        self.run(move |r| r.create_devices(devices)).await
    }
    async fn commit_ingest(
        &self,
        consumer: &str,
        position: u64,
        deltas: HashMap<DeviceId, DeviceStatus>,
    ) -> Result<()> {
        let consumer = consumer.to_owned();
        self.run(move |r| r.commit_ingest(&consumer, position, &deltas))
            .await
    }
    async fn add_statuses(&self, deltas: Vec<(DeviceId, DeviceStatus)>) -> Result<()> {
        self.run(move |r| r.add_statuses(deltas.iter().map(|(d, s)| (d, s))))
            .await
    }
    async fn record_redecode(
        &self,
        id: &DeviceId,
        codec: &str,
        from: UnixNanos,
        to: UnixNanos,
        times: Vec<UnixNanos>,
    ) -> Result<()> {
        let (id, codec) = (id.clone(), codec.to_owned());
        self.run(move |r| r.record_redecode(&id, &codec, from, to, &times))
            .await
    }
    async fn add_codec_version(
        &self,
        name: &CodecName,
        description: String,
        script: String,
        examples: serde_json::Value,
        org: OrgId,
        now: UnixNanos,
    ) -> Result<CodecAdded> {
        let name = name.clone();
        self.run(move |r| r.add_codec_version(&name, description, script, examples, org, now))
            .await
    }
    async fn create_building(&self, building: Building) -> Result<Building> {
        self.run(move |r| r.create_building(building)).await
    }
    async fn create_dataset(&self, dataset: StoredDataset) -> Result<StoredDataset> {
        self.run(move |r| r.create_dataset(dataset)).await
    }
    async fn create_gateway(&self, gateway: Gateway) -> Result<Gateway> {
        self.run(move |r| r.create_gateway(gateway)).await
    }
    async fn record_gateways(&self, deltas: Vec<(Eui64, GatewayStatus)>) -> Result<()> {
        self.run(move |r| r.record_gateways(&deltas)).await
    }
    async fn create_lorawan_device(
        &self,
        device: Device,
        session: LorawanSession,
    ) -> Result<Device> {
        self.run(move |r| r.create_lorawan_device(device, session))
            .await
    }
    async fn create_otaa_device(&self, device: Device, otaa: OtaaDevice) -> Result<Device> {
        self.run(move |r| r.create_otaa_device(device, otaa)).await
    }
    async fn create_external_lorawan_device(
        &self,
        device: Device,
        dev_eui: Eui64,
        integration: Option<IntegrationId>,
    ) -> Result<Device> {
        self.run(move |r| r.create_external_lorawan_device(device, dev_eui, integration))
            .await
    }
    async fn complete_join(
        &self,
        dev_eui: &Eui64,
        dev_nonce: u16,
        candidates: Vec<u32>,
        session: SessionForAddr,
    ) -> Result<Option<LorawanSession>> {
        let dev_eui = *dev_eui;
        self.run(move |r| r.complete_join(&dev_eui, dev_nonce, &candidates, session))
            .await
    }
    async fn create_integration(
        &self,
        integration: Integration,
        remote_password: Option<String>,
    ) -> Result<(Integration, Option<String>)> {
        self.run(move |r| r.create_integration(integration, remote_password))
            .await
    }

    async fn create_session(&self, session: Session) -> Result<String> {
        self.run(move |r| r.create_session(&session)).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>> {
        let id = id.to_owned();
        self.run(move |r| r.session(&id)).await
    }
    async fn touch_session(&self, id: &str, now: UnixNanos) -> Result<()> {
        let id = id.to_owned();
        self.run(move |r| r.touch_session(&id, now)).await
    }
    async fn delete_session(&self, id: &str) -> Result<Option<Session>> {
        let id = id.to_owned();
        self.run(move |r| r.delete_session(&id)).await
    }
    async fn purge_sessions(&self, now: UnixNanos, idle_before: UnixNanos) -> Result<usize> {
        self.run(move |r| r.purge_sessions(now, idle_before)).await
    }

    // --- downlinks ---
    async fn enqueue_downlink(&self, d: NewDownlink) -> Result<Downlink> {
        self.run(move |r| r.enqueue_downlink(d)).await
    }
    async fn downlinks(&self, device: &DeviceId) -> Result<Vec<Downlink>> {
        let device = device.clone();
        self.run(move |r| r.downlinks(&device)).await
    }
    async fn next_downlink(&self, device: &DeviceId) -> Result<Option<Downlink>> {
        let device = device.clone();
        self.run(move |r| r.next_downlink(&device)).await
    }
    async fn update_downlink(
        &self,
        device: &DeviceId,
        id: u64,
        update: DownlinkUpdate,
    ) -> Result<Option<Downlink>> {
        let device = device.clone();
        self.run(move |r| r.update_downlink(&device, id, update))
            .await
    }

    // --- lorawan-down ---
    async fn reserve_fcnt_down(
        &self,
        dev_addr: u32,
        device: &DeviceId,
        nwk_s_key: [u8; 16],
    ) -> Result<Option<u32>> {
        let device = device.clone();
        self.run(move |r| r.reserve_fcnt_down(dev_addr, &device, nwk_s_key))
            .await
    }

    // --- alerts ---
    async fn statuses_since(&self, cursor: StatusCursor) -> Result<StatusChanges> {
        self.run(move |r| r.statuses_since(cursor)).await
    }
    async fn gateway_statuses(&self) -> Result<Vec<(Eui64, GatewayStatus)>> {
        self.run(move |r| r.gateway_statuses()).await
    }
    async fn create_alert_rule(&self, rule: StoredAlertRule) -> Result<StoredAlertRule> {
        self.run(move |r| r.create_alert_rule(rule)).await
    }
    async fn update_alert_rule(&self, rule: StoredAlertRule) -> Result<Option<StoredAlertRule>> {
        self.run(move |r| r.update_alert_rule(rule)).await
    }
    async fn alert_rule(&self, id: &str) -> Result<Option<StoredAlertRule>> {
        let id = id.to_owned();
        self.run(move |r| r.alert_rule(&id)).await
    }
    async fn alert_rules(&self) -> Result<Vec<StoredAlertRule>> {
        self.run(move |r| r.alert_rules()).await
    }
    async fn delete_alert_rule(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |r| r.delete_alert_rule(&id)).await
    }
    async fn create_silence(&self, silence: StoredSilence) -> Result<StoredSilence> {
        self.run(move |r| r.create_silence(silence)).await
    }
    async fn silence(&self, id: &str) -> Result<Option<StoredSilence>> {
        let id = id.to_owned();
        self.run(move |r| r.silence(&id)).await
    }
    async fn silences(&self) -> Result<Vec<StoredSilence>> {
        self.run(move |r| r.silences()).await
    }
    async fn delete_silence(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |r| r.delete_silence(&id)).await
    }
    async fn alerts(&self) -> Result<Vec<StoredAlert>> {
        self.run(move |r| r.alerts()).await
    }
    async fn alert(&self, id: &str) -> Result<Option<StoredAlert>> {
        let id = id.to_owned();
        self.run(move |r| r.alert(&id)).await
    }
    async fn alert_history(&self, id: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        let id = id.to_owned();
        self.run(move |r| r.alert_history(&id, limit)).await
    }
    async fn commit_alerts(&self, commit: AlertCommit) -> Result<()> {
        self.run(move |r| r.commit_alerts(&commit)).await
    }
    async fn alert_outbox(&self) -> Result<Vec<PendingNotification>> {
        self.run(move |r| r.alert_outbox()).await
    }
    async fn alert_outbox_handed(&self, handed: Vec<(String, String)>) -> Result<()> {
        self.run(move |r| r.alert_outbox_handed(&handed)).await
    }

    // --- notify ---
    async fn create_channel(
        &self,
        channel: super::Channel,
        header_values: Vec<String>,
    ) -> Result<(super::Channel, Option<String>)> {
        self.run(move |r| r.create_channel(channel, header_values))
            .await
    }
    async fn channel(&self, id: &str) -> Result<Option<super::Channel>> {
        let id = id.to_owned();
        self.run(move |r| r.channel(&id)).await
    }
    async fn channels(&self) -> Result<Vec<super::Channel>> {
        self.run(move |r| r.channels()).await
    }
    async fn delete_channel(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.run(move |r| r.delete_channel(&id)).await
    }
    async fn webhook_secrets(&self, id: &str) -> Result<Option<super::WebhookSecrets>> {
        let id = id.to_owned();
        self.run(move |r| r.webhook_secrets(&id)).await
    }
    async fn enqueue_notifications(
        &self,
        notifications: Vec<super::Notification>,
        now: UnixNanos,
    ) -> Result<usize> {
        self.run(move |r| r.enqueue_notifications(notifications, now))
            .await
    }
    async fn enqueue_delivery(
        &self,
        notification: super::Notification,
        delivery: super::Delivery,
    ) -> Result<bool> {
        self.run(move |r| r.enqueue_delivery(notification, delivery))
            .await
    }
    async fn outbox(&self, now: UnixNanos) -> Result<super::Outbox> {
        self.run(move |r| r.outbox(now)).await
    }
    async fn create_deliveries(&self, deliveries: Vec<super::Delivery>) -> Result<()> {
        self.run(move |r| r.create_deliveries(deliveries)).await
    }
    async fn delivery_members(
        &self,
        delivery: &super::Delivery,
    ) -> Result<Vec<super::Notification>> {
        let delivery = delivery.clone();
        self.run(move |r| r.delivery_members(&delivery)).await
    }
    async fn record_attempt(
        &self,
        key: &str,
        attempt: super::Attempt,
    ) -> Result<Option<super::Delivery>> {
        let key = key.to_owned();
        self.run(move |r| r.record_attempt(&key, attempt)).await
    }
    async fn delivery_state(&self, key: &str) -> Result<Option<super::DeliveryState>> {
        let key = key.to_owned();
        self.run(move |r| r.delivery_state(&key)).await
    }
    async fn deliveries(&self) -> Result<Vec<super::Delivery>> {
        self.run(move |r| r.deliveries()).await
    }
    async fn prune_deliveries(&self, before: UnixNanos, keep: usize) -> Result<usize> {
        self.run(move |r| r.prune_deliveries(before, keep)).await
    }

    // --- forward (data targets) ---
    async fn create_target(
        &self,
        target: Target,
        secrets: TargetSecrets,
        cursor: u64,
    ) -> Result<Target> {
        self.run(move |r| r.create_target(target, secrets, cursor))
            .await
    }
    async fn update_target(
        &self,
        target: Target,
        secrets: Option<TargetSecrets>,
    ) -> Result<Option<Target>> {
        self.run(move |r| r.update_target(target, secrets)).await
    }
    async fn target(&self, id: &TargetId) -> Result<Option<Target>> {
        let id = id.clone();
        self.run(move |r| r.target(&id)).await
    }
    async fn targets(&self) -> Result<Vec<Target>> {
        self.run(move |r| r.targets()).await
    }
    async fn delete_target(&self, id: &TargetId) -> Result<bool> {
        let id = id.clone();
        self.run(move |r| r.delete_target(&id)).await
    }
    async fn target_secrets(&self, id: &TargetId) -> Result<Option<TargetSecrets>> {
        let id = id.clone();
        self.run(move |r| r.target_secrets(&id)).await
    }
    async fn target_cursor(&self, id: &TargetId) -> Result<Option<u64>> {
        let id = id.clone();
        self.run(move |r| r.target_cursor(&id)).await
    }
    async fn commit_target(&self, id: &TargetId, step: TargetCommit) -> Result<bool> {
        let id = id.clone();
        self.run(move |r| r.commit_target(&id, step)).await
    }
    async fn target_deliveries(&self, id: &TargetId, limit: usize) -> Result<Vec<TargetDelivery>> {
        let id = id.clone();
        self.run(move |r| r.target_deliveries(&id, limit)).await
    }
    async fn dead_letters(&self, id: &TargetId, limit: usize) -> Result<(usize, Vec<DeadLetter>)> {
        let id = id.clone();
        self.run(move |r| r.dead_letters(&id, limit)).await
    }
    async fn replay_dead_letters(&self, id: &TargetId, ids: Option<Vec<u64>>) -> Result<usize> {
        let id = id.clone();
        self.run(move |r| r.replay_dead_letters(&id, ids)).await
    }
    async fn discard_dead_letters(&self, id: &TargetId) -> Result<usize> {
        let id = id.clone();
        self.run(move |r| r.discard_dead_letters(&id)).await
    }

    // --- httppush: device keys ---
    async fn create_device_key(
        &self,
        device: &DeviceId,
        name: String,
        now: UnixNanos,
    ) -> Result<(DeviceKey, String)> {
        let device = device.clone();
        self.run(move |r| r.create_device_key(&device, name, now))
            .await
    }
    async fn device_keys(&self, device: &DeviceId) -> Result<Vec<DeviceKey>> {
        let device = device.clone();
        self.run(move |r| r.device_keys(&device)).await
    }
    async fn revoke_device_key(
        &self,
        device: &DeviceId,
        id: &str,
        now: UnixNanos,
    ) -> Result<Option<DeviceKey>> {
        let (device, id) = (device.clone(), id.to_owned());
        self.run(move |r| r.revoke_device_key(&device, &id, now))
            .await
    }
    async fn device_key(&self, secret: &str) -> Result<Option<DeviceKey>> {
        let secret = secret.to_owned();
        self.run(move |r| r.device_key(&secret)).await
    }

    // --- energy imports ---
    async fn energy_cursor(&self, key: &str) -> Result<Option<super::EnergyCursor>> {
        let key = key.to_owned();
        self.run(move |r| r.energy_cursor(&key)).await
    }
    async fn energy_cursors(&self) -> Result<Vec<(String, super::EnergyCursor)>> {
        self.run(move |r| r.energy_cursors()).await
    }
    async fn set_energy_cursor(&self, key: &str, cursor: super::EnergyCursor) -> Result<()> {
        let key = key.to_owned();
        self.run(move |r| r.set_energy_cursor(&key, &cursor)).await
    }
}

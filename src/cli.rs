//! The command line: `serve`, `config print`, `device add|list|status|rm` (through the HTTP API, so they
//! work while `serve` runs; in `cli/device.rs`), `sim` and `store verify`.
mod device;
mod show;

use crate::config::Config;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use device::{ApiArgs, DeviceCommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "bydata",
    version,
    about = "An IoT city-data platform: MQTT in, time series out, open data published"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: MQTT broker, ingest pipeline, store and HTTP API.
    Serve(ServeArgs),
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage devices of a running bydata.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Drive a running bydata with simulated city devices.
    Sim(SimArgs),
    /// Inspect the data directory of a stopped bydata.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Check every journal record and every series block against its checksum; exit 1 on any damage.
    Verify {
        /// The data directory to check (journal, series, registry), of a bydata that is not running.
        #[arg(long, env = "BYDATA_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A TOML config file (see `bydata config print`); flags override it.
    #[arg(long, env = "BYDATA_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Where bydata keeps everything: journal, series, registry, open-data files [default: ./data].
    #[arg(long, env = "BYDATA_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address of the MQTT broker devices connect to, HOST:PORT [default: 127.0.0.1:1883; 0.0.0.0:1883
    /// for every interface].
    #[arg(long, env = "BYDATA_MQTT_ADDR")]
    pub(crate) mqtt_addr: Option<SocketAddr>,
    /// Address devices connect to with MQTT over WebSockets (ws://HOST:PORT/mqtt), HOST:PORT [default:
    /// 127.0.0.1:8083].
    #[arg(long, env = "BYDATA_WS_ADDR")]
    pub(crate) ws_addr: Option<SocketAddr>,
    /// Address of the HTTP API, dashboard and open data, HOST:PORT [default: 127.0.0.1:8080].
    #[arg(long, env = "BYDATA_HTTP_ADDR")]
    pub(crate) http_addr: Option<SocketAddr>,
    /// Address of the LoRaWAN listener, Semtech UDP from registered gateways, HOST:PORT [default:
    /// 127.0.0.1:1700].
    #[arg(long, env = "BYDATA_LORAWAN_ADDR")]
    pub(crate) lorawan_addr: Option<SocketAddr>,
    /// Also run simulated devices in-process (their last 24 h backfilled), demo buildings, an open
    /// dataset and a dashboard link, so data is visible at once.
    #[arg(long)]
    pub(crate) demo: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the default configuration as commented TOML.
    Print,
}

#[derive(Debug, Args)]
struct SimArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The bydata MQTT broker.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt_addr: SocketAddr,
    /// Number of simulated devices (spread over climate sensors, electricity meters and traffic counters).
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Messages per second per device; 0 = as fast as the broker acknowledges.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seed of every random choice, so a run can be replayed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<u64>,
    /// Stop each device after this many messages.
    #[arg(long)]
    messages: Option<u64>,
    /// Prefix of the simulated device ids.
    #[arg(long, default_value = "sim")]
    id_prefix: String,
    /// Simulate LoRaWAN instead: gateways speaking Semtech UDP to bydata's LoRaWAN port, and devices (half
    /// ABP, half OTAA joining through bydata) sending encrypted Cayenne LPP frames heard by every gateway.
    #[arg(long)]
    lorawan: bool,
    /// bydata's Semtech UDP port (with --lorawan).
    #[arg(long, default_value = "127.0.0.1:1700")]
    lorawan_addr: SocketAddr,
    /// Simulated gateways (with --lorawan).
    #[arg(long, default_value_t = 2)]
    gateways: usize,
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::serve(args).await,
        Command::Config {
            command: ConfigCommand::Print,
        } => {
            print!("{}", Config::commented_default());
            Ok(())
        }
        Command::Device { command } => device::run(command).await,
        Command::Sim(args) => sim(args).await,
        Command::Store {
            command: StoreCommand::Verify { data_dir },
        } => verify(&data_dir),
    }
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    if args.lorawan {
        return sim_lorawan(args, shutdown).await;
    }
    let config = bydata_firmware_sim::FleetConfig {
        http_url: args.api.url,
        mqtt_addr: args.mqtt_addr,
        token: args.api.token,
        devices: args.devices,
        rate: args.rate,
        seed: args.seed,
        id_prefix: args.id_prefix,
        duration: args.duration.map(Duration::from_secs),
        max_messages_per_device: args.messages,
        backfill: None,
    };
    let report = bydata_firmware_sim::run_fleet(config, shutdown).await?;
    println!(
        "devices {} published {} acknowledged {} in {:.2} s: {:.0} acknowledged messages/s (QoS 1)",
        report.devices,
        report.published,
        report.acknowledged,
        report.elapsed.as_secs_f64(),
        report.acked_per_second()
    );
    Ok(())
}

async fn sim_lorawan(args: SimArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    use bydata_firmware_sim::lorawan::{LorawanFleetConfig, PayloadFormat, run_lorawan_fleet};
    let interval = if args.rate > 0.0 {
        Duration::from_secs_f64(1.0 / args.rate)
    } else {
        Duration::from_millis(10)
    };
    let config = LorawanFleetConfig {
        api_url: args.api.url,
        admin_token: args.api.token,
        udp_server: args.lorawan_addr,
        gateways: args.gateways.max(1),
        abp_devices: args.devices / 2,
        otaa_devices: args.devices - args.devices / 2,
        interval,
        prefix: args.id_prefix,
        seed: args.seed,
        payload: PayloadFormat::Cayenne,
        codec: None,
        duration: args.duration.map(Duration::from_secs),
        uplinks_per_device: args.messages,
    };
    let report = run_lorawan_fleet(config, shutdown).await?;
    println!(
        "gateways {} devices {} joins {} frames {} (lost {}) copies forwarded {} in {:.2} s: {:.0} frames/s",
        report.gateways,
        report.devices,
        report.joins,
        report.frames,
        report.frames_lost,
        report.forwarded,
        report.elapsed.as_secs_f64(),
        report.frames as f64 / report.elapsed.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// Opens the journal (which cuts a torn tail, as a restart would) and the series store, then reads every
/// record and decodes every block.
fn verify(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use bydata_store::journal::{Journal, JournalConfig};
    let journal = Journal::open(&data_dir.join("journal"), JournalConfig::default())
        .context("journal (is bydata still running on this data dir?)")?;
    let (mut offset, mut records) = (0u64, 0u64);
    loop {
        let (entries, next) = journal.read(offset, 10_000).context("journal record")?;
        if entries.is_empty() {
            break;
        }
        records += entries.len() as u64;
        offset = next;
    }
    // Verifying must not change what it verifies: no idle flush or merge while it reads.
    let quiet = bydata_store::EngineConfig {
        compact_when_idle: std::time::Duration::from_secs(365 * 86_400),
        ..bydata_store::EngineConfig::default()
    };
    let engine = bydata_store::EmbeddedEngine::open_with(&data_dir.join("series"), quiet)
        .context("series store (is bydata still running on this data dir?)")?;
    let report = engine.verify().context("series block")?;
    println!(
        "ok: journal {records} records ({offset} bytes); series {} in {} parts, {} blocks ({} points, {} bytes), {} rollup buckets ({} bytes), and {} points in the write-ahead log",
        report.series,
        report.parts,
        report.blocks,
        report.block_points,
        report.block_bytes,
        report.rollups,
        report.rollup_bytes,
        report.head_points
    );
    Ok(())
}

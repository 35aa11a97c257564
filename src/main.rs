//! `bydata`: the one binary. It parses the command line and config, opens the data directory, and wires the
//! crates together — the broker and the HTTP API at the edges, the ingest pipeline between journal and store.
mod alert_sink;
mod bootstrap;
mod cli;
mod config;
mod demo;
mod forward_hooks;
mod hooks;
mod metrics;
mod secrets;
mod serve;
mod supervise;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // rumqttd logs every ordinary disconnect at ERROR; bydata logs what matters about connections itself.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=off"));
    // Colours only for a terminal: redirected to a file or journald, escape codes are noise.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

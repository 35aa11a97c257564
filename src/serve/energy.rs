//! `serve`'s part for the Danish energy imports (`bydata-energy`): the refresh token read once at start, the
//! configuration checked before anything listens, and the imports run under supervision.
use crate::config::Config;
use crate::supervise::Supervisor;
use anyhow::Context;
use bydata_energy::RefreshToken;
use bydata_schemas::UnixNanos;
use bydata_store::{SeriesWriter, SharedRegistry};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `BYDATA_ELOVERBLIK_TOKEN`, else `[energy.eloverblik] token_file`; `None` when neither is set.
fn refresh_token(config: &Config) -> anyhow::Result<Option<RefreshToken>> {
    if let Ok(t) = std::env::var("BYDATA_ELOVERBLIK_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(Some(RefreshToken(t.trim().to_owned())));
    }
    match &config.energy.eloverblik.token_file {
        None => Ok(None),
        Some(path) => {
            let t = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "[energy.eloverblik] token_file {}: cannot read it",
                    path.display()
                )
            })?;
            anyhow::ensure!(
                !t.trim().is_empty(),
                "[energy.eloverblik] token_file {} is empty: put the refresh token from eloverblik.dk in it",
                path.display()
            );
            Ok(Some(RefreshToken(t.trim().to_owned())))
        }
    }
}

/// Checks `[energy]` and reads the token: a configuration that cannot work stops `serve` at start.
pub(super) fn prepare(config: &Config) -> anyhow::Result<Option<RefreshToken>> {
    config.energy.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = refresh_token(config)?;
    anyhow::ensure!(
        config.energy.eloverblik.metering_points.is_empty() || token.is_some(),
        "[energy.eloverblik] lists metering points but no refresh token: set token_file, or \
         BYDATA_ELOVERBLIK_TOKEN"
    );
    Ok(token)
}

/// Runs the imports, restarted after a failure (their cursors are in the registry, so they resume).
pub(super) fn start(
    supervisor: &mut Supervisor,
    config: &Config,
    deps: bydata_energy::Deps,
    shutdown: &CancellationToken,
) {
    let c = &config.energy;
    if !c.emission_factors.enabled && c.eloverblik.metering_points.is_empty() {
        return;
    }
    let (settings, stop) = (c.clone(), shutdown.child_token());
    supervisor.restartable("energy imports", stop.clone(), move || {
        let (settings, deps, stop) = (settings.clone(), deps.clone(), stop.clone());
        async move {
            bydata_energy::run(settings, deps, stop)
                .await
                .map_err(|e| e.to_string())
        }
    });
}

/// The imports' dependencies from what `serve` opened.
pub(super) fn deps(
    registry: SharedRegistry,
    writer: Arc<dyn SeriesWriter>,
    clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    metrics: Arc<bydata_energy::Metrics>,
    token: Option<RefreshToken>,
) -> bydata_energy::Deps {
    bydata_energy::Deps {
        registry,
        writer,
        clock,
        metrics,
        eloverblik_token: token,
    }
}

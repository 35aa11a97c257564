//! The schedule: one loop for the emission factors, one for Eloverblik, each run asking for what its cursor
//! says is missing (and a window back), writing the points, then committing the cursor.
use crate::config::{Config, EloverblikConfig, EmissionFactors, MeteringPoint};
use crate::eds::{self, Dataset, INTERVAL};
use crate::eloverblik::{self, RefreshToken};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use bydata_schemas::{MeasurementName, Point, SeriesKey, Unit, UnixNanos};
use bydata_store::{SeriesWriter, SharedRegistry};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MINUTE: UnixNanos = 60_000_000_000;
const HOUR: UnixNanos = 60 * MINUTE;
const DAY: UnixNanos = 24 * HOUR;
/// Records asked for per page of Energi Data Service (a day of both areas is 576).
const PAGE: usize = 10_000;
/// Most of a backlog one emission-factor request asks for, so catching up goes in steps the cursor records.
const EDS_STEP: UnixNanos = 7 * DAY;
/// How soon a metering point whose run failed is tried again (a busy DataHub, a building registered late).
const RETRY: Duration = Duration::from_secs(300);

/// What the imports need.
#[derive(Clone)]
pub struct Deps {
    pub registry: SharedRegistry,
    pub writer: Arc<dyn SeriesWriter>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub metrics: Arc<Metrics>,
    /// The Eloverblik refresh token; required when metering points are configured.
    pub eloverblik_token: Option<RefreshToken>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// Runs the configured imports until `shutdown`; returns at once when none is configured. A failed run is
/// logged, counted and noted in its cursor, and the next run tries again: only a configuration that cannot
/// work ends it with an error.
pub async fn run(config: Config, deps: Deps, shutdown: CancellationToken) -> Result<()> {
    config.check().map_err(Error::Config)?;
    let factors = config.emission_factors.enabled.then(|| {
        let (c, d, s) = (
            config.emission_factors.clone(),
            deps.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move { factors_loop(c, d, s).await })
    });
    let meters = if config.eloverblik.metering_points.is_empty() {
        None
    } else {
        let Some(token) = deps.eloverblik_token.clone() else {
            return Err(Error::Config(
                "[energy.eloverblik] lists metering points but no refresh token: set token_file, or \
                 BYDATA_ELOVERBLIK_TOKEN"
                    .to_owned(),
            ));
        };
        let (c, d, s) = (config.eloverblik.clone(), deps.clone(), shutdown.clone());
        Some(tokio::spawn(
            async move { meters_loop(c, d, token, s).await },
        ))
    };
    for task in [factors, meters].into_iter().flatten() {
        // A panic in a loop is a bug; the supervisor restarts the imports (cursors are in the registry).
        task.await
            .map_err(|e| Error::Config(format!("an energy import stopped: {e}")))?;
    }
    Ok(())
}

fn client(timeout_secs: u64) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("bydata/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| Error::Config("cannot build the HTTP client (TLS roots)".to_owned()))
}

/// Waits `wait`, or returns false at shutdown.
async fn pause(wait: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

async fn factors_loop(c: EmissionFactors, deps: Deps, shutdown: CancellationToken) {
    let http = match client(c.timeout_secs) {
        Ok(h) => h,
        Err(e) => return tracing::error!(error = %e, "emission factors are not imported"),
    };
    loop {
        for &dataset in &c.datasets {
            // Catching up goes step by step; each step's cursor is committed before the next.
            loop {
                if shutdown.is_cancelled() {
                    return;
                }
                match factors_step(&c, &deps, &http, dataset).await {
                    Ok(true) => continue,
                    Ok(false) | Err(_) => break,
                }
            }
        }
        if !pause(Duration::from_secs(c.every_secs), &shutdown).await {
            return;
        }
    }
}

/// One request's worth of `dataset`; true when more is due at once (a backlog).
async fn factors_step(
    c: &EmissionFactors,
    deps: &Deps,
    http: &reqwest::Client,
    dataset: Dataset,
) -> Result<bool> {
    let key = format!("eds/{}", dataset.name());
    let mut cursor = deps.registry.energy_cursor(&key).await?.unwrap_or_default();
    let now = (deps.clock)();
    let lower = now - i64::from(c.backfill_days) * DAY;
    let overlap = i64::from(c.overlap_minutes) * MINUTE;
    let from = floor(
        cursor
            .done_until
            .unwrap_or(lower)
            .min(now)
            .saturating_sub(overlap)
            .max(lower),
        INTERVAL,
    );
    let end = match dataset {
        Dataset::CO2Emis => now,
        Dataset::CO2EmisProg => now + i64::from(c.prognosis_hours) * HOUR,
    };
    let to = end.min(from + EDS_STEP);
    let fetched = eds::fetch(http, &c.url, dataset, &c.areas, (from, to), PAGE).await;
    cursor.last_run_at = Some(now);
    let outcome = match fetched {
        Ok(page) => {
            let points = page
                .factors
                .iter()
                .map(|f| Point {
                    series: key_of(
                        "emission_factor",
                        [("area", f.area.as_str()), ("source", dataset.name())],
                    ),
                    unit: Unit::new("g/kWh").ok(),
                    time: f.time,
                    value: f.g_per_kwh,
                })
                .collect::<Vec<_>>();
            let n = points.len() as u64;
            if !points.is_empty() {
                deps.writer.write(points).await?;
            }
            for r in &page.refused {
                tracing::warn!(dataset = dataset.name(), refused = %r, "emission factor record refused");
            }
            cursor.done_until = Some(cursor.done_until.unwrap_or(to).max(to.min(now)));
            cursor.points += n;
            cursor.refused += page.refused.len() as u64;
            cursor.last_error = None;
            deps.metrics.ran(
                dataset.name(),
                true,
                n,
                page.refused.len() as u64,
                page.empty,
            );
            Ok(to < end)
        }
        Err(e) => {
            tracing::warn!(dataset = dataset.name(), error = %e, "emission factors not fetched; the next run tries again");
            cursor.last_error = Some(e.to_string());
            deps.metrics.ran(dataset.name(), false, 0, 0, 0);
            Err(e)
        }
    };
    deps.registry.set_energy_cursor(&key, cursor).await?;
    outcome
}

async fn meters_loop(
    c: EloverblikConfig,
    deps: Deps,
    token: RefreshToken,
    shutdown: CancellationToken,
) {
    let http = match client(c.timeout_secs) {
        Ok(h) => h,
        Err(e) => return tracing::error!(error = %e, "Eloverblik is not imported"),
    };
    let api = eloverblik::Client::new(http, &c.url, c.api, token);
    let every = Duration::from_secs(c.every_secs);
    let mut next_full = tokio::time::Instant::now();
    let mut failed: Vec<&MeteringPoint> = Vec::new();
    loop {
        // Every `every_secs` all metering points; in between, the ones whose last run failed, sooner.
        let todo: Vec<&MeteringPoint> = if tokio::time::Instant::now() >= next_full {
            next_full = tokio::time::Instant::now() + every;
            c.metering_points.iter().collect()
        } else {
            std::mem::take(&mut failed)
        };
        failed.clear();
        for mp in todo {
            loop {
                if shutdown.is_cancelled() {
                    return;
                }
                match meter_step(&c, &deps, &api, mp).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(_) => {
                        failed.push(mp);
                        break;
                    }
                }
            }
        }
        let until_full = next_full.saturating_duration_since(tokio::time::Instant::now());
        let wait = match failed.is_empty() {
            true => until_full,
            false => until_full.min(RETRY),
        };
        if !pause(wait, &shutdown).await {
            return;
        }
    }
}

/// The Danish calendar date of an instant.
fn danish_date(t: UnixNanos) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_nanos(t)
        .with_timezone(&Copenhagen)
        .date_naive()
}

/// The instant a Danish date starts (midnight exists on every Danish date).
fn danish_midnight(d: NaiveDate) -> UnixNanos {
    Copenhagen
        .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(i64::MAX)
}

/// One request's worth of one metering point; true when more is due at once (a backlog).
async fn meter_step(
    c: &EloverblikConfig,
    deps: &Deps,
    api: &eloverblik::Client,
    mp: &MeteringPoint,
) -> Result<bool> {
    let key = format!("eloverblik/{}", mp.id);
    let mut cursor = deps.registry.energy_cursor(&key).await?.unwrap_or_default();
    let now = (deps.clock)();
    let today = danish_date(now);
    let lower = today - Days::new(u64::from(c.backfill_days));
    // Catching up continues where the last request ended; once caught up, each run asks for the last
    // `lookback_days` again (DataHub's values arrive late and are corrected).
    let from = cursor
        .done_until
        .map(|t| danish_date(t.min(now)).min(today - Days::new(u64::from(c.lookback_days))))
        .unwrap_or(lower)
        .max(lower);
    let end = today + Days::new(1);
    let to = (from + Days::new(u64::from(c.days_per_request))).min(end);
    cursor.last_run_at = Some(now);
    cursor.org = Some(mp.org.clone());
    let outcome = match import_meter(deps, api, mp, from, to).await {
        Ok((points, refused, missing)) => {
            let reached = danish_midnight(to).min(now);
            cursor.done_until = Some(cursor.done_until.unwrap_or(reached).max(reached));
            cursor.points += points;
            cursor.refused += refused;
            cursor.last_error = None;
            deps.metrics
                .ran("eloverblik", true, points, refused, missing);
            Ok(to < end)
        }
        Err(e) => {
            tracing::warn!(metering_point = %mp.id, error = %e, "Eloverblik not imported; the next run tries again");
            cursor.last_error = Some(e.to_string());
            deps.metrics.ran("eloverblik", false, 0, 0, 0);
            Err(e)
        }
    };
    deps.registry.set_energy_cursor(&key, cursor).await?;
    outcome
}

/// Fetches and writes one metering point's hours for `from..to`; answers (points, refused, missing).
async fn import_meter(
    deps: &Deps,
    api: &eloverblik::Client,
    mp: &MeteringPoint,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(u64, u64, u64)> {
    // The series are the building's, in its organisation: a building that is not there (or another org's)
    // would put a municipality's consumption where nobody looks, or where the wrong people do.
    match deps.registry.building(&mp.building).await? {
        None => {
            return Err(Error::Config(format!(
                "metering point {}: building {:?} is not registered; register it (POST /api/v1/buildings) or \
                 correct [[energy.eloverblik.metering_points]]",
                mp.id,
                mp.building.as_str()
            )));
        }
        Some(b) if b.org != mp.org => {
            return Err(Error::Config(format!(
                "metering point {}: building {:?} belongs to organisation {:?}, not {:?} as \
                 [[energy.eloverblik.metering_points]] says",
                mp.id,
                mp.building.as_str(),
                b.org.as_str(),
                mp.org.as_str()
            )));
        }
        Some(_) => {}
    }
    let data = api.time_series(&mp.id, from, to).await?;
    let (mut points, mut refused, mut missing) = (Vec::new(), 0u64, 0u64);
    for d in data {
        if d.metering_point != mp.id {
            // DataHub answers for what was asked; anything else is not this import's to write.
            continue;
        }
        if let Some(reason) = d.error {
            return Err(Error::Refused {
                metering_point: mp.id.clone(),
                reason,
            });
        }
        for r in &d.refused {
            tracing::warn!(metering_point = %mp.id, refused = %r, "Eloverblik value refused");
        }
        refused += d.refused.len() as u64;
        missing += d.missing;
        let series = key_of(
            "energy_kwh",
            [
                ("building", mp.building.as_str()),
                ("metering_point", mp.id.as_str()),
                ("org", mp.org.as_str()),
                ("reading", "interval"),
                ("source", "eloverblik"),
            ],
        );
        points.extend(d.hours.into_iter().map(|h| Point {
            series: series.clone(),
            unit: Unit::new("kWh").ok(),
            time: h.time,
            value: h.kwh,
        }));
    }
    let n = points.len() as u64;
    if !points.is_empty() {
        deps.writer.write(points).await?;
    }
    Ok((n, refused, missing))
}

fn floor(t: UnixNanos, step: UnixNanos) -> UnixNanos {
    t - t.rem_euclid(step)
}

fn key_of<const N: usize>(measurement: &str, tags: [(&str, &str); N]) -> SeriesKey {
    SeriesKey {
        measurement: MeasurementName::new(measurement).unwrap_or_else(|_| unreachable!()),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        field: MeasurementName::new(SeriesKey::DEFAULT_FIELD).unwrap_or_else(|_| unreachable!()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn danish_dates_and_midnights_follow_the_clock_change() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).expect("date");
        // 2026-10-25 00:00 CEST is 2026-10-24T22:00Z; the next midnight (CET) is 23:00Z, 25 hours later.
        let a = danish_midnight(d);
        let b = danish_midnight(d + Days::new(1));
        assert_eq!(b - a, 25 * HOUR);
        assert_eq!(danish_date(a), d);
        assert_eq!(danish_date(b - 1), d);
    }
}

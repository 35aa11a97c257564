#!/usr/bin/env bash
# A Grafana panel's query (hourly mean, 30 days, 100 series) through bydata's InfluxQL endpoint `/query`,
# beside the same query on `/api/v1/query` and VictoriaMetrics' `avg_over_time` (issue 17). Median and p90
# latency of the whole answer; the answers are checked against each other.
#   usage: [BYDATA_BIN=path] bench/influxql.sh [--repeats N]
# Installs VictoriaMetrics (Debian package victoria-metrics) if it is missing and builds bydata in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v victoria-metrics >/dev/null 2>&1; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing victoria-metrics (apt-get)" >&2
  "${sudo[@]}" apt-get install -y victoria-metrics >/dev/null ||
    { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y victoria-metrics >/dev/null; }
fi

# BYDATA_BIN=path uses an already built binary (e.g. target/debug/bydata where a release build is too slow).
bin=${BYDATA_BIN:-target/release/bydata}
[ -n "${BYDATA_BIN:-}" ] || cargo build --release --locked -q --bin bydata
exec python3 bench/influxql_bench.py --bydata "$bin" \
  --victoria-metrics "$(command -v victoria-metrics)" "$@"

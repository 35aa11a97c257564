#!/usr/bin/env bash
# Side-by-side store benchmark, bydata vs VictoriaMetrics, on one seeded line-protocol dataset
# (10,000 city sensor series, 20.4 M points at scale 1): ingest points/s and points per server CPU-second,
# bytes on disk per point, and the median latency of three queries on each. Loopback only, free ports,
# a temporary directory; both servers are stopped at the end (also on Ctrl-C or an error).
#   usage: bench/store.sh [--scale S] [--seed N] [--repeats R] [--json PATH] [--keep] ...
#   (bench/store_bench.py --help lists every option)
# Installs VictoriaMetrics (Debian package victoria-metrics) if it is missing and builds bydata in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v victoria-metrics >/dev/null 2>&1; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing victoria-metrics (apt-get)" >&2
  # The package ships a systemd unit; where systemd runs, it may start its own instance on :8428.
  # This benchmark never talks to that one: it starts its own on a free loopback port.
  "${sudo[@]}" apt-get install -y victoria-metrics >/dev/null ||
    { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y victoria-metrics >/dev/null; }
fi

cargo build --release --locked -q
exec python3 bench/store_bench.py --bydata target/release/bydata \
  --victoria-metrics "$(command -v victoria-metrics)" "$@"

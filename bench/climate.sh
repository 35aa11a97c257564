#!/usr/bin/env bash
# The climate team's benchmark (issue 5): monthly consumption per building, 400 buildings x one year of
# 15-minute meter readings, median query latency (goal < 100 ms). Builds bydata in release mode.
#   usage: bench/climate.sh [--buildings N] [--days D] [--repeats R]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q --bin bydata
exec python3 bench/climate_bench.py --bydata target/release/bydata "$@"

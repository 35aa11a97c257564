#!/usr/bin/env bash
# The climate team's benchmark (issues 5, 17): monthly consumption per building and the ranking per m², 400 buildings x one year of
# 15-minute meter readings, median query latency (goals: increase < 100 ms, the ranking < 10 ms). Builds bydata in release mode.
#   usage: bench/climate.sh [--buildings N] [--days D] [--repeats R]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q --bin bydata
exec python3 bench/climate_bench.py --bydata target/release/bydata "$@"

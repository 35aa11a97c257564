#!/usr/bin/env bash
# Open-data publication benchmark (issue 6): a year of hourly consumption for N meters published as 12 monthly
# periods in three formats; prints the first publication's time, a re-run's time and the bytes written.
#   usage: bench/opendata.sh [--buildings N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q --bin bydata
exec python3 bench/opendata_bench.py --bydata target/release/bydata "$@"

#!/usr/bin/env bash
# What authorization costs (issue 15): the same queries before organisations and now (platform key, an
# organisation's viewer key), side by side; and what 10,000 API keys cost in memory and disk. Builds bydata in
# release mode. For the side-by-side, give a release binary from before organisations:
#   usage: bench/authz.sh [--before PATH] [--devices N] [--series N] [--repeats R] [--keys K]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q --bin bydata
exec python3 bench/authz_bench.py --bydata target/release/bydata "$@"

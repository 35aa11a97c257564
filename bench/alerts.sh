#!/usr/bin/env bash
# Alert evaluation cost: one pass over 100k devices with silence rules (CPU, wall time, memory).
# usage: bench/alerts.sh [devices] [passes]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p bydata-alerts --example evaluate_100k
./target/release/examples/evaluate_100k "${1:-100000}" "${2:-50}"

#!/usr/bin/env bash
# Notification figures (issue 16): notifications/s to a webhook receiver on loopback through the durable outbox
# (each committed in redb before it is sent, each sent as its own signed POST, each attempt recorded), and the
# same number folded into one digest (the window is 1 s here, so that is most of its time).
#   usage: bench/notify.sh [notifications, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load before the run:$(uptime | sed "s/.*load average//")"
cargo run --release --locked -q -p bydata-notify --example notify_bench -- "${1:-2000}"

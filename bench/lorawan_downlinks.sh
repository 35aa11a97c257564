#!/usr/bin/env bash
# Class A downlink figures (issue 16): many ABP devices with a downlink queued through the API uplink at once
# through two simulated gateways and listen in RX1/RX2; prints how many downlinks each window delivered and
# how long before RX1 opened the PULL_RESP reached the gateway (bydata's margin), against a release bydata
# on free loopback ports.
#   usage: bench/lorawan_downlinks.sh [devices, default 100] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
devices="${1:-100}"; rounds="${2:-3}"
cargo build --release --locked -q --bin bydata --example lorawan_downlinks
tmp=$(mktemp -d)
port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
http="127.0.0.1:$(port tcp)"; mqtt="127.0.0.1:$(port tcp)"; udp="127.0.0.1:$(port udp)"
token="lorawan-downlinks-bench-token-0123456789"
BYDATA_ADMIN_TOKEN="$token" BYDATA_SECRETS_KEY="$(printf 'd4%.0s' $(seq 32))" target/release/bydata serve \
  --data-dir "$tmp/data" --http-addr "$http" --mqtt-addr "$mqtt" --lorawan-addr "$udp" >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 300); do curl -sf "http://$http/health" >/dev/null && break; sleep 0.1; done
echo "load before the run:$(uptime | sed "s/.*load average//")"
target/release/examples/lorawan_downlinks "$http" "$udp" "$token" "$devices" "$rounds"

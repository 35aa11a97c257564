#!/usr/bin/env bash
# LoRaWAN figures (issues 4, 13): frames/s through MIC + decrypt + Cayenne LPP on one core (the frame path),
# and end-to-end uplinks/s from simulated gateways (Semtech UDP) to stored values, counted through the API,
# against a release bydata on free loopback ports. The load: 16 gateways, each its own source address
# (127.0.0.2–17) and socket, each with 4 PUSH_DATA in flight carrying up to 8 rxpk, 256 ABP devices.
#   usage: bench/lorawan.sh [frames, default 100000] [gateways, default 16] [devices, default 256]
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-100000}"; gateways="${2:-16}"; devices="${3:-256}"
cargo build --release --locked -q --bin bydata --example lorawan_load
cargo run --release --locked -q -p bydata-ingest --example lorawan_frames 3
tmp=$(mktemp -d)
port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
http="127.0.0.1:$(port tcp)"; mqtt="127.0.0.1:$(port tcp)"; udp="127.0.0.1:$(port udp)"
token="lorawan-bench-admin-token-0123456789"
# The per-source rate limit (500 datagrams/s, bursts of 1,000) is lifted only to 2,000/s: each simulated gateway
# has its own source address, but pushes as fast as bydata acknowledges (~1,000 datagrams/s each when the edge
# reads 100k frames/s), far above what a real gateway's airtime allows; a dropped PUSH_DATA gets no PUSH_ACK
# and the load tool stops with an error rather than counting it.
printf '[lorawan]\ndatagrams_per_sec = 2000\n' >"$tmp/bydata.toml"
BYDATA_ADMIN_TOKEN="$token" target/release/bydata serve --config "$tmp/bydata.toml" --data-dir "$tmp/data" \
  --http-addr "$http" --mqtt-addr "$mqtt" --lorawan-addr "$udp" >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 300); do curl -sf "http://$http/health" >/dev/null && break; sleep 0.1; done
echo "load before the run:$(uptime | sed "s/.*load average//")"
target/release/examples/lorawan_load "$http" "$udp" "$token" "$frames" "$gateways" "$devices"

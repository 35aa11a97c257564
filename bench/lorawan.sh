#!/usr/bin/env bash
# LoRaWAN figures (issue 4): frames/s through MIC + decrypt + Cayenne LPP on one core, and end-to-end uplinks/s
# from a simulated gateway (Semtech UDP) to stored values, against a release bydata on free loopback ports.
#   usage: bench/lorawan.sh [frames, default 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-20000}"
cargo build --release --locked -q --bin bydata --example lorawan_load
cargo run --release --locked -q -p bydata-ingest --example lorawan_frames 3
tmp=$(mktemp -d)
port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
http="127.0.0.1:$(port tcp)"; mqtt="127.0.0.1:$(port tcp)"; udp="127.0.0.1:$(port udp)"
token="lorawan-bench-admin-token-0123456789"
# One simulated gateway sends every datagram: lift the per-source rate limit (500/s by default), which would
# otherwise drop them (a dropped PUSH_DATA gets no PUSH_ACK, and the load stops).
printf '[lorawan]\ndatagrams_per_sec = 1000000\n' >"$tmp/bydata.toml"
BYDATA_ADMIN_TOKEN="$token" target/release/bydata serve --config "$tmp/bydata.toml" --data-dir "$tmp/data" \
  --http-addr "$http" --mqtt-addr "$mqtt" --lorawan-addr "$udp" >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 300); do curl -sf "http://$http/health" >/dev/null && break; sleep 0.1; done
target/release/examples/lorawan_load "$http" "$udp" "$token" "$frames"

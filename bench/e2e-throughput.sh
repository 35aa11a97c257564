#!/usr/bin/env bash
# End-to-end ingest throughput: a release `bydata serve` on free ports in a temporary data dir, then
# `bydata sim` with N devices publishing at QoS 1 as fast as acknowledgements allow. Prints the simulator's
# acknowledged messages/s and how long ingest needed to store them all.
#   usage: bench/e2e-throughput.sh [devices=100] [messages per device=300]
set -euo pipefail
cd "$(dirname "$0")/.."
devices=${1:-100}
messages=${2:-300}
cargo build --release --locked -q
bin=target/release/bydata
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=127.0.0.1:$(free_port); mqtt=127.0.0.1:$(free_port)
export BYDATA_ADMIN_TOKEN=bench-admin-token-0123456789
$bin serve --data-dir "$dir/data" --http-addr "$http" --mqtt-addr "$mqtt" >/dev/null 2>"$dir/serve.log" &
pid=$!
for _ in $(seq 100); do curl -fs "http://$http/health" >/dev/null && break; sleep 0.1; done
start=$(date +%s.%N)
$bin sim --url "http://$http" --mqtt-addr "$mqtt" --devices "$devices" --rate 0 --messages "$messages" --seed 1
want=$((devices * messages))
stored() { curl -fs "http://$http/metrics" | awk '/^bydata_ingest_messages_total\{outcome="decoded"\}/ {print $2}'; }
until [ "$(stored)" -ge "$want" ]; do sleep 0.05; done
end=$(date +%s.%N)
echo "stored $want messages ($((want * 2)) values, or more) end to end in $(echo "$end - $start" | bc) s (onboarding included):" \
  "$(echo "$want / ($end - $start)" | bc) messages/s"
echo "data dir: $(du -sh "$dir/data" | cut -f1)"

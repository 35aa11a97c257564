#!/usr/bin/env bash
# Forwarding benchmark (issue 16): a `bydata serve` on free ports in a temporary data dir, an HTTP data target
# pointing at a receiver on loopback (Python's threading HTTP server, answering 200 and counting readings),
# then `bydata sim` with N devices publishing M messages each at QoS 1 as fast as acknowledged. Prints:
#   1. ingest throughput (messages stored per second) and, in the same run, forwarding throughput (readings
#      accepted by the receiver per second, from the first message to the target caught up);
#   2. catch-up after an outage: the receiver stopped, N×M more messages ingested, the receiver started again,
#      and the time until the target's cursor reaches the journal's end (readings per second).
#   usage: bench/forward.sh [devices=50] [messages per device=200] [batch size=500]
#   BYDATA_BIN=target/debug/bydata uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
devices=${1:-50}
messages=${2:-200}
batch=${3:-500}
if [ -n "${BYDATA_BIN:-}" ]; then
  bin=$BYDATA_BIN
else
  cargo build --release --locked -q --bin bydata
  bin=target/release/bydata
fi
dir=$(mktemp -d)
pid=""; rpid=""
trap 'kill $pid $rpid 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=127.0.0.1:$(free_port); mqtt=127.0.0.1:$(free_port); lora=127.0.0.1:$(free_port); rport=$(free_port)
cat > "$dir/receiver.py" <<'PY'
import http.server, json, sys, threading
count = 0
lock = threading.Lock()
class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n = len(json.loads(body)["readings"])
        with lock:
            count += n
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def do_GET(self):
        text = str(count).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(text))); self.end_headers(); self.wfile.write(text)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
start_receiver() { python3 "$dir/receiver.py" "$rport" & rpid=$!; for _ in $(seq 100); do curl -fs "http://127.0.0.1:$rport/" >/dev/null && break; sleep 0.05; done; }
export BYDATA_ADMIN_TOKEN=bench-admin-token-0123456789
export BYDATA_SECRETS_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
auth="Authorization: Bearer $BYDATA_ADMIN_TOKEN"
$bin serve --data-dir "$dir/data" --http-addr "$http" --mqtt-addr "$mqtt" --lorawan-addr "$lora" >/dev/null 2>"$dir/serve.log" &
pid=$!
for _ in $(seq 200); do curl -fs "http://$http/health" >/dev/null && break; sleep 0.1; done
start_receiver
curl -fs -H "$auth" -H 'Content-Type: application/json' "http://$http/api/v1/targets" \
  -d "{\"id\": \"bench\", \"name\": \"bench\", \"kind\": \"http\", \"url\": \"http://127.0.0.1:$rport/hook\", \"batch_size\": $batch, \"max_delay_ms\": 200}" >/dev/null
metric() { curl -fs "http://$http/metrics" | awk -v m="$1" 'index($0, m) == 1 {print $2}'; }
stored() { metric 'bydata_ingest_messages_total{outcome="decoded"}'; }
forwarded() { metric 'bydata_forward_readings_total{kind="http"}'; }
lag() { curl -fs -H "$auth" "http://$http/api/v1/targets/bench" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["lag_entries"])'; }
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }

want=$((devices * messages))
t0=$(now)
$bin sim --url "http://$http" --mqtt-addr "$mqtt" --devices "$devices" --rate 0 --messages "$messages" --seed 1 >/dev/null 2>&1
until [ "$(stored)" -ge "$want" ]; do sleep 0.05; done
t_ingest=$(now)
until [ "$(lag)" -eq 0 ]; do sleep 0.05; done
t_fwd=$(now)
readings=$(forwarded)
echo "1. $want messages from $devices devices (QoS 1, as fast as acknowledged), batch size $batch:"
echo "   ingest (stored):       $(rate "$want" "$t0" "$t_ingest") messages/s"
echo "   forwarded (HTTP 200):  $readings readings in $(python3 -c "print(round($t_fwd - $t0, 2))") s = $(rate "$readings" "$t0" "$t_fwd") readings/s (receiver counted $(curl -fs "http://127.0.0.1:$rport/"))"

kill $rpid; wait $rpid 2>/dev/null || true; rpid=""
$bin sim --url "http://$http" --mqtt-addr "$mqtt" --devices "$devices" --rate 0 --messages "$messages" --seed 2 --id-prefix out >/dev/null 2>&1
until [ "$(stored)" -ge "$((2 * want))" ]; do sleep 0.05; done
behind=$(lag)
before=$(forwarded)
start_receiver
t1=$(now)
# A test message that gets through wakes the target at once instead of at its next retry (backoff).
curl -fs -X POST -H "$auth" "http://$http/api/v1/targets/bench/test" >/dev/null
until [ "$(lag)" -eq 0 ]; do sleep 0.05; done
t2=$(now)
caught=$(( $(forwarded) - before ))
echo "2. catch-up: receiver down while $want more messages were ingested ($behind journal entries behind);"
echo "   after it returned: $caught readings in $(python3 -c "print(round($t2 - $t1, 2))") s = $(rate "$caught" "$t1" "$t2") readings/s"
echo "   RSS of bydata at the end: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status); peak $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"

#!/usr/bin/env bash
# HTTP device push with durable acknowledgement (issue 16) beside MQTT QoS 1, against one release
# `bydata serve` on free ports in a temporary data dir:
#   1. N devices onboarded; `wrk` pushes flat JSON as those devices (HTTP Basic, each request the next device
#      in turn, over C keep-alive connections) for S seconds. Each 202 means the uplink is in the journal —
#      what a PUBACK means. Prints requests/s, latency and any answer that was not 202, and checks that the
#      journal counted every 202 (`bydata_http_push_uplinks_journaled_total`).
#   2. Against the same server, `bydata sim` with N devices publishing at QoS 1 as fast as PUBACKs come, for
#      S seconds. Prints acknowledged messages/s.
#   usage: bench/http_push.sh [devices=100] [seconds=10] [connections=64] [wrk threads=2]
# `wrk` is Debian's (apt-get install wrk). BYDATA_BIN=path skips the release build (e.g. a debug binary, whose
# figures are then not comparable).
set -euo pipefail
cd "$(dirname "$0")/.."
devices=${1:-100}
seconds=${2:-10}
connections=${3:-64}
threads=${4:-2}
command -v wrk >/dev/null || { echo "bench/http_push.sh needs wrk: apt-get install wrk" >&2; exit 1; }
if [ -z "${BYDATA_BIN:-}" ]; then
  cargo build --release --locked -q --bin bydata
  bin=target/release/bydata
else
  bin=$BYDATA_BIN
fi
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=127.0.0.1:$(free_port); mqtt=127.0.0.1:$(free_port); udp=127.0.0.1:$(free_port)
export BYDATA_ADMIN_TOKEN=bench-admin-token-0123456789
RUST_LOG=warn $bin serve --data-dir "$dir/data" --http-addr "$http" --mqtt-addr "$mqtt" --lorawan-addr "$udp" \
  >/dev/null 2>"$dir/serve.log" &
pid=$!
for _ in $(seq 100); do curl -fs "http://$http/health" >/dev/null && break; sleep 0.1; done
metric() { curl -fs "http://$http/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# Onboard the devices; the Lua script gets each one's path and Basic credentials.
python3 - "$http" "$devices" "$dir/push.lua" <<'EOF'
import base64, json, sys, urllib.request
http, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
token = "bench-admin-token-0123456789"
creds = []
for i in range(n):
    body = json.dumps({"id": f"push-{i}", "name": f"push {i}", "transport": "mqtt", "domain": "building"})
    req = urllib.request.Request(f"http://{http}/api/v1/devices", body.encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    password = json.load(urllib.request.urlopen(req))["mqtt"]["password"]
    basic = base64.b64encode(f"push-{i}:{password}".encode()).decode()
    creds.append((f"/api/v1/devices/push-{i}/up", f"Basic {basic}"))
# Each device logs in once (an Argon2 check; remembered after), so the timed run measures pushes.
for path, auth in creds:
    req = urllib.request.Request(f"http://{http}{path}", b'{"temperature": 20}', method="POST",
                                 headers={"Authorization": auth, "Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 202
with open(out, "w") as f:
    f.write("local devices = {\n")
    for path, auth in creds:
        f.write(f'  {{"{path}", "{auth}"}},\n')
    f.write("}\n")
    f.write(r'''
local n = 0
local other = 0
request = function()
  n = n + 1
  local d = devices[(n % #devices) + 1]
  local body = string.format('{"temperature": %.1f, "seq": %d}', 20 + (n % 50) / 10, n)
  return wrk.format("POST", d[1], {["Authorization"] = d[2], ["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  if status ~= 202 then
    other = other + 1
    if other <= 3 then io.stderr:write("answer " .. status .. ": " .. body .. "\n") end
  end
end
''')
EOF

before=$(metric bydata_http_push_uplinks_journaled_total)
echo "== HTTP push: $devices devices, $connections keep-alive connections, $threads wrk threads, ${seconds}s"
wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$dir/push.lua" "http://$http" | tee "$dir/wrk.out"
after=$(metric bydata_http_push_uplinks_journaled_total)
requests=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
non202=$(awk '/Non-2xx/ {print $NF}' "$dir/wrk.out"); non202=${non202:-0}
echo "journaled during the run: $((after - before)); wrk counted $requests answers, $non202 not 2xx" \
  "(requests still in flight when wrk stops are journaled but not counted)"
echo "password checks: $(curl -fs "http://$http/metrics" | grep '^bydata_http_push_password_checks_total' | tr '\n' ' ')"

echo "== MQTT QoS 1: $devices devices (bydata sim), ${seconds}s"
$bin sim --url "http://$http" --mqtt-addr "$mqtt" --devices "$devices" --rate 0 --duration "$seconds" --seed 1 \
  --id-prefix mqttbench
echo "ingest lag at the end: $(curl -fs "http://$http/ready" | head -c 300)"

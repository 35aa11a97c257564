#!/usr/bin/env python3
"""A Grafana panel's query through bydata's InfluxQL endpoint, beside the same query on /api/v1/query and
VictoriaMetrics' equivalent (issue 17).

The panel: the hourly mean of 100 series over 30 days (100 series x 720 buckets), grouped by series. The data:
100 temperature sensors, one reading every 5 minutes for 30 days (864,000 points), written once as line
protocol into a fresh bydata and a fresh VictoriaMetrics on free loopback ports. Each query runs --repeats
times after two warm-ups; the median and p90 wall latency of the whole HTTP answer are printed, and the
answers are checked against each other (bydata's two endpoints must agree exactly; VictoriaMetrics'
avg_over_time looks back over (t-1h, t], so it is asked with `offset 1ms` at each bucket's end: [t-1h, t)).

    usage: bench/influxql_bench.py --bydata target/release/bydata [--victoria-metrics PATH] [--repeats N]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

TOKEN = "bench-influxql-admin-token-0123456789"
SERIES = 100
DAYS = 30
STEP_S = 300
START = 1_790_812_800  # 2026-10-01T00:00:00Z


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, r.read()


def wait_ready(url: str, proc: subprocess.Popen, what: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if http(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} not ready within {limit_s} s")


def lines() -> list[bytes]:
    """Line protocol in batches of 10,000 lines; values vary by sensor and time of day."""
    batches, batch = [], []
    for s in range(SERIES):
        for i in range(DAYS * 86_400 // STEP_S):
            t = START + i * STEP_S
            v = 20 + (s % 7) + ((i * 37 + s * 11) % 100) / 50
            batch.append(f"temperature,sensor=s{s:03d} value={v:.2f} {t}")
            if len(batch) == 10_000:
                batches.append("\n".join(batch).encode())
                batch = []
    if batch:
        batches.append("\n".join(batch).encode())
    return batches


def timed(fn, repeats: int) -> tuple[list[float], object]:
    for _ in range(2):
        answer = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        answer = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, answer


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bydata", required=True)
    ap.add_argument("--victoria-metrics", default=shutil.which("victoria-metrics"))
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="influxql-bench-")
    procs: list[subprocess.Popen] = []

    def stop_all(*_):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGINT, lambda *_: (stop_all(), sys.exit(130)))
    try:
        bport, mport, vport = free_port(), free_port(), free_port()
        blog = open(os.path.join(tmp, "bydata.log"), "w")
        procs.append(subprocess.Popen(
            [args.bydata, "serve", "--data-dir", os.path.join(tmp, "bydata"), "--http-addr", f"127.0.0.1:{bport}",
             "--mqtt-addr", f"127.0.0.1:{mport}"],
            env={**os.environ, "BYDATA_ADMIN_TOKEN": TOKEN}, stdout=blog, stderr=subprocess.STDOUT))
        wait_ready(f"http://127.0.0.1:{bport}/health", procs[-1], "bydata")
        vm = None
        if args.victoria_metrics:
            vlog = open(os.path.join(tmp, "vm.log"), "w")
            vm = subprocess.Popen(
                [args.victoria_metrics, f"-storageDataPath={os.path.join(tmp, 'vm')}",
                 f"-httpListenAddr=127.0.0.1:{vport}", "-retentionPeriod=100y", "-search.disableCache",
                 "-search.latencyOffset=1s", "-selfScrapeInterval=0s", "-loggerLevel=WARN"],
                stdout=vlog, stderr=subprocess.STDOUT)
            procs.append(vm)
            wait_ready(f"http://127.0.0.1:{vport}/health", vm, "VictoriaMetrics")

        batches = lines()
        points = sum(b.count(b"\n") + 1 for b in batches)
        print(f"data: {SERIES} series x {DAYS} days every {STEP_S // 60} min = {points:,} points", file=sys.stderr)
        auth = {"Authorization": f"Token {TOKEN}"}
        for b in batches:
            http(f"http://127.0.0.1:{bport}/api/v2/write?bucket=city&precision=s", b, auth, "POST")
            if vm:
                http(f"http://127.0.0.1:{vport}/write?precision=s", b, {}, "POST")
        if vm:
            http(f"http://127.0.0.1:{vport}/internal/force_flush")

        end = START + DAYS * 86_400
        q = (f'SELECT mean("value") FROM "temperature" WHERE time >= {START * 1000}ms and time <= '
             f'{end * 1000 - 1}ms GROUP BY time(1h), "sensor" fill(null)')
        influx_url = f"http://127.0.0.1:{bport}/query?" + urllib.parse.urlencode(
            {"db": "bydata", "epoch": "ms", "q": q})
        native_url = f"http://127.0.0.1:{bport}/api/v1/query?" + urllib.parse.urlencode({
            "measurement": "temperature", "every": "1h", "fn": "mean", "group_by": "sensor", "tz": "UTC",
            "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START)),
            "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))})
        vm_url = f"http://127.0.0.1:{vport}/api/v1/query_range?" + urllib.parse.urlencode({
            "query": "avg_over_time(temperature_value[1h] offset 1ms)", "start": START + 3600, "end": end, "step": "1h"})

        def get(url, headers=None):
            return lambda: json.loads(http(url, headers=headers)[1])

        rows = []
        t_influx, a_influx = timed(get(influx_url, auth), args.repeats)
        rows.append(("bydata GET /query (InfluxQL)", t_influx))
        t_native, a_native = timed(get(native_url, auth), args.repeats)
        rows.append(("bydata GET /api/v1/query", t_native))
        if vm:
            t_vm, a_vm = timed(get(vm_url), args.repeats)
            rows.append(("VictoriaMetrics query_range avg_over_time", t_vm))

        # The answers agree: 100 series x 720 hours each, the same means.
        series = a_influx["results"][0]["series"]
        assert len(series) == SERIES and all(len(s["values"]) == DAYS * 24 for s in series), "InfluxQL shape"
        by_sensor = {s["tags"]["sensor"]: [v[1] for v in s["values"]] for s in series}
        native = {s["tags"]["sensor"]: [p["value"] for p in s["points"]] for s in a_native["series"]}
        for k, vals in by_sensor.items():
            assert all(abs(a - b) < 1e-6 for a, b in zip(vals, native[k])), f"/query and /api/v1/query differ on {k}"
        if vm:
            vms = {r["metric"]["sensor"]: [float(v[1]) for v in r["values"]] for r in a_vm["data"]["result"]}
            for k, vals in by_sensor.items():
                assert all(abs(a - b) < 1e-6 for a, b in zip(vals, vms[k])), f"VictoriaMetrics differs on {k}"

        print(f"hourly mean, {DAYS} days, {SERIES} series ({SERIES * DAYS * 24:,} values), {args.repeats} runs:")
        for name, t in rows:
            t.sort()
            print(f"  {name:45} median {statistics.median(t):8.1f} ms   p90 {t[int(len(t) * 0.9) - 1]:8.1f} ms")
        print(f"  answer sizes: /query {len(json.dumps(a_influx)):,} B, /api/v1/query {len(json.dumps(a_native)):,} B")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())

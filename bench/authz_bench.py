#!/usr/bin/env python3
"""What authorization costs (issue 15): the same queries through the API of bydata before organisations (a
release binary given with --before) and now — as the platform admin key (no scope: a key lookup and the route's
policy) and as a viewer key of an organisation (its series scope: its organisations' devices, read per request)
— median and p95 latency over the same data, side by side in one run; then the memory and disk that 10,000 API
keys cost, and the latency of a query with them in the registry.

Data: `devices` registered MQTT devices (the scope lists them) and `series` meter series of one day of minute
readings written as line protocol. Queries: hourly means of every series (`all`), and one series' raw points
(`one`, where the fixed costs show).

    python3 bench/authz_bench.py --bydata target/release/bydata [--before /tmp/bydata-before]
        [--devices 200] [--series 200] [--repeats 60] [--keys 10000]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import store_bench as sb  # noqa: E402

ADMIN = "bench-admin-token-0123456789"
SECRETS_KEY = "11" * 32
DAY_START = 1_764_547_200  # 2025-12-01T00:00:00Z


class Api:
    """One keep-alive connection to a server."""

    def __init__(self, port: int):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, key: str, body: bytes | None = None,
             ctype: str = "application/json") -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {key}"}
        if body is not None:
            headers["Content-Type"] = ctype
        self.c.request(method, path, body=body, headers=headers)
        r = self.c.getresponse()
        return r.status, r.read()

    def ok(self, method: str, path: str, key: str, body: object = None, ctype: str = "application/json") -> dict:
        raw = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        status, answer = self.call(method, path, key, raw, ctype)
        if status >= 300:
            raise sb.BenchError(f"{method} {path}: {status} {answer[:300]!r}")
        return json.loads(answer) if answer else {}


def start(name: str, binary: str, work: str) -> sb.Server:
    data = os.path.join(work, name)
    ports = [sb.free_port() for _ in range(3)]
    env = dict(os.environ, BYDATA_ADMIN_TOKEN=ADMIN, BYDATA_SECRETS_KEY=SECRETS_KEY,
               XDG_CONFIG_HOME=os.path.join(work, "config"), RUST_LOG="warn")
    server = sb.Server(name, [binary, "serve", "--data-dir", data, "--http-addr", f"127.0.0.1:{ports[0]}",
                              "--mqtt-addr", f"127.0.0.1:{ports[1]}", "--lorawan-addr", f"127.0.0.1:{ports[2]}"],
                       env, os.path.join(work, f"{name}.log"), ports[0], "/health")
    server.start()
    server.data = data  # type: ignore[attr-defined]
    return server


def load(api: Api, devices: int, series: int) -> None:
    for d in range(devices):
        api.ok("POST", "/api/v1/devices", ADMIN,
               {"id": f"dev-{d:04}", "name": f"device {d}", "transport": "mqtt", "domain": "energy"})
    for s0 in range(0, series, 20):
        lines = []
        for s in range(s0, min(series, s0 + 20)):
            for m in range(1440):
                lines.append(f"power,meter=m{s:04} kw={(s % 17) + (m % 60) / 60:.3f} {DAY_START + 60 * m}")
        api.ok("POST", "/api/v2/write?bucket=city&precision=s", ADMIN, "\n".join(lines).encode(), "text/plain")


QUERIES = {
    "all": "/api/v1/query?measurement=power&field=kw&every=1h&fn=mean"
           "&from=2025-12-01T00:00:00Z&to=2025-12-02T00:00:00Z&tz=UTC",
    "one": "/api/v1/query?measurement=power&field=kw&tag.meter=m0001"
           "&from=2025-12-01T00:00:00Z&to=2025-12-01T01:00:00Z",
}


def latency(api: Api, path: str, key: str, repeats: int) -> tuple[float, float, int]:
    """(median ms, p95 ms, answer bytes) after two warm-up calls."""
    size = 0
    for _ in range(2):
        status, body = api.call("GET", path, key)
        if status != 200:
            raise sb.BenchError(f"GET {path}: {status} {body[:200]!r}")
        size = len(body)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        status, body = api.call("GET", path, key)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200 and len(body) == size, (status, len(body), size)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], size


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bydata", default="target/release/bydata")
    ap.add_argument("--before", help="a release binary from before organisations, for the side-by-side")
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--keys", type=int, default=10_000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bydata-authz-")
    rows = []
    try:
        runs = ([("before", a.before)] if a.before else []) + [("now", a.bydata)]
        for name, binary in runs:
            server = start(name, binary, work)
            api = Api(server.port)
            load(api, a.devices, a.series)
            principals = [("admin key", ADMIN)]
            if name == "now":
                viewer = api.ok("POST", "/api/v1/tokens", ADMIN,
                                {"name": "viewer", "role": "viewer", "org": "default"})["token"]
                principals.append(("org viewer key", viewer))
            for who, key in principals:
                for q, path in QUERIES.items():
                    med, p95, size = latency(api, path, key, a.repeats)
                    rows.append((name, who, q, med, p95, size))
            if name == "now":
                keys_row = keys_cost(api, server, a.keys, a.repeats)
            server.stop()
        print(f"\nauthorization: {a.devices} devices, {a.series} series x 1440 minute points, "
              f"{a.repeats} repeats per query (ms)")
        print(f"{'binary':8} {'principal':16} {'query':5} {'median':>8} {'p95':>8} {'bytes':>8}")
        for name, who, q, med, p95, size in rows:
            print(f"{name:8} {who:16} {q:5} {med:8.2f} {p95:8.2f} {size:8}")
        print("\n" + keys_row)
    finally:
        sb.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def keys_cost(api: Api, server: sb.Server, keys: int, repeats: int) -> str:
    registry = os.path.join(server.data, "registry.redb")  # type: ignore[attr-defined]
    rss0, disk0 = rss_kib(server.pid), os.path.getsize(registry)
    t = time.perf_counter()
    last = ""
    for i in range(keys):
        last = api.ok("POST", "/api/v1/tokens", ADMIN,
                      {"name": f"key {i}", "role": "viewer", "org": "default"})["token"]
    made = time.perf_counter() - t
    for _ in range(3):
        latency(api, QUERIES["one"], last, 1)
    rss1, disk1 = rss_kib(server.pid), os.path.getsize(registry)
    med, p95, _ = latency(api, QUERIES["one"], last, repeats)
    return (f"{keys} keys: made in {made:.1f} s ({keys / made:.0f}/s); RSS {rss0 / 1024:.1f} -> "
            f"{rss1 / 1024:.1f} MiB ({(rss1 - rss0) / 1024:+.1f} MiB); registry.redb {disk0 / 1e6:.2f} -> "
            f"{disk1 / 1e6:.2f} MB; query 'one' with the newest key: median {med:.2f} ms, p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()

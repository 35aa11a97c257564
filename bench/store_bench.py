#!/usr/bin/env python3
"""Side-by-side store benchmark: bydata vs VictoriaMetrics on one seeded line-protocol dataset.

Run through bench/store.sh (installs VictoriaMetrics, builds bydata). Python 3.11 standard library only.

Steps (everything on 127.0.0.1, free ports, one temporary directory, every started process stopped at exit):
  1. generate the dataset once into a temp file of line protocol (seeded), batches are byte ranges of it;
  2. start both servers; ingest the same batches into each in turn (N lines per request, T client threads),
     measuring wall time until the data is durable (bydata: last 204; VictoriaMetrics: last 204 + force_flush);
  3. wait for both to settle (data dir unchanged 8 s; VictoriaMetrics also no merge, no pending row), stop
     both cleanly, du -sb their data dirs; server CPU-seconds = lifetime utime+stime at the clean exit (wait4) minus
     /proc/PID/stat just before the first write, so background merges, flushes and shutdown count;
  4. restart both, check that both hold every point, run the three queries (one warm-up, R timed runs,
     median), cross-check the answers, print one table and write it as JSON (--json).
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HOUR = 3600
DAY = 86400
NS = 1_000_000_000
TOKEN = "bench-admin-token-0123456789"
# (measurement, field, interval s) — the four series of every building. Points per building per day: 408.
SERIES = [
    ("electricity", "kwh", 900),
    ("heat", "kwh", 3600),
    ("climate", "temperature", 600),
    ("climate", "co2", 600),
]
POINTS_PER_BUILDING_DAY = sum(DAY // s[2] for s in SERIES)
STEP = 300  # gcd of the intervals: the generator walks wall-clock time in 5-minute steps


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------- dataset


def local_hour_weekday(t: int) -> tuple[float, int]:
    """Hour of day (fractional) and weekday (0 = Monday) in a fixed UTC+1 'city' clock."""
    lt = t + HOUR
    return (lt % DAY) / HOUR, (lt // DAY + 3) % 7


def outdoor_temp(t: int) -> float:
    """A smooth Danish-ish outdoor temperature: seasonal cosine plus a daily swing."""
    doy = (t / DAY) % 365.25
    hour, _ = local_hour_weekday(t)
    return 8.5 - 8.0 * math.cos(2 * math.pi * (doy - 20) / 365.25) + 3.0 * math.sin(2 * math.pi * (hour - 9) / 24)


def elec_profile(hour: float, weekday: int) -> float:
    if weekday >= 5:
        return 0.45 if 8 <= hour < 20 else 0.35
    if hour < 6 or hour >= 21:
        return 0.35
    if hour < 8:
        return 0.35 + 0.65 * (hour - 6) / 2
    if hour < 17:
        return 1.0
    return 1.0 - 0.65 * (hour - 17) / 4


def heat_profile(hour: float) -> float:
    # morning boost after the night setback, small evening hot-water peak
    if 5 <= hour < 9:
        return 1.5
    if 17 <= hour < 20:
        return 1.15
    if hour >= 22 or hour < 5:
        return 0.7
    return 1.0


def generate(path: str, buildings: int, start: int, end: int, seed: int, batch_lines: int) -> dict:
    """Writes the dataset; returns its description including the byte ranges of the batches."""
    rng = random.Random(seed)
    el_prefix = [f"electricity,building=b{b},meter=el kwh=" for b in range(buildings)]
    heat_prefix = [f"heat,building=b{b},meter=heat kwh=" for b in range(buildings)]
    temp_prefix = [f"climate,building=b{b},room=r1 temperature=" for b in range(buildings)]
    co2_prefix = [f"climate,building=b{b},room=r1 co2=" for b in range(buildings)]
    el_kw = [rng.lognormvariate(3.2, 0.8) for _ in range(buildings)]  # mean load, ~10..100 kW
    el_val = [round(rng.uniform(1e4, 3e6), 2) for _ in range(buildings)]
    heat_kw = [rng.lognormvariate(3.5, 0.7) for _ in range(buildings)]  # design heat load at -12 °C
    heat_val = [round(rng.uniform(1e4, 5e6), 1) for _ in range(buildings)]
    t_set = [rng.uniform(20.0, 22.5) for _ in range(buildings)]
    t_drift = [0.0] * buildings
    co2_base = [rng.uniform(400, 450) for _ in range(buildings)]
    co2_peak = [rng.uniform(650, 1400) for _ in range(buildings)]
    reset_p = 2e-5  # per counter reading: a meter swap now and then (the new meter starts at 0)
    resets = 0
    lines = 0
    per_series = {f"{m}_{f}": 0 for m, f, _ in SERIES}
    offsets = [0]  # batch boundaries in bytes
    pos = 0
    in_batch = 0
    with open(path, "w", encoding="ascii", buffering=1 << 22) as out:
        for t in range(start, end, STEP):
            hour, weekday = local_hour_weekday(t)
            ts = f" {t * NS}\n"
            step_lines: list[str] = []
            if t % 900 == 0:
                prof = elec_profile(hour, weekday)
                for b in range(buildings):
                    if rng.random() < reset_p:
                        el_val[b] = 0.0
                        resets += 1
                    el_val[b] += el_kw[b] * prof * 0.25 * (0.85 + 0.3 * rng.random())
                    step_lines.append(f"{el_prefix[b]}{el_val[b]:.2f}{ts}")
                per_series["electricity_kwh"] += buildings
            if t % 3600 == 0:
                demand = max(0.0, 17.0 - outdoor_temp(t)) / 29.0 * heat_profile(hour) + 0.08  # + hot water
                for b in range(buildings):
                    if rng.random() < reset_p:
                        heat_val[b] = 0.0
                        resets += 1
                    heat_val[b] += heat_kw[b] * demand * (0.9 + 0.2 * rng.random())
                    step_lines.append(f"{heat_prefix[b]}{heat_val[b]:.1f}{ts}")
                per_series["heat_kwh"] += buildings
            if t % 600 == 0:
                occupied = weekday < 5 and 8 <= hour < 17
                heating = 0.8 if (weekday < 5 and 7 <= hour < 18) else -0.6
                swing = 0.6 * math.sin(2 * math.pi * (hour - 9) / 24)
                office = math.sin(math.pi * (hour - 8) / 9) if occupied else 0.0
                for b in range(buildings):
                    d = t_drift[b] * 0.97 + (rng.random() - 0.5) * 0.15
                    t_drift[b] = d
                    temp = t_set[b] + heating + swing + d
                    step_lines.append(f"{temp_prefix[b]}{temp:.1f}{ts}")
                    co2 = co2_base[b] + (co2_peak[b] - co2_base[b]) * office * (0.8 + 0.4 * rng.random())
                    co2 += rng.uniform(-8, 8)
                    step_lines.append(f"{co2_prefix[b]}{int(co2)}{ts}")
                per_series["climate_temperature"] += buildings
                per_series["climate_co2"] += buildings
            for line in step_lines:
                out.write(line)
                pos += len(line)
                in_batch += 1
                if in_batch == batch_lines:
                    offsets.append(pos)
                    in_batch = 0
            lines += len(step_lines)
    if in_batch:
        offsets.append(pos)
    return {
        "path": path,
        "bytes": pos,
        "series": buildings * len(SERIES),
        "points": lines,
        "points_per_series_kind": per_series,
        "counter_resets": resets,
        "batches": [(offsets[i], offsets[i + 1] - offsets[i]) for i in range(len(offsets) - 1)],
    }


# ---------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the command: state is field 3, so utime (14) and stime (15) are at 11 and 12
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def du(path: str) -> int:
    out = subprocess.run(["du", "-sb", path], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def du_parts(path: str) -> dict:
    """du -sb of every entry at the top of a data directory."""
    return {e: du(os.path.join(path, e)) for e in sorted(os.listdir(path))}


class Server:
    """One started server process; stop() is idempotent and always leaves no process behind."""

    live: list["Server"] = []

    def __init__(self, name: str, argv: list[str], env: dict | None, logpath: str, port: int, health: str):
        self.name, self.argv, self.env, self.logpath, self.port, self.health = name, argv, env, logpath, port, health
        self.proc: subprocess.Popen | None = None
        self.lifetime_cpu_s: float | None = None

    def start(self, timeout: float = 60.0) -> None:
        logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logf.close()
        Server.live.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode} at start; log: {self.logpath}\n"
                                 + tail(self.logpath))
            try:
                status, _ = http_get(self.port, self.health, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} not healthy after {timeout} s; log: {self.logpath}\n" + tail(self.logpath))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120.0) -> int | None:
        """Graceful stop; returns the exit code (None if it had to be killed)."""
        p = self.proc
        if p is None:
            return None
        self.proc = None
        if self in Server.live:
            Server.live.remove(self)
        if p.poll() is not None:
            return p.returncode
        p.send_signal(sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # wait4 rather than Popen.wait: it also gives the process's lifetime CPU time (all threads)
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                self.lifetime_cpu_s = usage.ru_utime + usage.ru_stime
                return p.returncode
            time.sleep(0.05)
        p.kill()
        p.wait()
        return None


def tail(path: str, n: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def stop_all() -> None:
    for s in list(Server.live):
        try:
            s.stop(timeout=20)
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            print(f"stopping {s.name}: {e}", file=sys.stderr)


def http_get(port: int, path: str, headers: dict | None = None, timeout: float = 600) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------- ingest


def ingest(name: str, port: int, path: str, headers: dict, want: int, data: dict, threads: int) -> float:
    """Sends every batch, `threads` at a time; returns the wall seconds until the last response."""
    batches = data["batches"]
    fd = os.open(data["path"], os.O_RDONLY)
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    errors: list[str] = []
    stop = threading.Event()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            while not stop.is_set():
                with lock:
                    i = state["next"]
                    if i >= len(batches):
                        return
                    state["next"] = i + 1
                off, length = batches[i]
                body = os.pread(fd, length, off)
                conn.request("POST", path, body=body, headers={**headers, "Content-Length": str(length)})
                r = conn.getresponse()
                answer = r.read()
                if r.status != want:
                    errors.append(f"{name}: batch {i} answered {r.status} (want {want}): {answer[:500]!r}")
                    stop.set()
                    return
                with lock:
                    state["done"] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{name}: {type(e).__name__}: {e}")
            stop.set()
        finally:
            conn.close()

    progress_every = max(1, len(batches) // 10)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    last_report = 0
    while any(t.is_alive() for t in ts):
        time.sleep(0.2)
        done = state["done"]
        if done - last_report >= progress_every:
            last_report = done
            el = time.perf_counter() - t0
            log(f"  {name}: {done}/{len(batches)} batches, {el:.1f} s")
    wall = time.perf_counter() - t0
    os.close(fd)
    if errors:
        raise BenchError("ingest failed:\n" + "\n".join(errors))
    if state["done"] != len(batches):
        raise BenchError(f"{name}: only {state['done']} of {len(batches)} batches acknowledged")
    return wall


def vm_metric_sum(port: int, name: str) -> float:
    status, body = http_get(port, "/metrics", timeout=30)
    if status != 200:
        raise BenchError(f"VictoriaMetrics /metrics answered {status}")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def bydata_head_points(port: int) -> float:
    status, body = http_get(port, "/metrics", timeout=30)
    if status != 200:
        raise BenchError(f"bydata /metrics answered {status}")
    for line in body.decode().splitlines():
        if line.startswith("bydata_store_head_points "):
            return float(line.split()[1])
    raise BenchError("bydata /metrics has no bydata_store_head_points")


def vm_force_flush(port: int) -> float:
    """Makes every ingested row searchable and persistent; returns seconds."""
    t0 = time.perf_counter()
    status, body = http_get(port, "/internal/force_flush")
    if status != 200:
        raise BenchError(f"VictoriaMetrics force_flush answered {status}: {body[:300]!r}")
    return time.perf_counter() - t0


def settle(name: str, data_dir: str, busy=None, limit_s: float = 600) -> float:
    """Waits (bounded) until the data directory has not changed for 8 s and `busy()` (if given) is 0; returns
    seconds. VictoriaMetrics 1.79 writes flushed parts a few seconds after force_flush and merges in the
    background; bydata compacts its head into blocks when writes pause."""
    t0 = time.perf_counter()
    quiet, last = 0, -1
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        size = du(data_dir)
        quiet = quiet + 1 if (size == last and (busy is None or busy() == 0)) else 0
        last = size
        if quiet >= 8:  # eight quiet looks 1 s apart
            break
        time.sleep(1)
    else:
        log(f"  {name} still changing its data directory after {limit_s:.0f} s; measuring anyway")
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- queries


def iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bydata_query(port: int, params: dict) -> tuple[float, dict]:
    path = "/api/v1/query?" + urllib.parse.urlencode(params)
    t0 = time.perf_counter()
    status, body = http_get(port, path, {"Authorization": f"Bearer {TOKEN}"})
    el = time.perf_counter() - t0
    if status != 200:
        raise BenchError(f"bydata query {path} answered {status}: {body[:500].decode(errors='replace')}")
    return el, json.loads(body)


def vm_query(port: int, endpoint: str, params: dict) -> tuple[float, dict]:
    path = f"/api/v1/{endpoint}?" + urllib.parse.urlencode(params)
    t0 = time.perf_counter()
    status, body = http_get(port, path)
    el = time.perf_counter() - t0
    if status != 200:
        raise BenchError(f"VictoriaMetrics {path} answered {status}: {body[:500].decode(errors='replace')}")
    answer = json.loads(body)
    if answer.get("status") != "success":
        raise BenchError(f"VictoriaMetrics {path}: {answer}")
    return el, answer


def b_time(s: str) -> int:
    return int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


def key_of(metric: str, tags: dict) -> tuple:
    return (metric,) + tuple(sorted((k, v) for k, v in tags.items() if k != "__name__"))


class Plan:
    """The time ranges of the queries, derived from the dataset's start and end."""

    def __init__(self, start: int, end: int):
        self.start, self.end = start, end
        self.q_from = start - start % DAY  # midnight UTC of the first day
        self.ndays = -(-(end - self.q_from) // DAY)
        self.q_to = self.q_from + self.ndays * DAY  # >= end: every point is inside [q_from, q_to)
        self.day = end - end % DAY - DAY  # the last whole UTC day inside the data
        if self.day < start:
            raise BenchError("the dataset must span at least one whole UTC day")


def run_queries(plan: Plan, bport: int, vport: int) -> dict:
    """Each query is a function returning (seconds, normalised answer) for one system."""
    mf = [(m, f) for m, f, _ in SERIES]

    # (a) last value of every series over the whole range
    def a_bydata():
        total, out = 0.0, {}
        for m, f in mf:
            el, ans = bydata_query(bport, {"measurement": m, "field": f, "from": iso(plan.q_from),
                                           "to": iso(plan.q_to), "every": f"{plan.ndays}d", "fn": "last",
                                           "tz": "UTC"})
            total += el
            for s in ans["series"]:
                vals = [p["value"] for p in s["points"] if p["value"] is not None]
                if vals:
                    out[key_of(f"{m}_{f}", s["tags"])] = vals[-1]
        return total, out

    def a_vm():
        total, out = 0.0, {}
        span = plan.end - plan.q_from
        for m, f in mf:
            el, ans = vm_query(vport, "query", {"query": f"last_over_time({m}_{f}[{span}s])", "time": plan.end})
            total += el
            for s in ans["data"]["result"]:
                out[key_of(f"{m}_{f}", s["metric"])] = float(s["value"][1])
        return total, out

    # (b) hourly mean per series over one UTC day, both climate fields
    def b_bydata():
        total, out = 0.0, {}
        for m, f in mf[2:]:
            el, ans = bydata_query(bport, {"measurement": m, "field": f, "from": iso(plan.day),
                                           "to": iso(plan.day + DAY), "every": "1h", "fn": "mean", "tz": "UTC"})
            total += el
            for s in ans["series"]:
                for p in s["points"]:
                    if p["value"] is not None:
                        out[key_of(f"{m}_{f}", s["tags"]) + (b_time(p["time"]),)] = p["value"]
        return total, out

    def b_vm():
        total, out = 0.0, {}
        for m, f in mf[2:]:
            # value at t = mean over (t-1h-1ms, t-1ms] = bydata's half-open bucket [t-1h, t)
            el, ans = vm_query(vport, "query_range", {"query": f"avg_over_time({m}_{f}[1h] offset 1ms)",
                                                      "start": plan.day + HOUR, "end": plan.day + DAY,
                                                      "step": "1h"})
            total += el
            for s in ans["data"]["result"]:
                for t, v in s["values"]:
                    out[key_of(f"{m}_{f}", s["metric"]) + (int(t) - HOUR,)] = float(v)
        return total, out

    # (c) daily increase of the electricity counters per building over the whole range
    def c_bydata():
        el, ans = bydata_query(bport, {"measurement": "electricity", "field": "kwh", "from": iso(plan.q_from),
                                       "to": iso(plan.q_to), "every": "1d", "fn": "increase",
                                       "group_by": "building", "tz": "UTC"})
        out = {}
        for s in ans["series"]:
            for p in s["points"]:
                if p["value"] is not None:
                    out[(s["tags"].get("building"), b_time(p["time"]))] = p["value"]
        return el, out

    def c_vm():
        el, ans = vm_query(vport, "query_range", {
            "query": "sum by (building) (increase(electricity_kwh[1d] offset 1ms))",
            "start": plan.q_from + DAY, "end": plan.q_to, "step": "1d"})
        out = {}
        for s in ans["data"]["result"]:
            for t, v in s["values"]:
                out[(s["metric"].get("building"), int(t) - DAY)] = float(v)
        return el, out

    return {
        "a": ("last value of every series (whole range)", a_bydata, a_vm),
        "b": ("hourly mean per series over one day", b_bydata, b_vm),
        "c": ("daily increase per building (whole range)", c_bydata, c_vm),
    }


def compare(a: dict, b: dict) -> dict:
    common = a.keys() & b.keys()
    rel = [abs(a[k] - b[k]) / max(abs(a[k]), abs(b[k]), 1e-9) for k in common]
    sa, sb = sum(a.values()), sum(b.values())
    return {
        "values_bydata": len(a), "values_vm": len(b), "common": len(common),
        "max_rel_diff": max(rel) if rel else None,
        "values_differing_over_1e-6": sum(1 for r in rel if r > 1e-6),
        "sum_bydata": sa, "sum_vm": sb,
        "sum_rel_diff": abs(sa - sb) / max(abs(sa), abs(sb), 1e-9),
    }


def count_points(plan: Plan, bport: int, vport: int) -> tuple[int, int]:
    """Untimed check that both stores hold every point."""
    b_total = 0
    for m, f, _ in SERIES:
        _, ans = bydata_query(bport, {"measurement": m, "field": f, "from": iso(plan.q_from), "to": iso(plan.q_to),
                                      "every": f"{plan.ndays}d", "fn": "count", "tz": "UTC"})
        b_total += sum(int(p["value"] or 0) for s in ans["series"] for p in s["points"])
    names = "|".join(f"{m}_{f}" for m, f, _ in SERIES)
    _, ans = vm_query(vport, "query", {"query": f'sum(count_over_time({{__name__=~"{names}"}}[{plan.end - plan.q_from}s]))',
                                       "time": plan.end})
    res = ans["data"]["result"]
    v_total = int(float(res[0]["value"][1])) if res else 0
    return b_total, v_total


# ---------------------------------------------------------------------------------------------- main


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:,.1f}"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 2,500 buildings x 4 = 10,000 series (default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per query (after one warm-up)")
    ap.add_argument("--days", type=int, default=20, help="time span; 20 days x 10k series = 20.4 M points")
    ap.add_argument("--batch-lines", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2, help="concurrent client threads during ingest")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    ap.add_argument("--bydata", help="bydata binary (default target/release/bydata)", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                     "target", "release", "bydata"))
    ap.add_argument("--bydata-config", help="a bydata config file (default: bydata's defaults)")
    ap.add_argument("--victoria-metrics", default=shutil.which("victoria-metrics") or "victoria-metrics")
    ap.add_argument("--tmp", help="parent of the temporary directory (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (data dirs, logs)")
    args = ap.parse_args()
    if not (0 < args.scale <= 10) or args.repeats < 1 or args.days < 2 or args.threads < 1 or args.batch_lines < 1:
        ap.error("need 0 < scale <= 10, repeats >= 1, days >= 2, threads >= 1, batch-lines >= 1")
    for exe in (args.bydata, args.victoria_metrics):
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            ap.error(f"{exe} is not an executable (run bench/store.sh, which installs and builds)")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # explicit, so Ctrl-C also works where SIGINT was inherited as ignored (e.g. started with & from a script)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    tmp = tempfile.mkdtemp(prefix="bydata-store-bench-", dir=args.tmp)
    t_run = time.perf_counter()
    try:
        return run(args, tmp, t_run)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", file=sys.stderr)
        return 130
    except BenchError as e:
        print(f"\nBENCH FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        stop_all()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: str, t_run: float) -> int:
    buildings = max(1, round(2500 * args.scale))
    now = int(time.time())
    end = now - now % HOUR - 3 * HOUR  # exclusive: the last points are at end - 5 min, 3-4 h before now
    start = end - args.days * DAY
    plan = Plan(start, end)

    log(f"generating {buildings} buildings x {len(SERIES)} series, {iso(start)} .. {iso(end)} (seed {args.seed})")
    t0 = time.perf_counter()
    data = generate(os.path.join(tmp, "dataset.lp"), buildings, start, end, args.seed, args.batch_lines)
    gen_s = time.perf_counter() - t0
    points = data["points"]
    log(f"dataset: {data['series']:,} series, {points:,} points ({data['points_per_series_kind']}), "
        f"{data['counter_resets']} counter resets, {data['bytes'] / 1e6:,.1f} MB line protocol, "
        f"{len(data['batches'])} batches of <= {args.batch_lines:,} lines; generated in {gen_s:.1f} s")

    bdir, vdir = os.path.join(tmp, "bydata"), os.path.join(tmp, "vm")
    bport, mport, vport = free_port(), free_port(), free_port()
    while len({bport, mport, vport}) < 3:
        mport, vport = free_port(), free_port()
    benv = {**os.environ, "BYDATA_ADMIN_TOKEN": TOKEN}
    bargv = [args.bydata, "serve", "--data-dir", bdir, "--http-addr", f"127.0.0.1:{bport}", "--mqtt-addr",
             f"127.0.0.1:{mport}"] + (["--config", args.bydata_config] if args.bydata_config else [])
    bydata = Server("bydata", bargv, benv, os.path.join(tmp, "bydata.log"), bport, "/health")
    vm = Server("VictoriaMetrics", [
        args.victoria_metrics, f"-storageDataPath={vdir}", f"-httpListenAddr=127.0.0.1:{vport}",
        "-retentionPeriod=100y", "-search.disableCache", "-search.latencyOffset=1s", "-dedup.minScrapeInterval=0s",
        "-search.maxQueryDuration=600s", "-selfScrapeInterval=0s", "-loggerLevel=WARN",
    ], None, os.path.join(tmp, "vm.log"), vport, "/health")

    res: dict = {"bydata": {}, "vm": {}}

    # --- ingest, one system after the other, same batches
    log(f"ingest into bydata (POST /api/v2/write, {args.threads} threads)")
    bydata.start()
    c0 = cpu_seconds(bydata.pid)
    wall = ingest("bydata", bport, "/api/v2/write?bucket=city&precision=ns",
                  {"Authorization": f"Token {TOKEN}", "Content-Type": "text/plain; charset=utf-8"}, 204, data,
                  args.threads)
    cpu = cpu_seconds(bydata.pid) - c0
    # Every 204 is durable already; this waits (bounded) until the idle compaction has moved every point into
    # compressed blocks, so the disk figure is bydata's steady state rather than its write buffer.
    b_settle_s = settle("bydata", bdir, lambda: bydata_head_points(bport), limit_s=1800)
    res["bydata"].update(ingest_wall_s=wall, ingest_cpu_s=cpu, cpu_before_ingest=c0, flush_s=0.0,
                         settle_s=b_settle_s)
    disk_running = du(bdir)
    log(f"  bydata: {wall:.1f} s wall, {cpu:.1f} CPU-s ({cpu_seconds(bydata.pid) - c0:.1f} incl. "
        f"{b_settle_s:.1f} s settling), {disk_running:,} bytes on disk running")

    log("ingest into VictoriaMetrics (POST /write)")
    vm.start()
    c0 = cpu_seconds(vm.pid)
    wall = ingest("VictoriaMetrics", vport, "/write", {"Content-Type": "text/plain; charset=utf-8"}, 204, data,
                  args.threads)
    cpu = cpu_seconds(vm.pid) - c0
    flush_s = vm_force_flush(vport)
    settle_s = settle("VictoriaMetrics", vdir,
                      lambda: vm_metric_sum(vport, "vm_active_merges") + vm_metric_sum(vport, "vm_pending_rows"))
    cpu_all = cpu_seconds(vm.pid) - c0
    res["vm"].update(ingest_wall_s=wall + flush_s, ingest_cpu_s=cpu, cpu_before_ingest=c0,
                     flush_s=flush_s, settle_s=settle_s)
    vm_disk_running = du(vdir)
    log(f"  VictoriaMetrics: {wall:.1f} s wall + {flush_s:.2f} s force_flush, {cpu:.1f} CPU-s "
        f"({cpu_all:.1f} incl. flush and {settle_s:.1f} s settling), {vm_disk_running:,} bytes on disk running")

    # --- disk after a clean stop of both
    b_exit = bydata.stop(signal.SIGTERM)
    v_exit = vm.stop(signal.SIGINT)
    if b_exit != 0:
        raise BenchError(f"bydata did not stop cleanly (exit {b_exit}); log:\n{tail(bydata.logpath)}")
    if v_exit != 0:
        raise BenchError(f"VictoriaMetrics did not stop cleanly (exit {v_exit}); log:\n{tail(vm.logpath)}")
    # CPU attributed to ingest: from just before the first write until the clean exit (background merges,
    # final flushes and shutdown included), from wait4's lifetime rusage minus /proc before the first write.
    res["bydata"]["ingest_cpu_s_incl_flush"] = bydata.lifetime_cpu_s - res["bydata"].pop("cpu_before_ingest")
    res["vm"]["ingest_cpu_s_incl_flush"] = vm.lifetime_cpu_s - res["vm"].pop("cpu_before_ingest")
    res["bydata"].update(disk_bytes=du(bdir), disk_bytes_running=disk_running, disk_breakdown=du_parts(bdir))
    res["vm"].update(disk_bytes=du(vdir), disk_bytes_running=vm_disk_running, disk_breakdown=du_parts(vdir))
    for name, key in (("bydata", "bydata"), ("VictoriaMetrics", "vm")):
        r = res[key]
        log(f"  {name} after clean stop: {r['disk_bytes']:,} bytes on disk {r['disk_breakdown']}; "
            f"{r['ingest_cpu_s_incl_flush']:.1f} CPU-s from first write to exit")

    # --- queries on restarted servers
    log("restarting both for the queries")
    bydata.start()
    vm.start()
    b_pts, v_pts = count_points(plan, bport, vport)
    log(f"  stored points: bydata {b_pts:,}, VictoriaMetrics {v_pts:,} (generated {points:,})")
    if b_pts != points or v_pts != points:
        raise BenchError(f"point counts differ from the dataset: bydata {b_pts}, VictoriaMetrics {v_pts}, want {points}")

    checks: dict = {"stored_points": {"bydata": b_pts, "vm": v_pts, "generated": points}}
    queries = run_queries(plan, bport, vport)
    for q, (title, fb, fv) in queries.items():
        times = {"bydata": [], "vm": []}
        answers = {}
        for sysname, fn in (("bydata", fb), ("vm", fv)):
            _, answers[sysname] = fn()  # warm-up, also the answer we compare
            for _ in range(args.repeats):
                el, _ = fn()
                times[sysname].append(el)
            res[sysname][f"query_{q}_ms"] = statistics.median(times[sysname]) * 1000
            res[sysname][f"query_{q}_runs_ms"] = [round(t * 1000, 2) for t in times[sysname]]
        cmp = compare(answers["bydata"], answers["vm"])
        # answer keys: a = series; b = series + bucket time; c = (building, day)
        series_of = {"a": lambda k: k, "b": lambda k: k[:-1], "c": lambda k: k[0]}[q]
        cmp["series_bydata"] = len({series_of(k) for k in answers["bydata"]})
        cmp["series_vm"] = len({series_of(k) for k in answers["vm"]})
        checks[q] = cmp
        log(f"  query {q} ({title}): bydata {res['bydata'][f'query_{q}_ms']:.1f} ms, "
            f"VictoriaMetrics {res['vm'][f'query_{q}_ms']:.1f} ms; series {cmp['series_bydata']} vs "
            f"{cmp['series_vm']}, values {cmp['values_bydata']} vs {cmp['values_vm']} ({cmp['common']} common), "
            f"max rel diff {cmp['max_rel_diff']}, sum rel diff {cmp['sum_rel_diff']:.2e}")
        if cmp["series_bydata"] != cmp["series_vm"]:
            log(f"  WARNING: query {q} returns {cmp['series_bydata']} series from bydata, {cmp['series_vm']} from VM")

    for sysname in ("bydata", "vm"):
        r = res[sysname]
        r["ingest_points_per_s"] = points / r["ingest_wall_s"]
        r["points_per_cpu_s"] = points / r["ingest_cpu_s_incl_flush"] if r["ingest_cpu_s_incl_flush"] else None
        r["bytes_per_point"] = r["disk_bytes"] / points
        # the stored series alone: no registry, journal, caches, locks or empty directories
        core = ("series",) if sysname == "bydata" else ("data", "indexdb")
        r["data_bytes"] = sum(r["disk_breakdown"].get(e, 0) for e in core)
        r["data_bytes_per_point"] = r["data_bytes"] / points

    rows = [
        ("ingest points/s (wall, until durable)", "ingest_points_per_s", "pts/s"),
        ("points per server CPU-second", "points_per_cpu_s", "pts/CPU-s"),
        ("bytes on disk per point (whole data dir)", "bytes_per_point", "B"),
        ("  of which series data (see notes)", "data_bytes_per_point", "B"),
        ("query a: last value, every series", "query_a_ms", "ms"),
        ("query b: hourly mean, 1 day, per series", "query_b_ms", "ms"),
        ("query c: daily increase per building", "query_c_ms", "ms"),
    ]
    table = []
    for label, key, unit in rows:
        b, v = res["bydata"].get(key), res["vm"].get(key)
        table.append({"metric": label, "unit": unit, "bydata": b, "victoriametrics": v,
                      "ratio_bydata_over_vm": (b / v) if (b is not None and v) else None})
    total_s = time.perf_counter() - t_run

    print()
    print(f"bydata vs VictoriaMetrics — {data['series']:,} series, {points:,} points, {args.days} days, "
          f"scale {args.scale}, seed {args.seed}, {args.repeats} timed runs/query (median), "
          f"{args.threads} client threads x {args.batch_lines:,} lines/request")
    w = max(len(r[0]) for r in rows) + 8
    print(f"{'':{w}} {'bydata':>14} {'VictoriaMetrics':>16} {'ratio b/VM':>11}")
    for row in table:
        label = f"{row['metric']} [{row['unit']}]"
        ratio = f"{row['ratio_bydata_over_vm']:.2f}" if row["ratio_bydata_over_vm"] is not None else "-"
        print(f"{label:{w}} {fmt(row['bydata'], row['unit']):>14} {fmt(row['victoriametrics'], row['unit']):>16} "
              f"{ratio:>11}")
    print("(first two rows: higher is better; the others: lower is better. Disk after a clean stop of both; "
          "series data = bydata series/, VictoriaMetrics data/ + indexdb/ without its cache/.)")
    c = checks["c"]
    print(f"checks: stored points equal ({points:,}); series a {checks['a']['series_bydata']}/{checks['a']['series_vm']}, "
          f"b {checks['b']['series_bydata']}/{checks['b']['series_vm']}, c {c['series_bydata']}/{c['series_vm']} "
          f"(bydata/VM); c total kWh bydata {c['sum_bydata']:,.1f} vs VM {c['sum_vm']:,.1f} "
          f"(rel diff {c['sum_rel_diff']:.2e}); max per-value rel diff a {checks['a']['max_rel_diff']}, "
          f"b {checks['b']['max_rel_diff']}, c {c['max_rel_diff']}")
    print(f"total run {total_s:.0f} s (dataset generation {gen_s:.0f} s)")

    if args.json:
        doc = {
            "config": {k: v for k, v in vars(args).items() if k not in ("json",)},
            "dataset": {k: v for k, v in data.items() if k not in ("batches", "path")}
                       | {"start": iso(start), "end_exclusive": iso(end), "batches": len(data["batches"])},
            "query_ranges": {"a_and_c_from": iso(plan.q_from), "a_and_c_to": iso(plan.q_to),
                             "a_vm_window_s": plan.end - plan.q_from, "b_day": iso(plan.day)},
            "table": table,
            "details": res,
            "checks": checks,
            "run_seconds": total_s,
            "generation_seconds": gen_s,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

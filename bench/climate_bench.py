#!/usr/bin/env python3
"""The climate team's benchmark (issues 5 and 17): monthly electricity consumption per building for 400 buildings
over one year of 15-minute cumulative meter readings (14 M points), answered by bydata's query API with calendar
months in Europe/Copenhagen, with `increase` (counter resets included) and with `consumption` (exact to the
bucket boundary), and the ranking of the 400 buildings per m² (`/api/v1/buildings/ranking`, against a year
earlier) over one month and over the year. Prints the median latency of each, after ingest and a warm-up, and
checks the answers' shape. Goals: under 100 ms for `increase` (issue 5), under 10 ms for the ranking (issue 17).

No peer runs the same query: VictoriaMetrics has no calendar months, and ThingsBoard, the one anchor with
calendar buckets, cannot run here. Uses `store_bench`'s seeded meter model, server and ingest helpers.

    python3 bench/climate_bench.py [--buildings 400] [--days 365] [--repeats 20] [--bydata target/release/bydata]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import store_bench as sb  # noqa: E402

DAY = 86_400


def generate(path: str, buildings: int, start: int, end: int, seed: int, batch_lines: int) -> dict:
    """Electricity meters only: one cumulative kWh reading per building every 15 minutes."""
    rng = sb.random.Random(seed)
    prefix = [f"electricity,building=b{b:03},meter=el kwh=" for b in range(buildings)]
    kw = [rng.lognormvariate(3.2, 0.8) for _ in range(buildings)]
    val = [round(rng.uniform(1e4, 3e6), 2) for _ in range(buildings)]
    offsets, pos, in_batch, lines = [0], 0, 0, 0
    with open(path, "w", encoding="ascii", buffering=1 << 22) as out:
        for t in range(start, end, 900):
            hour, weekday = sb.local_hour_weekday(t)
            prof = sb.elec_profile(hour, weekday)
            ts = f" {t * sb.NS}\n"
            for b in range(buildings):
                if rng.random() < 2e-5:
                    val[b] = 0.0  # a meter swap: the new meter starts at 0
                val[b] += kw[b] * prof * 0.25 * (0.85 + 0.3 * rng.random())
                line = f"{prefix[b]}{val[b]:.2f}{ts}"
                out.write(line)
                pos += len(line)
                in_batch += 1
                lines += 1
                if in_batch == batch_lines:
                    offsets.append(pos)
                    in_batch = 0
    if in_batch:
        offsets.append(pos)
    return {"path": path, "points": lines,
            "batches": [(offsets[i], offsets[i + 1] - offsets[i]) for i in range(len(offsets) - 1)]}


def serve_and_ingest(bydata: str, tmp: str, data: dict) -> tuple[int, float]:
    """Starts bydata over `tmp/data` and writes `data` through its line-protocol API; its port and the time."""
    port, mport = sb.free_port(), sb.free_port()
    env = {**os.environ, "BYDATA_ADMIN_TOKEN": sb.TOKEN}
    server = sb.Server("bydata", [bydata, "serve", "--data-dir", os.path.join(tmp, "data"),
                                  "--http-addr", f"127.0.0.1:{port}", "--mqtt-addr", f"127.0.0.1:{mport}",
                                  "--lorawan-addr", f"127.0.0.1:{sb.free_port()}"],
                       env, os.path.join(tmp, "bydata.log"), port, "/health")
    server.start()
    wall = sb.ingest("bydata", port, "/api/v2/write?bucket=city&precision=ns",
                     {"Authorization": f"Token {sb.TOKEN}", "Content-Type": "text/plain; charset=utf-8"},
                     204, data, 2)
    return port, wall


def timed(port: int, path: str, auth: dict) -> tuple[float, dict]:
    t = time.perf_counter()
    status, body = sb.http_get(port, path, auth)
    ms = (time.perf_counter() - t) * 1e3
    if status != 200:
        raise sb.BenchError(f"{path} answered {status}: {body[:300]!r}")
    return ms, json.loads(body)


def consumption_figures(port: int, auth: dict, args) -> dict:
    """fn=consumption monthly, and the ranking per m² (one month, the year), with 400 registered buildings."""
    rng = sb.random.Random(args.seed)
    for b in range(args.buildings):
        body = json.dumps({"id": f"b{b:03}", "name": f"Building {b}", "kind": "office",
                           "floor_area_m2": round(rng.uniform(500, 20_000))}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/buildings", data=body, method="POST",
                                     headers={**auth, "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=30).read()
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise sb.BenchError(f"registering building {b}: {e.code} {e.read()[:200]!r}")
    year = {"from": "2025-01-01T00:00:00+01:00", "to": "2026-01-01T00:00:00+01:00"}
    queries = {
        "monthly consumption per building, fn=consumption (exact to the boundary)":
            "/api/v1/query?" + urllib.parse.urlencode({
                "measurement": "electricity", "field": "kwh", "every": "1mo", "fn": "consumption",
                "group_by": "building", "tz": "Europe/Copenhagen", **year}),
        "ranking per m² over one month (December), against a year earlier":
            "/api/v1/buildings/ranking?" + urllib.parse.urlencode({
                "measurement": "electricity", "field": "kwh", "tz": "Europe/Copenhagen",
                "from": "2025-12-01T00:00:00+01:00", "to": "2026-01-01T00:00:00+01:00"}),
        "ranking per m² over the year, against a year earlier":
            "/api/v1/buildings/ranking?" + urllib.parse.urlencode({
                "measurement": "electricity", "field": "kwh", "tz": "Europe/Copenhagen", **year}),
    }
    out = {}
    for label, path in queries.items():
        warm, answer = timed(port, path, auth)
        if "buildings" in answer:
            ranked = [b for b in answer["buildings"] if b["rank"] is not None]
            if len(answer["buildings"]) != args.buildings:
                raise sb.BenchError(f"ranking: {len(answer['buildings'])} buildings")
            note = (f"{len(ranked)} ranked; top {ranked[0]['id']} {ranked[0]['per_m2']:.2f} kWh/m², "
                    f"{sum(b['consumption'] or 0 for b in answer['buildings']):,.0f} kWh in all" if ranked
                    else "nothing ranked")
        else:
            series = answer["series"]
            total = sum(p["value"] or 0 for s in series for p in s["points"])
            note = f"{len(series)} series, {total:,.0f} kWh in all"
        times = [timed(port, path, auth)[0] for _ in range(args.repeats)]
        out[label] = (warm, statistics.median(times), min(times), max(times), note)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buildings", type=int, default=400)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bydata", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                      "target", "release", "bydata"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bydata-climate-")
    try:
        # One calendar year in Copenhagen: 2025-01-01T00:00+01:00 .. 2026-01-01T00:00+01:00.
        start = int(dt.datetime(2024, 12, 31, 23, tzinfo=dt.timezone.utc).timestamp())
        end = start + args.days * DAY
        t0 = time.perf_counter()
        data = generate(os.path.join(tmp, "meters.lp"), args.buildings, start, end, args.seed, 10_000)
        sb.log(f"{args.buildings} meters x {args.days} days at 15 min: {data['points']:,} points, "
               f"generated in {time.perf_counter() - t0:.1f} s")
        port, wall = serve_and_ingest(args.bydata, tmp, data)
        sb.log(f"ingested in {wall:.1f} s ({data['points'] / wall:,.0f} points/s)")
        q = "/api/v1/query?" + urllib.parse.urlencode({
            "measurement": "electricity", "field": "kwh", "every": "1mo", "fn": "increase",
            "group_by": "building", "tz": "Europe/Copenhagen",
            "from": "2025-01-01T00:00:00+01:00", "to": "2026-01-01T00:00:00+01:00"})
        auth = {"Authorization": f"Bearer {sb.TOKEN}"}

        def once() -> tuple[float, dict]:
            t = time.perf_counter()
            status, body = sb.http_get(port, q, auth)
            ms = (time.perf_counter() - t) * 1e3
            if status != 200:
                raise sb.BenchError(f"query answered {status}: {body[:300]!r}")
            return ms, json.loads(body)

        def settle() -> None:
            """Waits until the engine has merged everything (queries then answer from one part)."""
            for _ in range(600):
                s, text = sb.http_get(port, "/metrics", auth)
                if s == 200 and b"bydata_store_head_points 0" in text:
                    return
                time.sleep(0.1)

        settle()
        warm, answer = once()
        series = answer["series"]
        months = {len(s["points"]) for s in series}
        if len(series) != args.buildings or (args.days >= 365 and months != {12}):
            raise sb.BenchError(f"unexpected answer: {len(series)} series, months per series {months}")
        total = sum(p["value"] or 0 for s in series for p in s["points"])
        times = [once()[0] for _ in range(args.repeats)]
        extra = consumption_figures(port, auth, args)
        print()
        print(f"monthly consumption per building — {args.buildings} buildings x {args.days} days of 15-minute "
              f"meter readings ({data['points']:,} points), 1mo buckets in Europe/Copenhagen, fn=increase")
        print(f"  answer: {len(series)} series x {max(months)} months, {total:,.0f} kWh in all")
        print(f"  first query (after ingest and merges): {warm:.1f} ms")
        print(f"  median of {args.repeats}: {statistics.median(times):.1f} ms "
              f"(min {min(times):.1f}, max {max(times):.1f}); goal < 100 ms")
        for label, (warm_ms, median, lo, hi, note) in extra.items():
            print(f"{label}\n  {note}\n  first query: {warm_ms:.1f} ms; median of {args.repeats}: {median:.1f} ms "
                  f"(min {lo:.1f}, max {hi:.1f})")
        return 0
    except sb.BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        sb.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

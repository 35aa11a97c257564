#!/usr/bin/env python3
"""Open-data publication benchmark (issue 6): one dataset of hourly electricity consumption per meter for N
buildings over one year of 15-minute cumulative readings, published as 12 monthly periods x CSV, JSON and
GeoJSON through the privacy gate. Prints the time of the first publication (every period, new versions), of a
re-run of one period (recomputed, found byte-identical, nothing written), the bytes written, and the rows/s.

No peer publishes history: OS2iot, the platform Aarhus uses today, exposes each device's latest value only.
Uses `store_bench`'s server and ingest helpers and `climate_bench`'s meter model.

    python3 bench/opendata_bench.py [--buildings 100] [--bydata target/release/bydata]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import climate_bench as cb  # noqa: E402
import store_bench as sb  # noqa: E402


def post(port: int, path: str, body: dict) -> tuple[float, int, dict]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {sb.TOKEN}", "Content-Type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=3600) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return time.perf_counter() - t, status, json.loads(text or b"null")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buildings", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bydata", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                      "target", "release", "bydata"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bydata-opendata-")
    try:
        start = int(dt.datetime(2024, 12, 31, 23, tzinfo=dt.timezone.utc).timestamp())
        end = start + 365 * cb.DAY
        data = cb.generate(os.path.join(tmp, "meters.lp"), args.buildings, start, end, args.seed, 10_000)
        port, wall = cb.serve_and_ingest(args.bydata, tmp, data)
        sb.log(f"{data['points']:,} points ingested in {wall:.1f} s")
        dataset = {
            "id": "electricity-hourly",
            "title": {"da": "Elforbrug pr. time", "en": "Hourly electricity consumption"},
            "description": {"da": "Kommunale bygningers elforbrug.", "en": "Municipal buildings' electricity."},
            "themes": ["ENER"], "licence": "CC-BY-4.0", "update_frequency": "DAILY",
            "publisher": {"name": "Bench"}, "contact_point": {"name": "Bench", "email": "bench@example.dk"},
            "temporal": {"from": "2025-01-01T00:00:00+01:00", "to": "2026-01-01T00:00:00+01:00"},
            "selection": {"measurement": "electricity", "field": "kwh", "publish_tags": ["building", "meter"]},
            "aggregation": {"every": "1h", "fn": "increase"},
        }
        _, status, body = post(port, "/api/v1/datasets", dataset)
        if status != 201:
            raise sb.BenchError(f"dataset refused: {status} {body}")
        first, status, run = post(port, "/api/v1/datasets/electricity-hourly/publish", {})
        if status != 200 or len(run["periods"]) != 12:
            raise sb.BenchError(f"publication answered {status}: {str(run)[:300]}")
        written = sum(f["bytes"] for p in run["periods"] for f in p["files"])
        rows = args.buildings * 8760
        again, status, rerun = post(port, "/api/v1/datasets/electricity-hourly/publish", {"period": "2025-07"})
        if status != 200 or rerun["periods"][0]["outcome"] != "unchanged":
            raise sb.BenchError(f"re-run answered {status}: {str(rerun)[:300]}")
        print()
        print(f"open-data publication — {args.buildings} meters x one year of 15-minute readings "
              f"({data['points']:,} points) -> 1h increase, 12 monthly periods x CSV + JSON + GeoJSON")
        print(f"  first publication: {first:.2f} s for {rows:,} rows per format, {written / 1e6:.1f} MB written "
              f"({rows / first:,.0f} rows/s, three formats each, fsynced)")
        print(f"  re-run of one month (recomputed, byte-identical, nothing written): {again * 1e3:.0f} ms")
        return 0
    except sb.BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        sb.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

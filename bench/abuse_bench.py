#!/usr/bin/env python3
"""Abuse benchmark: the six attack probes of issue 12, against two bydata binaries side by side.

Run through bench/abuse.sh, which builds "before" (the release build of a baseline commit, by default 7cd5502,
the commit before the admission work) and "after" (the working tree). Python 3.11 standard library only: MQTT
3.1.1 CONNECT/PUBLISH packets are built by hand (spec §3.1, §3.3) on raw sockets, HTTP goes through
http.client.

Every probe starts a fresh `bydata serve` of each binary in turn (free loopback ports, its own data directory
in one temporary directory, stderr to a file — the log — and every process stopped at exit), with the
binary's default config, and applies a bounded load on loopback only:

  1 disk fill    300 CONNECTs without password and with a 60 KB last-will topic, for an unregistered and for a
                 registered id: journal and log growth, the registered device's status;
  2 passwords    100 parallel wrong-password CONNECTs for one id for 15 s (one loopback source address each
                 where they can be bound): peak RSS growth, legitimate devices' CONNECT→CONNACK during it,
                 answer time for unknown ids vs known ids with a wrong password, and what back-to-back failures
                 get;
  3 query size   200 series, every=15m over 1,000 days (19.2 M values), a raw query over 250,000 points, and
                 /health while three of the large queries run;
  4 slow HTTP    1,500 connections sending one header line every 10 s: how many stay open, /health meanwhile,
                 an MQTT CONNECT+PUBLISH meanwhile;
  5 cardinality  5 line-protocol requests of 200,000 new series each with a write token;
  6 spoofing     an authenticated device publishing to devices/{id}/status and to a topic with a wildcard.

The machine is shared, so a guard watches the server's RSS (--rss-limit-gib, default 4): past it, probe 2's
storm stops early and probe 3 kills the server (and restarts it for what is left); the table says so. Prints
one table: probe, figure, before, after.

    python3 bench/abuse_bench.py --before BIN --after BIN [--only 1,3] [--json PATH] [--keep]
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import http.client
import json
import os
import resource
import select
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

TOKEN = "abuse-bench-admin-token-0123456789"
DEVICE = {"name": "m", "transport": "mqtt", "domain": "energy", "location": {"lat": 56.15, "lon": 10.2},
          "tags": {}}
DAY0 = 1_735_689_600  # 2025-01-01T00:00:00Z


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------- formatting


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{sign}{n / size:.1f} {unit}"
    return f"{sign}{int(n)} B"


def fmt_mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / (1 << 20):,.0f} MiB"


def fmt_s(s: float | None) -> str:
    if s is None:
        return "n/a"
    if s < 1:
        return f"{s * 1e3:.1f} ms" if s < 0.01 else f"{s * 1e3:.0f} ms"
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


CONNACK_CODES = {0: "accepted", 1: "bad protocol", 2: "id rejected", 3: "unavailable", 4: "bad login",
                 5: "not authorised"}


def fmt_counts(c: collections.Counter) -> str:
    """'300 closed' or '88 CONNACK 3 (unavailable), 12 CONNACK 4 (bad login)' — most frequent first."""
    def what(w: str) -> str:
        if w.startswith("CONNACK "):
            return f"{w} ({CONNACK_CODES.get(int(w[8:]), '?')})"
        return w
    return ", ".join(f"{n:,} {what(w)}" for w, n in c.most_common()) or "none"


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------------- processes


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_kb(pid: int, key: str) -> int | None:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM), in bytes; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def tree_bytes(path: str) -> int:
    """Sum of the sizes of the files under `path` (journal segments are not preallocated)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class Server:
    """One `bydata serve` with its own data directory; stop() is idempotent and leaves no process behind."""

    live: list["Server"] = []

    def __init__(self, binary: str, workdir: str):
        self.binary, self.workdir = binary, workdir
        os.makedirs(workdir, exist_ok=True)
        self.data = os.path.join(workdir, "data")
        self.logpath = os.path.join(workdir, "stderr.log")
        self.http, self.mqtt = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Server":
        argv = [self.binary, "serve", "--data-dir", self.data,
                "--http-addr", f"127.0.0.1:{self.http}", "--mqtt-addr", f"127.0.0.1:{self.mqtt}",
                "--lorawan-addr", f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"]
        env = {**os.environ, "BYDATA_ADMIN_TOKEN": TOKEN}
        with open(self.logpath, "ab") as err, open(os.path.join(self.workdir, "stdout.log"), "ab") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        Server.live.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.binary} exited with {self.proc.returncode} at start; see {self.logpath}")
            try:
                if http_req(self.http, "GET", "/health", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.binary} not healthy after {timeout} s; see {self.logpath}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss(self) -> int | None:
        return proc_kb(self.pid, "VmRSS") if self.alive() else None

    def hwm(self) -> int | None:
        return proc_kb(self.pid, "VmHWM") if self.alive() else None

    def journal_bytes(self) -> int:
        return tree_bytes(os.path.join(self.data, "journal"))

    def log_bytes(self) -> int:
        return os.path.getsize(self.logpath)

    def stop(self, timeout: float = 20) -> None:
        p, self.proc = self.proc, None
        if self in Server.live:
            Server.live.remove(self)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_all() -> None:
    for s in list(Server.live):
        try:
            s.stop()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            print(f"stopping {s.binary}: {e}", file=sys.stderr)


class RssGuard:
    """Calls `on_trip` once — by default kills the server (SIGKILL) — if its RSS passes `limit` bytes;
    `tripped` says whether it did, `tripped_after` when (seconds since the guard started)."""

    def __init__(self, server: Server, limit: int, on_trip=None):
        self.server, self.limit, self.tripped, self.tripped_after = server, limit, False, None
        self.on_trip = on_trip or (lambda: os.kill(server.pid, signal.SIGKILL))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(0.05):
            rss = self.server.rss()
            if rss is not None and rss > self.limit:
                self.tripped, self.tripped_after = True, time.monotonic() - t0
                self.on_trip()
                return

    def __enter__(self) -> "RssGuard":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------- HTTP


def http_req(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 60) -> tuple[int, bytes, float]:
    """One request on a new connection: status, body, seconds to the whole body."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, time.perf_counter() - t0
    finally:
        c.close()


def api(port: int, method: str, path: str, doc: dict | None = None, want: int = 200) -> dict:
    body = json.dumps(doc).encode() if doc is not None else None
    status, data, _ = http_req(port, method, path, body, {"Authorization": f"Bearer {TOKEN}",
                                                         "Content-Type": "application/json"})
    if status != want:
        raise BenchError(f"{method} {path} answered {status} (want {want}): {data[:300]!r}")
    return json.loads(data) if data else {}


def http_count(port: int, path: str, timeout: float) -> tuple[int | str, int, float]:
    """GET, reading the body in chunks without keeping it: status (or the error), bytes, seconds."""
    t0 = time.perf_counter()
    n = 0
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        while chunk := r.read(1 << 20):
            n += len(chunk)
        return r.status, n, time.perf_counter() - t0
    except (OSError, http.client.HTTPException) as e:
        return f"cut ({type(e).__name__})", n, time.perf_counter() - t0
    finally:
        c.close()


def metric(s: Server, name: str) -> str | None:
    """The value of one sample line of /metrics (`name` with its labels), or None."""
    status, body, _ = http_req(s.http, "GET", "/metrics", timeout=10)
    for line in body.decode(errors="replace").splitlines() if status == 200 else []:
        if line.startswith(name + " "):
            return line.split()[-1]
    return None


def onboard(s: Server, device_id: str) -> str:
    """Registers an MQTT device; its password."""
    return api(s.http, "POST", "/api/v1/devices", {"id": device_id, **DEVICE}, 201)["mqtt"]["password"]


def write_lines(s: Server, lines: str, token: str = TOKEN, timeout: float = 300) -> tuple[int, float, bytes]:
    status, data, secs = http_req(s.http, "POST", "/api/v2/write?bucket=city&precision=s", lines.encode(),
                                  {"Authorization": f"Token {token}", "Content-Type": "text/plain"}, timeout)
    return status, secs, data


class HealthSampler:
    """GETs /health every `every` seconds from a thread until stopped: latencies of 200s, and failures."""

    def __init__(self, port: int, every: float = 0.25, timeout: float = 10):
        self.port, self.every, self.timeout = port, every, timeout
        self.ok: list[float] = []
        self.failed = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                status, _, secs = http_req(self.port, "GET", "/health", timeout=self.timeout)
                if status == 200:
                    self.ok.append(secs)
                else:
                    self.failed[str(status)] += 1
            except (OSError, http.client.HTTPException) as e:
                if not self._stop.is_set():  # not the guard's kill
                    self.failed[type(e).__name__] += 1
            self._stop.wait(max(0.0, self.every - (time.perf_counter() - t0)))

    def __enter__(self) -> "HealthSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._thread.join()

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> str:
        n = len(self.ok) + sum(self.failed.values())
        text = f"median {fmt_s(median(self.ok))}, max {fmt_s(max(self.ok, default=None))}"
        if self.failed:
            text += f"; {sum(self.failed.values())}/{n} failed ({fmt_counts(self.failed)})"
        return text


# ---------------------------------------------------------------------------------------------- MQTT 3.1.1


def mqtt_str(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, username: str | None = None, password: str | None = None,
                   will: tuple[bytes, bytes] | None = None, keep_alive: int = 30) -> bytes:
    """CONNECT (§3.1): protocol level 4, clean session, an optional will (QoS 0) and login."""
    flags = 0x02
    payload = mqtt_str(client_id.encode())
    if will is not None:
        flags |= 0x04
        payload += mqtt_str(will[0]) + mqtt_str(will[1])
    if username is not None:
        flags |= 0x80
        payload += mqtt_str(username.encode())
    if password is not None:
        flags |= 0x40
        payload += mqtt_str(password.encode())
    body = mqtt_str(b"MQTT") + bytes([4, flags]) + keep_alive.to_bytes(2, "big") + payload
    return b"\x10" + remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH (§3.3) at QoS 1."""
    body = mqtt_str(topic.encode()) + packet_id.to_bytes(2, "big") + payload
    return b"\x32" + remaining_length(len(body)) + body


DISCONNECT = b"\xe0\x00"


def read_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionResetError("closed")
        out += chunk
    return out


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """(packet type, body) of the next packet; raises on close or timeout."""
    first = read_exact(sock, 1)[0]
    length, shift = 0, 0
    while True:
        b = read_exact(sock, 1)[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return first >> 4, read_exact(sock, length)


def mqtt_connect(port: int, client_id: str, password: str | None = None, will: tuple[bytes, bytes] | None = None,
                 source: str | None = None, timeout: float = 10, keep: bool = False,
                 login: bool = True) -> tuple[str, float, socket.socket | None]:
    """Sends a CONNECT and waits for the answer: ('CONNACK n' | 'closed' | 'timeout' | 'refused', seconds from
    the CONNECT's first byte, the open socket if `keep` and accepted)."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
    except OSError:
        return "refused", 0.0, None
    sock.settimeout(timeout)
    username = client_id if (login and password is not None) else None
    packet = connect_packet(client_id, username, password, will)
    t0 = time.perf_counter()
    try:
        sock.sendall(packet)
        kind, body = read_packet(sock)
        outcome = f"CONNACK {body[1]}" if kind == 2 and len(body) == 2 else f"packet type {kind}"
    except socket.timeout:
        outcome = "timeout"
    except OSError:
        outcome = "closed"
    secs = time.perf_counter() - t0
    if keep and outcome == "CONNACK 0":
        return outcome, secs, sock
    try:
        if outcome == "CONNACK 0":
            sock.sendall(DISCONNECT)
    except OSError:
        pass
    sock.close()
    return outcome, secs, None


def mqtt_publish(sock: socket.socket, topic: str, payload: bytes, timeout: float = 5) -> str:
    """PUBLISH QoS 1 on an open connection: 'PUBACK' | 'closed, no PUBACK' | 'no answer in 5 s'."""
    sock.settimeout(timeout)
    try:
        sock.sendall(publish_packet(topic, payload, 1))
        kind, _ = read_packet(sock)
        return "PUBACK" if kind == 4 else f"packet type {kind}"
    except socket.timeout:
        return f"no answer in {timeout:g} s"
    except OSError:
        return "closed, no PUBACK"


def can_bind(address: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def wait_stable(read, quiet: float = 1.5, limit: float = 15):
    """Polls `read()` until it returns the same value for `quiet` seconds (at most `limit`); the value."""
    last, since = read(), time.monotonic()
    deadline = since + limit
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


# ---------------------------------------------------------------------------------------------- probes
# Each probe takes a started server and returns {figure: value as text}; figures keep their order.


def probe_disk_fill(s: Server, _args) -> dict:
    onboard(s, "meter-1")
    will = (b"attack/" + b"w" * 60_000, b"gone")
    out: dict[str, str] = {}
    for label, client_id in (("unregistered id", "sensor-4711"), ("registered id", "meter-1")):
        j0, l0 = s.journal_bytes(), s.log_bytes()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = collections.Counter(pool.map(
                lambda _: mqtt_connect(s.mqtt, client_id, will=will, timeout=5)[0], range(300)))
        j1, l1 = wait_stable(lambda: (s.journal_bytes(), s.log_bytes()))
        out[f"answers to 300 CONNECTs, {label}"] = fmt_counts(answers)
        out[f"journal grown, {label}"] = fmt_bytes(j1 - j0)
        out[f"log grown, {label}"] = fmt_bytes(l1 - l0)
    status = wait_stable(lambda: api(s.http, "GET", "/api/v1/devices/meter-1/status"), quiet=2)
    last_error = (status.get("last_error") or {}).get("reason")
    out["meter-1 status: rejected"] = f"{status['rejected']}"
    out["meter-1 status: last_error length"] = "none" if last_error is None else f"{len(last_error):,} chars"
    small, _, _ = mqtt_connect(s.mqtt, "meter-1", will=(b"elsewhere/" + b"w" * 90, b"gone"), timeout=5)
    out["then one CONNECT, registered id, 100 B will, no password"] = small
    return out


def probe_passwords(s: Server, args) -> dict:
    onboard(s, "meter-1")
    old_pw, new_pw = onboard(s, "legit-old"), onboard(s, "legit-new")
    for i in range(5):  # only the ids matter: every timed attempt uses a wrong password
        onboard(s, f"known-{i}")
    first, _, _ = mqtt_connect(s.mqtt, "legit-old", old_pw)
    if first != "CONNACK 0":
        raise BenchError(f"legit-old could not connect before the storm: {first}")
    spread = can_bind("127.0.0.2")
    sources = [f"127.0.0.{2 + i}" for i in range(100)] if spread else [None] * 100
    time.sleep(1)
    hwm0, j0, l0 = s.hwm(), s.journal_bytes(), s.log_bytes()
    stop = threading.Event()
    answers: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def attacker(source: str | None) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            outcome, _, _ = mqtt_connect(s.mqtt, "meter-1", f"guess-{n}", source=source, timeout=20)
            with lock:
                answers[outcome] += 1

    threads = [threading.Thread(target=attacker, args=(src,), daemon=True) for src in sources]
    # The storm ends early (the server lives on) if the server's RSS passes the limit: "before" would
    # otherwise take gigabytes from a machine shared with others.
    guard = RssGuard(s, int(args.rss_limit_gib * (1 << 30)), on_trip=stop.set)

    legit_answers: dict[tuple[str, float], str] = {}

    def legit(device_id: str, password: str, when: float) -> None:
        """One login at `when` s into the storm, in a thread of its own (a slow one delays no other)."""
        time.sleep(max(0.0, t_start + when - time.monotonic()))
        stopped = stop.is_set()
        outcome, secs, _ = mqtt_connect(s.mqtt, device_id, password, timeout=30)
        text = fmt_s(secs) if outcome == "CONNACK 0" else f"{outcome} after {fmt_s(secs)}"
        legit_answers[(device_id, when)] = text + (" (storm stopped)" if stopped else "")

    plan = [("legit-old", old_pw, 2.0), ("legit-new", new_pw, 2.5), ("legit-old", old_pw, 5.0),
            ("legit-old", old_pw, 10.0)]
    with guard:
        t_start = time.monotonic()
        for t in threads:
            t.start()
        logins = [threading.Thread(target=legit, args=p, daemon=True) for p in plan]
        for t in logins:
            t.start()
        time.sleep(max(0.0, t_start + 15 - time.monotonic()))
        stop.set()
        for t in threads + logins:
            t.join(timeout=30)
    reconnects = [legit_answers.get((d, w), "no answer") for d, _, w in plan if d == "legit-old"]
    fresh = legit_answers.get(("legit-new", 2.5), "no answer")
    hwm1 = s.hwm()
    j1, l1 = wait_stable(lambda: (s.journal_bytes(), s.log_bytes()))
    peak = fmt_mib(hwm1 - hwm0) if hwm0 and hwm1 else "n/a"
    if guard.tripped:
        peak += f" (RSS passed {args.rss_limit_gib:g} GiB after {guard.tripped_after:.1f} s: storm stopped)"
    out = {
        "storm: 100 parallel wrong-password loops for 15 s, answers": fmt_counts(answers),
        "storm: peak RSS growth (VmHWM)": peak,
        "storm: journal grown": fmt_bytes(j1 - j0),
        "storm: log grown": fmt_bytes(l1 - l0),
        "storm: CONNACK for a device that logged in before (at 2, 5, 10 s)": ", ".join(reconnects),
        "storm: CONNACK for a device's first login (at 2.5 s)": fresh,
    }
    time.sleep(2)  # let the pool drain what the storm left queued

    # Answer times, sequential and spaced, each from a source address of its own and at most 4 failures per
    # id, so neither backoff applies: unknown ids against known ids with a wrong password, alternating.
    unknown, known, unknown_seen, known_seen = [], [], collections.Counter(), collections.Counter()
    for i in range(20):
        for device_id, net, secs, seen in ((f"ghost-{i:02}", 1, unknown, unknown_seen),
                                           (f"known-{i % 5}", 2, known, known_seen)):
            outcome, t, _ = mqtt_connect(s.mqtt, device_id, "not-the-password",
                                         source=f"127.0.{net}.{1 + i}" if spread else None, timeout=30)
            secs.append(t)
            seen[outcome] += 1
            time.sleep(0.2)
    out["unknown id, median answer (20 tries)"] = f"{fmt_s(median(unknown))} ({fmt_counts(unknown_seen)})"
    out["known id + wrong password, median answer (20)"] = f"{fmt_s(median(known))} ({fmt_counts(known_seen)})"
    # Back to back: ten more wrong passwords for known-0 (which has 4 failures) from one new address.
    burst, burst_seen = [], collections.Counter()
    for _ in range(10):
        outcome, t, _ = mqtt_connect(s.mqtt, "known-0", "again-wrong", source="127.0.3.1" if spread else None,
                                     timeout=30)
        burst.append(t)
        burst_seen[outcome] += 1
    out["10 more wrong for one id, back to back"] = (f"{fmt_counts(burst_seen)}; median {fmt_s(median(burst))}")
    if not spread:
        out["note"] = "could not bind 127.0.0.2: every attempt came from 127.0.0.1"
    return out


def probe_query(s: Server, args) -> dict:
    lines = []
    for i in range(200):
        for minute, value in ((600, 1.0), (635, 10.0), (660, 100.0)):
            lines.append(f"air,sensor=s{i:03} value={value * (i + 1)} {DAY0 + minute * 60}")
    status, _, body = write_lines(s, "\n".join(lines))
    if status != 204:
        raise BenchError(f"writing the 200 series answered {status}: {body[:300]!r}")
    for chunk in range(5):  # one sensor, 250,000 readings one a second
        status, _, body = write_lines(s, "\n".join(
            f"vibration,sensor=v1 value={i} {DAY0 + chunk * 50_000 + i}" for i in range(50_000)))
        if status != 204:
            raise BenchError(f"writing vibration answered {status}: {body[:300]!r}")
    big = "/api/v1/query?" + urllib.parse.urlencode({
        "measurement": "air", "every": "15m", "fn": "mean",
        "from": "2023-01-01T00:00:00Z", "to": "2025-09-27T00:00:00Z"})
    raw = "/api/v1/query?" + urllib.parse.urlencode({
        "measurement": "vibration", "from": "2025-01-01T00:00:00Z", "to": "2025-01-05T00:00:00Z"})
    limit = int(args.rss_limit_gib * (1 << 30))
    out: dict[str, str] = {}
    time.sleep(1)

    def killed(guard: RssGuard) -> str:
        return f" (killed at RSS > {args.rss_limit_gib:g} GiB)" if guard.tripped else ""

    hwm0, rss0 = s.hwm(), s.rss()
    with RssGuard(s, limit) as guard:
        code, n, secs = http_count(s.http, big, timeout=args.query_timeout)
    hwm1 = proc_kb(s.pid, "VmHWM") if not guard.tripped else None
    out["200 × 96,000 buckets: status, time"] = f"{code} in {fmt_s(secs)}{killed(guard)}"
    out["200 × 96,000 buckets: bytes returned"] = fmt_bytes(n)
    out["200 × 96,000 buckets: peak RSS growth (VmHWM)"] = (
        f"> {fmt_mib(limit - (rss0 or 0))}" if guard.tripped else fmt_mib(hwm1 - hwm0))
    if not s.alive():  # killed by the guard: the data is on disk, go on with a restarted server
        s.stop()
        s.start()
    code, n, secs = http_count(s.http, raw, timeout=args.query_timeout)
    out["raw query over 250,000 points: status, time"] = f"{code} in {fmt_s(secs)} ({fmt_bytes(n)})"

    hwm0 = s.hwm()
    results: list[tuple] = []
    health = HealthSampler(s.http)

    def stop_health_then_kill() -> None:
        health.stop()
        os.kill(s.pid, signal.SIGKILL)

    with health, RssGuard(s, limit, on_trip=stop_health_then_kill) as guard:
        threads = [threading.Thread(target=lambda: results.append(http_count(s.http, big, args.query_timeout)),
                                    daemon=True) for _ in range(3)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    codes = collections.Counter(str(r[0]) for r in results)
    out["3 such queries at once: answers, wall time"] = f"{fmt_counts(codes)} in {fmt_s(wall)}{killed(guard)}"
    out["3 such queries at once: /health meanwhile"] = health.summary()
    hwm1 = s.hwm()
    if not guard.tripped and hwm0 and hwm1:
        out["3 such queries at once: peak RSS growth"] = fmt_mib(hwm1 - hwm0)
    else:
        out["3 such queries at once: peak RSS growth"] = f"> {args.rss_limit_gib:g} GiB (killed)"
    return out


def probe_slow_http(s: Server, _args) -> dict:
    password = onboard(s, "meter-1")
    caps = [metric(s, f'bydata_http_connections_limit{{scope="{scope}"}}') for scope in ("total", "per_source")]
    n, every, hold = 1500, 10.0, 60.0
    # Over several loopback sources (≤ 256 each, the default per-source cap), so the per-source cap is not
    # what ends them — the total cap and the header timeout are.
    sources = [f"127.0.0.{2 + i}" for i in range(6)] if can_bind("127.0.0.2") else [None]
    socks: list[socket.socket] = []
    closed_at: dict[int, float] = {}
    answered = collections.Counter()
    connect_failed = 0
    for i in range(n):
        src = sources[i % len(sources)]
        try:
            sock = socket.create_connection(("127.0.0.1", s.http), timeout=5,
                                            source_address=(src, 0) if src else None)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n")
            sock.setblocking(False)
            socks.append(sock)
        except OSError:
            connect_failed += 1
    t0 = time.monotonic()
    poller = select.poll()
    by_fd = {}
    for sock in socks:
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        by_fd[sock.fileno()] = sock

    def sweep() -> None:
        """Marks every connection the server closed or answered (the first answer's status is kept)."""
        for fd, _ in poller.poll(0):
            sock = by_fd.pop(fd)
            poller.unregister(fd)
            try:
                data = sock.recv(64)
            except OSError as e:
                data = type(e).__name__.encode()
            what = data.split(b"\r\n", 1)[0].decode(errors="replace")
            answered[f"answered {what[9:12]}" if what.startswith("HTTP/") else
                     ("closed without answer" if not what else what)] += 1
            closed_at[fd] = time.monotonic() - t0

    mqtt_result = "n/a"
    open_at: dict[str, int] = {}
    with HealthSampler(s.http, every=0.5, timeout=5) as health:
        next_line, k = every, 0
        checks = [(1.0, "1 s"), (15.0, "15 s"), (hold, "60 s")]
        mqtt_at = 5.0
        while checks:
            now = time.monotonic() - t0
            if mqtt_at is not None and now >= mqtt_at:
                mqtt_at = None
                outcome, secs, sock = mqtt_connect(s.mqtt, "meter-1", password, timeout=10, keep=True)
                if sock is not None:
                    answer = mqtt_publish(sock, "devices/meter-1/up", b'{"temperature": 21.5}')
                    sock.close()
                    t = time.monotonic() - t0 - now
                    mqtt_result = f"{answer} ({fmt_s(t)} CONNECT to PUBACK)" if answer == "PUBACK" else answer
                else:
                    mqtt_result = f"CONNECT: {outcome} after {fmt_s(secs)}"
            if now >= next_line:  # one more header line on every connection still open
                k += 1
                next_line += every
                for sock in list(by_fd.values()):
                    try:
                        sock.send(f"X-Slow-{k}: {k}\r\n".encode())
                    except OSError:
                        pass
            sweep()
            if now >= checks[0][0]:
                open_at[checks.pop(0)[1]] = len(by_fd)
            time.sleep(0.05)
    for sock in socks:
        sock.close()
    closes = sorted(closed_at.values())
    late = [c for c in closes if c > 1.0]
    out = {
        "HTTP connection caps in effect (total, per source)": "none" if caps[0] is None else
        f"{int(caps[0]):,}, {int(caps[1]):,} (/metrics)",
        "connections accepted (not answered at once) of 1,500": f"{open_at['1 s']:,}"
        + (f" ({connect_failed} connect() failed)" if connect_failed else ""),
        "still open after 15 s": f"{open_at['15 s']:,}",
        "still open after 60 s": f"{open_at['60 s']:,}",
        "how they ended": fmt_counts(answered) if answered else "none ended",
        "accepted ones closed at (median)": fmt_s(median(late)) if late else "n/a",
        "/health every 0.5 s meanwhile": health.summary(),
        "MQTT CONNECT+PUBLISH at 5 s": mqtt_result,
    }
    return out


def probe_cardinality(s: Server, _args) -> dict:
    token = api(s.http, "POST", "/api/v1/tokens", {"name": "w", "role": "write"}, 201)["token"]
    rss0, hwm0 = s.rss(), s.hwm()
    codes, times, first_refusal = [], [], None
    for r in range(5):
        body = "\n".join(f"card,u=r{r}s{i:06} v=1 {DAY0 + r}" for i in range(200_000))
        try:
            status, secs, answer = write_lines(s, body, token, timeout=300)
        except (OSError, http.client.HTTPException) as e:
            status, secs, answer = type(e).__name__, 0.0, b""
        codes.append(str(status))
        times.append(secs)
        if status != 204 and first_refusal is None:
            try:
                error = json.loads(answer)["error"]
                first_refusal = f"{error['code']}: {error['message'][:44]}…"
            except (ValueError, KeyError, TypeError):
                first_refusal = answer[:100].decode(errors="replace")
    time.sleep(1)
    out = {
        "5 × 200,000 new series: status codes": ", ".join(codes),
        "time per request (median)": fmt_s(median(times)),
        "RSS after (growth)": f"{fmt_mib(s.rss())} (+{fmt_mib((s.rss() or 0) - (rss0 or 0))})",
        "peak RSS growth (VmHWM)": fmt_mib((s.hwm() or 0) - (hwm0 or 0)),
    }
    if first_refusal:
        out["first refusal"] = first_refusal
    return out


def probe_spoof(s: Server, _args) -> dict:
    password = onboard(s, "meter-1")
    out = {}
    for label, topic in (("devices/meter-1/up (control)", "devices/meter-1/up"),
                         ("devices/meter-1/status", "devices/meter-1/status"),
                         ("devices/meter-1/+ (wildcard)", "devices/meter-1/+")):
        j0 = s.journal_bytes()
        outcome, _, sock = mqtt_connect(s.mqtt, "meter-1", password, timeout=10, keep=True)
        if sock is None:
            out[f"PUBLISH to {label}"] = f"CONNECT: {outcome}"
            continue
        answer = mqtt_publish(sock, topic, b'{"status": "ok", "temperature": 99}')
        sock.close()
        grown = wait_stable(s.journal_bytes, quiet=1, limit=5) - j0
        out[f"PUBLISH to {label}"] = f"{answer}; journal +{fmt_bytes(grown)}"
    return out


PROBES = {
    1: ("1 disk fill", probe_disk_fill),
    2: ("2 passwords", probe_passwords),
    3: ("3 query size", probe_query),
    4: ("4 slow HTTP", probe_slow_http),
    5: ("5 cardinality", probe_cardinality),
    6: ("6 spoofing", probe_spoof),
}

NOTES = {
    1: "probe 1: \"after\" closes a CONNECT over 8 KB before reading it whole, so its 60 KB will is never "
       "parsed; the 100 B-will row shows the answer to a will that fits.",
    2: "probe 2: RSS is the whole process's VmHWM delta; storm attempts come from 127.0.0.2-101 (one each), "
       "timed attempts from addresses of their own.",
    4: "probe 4: the 1,500 slow connections come from 127.0.0.2-7 (250 each), so in \"after\" the per-source "
       "cap (128 by default: the rest get 429 at once), the total cap and the header timeout (10 s) act; /health "
       "comes from 127.0.0.1 and shares the total cap; the caps in effect depend on the open-file limit "
       "(`ulimit -n`) bydata starts with.",
    5: "probe 5: same load and default config for both; only a build with a series-cardinality limit "
       "([api] max_series_per_token) refuses.",
}


def run(args) -> int:
    binaries = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    for b in binaries.values():
        if not os.access(b, os.X_OK):
            raise BenchError(f"not an executable: {b}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:  # the client side of probe 4 holds 1,500 sockets; the servers inherit this limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    tmp = tempfile.mkdtemp(prefix="bydata-abuse-")
    results: dict[int, dict[str, dict]] = {}
    t_all = time.perf_counter()
    try:
        for number in args.only:
            label, probe = PROBES[number]
            results[number] = {}
            for which, binary in binaries.items():
                log(f"probe {label} — {which}")
                server = Server(binary, os.path.join(tmp, f"p{number}-{which}")).start()
                t0 = time.perf_counter()
                try:
                    results[number][which] = probe(server, args)
                except BenchError as e:
                    results[number][which] = {"error": str(e)[:200]}
                finally:
                    server.stop()
                log(f"  {which} done in {time.perf_counter() - t0:.1f} s")
    finally:
        stop_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for number in args.only:
        label = PROBES[number][0]
        before, after = results[number].get("before", {}), results[number].get("after", {})
        figures = list(dict.fromkeys([*before, *after]))
        for fig in figures:
            rows.append((label, fig, before.get(fig, "—"), after.get(fig, "—")))
    print_table(rows, [NOTES[n] for n in args.only if n in NOTES] + [
        f"before = {args.before_label}, after = {args.after_label}; each probe on a fresh server with default "
        "config, loopback only; wall time of the probes "
        f"{time.perf_counter() - t_all:.0f} s."])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"before": args.before_label, "after": args.after_label,
                       "rows": [dict(zip(("probe", "figure", "before", "after"), r)) for r in rows]}, f, indent=1)
    return 0


def print_table(rows: list[tuple], notes: list[str]) -> None:
    head = ("probe", "figure", "before", "after")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    widths[2] = min(widths[2], 60)
    widths[3] = min(widths[3], 60)
    line = "  ".join("-" * w for w in widths)
    print()
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    print(line)
    last = None
    for r in rows:
        probe = r[0] if r[0] != last else ""
        last = r[0]
        print("  ".join(str(c).ljust(w) for c, w in zip((probe, *r[1:]), widths)).rstrip())
    print(line)
    for n in notes:
        print(f"note: {n}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the baseline bydata binary")
    ap.add_argument("--after", required=True, help="the bydata binary under test")
    ap.add_argument("--before-label", default="baseline")
    ap.add_argument("--after-label", default="working tree")
    ap.add_argument("--only", default="1,2,3,4,5,6", help="probes to run, e.g. 1,3")
    ap.add_argument("--rss-limit-gib", type=float, default=4.0,
                    help="RSS a server may reach: probe 2 stops its storm there, probe 3 kills the server "
                         "(default 4)")
    ap.add_argument("--query-timeout", type=float, default=180.0, help="seconds one large query may take")
    ap.add_argument("--json", help="also write the table as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    args = ap.parse_args()
    args.only = [int(x) for x in args.only.split(",") if x.strip()]
    if any(n not in PROBES for n in args.only):
        ap.error(f"--only takes probe numbers among {sorted(PROBES)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())

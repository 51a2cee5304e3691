"""Soak test on loopback: a fixed number of classify requests against `uxcx serve`; does its memory stay flat?

Starts `python -m cli.main serve` (one worker, default settings, recording to SQLite in a temp data
dir; only the rate limit is raised so that one client is never refused) pinned to CPU 0, waits for
/readyz, then sends exactly --requests POST /v1/classify over --connections keep-alive connections
(asyncio streams, pinned to CPU 1; at most that many requests in flight). Texts are the corpus's
(training/data/*.jsonl), in order, cycling. Every 50th request is a batch of 10 texts, every 100th
(offset 25) a single text with `"record": false`; the rest are single texts, recorded.

After every --every requests it samples the server's RSS (children included), the SQLite file size
(database + WAL) and that segment's req/s. Pass: no 5xx or connection error, every recorded item is
in the database, and RSS grows less than --max-growth from the end of the warm-up to the last
sample. Results: bench/results/soak.{json,md}. Exit 0 pass, 1 fail, 2 could not run.

    python -m bench.soak [--requests 200000] [--every 10000] [--warmup 20000] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.api import count_rows, stop, wait_ready

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CORPUS = (ROOT / "training" / "data" / "train.jsonl", ROOT / "training" / "data" / "heldout.jsonl")
BATCH_EVERY, BATCH_SIZE = 50, 10
UNRECORDED_EVERY, UNRECORDED_OFFSET = 100, 25
SOURCES = ("app_review", "ticket", "survey")
MB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """The server's state after `requests` requests."""

    requests: int
    seconds: float
    rss_mb: float
    db_mb: float
    req_per_s: float
    server_cpu_us_per_req: float
    threads: int
    fds: int


def corpus_texts() -> list[str]:
    """All corpus texts, train then held-out, in file order."""
    texts = []
    for path in CORPUS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


def request_body(i: int, texts: list[str]) -> tuple[bytes, int, int]:
    """Request i of the run: its JSON body, the texts it carries and how many of them are recorded."""
    source = SOURCES[i % len(SOURCES)]
    if i % BATCH_EVERY == BATCH_EVERY - 1:
        start = i * BATCH_SIZE
        items = [{"text": texts[(start + k) % len(texts)], "source": source} for k in range(BATCH_SIZE)]
        return json.dumps({"items": items}).encode(), BATCH_SIZE, BATCH_SIZE
    body: dict[str, Any] = {"text": texts[i % len(texts)], "source": source}
    if i % UNRECORDED_EVERY == UNRECORDED_OFFSET:
        body["record"] = False
        return json.dumps(body).encode(), 1, 0
    return json.dumps(body).encode(), 1, 1


def growth(samples: list[Sample], warmup: int) -> tuple[Sample, Sample, float]:
    """The first sample at or after `warmup` requests, the last sample, and RSS growth between them (fraction)."""
    after = [s for s in samples if s.requests >= warmup]
    if len(after) < 2:
        raise ValueError(f"need two samples at or after the warm-up ({warmup} requests); got {len(after)}")
    base, last = after[0], after[-1]
    return base, last, (last.rss_mb - base.rss_mb) / base.rss_mb


def rss_bytes(proc: psutil.Process) -> int:
    """Resident memory of a process and its children."""
    total: int = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def db_bytes(db: Path) -> int:
    """The SQLite database with its write-ahead log."""
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port (else /readyz could be another server's)."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Load:
    """Sends exactly `total` requests from `connections` workers and samples the server every `every`."""

    def __init__(self, port: int, texts: list[str], total: int, every: int, connections: int, pid: int, db: Path) -> None:
        self.port, self.texts, self.total, self.every, self.connections = port, texts, total, every, connections
        self.server = psutil.Process(pid)
        self.db = db
        self.next = 0
        self.done = 0
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.texts_sent = 0
        self.recorded_expected = 0
        self.samples: list[Sample] = []
        self._t0 = self._t_prev = 0.0
        self._cpu_prev = 0.0

    def sample(self) -> None:
        """Record the server's RSS, database size, threads and files, and this segment's req/s and CPU."""
        now = time.perf_counter()
        cpu = self.server.cpu_times()
        cpu_s = cpu.user + cpu.system
        n = self.done - (self.samples[-1].requests if self.samples else 0)
        self.samples.append(
            Sample(
                requests=self.done,
                seconds=round(now - self._t0, 3),
                rss_mb=round(rss_bytes(self.server) / MB, 2),
                db_mb=round(db_bytes(self.db) / MB, 2),
                req_per_s=round(n / (now - self._t_prev), 1) if n else 0.0,
                server_cpu_us_per_req=round((cpu_s - self._cpu_prev) / n * 1e6, 1) if n else 0.0,
                threads=self.server.num_threads(),
                fds=self.server.num_fds(),
            )
        )
        self._t_prev, self._cpu_prev = now, cpu_s

    async def _worker(self) -> None:
        conn: Connection | None = None
        while self.next < self.total and not self.errors:
            i = self.next
            self.next += 1
            body, n_texts, n_recorded = request_body(i, self.texts)
            try:
                async with asyncio.timeout(30):
                    conn = conn or await Connection.open(self.port)
                    status, answer, keep = await conn.post("/v1/classify", body)
            except (OSError, EOFError, ValueError, TimeoutError, asyncio.LimitOverrunError) as exc:
                # The server is gone, wedged or speaking nonsense: stop every worker, the run has failed.
                self.errors[type(exc).__name__] += 1
                if conn is not None:
                    conn.close()
                return
            if not keep:
                conn.close()
                conn = None
            self.statuses[status] += 1
            self.texts_sent += n_texts
            if status == 200:
                if b'"model_version"' not in answer:
                    self.errors["bad answer"] += 1
                self.recorded_expected += n_recorded
            self.done += 1
            if self.done % self.every == 0 or self.done == self.total:
                self.sample()
        if conn is not None:
            conn.close()

    async def run(self) -> None:
        """Send all the requests, sampling before the first and after every `every`."""
        self._t0 = self._t_prev = time.perf_counter()
        cpu = self.server.cpu_times()
        self._cpu_prev = cpu.user + cpu.system
        self.sample()  # before any load: the server just after start
        await asyncio.gather(*(self._worker() for _ in range(self.connections)))


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams.

    httpx used 1.7 ms of CPU per request, more than the server spent, so the client was the
    bottleneck; this needs about 50 µs. It reads what uvicorn answers (Content-Length
    bodies) and refuses anything else as a protocol error.
    """

    def __init__(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.host = f"127.0.0.1:{port}".encode()
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to 127.0.0.1:port."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(port, reader, writer)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes, bool]:
        """POST a JSON body; the status, the answer's body and whether the connection stays open."""
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), self.host, len(body), body)
        )
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, keep = parse_head(head)
        return status, await self.reader.readexactly(length), keep

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and keep-alive of an HTTP/1.1 response head; ValueError if it has no length."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    length, keep = None, parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep = value.strip().lower() != b"close"
    if length is None:
        raise ValueError("the answer has no Content-Length (chunked answers are not expected from classify)")
    return int(parts[1]), length, keep


def server_metrics(port: int) -> dict[str, Any]:
    """The server's own counts, from /metrics: classify answers by status, model calls, rows written or lost."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith("uxcx_requests_total{") and 'route="/v1/classify"' in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            out[f"classify_{status}"] = float(line.rsplit(" ", 1)[1])
        for name in ("uxcx_model_batch_items_count", "uxcx_model_batch_items_sum", "uxcx_records_written_total", "uxcx_records_failed_total"):
            if line.startswith(name + " "):
                out[name.removeprefix("uxcx_")] = float(line.rsplit(" ", 1)[1])
    calls = out.get("model_batch_items_count", 0.0)
    if calls:
        out["texts_per_model_call"] = round(out["model_batch_items_sum"] / calls, 1)
    return out


def server_env(data_dir: Path) -> dict[str, str]:
    """The environment without the caller's UXCX_* settings (defaults, then), recording to data_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UXCX_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    # One client sends everything: the default 6000/minute would refuse most of the run.
    # The limiter stays on (its per-client window is part of what is soaked), just never reached.
    env.update({"UXCX_DATA_DIR": str(data_dir), "UXCX_RATE_LIMIT": "1000000/second"})
    return env


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print the curve, write the results; exit 1 if it failed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200_000, help="requests to send, exactly")
    ap.add_argument("--every", type=int, default=10_000, help="sample the server every this many requests")
    ap.add_argument("--warmup", type=int, default=20_000, help="growth is measured from the first sample at or after this")
    ap.add_argument("--connections", type=int, default=16, help="keep-alive connections = requests in flight")
    ap.add_argument("--max-growth", type=float, default=0.10, help="largest RSS growth after warm-up that passes (fraction)")
    ap.add_argument("--port", type=int, default=8613)
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.json", help="JSON results; the .md goes beside it")
    args = ap.parse_args(argv)
    if args.every < 1 or args.connections < 1 or args.requests < args.warmup + args.every:
        ap.error("need --every >= 1, --connections >= 1 and --requests >= --warmup + --every")
    if not (ROOT / "models" / "current").exists():
        print("bench.soak: no models/current: run `make train` first", file=sys.stderr)
        return 2
    if not port_free(args.port):
        print(f"bench.soak: something already listens on 127.0.0.1:{args.port}; pick another --port", file=sys.stderr)
        return 2

    texts = corpus_texts()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    with tempfile.TemporaryDirectory(prefix="uxcx-soak-") as tmp:
        work = Path(tmp)
        db = work / "var" / "uxcx.db"
        cmd = [sys.executable, "-m", "cli.main", "serve", "--port", str(args.port)]
        if len(cpus) >= 2:
            # One core each, as bench/api.py does: the server's req/s is not the client's.
            cmd = ["taskset", "-c", str(cpus[0]), *cmd]
            os.sched_setaffinity(0, {cpus[1]})
        log_path = work / "server.log"
        with log_path.open("wb") as log:
            # cwd=ROOT: this checkout's code and models/ are the ones served.
            proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(work / "var"), stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_ready(args.port, proc, timeout=180.0, path="/readyz")
                load = Load(args.port, texts, args.requests, args.every, args.connections, proc.pid, db)
                usage0 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.perf_counter()
                asyncio.run(load.run())
                wall = time.perf_counter() - t0
                usage1 = resource.getrusage(resource.RUSAGE_SELF)
                try:
                    served = server_metrics(args.port)
                except OSError as exc:  # the server died: the errors above say so already
                    served = {"unavailable": str(exc)}
            except RuntimeError as exc:
                print(f"bench.soak: {exc}\n{log_path.read_text(errors='replace')[-3000:]}", file=sys.stderr)
                return 2
            finally:
                exit_code = stop(proc)
        server_log = log_path.read_text(errors="replace")
        rows = count_rows(db) if db.exists() else 0

    client_cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    result: dict[str, Any] = {
        "requests": args.requests,
        "sent": load.done,
        "every": args.every,
        "warmup": args.warmup,
        "connections": args.connections,
        "max_growth": args.max_growth,
        "mix": f"single texts; every {BATCH_EVERY}th a batch of {BATCH_SIZE}; every {UNRECORDED_EVERY}th (offset "
               f"{UNRECORDED_OFFSET}) a single text with record=false",
        "corpus_texts": len(texts),
        "texts_classified": load.texts_sent,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "errors": dict(load.errors),
        "recorded_expected": load.recorded_expected,
        "recorded_rows": rows,
        "seconds": round(wall, 1),
        "req_per_s": round(load.done / wall, 1),
        "client_cpu_share": round(client_cpu / wall, 3),
        "server_metrics": served,
        "server_exit_code": exit_code,
        "server_log_errors": [line for line in server_log.splitlines() if "ERROR" in line or "Traceback" in line][:20],
        "samples": [asdict(s) for s in load.samples],
    }
    failures = []
    if load.errors or load.done != args.requests:
        failures.append(f"connection or protocol errors {dict(load.errors)}; {load.done:,} of {args.requests:,} requests answered")
    server_errors = sum(v for k, v in load.statuses.items() if k >= 500)
    if server_errors:
        failures.append(f"{server_errors} answers were 5xx")
    if rows != load.recorded_expected:
        failures.append(f"{load.recorded_expected:,} items should have been recorded, the database has {rows:,}")
    try:
        base, last, grew = growth(load.samples, args.warmup)
        result.update(rss_warm_mb=base.rss_mb, rss_last_mb=last.rss_mb, rss_peak_mb=max(s.rss_mb for s in load.samples), growth=round(grew, 4))
        if grew >= args.max_growth:
            failures.append(
                f"RSS grew {grew:.1%} after warm-up ({base.rss_mb:.1f} MB at {base.requests:,} requests, "
                f"{last.rss_mb:.1f} MB at {last.requests:,}); the limit is {args.max_growth:.0%}"
            )
    except ValueError as exc:
        failures.append(str(exc))
    result["passed"] = not failures
    result["failures"] = failures
    write(result, args.out)
    print(args.out.with_suffix(".md").read_text())
    if failures:
        print("bench.soak: FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def write(r: dict[str, Any], out: Path) -> None:
    """The JSON results and a Markdown table beside them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")
    base = r.get("rss_warm_mb")
    lines = [
        f"# Soak test ({r['requests']:,} classify requests, {r['connections']} connections, loopback, one uvicorn worker, recording to SQLite)",
        "",
        f"Mix: {r['mix']}; {r['texts_classified']:,} texts classified. Warm-up: the first {r['warmup']:,} requests.",
        "",
        "| requests | RSS MB | vs warm-up | DB MB | req/s | server CPU µs/request |",
        "|---|---|---|---|---|---|",
    ]
    for s in r["samples"]:
        vs = f"{(s['rss_mb'] - base) / base:+.1%}" if base and s["requests"] >= r["warmup"] else ""
        lines.append(
            f"| {s['requests']:,} | {s['rss_mb']:.1f} | {vs} | {s['db_mb']:.1f} | {s['req_per_s']:,.0f} | {s['server_cpu_us_per_req']:,.0f} |"
        )
    verdict = "PASS" if r["passed"] else "FAIL: " + "; ".join(r["failures"])
    growth_text = f"RSS growth after warm-up {r['growth']:+.1%} (limit {r['max_growth']:.0%}); " if "growth" in r else ""
    lines += [
        "",
        f"{verdict}. {growth_text}statuses {r['statuses']}, connection or protocol errors {sum(r['errors'].values())}; "
        f"{r['recorded_rows']:,} rows recorded ({r['recorded_expected']:,} expected); {r['req_per_s']:,.0f} req/s over "
        f"{r['seconds']:,.0f} s (the client used {r['client_cpu_share']:.0%} of its core); "
        f"{r['server_metrics'].get('texts_per_model_call', 0):.1f} texts per model call on average.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())

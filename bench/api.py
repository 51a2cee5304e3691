"""API load test on loopback: `uxcx serve` against a bare FastAPI endpoint that returns a constant, in one run.

wrk (Debian package `wrk`) drives 16 connections at POST /v1/classify with single texts; then the batch
endpoint with 1000 items per request. Both servers run one uvicorn worker; wrk runs one thread. Results
go to bench/results/api.{md,json}.

    python -m bench.api [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from service.schemas import BatchOut, ClassifyBatch, ClassifyItem, PredictionOut

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

_CONSTANT = PredictionOut.model_validate(
    {
        "id": "x",
        "label": "ux",
        "labels": ["ux"],
        "topic": "crash_error",
        "confidence": 0.9,
        "scores": {"ux": 0.9, "cx": 0.05, "other": 0.05},
        "evidence": ["crash", "app", "open"],
        "model_version": "bare",
    }
)


def bare_app() -> FastAPI:
    """The peer: the same request schema, parsed the same way, and a constant answer."""
    app = FastAPI()

    @app.post("/v1/classify", response_model=PredictionOut | BatchOut)
    async def classify(body: ClassifyItem | ClassifyBatch) -> PredictionOut | BatchOut:
        if isinstance(body, ClassifyBatch):
            return BatchOut(items=[_CONSTANT] * len(body.items))
        return _CONSTANT

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def constant_model_app() -> FastAPI:
    """The uxcx service with a model that costs nothing: every text gets one answer computed at the first call.

    Only for the floor rows of the load test (what the service costs around the model); the rest of the
    service, recording included, is the one `uxcx serve` runs.
    """
    from classifier.model import Prediction, UXCXClassifier
    from service.app import create_app

    predict = UXCXClassifier.predict_batch
    answers: dict[bool, Prediction] = {}

    def constant(self: UXCXClassifier, X: Any, evidence: bool = True) -> list[Prediction]:
        if evidence not in answers:
            answers[evidence] = predict(self, ["the app crashes when I pay"], evidence=evidence)[0]
        return [answers[evidence]] * len(X)

    UXCXClassifier.predict_batch = constant  # type: ignore[method-assign]  # in this server process only
    return create_app()


_LUA = """
local bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/classify", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local f = io.open("%s", "w")
  f:write(string.format('{"requests": %%d, "seconds": %%.3f, "errors": %%d, "non2xx": %%d, "p50_ms": %%.3f, "p99_ms": %%.3f, "max_ms": %%.3f}',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  f:close()
end
"""


def _lua_string(s: str) -> str:
    return "[==[" + s + "]==]"


def corpus_texts(n: int, seed: int = 7) -> list[str]:
    """Distinct texts from the shipped corpus (their length is that of real feedback)."""
    lines = (ROOT / "training" / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, bodies: list[str], connections: int, duration: int, workdir: Path, pid: int | None = None) -> dict[str, Any]:
    """Run wrk with a rotating set of bodies; return its summary (and the server's CPU per request)."""
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = workdir / "wrk.json"
    script = workdir / "bodies.lua"
    script.write_text(_LUA % (",".join(_lua_string(b) for b in bodies), out), encoding="utf-8")
    subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}"],
        check=True, capture_output=True, text=True,
    )
    stats: dict[str, Any] = json.loads(out.read_text())
    stats["req_per_s"] = stats["requests"] / stats["seconds"]
    if pid:
        # CPU per request barely moves when other jobs share the machine, unlike req/s.
        stats["server_cpu_us_per_req"] = (cpu_seconds(pid) - cpu0) / max(stats["requests"], 1) * 1e6
    return stats


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0, path: str = "/healthz") -> None:
    """Wait until `path` answers 200 (/readyz: model loaded and database reachable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server on port {port} was not ready after {timeout:.0f} s")


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start a server process pinned to CPU 0 (wrk gets CPU 1)."""
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() >= 2:  # type: ignore[operator]
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_ready(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """Stop a server as Ctrl-C would, wait for it, and return its exit code."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Measure both servers and write the results."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=1000)
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench.api: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    texts = corpus_texts(2000)
    singles = [json.dumps({"text": t, "source": "bench"}) for t in texts[:500]]
    unrecorded = [json.dumps({"text": t, "source": "bench", "record": False}) for t in texts[:500]]
    batches = [
        json.dumps({"items": [{"text": t, "source": "bench"} for t in texts[i : i + args.batch_size]]})
        for i in range(0, len(texts) - args.batch_size + 1, args.batch_size)
    ]
    lean_batches = [
        json.dumps({"items": [{"text": t, "source": "bench"} for t in texts[i : i + args.batch_size]], "evidence": False})
        for i in range(0, len(texts) - args.batch_size + 1, args.batch_size)
    ]
    results: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration, "batch_size": args.batch_size}
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="uxcx-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "UXCX_DATA_DIR": str(work / "var"), "UXCX_RATE_LIMIT": "1000000/second"}
        uvicorn = [str(bin_dir / "uvicorn"), "--factory", "--no-access-log", "--log-level", "warning"]
        runs = {
            "bare": [*uvicorn, "bench.api:bare_app", "--port", "8611"],
            "uxcx": [str(bin_dir / "uxcx"), "serve", "--port", "8612"],
            "constant": [*uvicorn, "bench.api:constant_model_app", "--port", "8613"],
        }
        for name, cmd in runs.items():
            port = int(cmd[cmd.index("--port") + 1])
            run_env = env if name != "constant" else {
                **env, "UXCX_DATA_DIR": str(work / "var-constant"), "UXCX_MODELS_DIR": str(ROOT / "models"),
            }
            proc = start(cmd, env=run_env, port=port)
            try:
                wrk(port, singles, args.connections, 2, work)  # warm-up
                if name == "constant":
                    # The floor: what the service costs around the model, with and without recording.
                    results["constant_single"] = wrk(port, singles, args.connections, args.duration, work, proc.pid)
                    results["constant_unrecorded"] = wrk(port, unrecorded, args.connections, args.duration, work, proc.pid)
                    continue
                results[f"{name}_single"] = wrk(port, singles, args.connections, args.duration, work, proc.pid)
                results[f"{name}_batch"] = wrk(port, batches, 2, args.duration, work, proc.pid)
                results[f"{name}_batch"]["texts_per_s"] = results[f"{name}_batch"]["req_per_s"] * args.batch_size
                if name == "uxcx":
                    results["uxcx_unrecorded"] = wrk(port, unrecorded, args.connections, args.duration, work, proc.pid)
                    results["uxcx_batch_lean"] = wrk(port, lean_batches, 2, args.duration, work, proc.pid)
                    results["uxcx_batch_lean"]["texts_per_s"] = results["uxcx_batch_lean"]["req_per_s"] * args.batch_size
            finally:
                stop(proc)
            if name == "uxcx":
                db = work / "var" / "uxcx.db"
                results["recorded_rows"] = count_rows(db)
    bare, ux = results["bare_single"], results["uxcx_single"]
    results["single_ratio"] = ux["req_per_s"] / bare["req_per_s"]
    results["single_cpu_ratio"] = bare["server_cpu_us_per_req"] / ux["server_cpu_us_per_req"]
    write(results)
    print(RESULTS.joinpath("api.md").read_text())
    return 0


def count_rows(db: Path) -> int:
    """Rows in the predictions table of a SQLite database."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])


def write(r: dict[str, Any]) -> None:
    """bench/results/api.{json,md}."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(r, indent=2) + "\n")
    b, u, bb, ub, ul = r["bare_single"], r["uxcx_single"], r["bare_batch"], r["uxcx_batch"], r["uxcx_batch_lean"]
    lines = [
        f"# API load test ({r['connections']} connections, {r['duration_s']} s per run, loopback, one uvicorn worker)",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | errors | texts/s | server CPU µs/request |",
        "|---|---|---|---|---|---|---|",
        f"| bare FastAPI, single | {b['req_per_s']:,.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {b['errors'] + b['non2xx']} | | {b['server_cpu_us_per_req']:,.0f} |",
        f"| uxcx classify, single | {u['req_per_s']:,.0f} | {u['p50_ms']:.2f} | {u['p99_ms']:.2f} | {u['errors'] + u['non2xx']} | | {u['server_cpu_us_per_req']:,.0f} |",
        f"| bare FastAPI, batch of {r['batch_size']} | {bb['req_per_s']:,.1f} | {bb['p50_ms']:.1f} | {bb['p99_ms']:.1f} | {bb['errors'] + bb['non2xx']} | {bb['texts_per_s']:,.0f} | {bb['server_cpu_us_per_req']:,.0f} |",
        f"| uxcx classify, batch of {r['batch_size']} | {ub['req_per_s']:,.1f} | {ub['p50_ms']:.1f} | {ub['p99_ms']:.1f} | {ub['errors'] + ub['non2xx']} | {ub['texts_per_s']:,.0f} | {ub['server_cpu_us_per_req']:,.0f} |",
        f"| uxcx classify, batch of {r['batch_size']}, `\"evidence\": false` | {ul['req_per_s']:,.1f} | {ul['p50_ms']:.1f} | {ul['p99_ms']:.1f} | {ul['errors'] + ul['non2xx']} | {ul['texts_per_s']:,.0f} | {ul['server_cpu_us_per_req']:,.0f} |",
        "",
        f"uxcx single-text req/s = {r['single_ratio']:.0%} of the bare endpoint's (target ≥ 80 %; by server CPU per request "
        f"{r['single_cpu_ratio']:.0%}); "
        f"p99 {u['p99_ms']:.1f} ms (target ≤ 20 ms); batch {ub['texts_per_s']:,.0f} texts/s with evidence, "
        f"{ul['texts_per_s']:,.0f} without (target ≥ 20,000). "
        f"Every uxcx answer was recorded in SQLite: {r['recorded_rows']:,} rows.",
    ]
    uu, cs, cu = r["uxcx_unrecorded"], r["constant_single"], r["constant_unrecorded"]
    cpu = {k: r[k]["server_cpu_us_per_req"] for k in ("bare_single", "uxcx_single", "constant_single", "constant_unrecorded")}
    lines += [
        "",
        "## Where a single-text request's time goes",
        "",
        "The same load on the uxcx service with parts taken away: `\"record\": false` in the body, and a model "
        "that costs nothing (`bench.api:constant_model_app`: every text gets one answer computed once).",
        "",
        "| single text | req/s | % of bare | p99 ms | server CPU µs/request |",
        "|---|---|---|---|---|",
    ]
    for label, x in (
        ("uxcx", u),
        ("uxcx, `\"record\": false`", uu),
        ("uxcx, constant model", cs),
        ("uxcx, constant model, `\"record\": false`", cu),
        ("bare FastAPI", b),
    ):
        lines.append(
            f"| {label} | {x['req_per_s']:,.0f} | {x['req_per_s'] / b['req_per_s']:.0%} | {x['p99_ms']:.2f} | "
            f"{x['server_cpu_us_per_req']:,.0f} |"
        )
    lines += [
        "",
        f"Server CPU per request: the model {cpu['uxcx_single'] - cpu['constant_single']:,.0f} µs, recording "
        f"{cpu['constant_single'] - cpu['constant_unrecorded']:,.0f} µs, the rest of the service (auth and rate "
        f"check, metrics, batching, building the answer) {cpu['constant_unrecorded'] - cpu['bare_single']:,.0f} µs "
        f"more than the bare endpoint's {cpu['bare_single']:,.0f} µs. The 80 % target allows "
        f"{cpu['bare_single'] / 0.8 - cpu['bare_single']:,.0f} µs more than bare in all.",
    ]
    (RESULTS / "api.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())

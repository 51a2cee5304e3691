"""Backlog relabelling at scale: `uxcx relabel` on a generated 1,000,000-row CSV.

Generates realistic rows (id, date, channel, text drawn from the training corpus, varied: two texts
joined, typos, case, trailing noise) into a temporary folder, runs `uxcx relabel` as a subprocess
with `--workers 1`, `--workers 2` and `--engine dask`, and records wall time, rows/s and peak RSS
(summed over the process tree, and the largest single process), sampled every 0.1 s.

    python -m bench.relabel [--rows 1000000] [--out bench/results]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "training" / "data" / "train.jsonl"
CHANNELS = ("app_store", "play_store", "zendesk", "freshdesk", "email", "chat", "twitter")
NOISE = (" !!", " pls fix", " :(", " 😡", " thx", "...", " #fail", " ??")


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 10:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """A CSV of `rows` varied, realistic feedback rows (not one string repeated)."""
    rng = random.Random(seed)
    texts = [json.loads(line)["text"] for line in TRAIN.open(encoding="utf-8")]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ticket_id", "created", "channel", "text", "customer_tier"])
        for i in range(rows):
            t = rng.choice(texts)
            r = rng.random()
            if r < 0.2:
                t = t + " " + rng.choice(texts)
            elif r < 0.35:
                t = _typo(t, rng)
            elif r < 0.45:
                t = t.lower() if rng.random() < 0.5 else t.upper()
            if rng.random() < 0.15:
                t += rng.choice(NOISE)
            w.writerow([f"T{i:08d}", f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}", rng.choice(CHANNELS), t,
                        rng.choice(("free", "pro", "enterprise"))])


def run(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command, sampling the RSS of its whole process tree; return time, peaks and its JSON summary."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    root = psutil.Process(proc.pid)
    peak_sum = peak_one = peak_pss = 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        rss, pss = [], []
        for p in procs:
            try:
                full = p.memory_full_info()  # PSS splits pages shared between processes (forkserver, workers)
                rss.append(full.rss)
                pss.append(full.pss)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        if rss:
            peak_sum, peak_one, peak_pss = max(peak_sum, sum(rss)), max(peak_one, max(rss)), max(peak_pss, sum(pss))
        time.sleep(0.1)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": round(wall, 2), "job_s": summary["seconds"], "rows": summary["rows_read"],
            "rows_per_s": round(summary["rows_read"] / wall), "peak_rss_tree_mb": round(peak_sum / 2**20), "peak_pss_tree_mb": round(peak_pss / 2**20),
            "peak_rss_largest_mb": round(peak_one / 2**20), "rejected": summary["rows_rejected"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--chunk-size", type=int, default=5_000)
    args = ap.parse_args(argv)
    uxcx = [sys.executable, "-m", "cli.main"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results: dict[str, Any] = {"rows": args.rows, "cpus": os.cpu_count(), "python": platform.python_version(),
                               "load_avg_at_start": [round(x, 2) for x in os.getloadavg()], "runs": {}}
    with tempfile.TemporaryDirectory(prefix="uxcx-bench-") as tmp:
        src = Path(tmp) / "backlog.csv"
        t = time.perf_counter()
        generate(src, args.rows)
        results["input_mb"] = round(src.stat().st_size / 2**20, 1)
        print(f"generated {args.rows:,} rows ({results['input_mb']} MB) in {time.perf_counter() - t:.1f} s", flush=True)
        configs = {
            "local, --workers 1": ["--workers", "1"],
            "local, --workers 2": ["--workers", "2"],
            "dask LocalCluster, 2 workers": ["--engine", "dask", "--workers", "2"],
        }
        for name, extra in configs.items():
            out = Path(tmp) / ("out-dask" if "dask" in name else "out.csv")
            cmd = [*uxcx, "relabel", str(src), "-o", str(out), "--chunk-size", str(args.chunk_size),
                   "--progress", "none", "--summary-json", *extra]
            r = run(cmd, env)
            results["runs"][name] = r
            print(f"{name}: {r}", flush=True)
            if out.is_dir():
                for p in out.iterdir():
                    p.unlink()
                out.rmdir()
            else:
                out.unlink()
    results["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "relabel.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# uxcx relabel: {args.rows:,} rows ({results['input_mb']} MB CSV), {results['cpus']} cores",
        "",
        "| engine | wall time (s) | rows/s | peak RSS, process tree (MB) | peak PSS, process tree (MB) | peak RSS, largest process (MB) |",
        "|---|---|---|---|---|---|",
        *(f"| {k} | {v['wall_s']} | {v['rows_per_s']:,} | {v['peak_rss_tree_mb']} | {v['peak_pss_tree_mb']} | {v['peak_rss_largest_mb']} |"
          for k, v in results["runs"].items()),
        "",
        f"Wall time of the whole `uxcx relabel` subprocess (start-up and model loading included), chunk size "
        f"{args.chunk_size:,}. Load average {results['load_avg_at_start']} at start, {results['load_avg_at_end']} "
        "at the end (the machine is shared). The RSS sum counts pages shared between processes (the parent's "
        "imports and model, inherited by each forked worker) once per process; PSS shares them out, so it is what the job really holds.",
    ]
    (out_dir / "relabel.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-call latency of ``predict_batch`` at small and large batch sizes, with and without evidence.

The HTTP service merges concurrent requests into batches of about 5-16 texts, so the fixed
cost of one call matters as much as the marginal cost per text. Each call gets distinct
corpus texts (training/data/train.jsonl); best and median over many calls are reported,
because a shared machine makes single timings noisy.

    python -m bench.latency [--sizes 1,4,16,64,1000] [--seconds 2.0] [--models models] [--json] [--clock wall|cpu]
"""

from __future__ import annotations

import os

# One BLAS thread, as in bench.compare: set before numpy loads its thread pool.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "training" / "data" / "train.jsonl"


def corpus_texts(path: Path = TRAIN) -> list[str]:
    """Distinct texts of the training corpus, in file order."""
    seen: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            seen.setdefault(json.loads(line)["text"], None)
    return list(seen)


def time_calls(
    model: Any,
    texts: Sequence[str],
    size: int,
    evidence: bool,
    seconds: float,
    min_calls: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds per call over consecutive windows of ``size`` distinct texts, for about ``seconds``."""
    windows = max(len(texts) // size, 1)
    model.predict_batch(texts[:size], evidence=evidence)  # warm lazy caches
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while len(out) < min_calls or time.perf_counter() < deadline:
        start = (i % windows) * size
        batch = texts[start : start + size]
        t0 = clock()
        model.predict_batch(batch, evidence=evidence)
        out.append(clock() - t0)
        i += 1
    return out


def measure(
    model: Any, texts: Sequence[str], sizes: Sequence[int], seconds: float, clock: Callable[[], float] = time.perf_counter
) -> list[dict[str, Any]]:
    """One row per (batch size, evidence): best and median microseconds per call and per text."""
    rows = []
    for size in sizes:
        for evidence in (True, False):
            calls = time_calls(model, texts, size, evidence, seconds, clock=clock)
            best, median = min(calls) * 1e6, statistics.median(calls) * 1e6
            rows.append(
                {
                    "batch": size,
                    "evidence": evidence,
                    "calls": len(calls),
                    "best_us_call": best,
                    "median_us_call": median,
                    "best_us_text": best / size,
                    "median_us_text": median / size,
                }
            )
    return rows


def to_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of the rows."""
    head = f"{'batch':>6} {'evidence':>8} {'calls':>6} {'best us/call':>13} {'median us/call':>15} {'best us/text':>13} {'median us/text':>15}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['batch']:>6} {'yes' if r['evidence'] else 'no':>8} {r['calls']:>6} {r['best_us_call']:>13.1f} "
            f"{r['median_us_call']:>15.1f} {r['best_us_text']:>13.1f} {r['median_us_text']:>15.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,16,64,1000", help="comma-separated batch sizes")
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget per (size, evidence) cell")
    parser.add_argument("--models", default=str(ROOT / "models"), help="models folder (uses its current version)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter; cpu: this thread's CPU time (steadier when other jobs share the cores)",
    )
    args = parser.parse_args()

    from classifier import artifacts

    loaded = artifacts.load(Path(args.models))
    texts = corpus_texts()
    # As the service does after loading: keep the model and corpus out of the GC's way.
    gc.collect()
    gc.freeze()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    rows = measure(loaded.model, texts, sizes, args.seconds, clock)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"model {loaded.version}; {len(texts)} distinct texts; {args.seconds:g} s per cell; {args.clock} clock")
    print(to_table(rows))


if __name__ == "__main__":
    main()

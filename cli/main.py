"""The `uxcx` command: train, evaluate, classify, relabel, serve, data checks, the embedding asset."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

DEFAULT_REAL_DEV = Path("../shared/data/real-dev.jsonl")


def _models_dir(args: argparse.Namespace) -> Path:
    return Path(args.models_dir or os.environ.get("UXCX_MODELS_DIR") or "models")


def _print_err(msg: str) -> None:
    print(f"uxcx: {msg}", file=sys.stderr)


# --------------------------------------------------------------------- data
def cmd_data_check(args: argparse.Namespace) -> int:
    from training.data import HELDOUT_FILE, TRAIN_FILE, check, load

    paths = [Path(p) for p in args.files] or [TRAIN_FILE, HELDOUT_FILE]
    report = check(load(paths))
    print(report.table())
    for err in report.errors[:50]:
        print(f"error: {err}")
    for a, b in report.duplicate_texts[:50]:
        print(f"duplicate text: {a} and {b}")
    for i in report.duplicate_ids[:50]:
        print(f"duplicate id: {i}")
    if args.show_near:
        for a, b, j in report.near_duplicates:
            print(f"near-duplicate: {a} ~ {b} (Jaccard {j})")
    ok = report.ok and report.near_duplicate_rate < args.max_near_rate
    if not ok:
        _print_err("data check failed")
    return 0 if ok else 1


def cmd_data_split(args: argparse.Namespace) -> int:
    from training.data import check, load, near_duplicates, norm_text, split_heldout, write_jsonl

    result = load([Path(p) for p in args.files])
    if result.errors:
        for err in result.errors[:50]:
            _print_err(err)
        return 1
    seen: set[str] = set()
    unique = []
    for r in result.records:
        key = norm_text(r.text)
        if key not in seen:
            seen.add(key)
            unique.append(r)
    drop = {b for _, b, _ in near_duplicates(unique)}
    records = [r for r in unique if r.id not in drop]
    train, held = split_heldout(records, args.fraction, args.seed)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(train, out / "train.jsonl")
    write_jsonl(held, out / "heldout.jsonl")
    print(f"{len(result.records)} read, {len(result.records) - len(unique)} exact duplicates and "
          f"{len(drop)} near-duplicates dropped; train {len(train)}, held-out {len(held)}")
    print(check(load([out / "train.jsonl", out / "heldout.jsonl"])).table())
    return 0


# -------------------------------------------------------------------- train
def _evaluate_and_report(model: Any, version: str, models_dir: Path, name: str, records: Sequence[Any]) -> dict[str, Any]:
    from training.evaluate import evaluate, summary, write_report

    metrics = evaluate(model, records)
    write_report(metrics, models_dir / version / "report", name, version)
    print(f"{name}: macro-F1 {metrics['macro_f1']:.4f}  "
          + "  ".join(f"{k} F1 {v['f1']:.4f}" for k, v in metrics["per_class"].items())
          + f"  ECE {metrics['ece']:.4f}  (n={metrics['n']})")
    return summary(metrics)


def _load_or_fail(paths: Sequence[Path]) -> list[Any]:
    from training.data import load

    result = load(paths)
    if result.errors:
        for err in result.errors[:20]:
            _print_err(err)
        raise SystemExit(f"uxcx: {len(result.errors)} invalid row(s) in {', '.join(map(str, paths))}; fix them first")
    return result.records


def cmd_train(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from training.config import TrainConfig
    from training.data import HELDOUT_FILE, TRAIN_FILE, data_hash
    from training.train import train

    config = TrainConfig.from_file(Path(args.config)) if args.config else TrainConfig()
    records = _load_or_fail([Path(p) for p in args.data] if args.data else [TRAIN_FILE])
    heldout_path = Path(args.heldout) if args.heldout else HELDOUT_FILE
    heldout = _load_or_fail([heldout_path]) if heldout_path.is_file() else []
    models_dir = _models_dir(args)
    print(f"training on {len(records)} records ...", flush=True)
    model, facts = train(config, records)
    dhash = data_hash(records)
    version = artifacts.new_version(dhash)
    manifest = {
        "training_data_sha256": dhash,
        "training_files": [str(p) for p in (args.data or [TRAIN_FILE])],
        "config": config.as_dict(),
        "asset_sha256": model.asset_sha256_,
        "training": facts,
        "metrics": {},
    }
    artifacts.save(model, models_dir, version, manifest)
    metrics: dict[str, Any] = {}
    if heldout:
        metrics["heldout"] = _evaluate_and_report(model, version, models_dir, "heldout", heldout)
    real_dev = Path(args.real_dev)
    if real_dev.is_file():
        metrics["real-dev"] = _evaluate_and_report(model, version, models_dir, "real-dev", _load_or_fail([real_dev]))
    manifest = artifacts.read_manifest(models_dir, version)
    manifest["metrics"] = metrics
    artifacts.write_manifest(models_dir / version, manifest)
    artifacts.set_current(models_dir, version)
    print(f"model {version} written to {models_dir / version} and made current "
          f"(trained in {facts['train_seconds']} s)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from training.data import HELDOUT_FILE

    models_dir = _models_dir(args)
    try:
        loaded = artifacts.load(models_dir, args.model)
    except artifacts.ArtifactError as exc:
        _print_err(str(exc))
        return 2
    data = Path(args.data) if args.data else HELDOUT_FILE
    name = args.name or data.stem
    _evaluate_and_report(loaded.model, loaded.version, models_dir, name, _load_or_fail([data]))
    print(f"report written to {models_dir / loaded.version / 'report'}/{name}.{{md,json}} and {name}-confusion.png")
    return 0


# ----------------------------------------------------------------- classify
def cmd_classify(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from classifier.batch import InputError, classify_items, read_csv, read_jsonl, read_lines

    try:
        loaded = artifacts.load(_models_dir(args), args.model)
    except artifacts.ArtifactError as exc:
        _print_err(str(exc))
        return 2
    # The model's objects live as long as the process: keep the garbage collector off them.
    gc.collect()
    gc.freeze()
    src = args.input
    try:
        if src == "-":
            stream: TextIO = sys.stdin
            items = read_lines(stream)
        else:
            path = Path(src)
            if not path.is_file():
                _print_err(f"input file {src} not found")
                return 2
            stream = path.open(encoding="utf-8", errors="strict", newline="")
            fmt = args.format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
            items = read_csv(stream) if fmt == "csv" else read_jsonl(stream)
        out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
        errors = 0
        total = 0
        try:
            for rec in classify_items(loaded.model, items, loaded.version, args.batch_size):
                total += 1
                errors += "error" in rec
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        finally:
            if out is not sys.stdout:
                out.close()
    except InputError as exc:
        _print_err(str(exc))
        return 2
    except UnicodeDecodeError as exc:
        _print_err(f"{src} is not valid UTF-8 (byte {exc.start}); re-encode it as UTF-8")
        return 2
    if errors:
        _print_err(f"{errors} of {total} input line(s) could not be classified; see their 'error' field")
        return 1
    return 0


# ------------------------------------------------------------------ relabel
class _ProgressPrinter:
    """A tqdm bar (rows/s, ETA) on a terminal; otherwise a plain log line every `every` seconds."""

    def __init__(self, tty: bool, every: float = 10.0):
        self.tty, self.every = tty, every
        self._bar: Any = None
        self._last = 0.0
        self._rows = 0

    def __call__(self, p: Any) -> None:
        by_rows = p.total_rows is not None
        total = p.total_rows if by_rows else p.total_bytes
        done = p.rows if by_rows else p.done_bytes
        if self.tty:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="row" if by_rows else "B", unit_scale=True,
                                 unit_divisor=1000 if by_rows else 1024, file=sys.stderr, dynamic_ncols=True)
            self._bar.update(done - self._bar.n)
            self._bar.set_postfix_str(f"{p.rows:,} rows, {p.rows / max(p.elapsed, 1e-9):,.0f} rows/s", refresh=False)
            return
        if p.elapsed - self._last < self.every and done < total:
            return
        self._last = p.elapsed
        frac = done / total if total else 1.0
        rate = p.rows / max(p.elapsed, 1e-9)
        eta = (p.elapsed / frac - p.elapsed) if frac > 0 else float("nan")
        print(f"uxcx relabel: {p.rows:,} rows ({frac:.0%}), {rate:,.0f} rows/s, ETA {eta:,.0f} s",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def cmd_relabel(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from classifier.batch import InputError
    from classifier.relabel import MAX_WORKERS, Job

    workers = args.workers or os.cpu_count() or 1
    if not 1 <= workers <= MAX_WORKERS or args.chunk_size < 1 or args.max_text_chars < 1:
        _print_err(f"--workers must be 1..{MAX_WORKERS}; --chunk-size and --max-text-chars must be positive")
        return 2
    if args.engine == "local" and args.scheduler:
        _print_err("--scheduler needs --engine dask")
        return 2
    job = Job(input=Path(args.input), output=Path(args.output), models_dir=_models_dir(args), model_version=args.model,
              fmt=args.format, text_column=args.text_column, id_column=args.id_column, workers=workers,
              chunk_size=args.chunk_size, resume=args.resume, diff=Path(args.diff) if args.diff else None,
              max_chars=args.max_text_chars)
    if job.output.resolve() == job.input.resolve():
        _print_err("the output would overwrite the input; relabelling never edits its input")
        return 2
    show = args.progress if args.progress != "auto" else ("bar" if sys.stderr.isatty() else "log")
    printer = _ProgressPrinter(tty=show == "bar") if show != "none" else None
    try:
        if args.engine == "dask":
            try:
                from classifier.relabel_dask import relabel_dask
            except ImportError as exc:
                _print_err(f"{exc}; the Dask engine needs the optional extra: pip install 'uxcx[dask]'")
                return 2
            summary = relabel_dask(job, scheduler=args.scheduler, progress=printer)
        else:
            from classifier.relabel import relabel

            summary = relabel(job, progress=printer)
    except artifacts.ArtifactError as exc:
        _print_err(str(exc))
        return 2
    except InputError as exc:
        _print_err(str(exc))
        return 2
    except KeyboardInterrupt:
        _print_err("interrupted; finished chunks are kept: rerun with --resume to continue")
        return 130
    finally:
        if printer is not None:
            printer.close()
    print(json.dumps(summary.as_dict(), ensure_ascii=False) if args.summary_json else summary.text())
    if summary.counts.rejected:
        _print_err(f"{summary.counts.rejected} of {summary.counts.read} row(s) could not be labelled; "
                   f"see {summary.rejects}")
        return 1
    return 0


# -------------------------------------------------------------------- asset
def cmd_asset_build(args: argparse.Namespace) -> int:
    try:
        from training.asset import build
    except ImportError as exc:
        _print_err(f"{exc}; install the optional extra first: pip install -e '.[asset]'")
        return 2
    from classifier.embeddings import default_asset_dir

    manifest = build(Path(args.out) if args.out else default_asset_dir(), args.vocab_words, args.dims)
    print(json.dumps(manifest, indent=2))
    return 0


def cmd_asset_verify(args: argparse.Namespace) -> int:
    from classifier.embeddings import AssetError, load_asset

    try:
        asset = load_asset(Path(args.path) if args.path else None)
    except AssetError as exc:
        _print_err(str(exc))
        return 1
    print(f"asset ok: {asset.vectors.shape[0]} word pieces x {asset.dim} dims, sha256 {asset.sha256}")
    return 0


# -------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from classifier import artifacts

    models_dir = _models_dir(args)
    try:
        version = artifacts.current_version(models_dir)
        if version is None:
            raise artifacts.ArtifactError(f"no current model in {models_dir}; run `make train` first")
        artifacts.verify(models_dir, version)
    except artifacts.ArtifactError as exc:
        _print_err(f"cannot serve: {exc}")
        return 2
    # The app factory reads its settings from the environment, in every worker process.
    os.environ["UXCX_MODELS_DIR"] = str(models_dir.resolve())
    uvicorn.run("service.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `uxcx`."""
    p = argparse.ArgumentParser(prog="uxcx", description="Classify customer feedback as UX issue, CX issue, both or neither.")
    p.add_argument("--models-dir", help="folder of model versions (default: $UXCX_MODELS_DIR or ./models)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a new model version and make it current")
    t.add_argument("--data", nargs="+", help="training JSONL/CSV files (default: training/data/train.jsonl)")
    t.add_argument("--heldout", help="held-out file for the report (default: training/data/heldout.jsonl)")
    t.add_argument("--config", help="TOML or JSON file with [model] parameters and seed")
    t.add_argument("--real-dev", default=str(DEFAULT_REAL_DEV), help="real feedback to report on, if present")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a model version on labeled data and write a report")
    e.add_argument("--data", help="labeled JSONL/CSV (default: training/data/heldout.jsonl)")
    e.add_argument("--model", help="model version (default: models/current)")
    e.add_argument("--name", help="report name (default: the data file's stem)")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("classify", help="classify texts from JSONL, CSV or stdin into JSONL")
    c.add_argument("input", help="JSONL or CSV file, or - for one text per stdin line")
    c.add_argument("-o", "--output", help="output JSONL file (default: stdout)")
    c.add_argument("--format", choices=["jsonl", "csv"], help="input format (default: from the file suffix)")
    c.add_argument("--model", help="model version (default: models/current)")
    c.add_argument("--batch-size", type=int, default=1000, help="texts per vectorised call")
    c.set_defaults(func=cmd_classify)

    r = sub.add_parser("relabel", help="relabel a whole backlog file: streaming, parallel, resumable")
    r.add_argument("input", help="CSV, JSONL or Parquet file (or a folder of part files)")
    r.add_argument("-o", "--output", required=True, help="output file (a folder of part files with --engine dask)")
    r.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    r.add_argument("--id-column", default="id", help="column that --diff joins on (default: id)")
    r.add_argument("--format", choices=["csv", "jsonl", "parquet"], help="input and output format (default: from the suffix)")
    r.add_argument("--workers", type=int, default=0, help="worker processes, each loading the model once (default: number of cores)")
    r.add_argument("--chunk-size", type=int, default=5_000, help="rows per chunk: the unit of work, checkpointing and resume")
    r.add_argument("--resume", action="store_true", help="continue a killed run from its last finished chunk")
    r.add_argument("--diff", metavar="PREVIOUS_OUTPUT", help="write OUTPUT.diff.<fmt>: rows whose label or topic changed")
    r.add_argument("--engine", choices=["local", "dask"], default="local", help="local processes, or a Dask cluster")
    r.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (default: a local cluster)")
    r.add_argument("--model", help="model version (default: models/current)")
    r.add_argument("--max-text-chars", type=int, default=50_000, help="longer texts are rejected")
    r.add_argument("--progress", choices=["auto", "bar", "log", "none"], default="auto",
                   help="progress bar on a terminal, log lines otherwise (default: auto)")
    r.add_argument("--summary-json", action="store_true", help="print the summary as one JSON line")
    r.set_defaults(func=cmd_relabel)

    d = sub.add_parser("data", help="labeled data tools")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dc = dsub.add_parser("check", help="validate labeled files and print the balance table")
    dc.add_argument("files", nargs="*", help="files (default: the shipped corpus)")
    dc.add_argument("--show-near", action="store_true", help="list near-duplicate pairs")
    dc.add_argument("--max-near-rate", type=float, default=0.01, help="fail above this near-duplicate rate")
    dc.set_defaults(func=cmd_data_check)
    ds = dsub.add_parser("split", help="merge files, drop duplicates, write a seeded stratified train/held-out split")
    ds.add_argument("files", nargs="+")
    ds.add_argument("--out-dir", default="training/data")
    ds.add_argument("--fraction", type=float, default=0.15)
    ds.add_argument("--seed", type=int, default=13)
    ds.set_defaults(func=cmd_data_split)

    sv = sub.add_parser("serve", help="serve the HTTP API (uvicorn)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, help="worker processes, each loading the model once")
    sv.set_defaults(func=cmd_serve)

    a = sub.add_parser("asset", help="the static embedding asset")
    asub = a.add_subparsers(dest="asset_command", required=True)
    ab = asub.add_parser("build", help="distil all-MiniLM-L6-v2 into the asset (needs the 'asset' extra)")
    ab.add_argument("--out", help="output folder (default: the packaged asset folder)")
    ab.add_argument("--vocab-words", type=int, default=0, help="frequent English words to add as whole tokens")
    ab.add_argument("--dims", type=int, default=256, help="PCA dimensions")
    ab.set_defaults(func=cmd_asset_build)
    av = asub.add_parser("verify", help="check the asset against its manifest")
    av.add_argument("--path", help="asset folder (default: the packaged one)")
    av.set_defaults(func=cmd_asset_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `uxcx`."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

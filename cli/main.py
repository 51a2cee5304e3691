"""The `uxcx` command: train, evaluate, classify, serve, data checks, the embedding asset."""

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


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {n}")
    return n


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


# -------------------------------------------------------------------- asset
def _database_url(args: argparse.Namespace) -> str:
    from service.settings import Settings

    return str(args.database_url) if args.database_url else Settings().db_url


def cmd_review_queue(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from service.store import Store, dumps_line, make_engine, migrate

    engine = make_engine(_database_url(args))
    try:
        migrate(engine)
        rows = Store(engine).least_certain(args.limit)
    except SQLAlchemyError as exc:
        _print_err(f"cannot read the database {engine.url.render_as_string(hide_password=True)}: {exc}")
        return 2
    finally:
        engine.dispose()
    out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        for row in rows:
            out.write(dumps_line(row))
    finally:
        if args.output:
            out.close()
    textless = sum(r["text"] is None for r in rows)
    print(f"{len(rows)} predictions to review, least certain first"
          + (f"; {textless} without stored text (UXCX_STORE_TEXT was off)" if textless else ""), file=sys.stderr)
    return 0


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
    import shutil
    import tempfile

    import uvicorn
    from pydantic import ValidationError

    from classifier import artifacts
    from service.settings import Settings
    from service.store import make_engine, migrate

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
    try:
        settings = Settings()
    except ValidationError as exc:
        _print_err("cannot serve: bad setting: " + "; ".join(f"UXCX_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()))
        return 2
    # Migrate once here, so that several workers starting together find the schema in place.
    engine = make_engine(settings.db_url)
    try:
        migrate(engine)
    except Exception as exc:  # noqa: BLE001 - any failure to prepare the database stops the start
        _print_err(f"cannot serve: the database {engine.url.render_as_string(hide_password=True)} cannot be prepared: {exc}")
        return 2
    finally:
        engine.dispose()
    metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its counters here; /metrics in any worker sums them all.
        metrics_dir = tempfile.mkdtemp(prefix="uxcx-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "service.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
            log_level="info", access_log=args.access_log,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
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
    sv.add_argument("--workers", type=_positive_int, default=1, help="worker processes, each loading the model once")
    sv.add_argument("--models-dir", default=argparse.SUPPRESS, help="folder of model versions (default: $UXCX_MODELS_DIR or ./models)")
    sv.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs throughput)")
    sv.set_defaults(func=cmd_serve)

    rq = sub.add_parser("review-queue", help="the recorded predictions the model was least sure of, as JSONL to label")
    rq.add_argument("--limit", type=_positive_int, default=100)
    rq.add_argument("--database-url", help="default: $UXCX_DATABASE_URL or the service's SQLite file in $UXCX_DATA_DIR")
    rq.add_argument("-o", "--output", help="file to write (default: stdout)")
    rq.set_defaults(func=cmd_review_queue)

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

"""The `uxcx` command: train (gated), the model registry, evaluate, classify, relabel, serve, review queue, data checks and audit, the asset."""

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
DEFAULT_AUDIT_OUT = Path("var/audit/suspects.jsonl")
#: `uxcx train` exit status when the new version was kept but the gate refused to promote it.
EXIT_NOT_PROMOTED = 3


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


def cmd_data_audit(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("cleanlab") is None:
        # Checked first: the out-of-fold training takes minutes before cleanlab is needed.
        _print_err("uxcx data audit needs cleanlab, an optional extra: pip install 'uxcx[audit]' (make audit installs it)")
        return 2
    from training.audit import find_suspects, out_of_fold_proba, pair_counts, write_suspects
    from training.config import TrainConfig
    from training.corrections import apply_corrections
    from training.data import HELDOUT_FILE, TRAIN_FILE, norm_text

    config = TrainConfig.from_file(Path(args.config)) if args.config else TrainConfig()
    origin: dict[str, str] = {}
    records: list[Any] = []
    for path in [Path(p) for p in args.files] or [TRAIN_FILE, HELDOUT_FILE]:
        recs = _load_or_fail([path])
        records += recs
        origin.update((norm_text(r.text), str(path)) for r in recs)
    if args.corrections:
        for path in args.corrections:
            corrections, _, _ = _read_corrections([path])
            origin.update((norm_text(c.text), f"{path} (correction)") for c in corrections)
            records, facts = apply_corrections(records, corrections)
            print(facts.line())
    print(f"auditing {len(records)} records with {args.cv}-fold out-of-fold probabilities ...", flush=True)
    try:
        proba = out_of_fold_proba(records, config, args.cv)
    except ValueError as exc:
        _print_err(str(exc))
        return 2
    suspects = find_suspects(records, proba, [origin[norm_text(r.text)] for r in records],
                             threshold=args.threshold, method=args.method)
    out = Path(args.output)
    write_suspects(suspects, out)
    print(f"{len(suspects)} likely mislabeled of {len(records)} ({len(suspects) / max(len(records), 1):.1%}) "
          f"written to {out}, most certain first, for a person to review")
    secondary = sum(sus.secondary for sus in suspects)
    if secondary:
        print(f"{secondary} of them already carry the suggested label as their second label (which label is primary?)")
    print(f"{'given':<8} {'suggested':<10} {'count':>6}")
    for (given, suggested), n in sorted(pair_counts(suspects).items(), key=lambda kv: -kv[1]):
        print(f"{given:<8} {suggested:<10} {n:>6}")
    by_origin: dict[str, int] = {}
    for sus in suspects:
        by_origin[sus.origin] = by_origin.get(sus.origin, 0) + 1
    for name, n in sorted(by_origin.items()):
        print(f"from {name}: {n}")
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


def _read_corrections(paths: Sequence[str]) -> tuple[list[Any], int, list[str]]:
    """Corrections from files, oldest first: (records, invalid row count, sources); exit 2 if a file is missing."""
    from training.corrections import load_corrections

    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        _print_err(f"corrections file(s) not found: {', '.join(missing)}")
        raise SystemExit(2)
    result = load_corrections([Path(p) for p in paths])
    for err in result.errors[:20]:
        _print_err(f"invalid correction skipped: {err}")
    if len(result.errors) > 20:
        _print_err(f"... and {len(result.errors) - 20} more invalid correction(s)")
    return result.records, len(result.errors), [str(p) for p in paths]


def _read_db_corrections(url: str) -> tuple[list[Any], int, str]:
    """Corrections stored by POST /v1/feedback, oldest first: (records, invalid count, source); exit 2 if unreadable."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from service.store import Store, make_engine
    from training.corrections import parse_corrections

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        _print_err(f"cannot read corrections: no SQLite database at {parsed.database!r}")
        raise SystemExit(2)
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        store = Store(engine)
        rows = list(store.corrections(with_text_only=True))
        textless = store.count_corrections_without_text()
    except SQLAlchemyError as exc:
        _print_err(f"cannot read corrections from {shown}: {type(exc).__name__}: {exc.args[0] if exc.args else ''}")
        raise SystemExit(2) from exc
    finally:
        engine.dispose()
    result = parse_corrections(rows, origin=shown)
    for err in result.errors[:20]:
        _print_err(f"invalid correction skipped: {err}")
    if textless:
        _print_err(f"{textless} correction(s) in {shown} have no known text (UXCX_STORE_TEXT off, no text sent): not used")
    print(f"{len(result.records)} correction(s) read from {shown}", flush=True)
    return result.records, len(result.errors), shown


def cmd_train(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from training.config import TrainConfig
    from training.data import HELDOUT_FILE, TRAIN_FILE
    from training.retrain import EvalSet, retrain

    config = TrainConfig.from_file(Path(args.config)) if args.config else TrainConfig()
    train_files = [Path(p) for p in args.data] if args.data else [TRAIN_FILE]
    records = _load_or_fail(train_files)
    eval_sets = []
    heldout_path = Path(args.heldout) if args.heldout else HELDOUT_FILE
    if heldout_path.is_file():
        eval_sets.append(EvalSet("heldout", _load_or_fail([heldout_path]), str(heldout_path)))
    real_dev = Path(args.real_dev)
    if real_dev.is_file():
        eval_sets.append(EvalSet("real-dev", _load_or_fail([real_dev]), str(real_dev)))
    corrections: list[Any] | None = None
    invalid = 0
    sources: list[str] = []
    if args.corrections:
        corrections, invalid, sources = _read_corrections(args.corrections)
    if args.corrections_from:
        db_rows, db_invalid, db_source = _read_db_corrections(args.corrections_from)
        corrections = [*(corrections or []), *db_rows]  # files first, then the database's, oldest first
        invalid += db_invalid
        sources.append(db_source)
    try:
        outcome = retrain(
            _models_dir(args), config, records, eval_sets,
            corrections=corrections, invalid_corrections=invalid,
            provenance={"training_files": [str(p) for p in train_files], "correction_sources": sources},
            margin=args.margin, class_margin=args.class_margin, force=args.force, promote=not args.no_promote,
            log=lambda line: print(line, flush=True),
        )
    except artifacts.ArtifactError as exc:
        _print_err(str(exc))
        return 2
    print(f"model {outcome.version} written to {outcome.report_dir.parent} "
          f"(trained in {outcome.train_facts['train_seconds']} s): {outcome.verdict}")
    for reason in outcome.decision.reasons:
        print(f"  - {reason}")
    for note in outcome.decision.notes:
        print(f"  note: {note}")
    print(f"old vs new: {outcome.report_dir / 'compare.md'}")
    if outcome.forced:
        _print_err(f"--force: {outcome.version} promoted although the gate refused it: {outcome.decision.reason}")
    if not outcome.decision.passed and not outcome.promoted:
        _print_err(f"model {outcome.version} kept but not promoted: {outcome.decision.reason} "
                   f"(`uxcx models promote {outcome.version}` or `uxcx train --force` overrides)")
        return EXIT_NOT_PROMOTED
    return 0


# ------------------------------------------------------------------- models
def cmd_models_list(args: argparse.Namespace) -> int:
    from training.registry import format_table, version_rows

    rows = version_rows(_models_dir(args))
    print(json.dumps([r.as_dict() for r in rows], indent=2) if args.json else format_table(rows))
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from training.registry import describe

    models_dir = _models_dir(args)
    try:
        version = args.version or artifacts.current_version(models_dir)
        if version is None:
            raise artifacts.ArtifactError(f"no current model in {models_dir}; name a version (`uxcx models list`)")
        if args.json:
            print(json.dumps(artifacts.read_manifest(models_dir, version), indent=2, ensure_ascii=False))
        else:
            print(describe(models_dir, version))
    except artifacts.ArtifactError as exc:
        _print_err(str(exc))
        return 2
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from training.registry import promote

    try:
        previous = promote(_models_dir(args), args.version)
    except artifacts.ArtifactError as exc:
        _print_err(f"not promoted: {exc}")
        return 2
    if previous == args.version:
        print(f"{args.version} is already current")
    else:
        print(f"{args.version} is now current (was {previous or 'none'})")
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from classifier import artifacts
    from training.registry import rollback

    try:
        left, restored = rollback(_models_dir(args))
    except artifacts.ArtifactError as exc:
        _print_err(f"no rollback: {exc}")
        return 2
    print(f"rolled back: {restored} is current again (was {left})")
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
    if args.resume and args.engine == "local":
        from classifier.relabel import state_dir

        if not state_dir(job.output).exists():
            # e.g. killed before its first chunk: nothing was kept, so resuming is starting over
            _print_err(f"nothing to resume ({state_dir(job.output)} does not exist); starting from the first chunk")
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
        # A full load (checksum, versions, label set, and the object's type): a quarter of a second,
        # and any refusal is one plain line here rather than a traceback from every worker.
        artifacts.load(models_dir)  # loaded and dropped: each worker loads its own
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

    t = sub.add_parser(
        "train",
        help="train a new model version (corpus + corrections), gate it against the current one, promote it if not worse",
        description="Exit status: 0 promoted (or --no-promote and the gate passed), 3 kept but not promoted "
                    "by the gate (reason on stderr), 2 artifact or input file error, 1 invalid training data.",
    )
    t.add_argument("--data", nargs="+", help="training JSONL/CSV files (default: training/data/train.jsonl)")
    t.add_argument("--corrections-from", metavar="DATABASE_URL",
                   help="also the corrections stored by the service (POST /v1/feedback) in this database")
    t.add_argument("--corrections", nargs="+", metavar="FILE",
                   help="corrections (JSONL/CSV, oldest first): override the label of the same text or add it")
    t.add_argument("--heldout", help="held-out file for the report and the gate (default: training/data/heldout.jsonl)")
    t.add_argument("--config", help="TOML or JSON file with [model] parameters and seed")
    t.add_argument("--real-dev", default=str(DEFAULT_REAL_DEV), help="real feedback to report and gate on, if present")
    t.add_argument("--margin", type=float, default=0.01, help="largest allowed macro-F1 drop against the current model")
    t.add_argument("--class-margin", type=float, default=0.03, help="largest allowed drop of any class's F1")
    when = t.add_mutually_exclusive_group()
    when.add_argument("--force", action="store_true", help="promote even if the gate refuses (and say so)")
    when.add_argument("--no-promote", action="store_true", help="train, compare and keep, but never promote")
    t.set_defaults(func=cmd_train)

    m = sub.add_parser("models", help="the model registry: list, show, promote, rollback")
    msub = m.add_subparsers(dest="models_command", required=True)
    ml = msub.add_parser("list", help="every version: created, data hash, macro-F1, gate, current (*)")
    ml.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ml.set_defaults(func=cmd_models_list)
    ms = msub.add_parser("show", help="a version's manifest summary, metrics and verification")
    ms.add_argument("version", nargs="?", help="model version (default: the current one)")
    ms.add_argument("--json", action="store_true", help="print the whole manifest")
    ms.set_defaults(func=cmd_models_show)
    mp = msub.add_parser("promote", help="verify a version and make it current (no gate)")
    mp.add_argument("version")
    mp.set_defaults(func=cmd_models_promote)
    mr = msub.add_parser("rollback", help="make the previous current version current again")
    mr.set_defaults(func=cmd_models_rollback)

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
    da = dsub.add_parser("audit", help="likely mislabeled examples (confident learning on out-of-fold probabilities)")
    da.add_argument("files", nargs="*", help="labeled files (default: the shipped corpus, train and held-out)")
    da.add_argument("--corrections", nargs="+", metavar="FILE", help="corrections applied before the audit (and audited too)")
    da.add_argument("-o", "--output", default=str(DEFAULT_AUDIT_OUT), help=f"suspects JSONL (default: {DEFAULT_AUDIT_OUT})")
    da.add_argument("--cv", type=int, default=5, help="folds of the out-of-fold probabilities")
    da.add_argument("--threshold", type=float, default=0.0,
                    help="write only suspects whose suggested label has at least this out-of-fold probability")
    da.add_argument("--method", default="prune_by_noise_rate",
                    help="cleanlab filter_by: prune_by_noise_rate, prune_by_class, both, confident_learning")
    da.add_argument("--config", help="TOML or JSON file with [model] parameters and seed")
    da.set_defaults(func=cmd_data_audit)

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

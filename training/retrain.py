"""The retraining job: corpus plus corrections in, a new version out, gated against the current one.

train -> save a new version folder (never overwriting) -> evaluate it on every evaluation set
-> evaluate the current model on the same sets in the same run -> gate -> promote or keep,
with `report/compare.{md,json}` in the new version's folder and the facts in its manifest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier import artifacts
from classifier.model import Prediction
from training.config import TrainConfig
from training.corrections import CorrectionFacts, apply_corrections
from training.data import Record, data_hash
from training.evaluate import evaluate_with_predictions, summary, write_report
from training.gate import DEFAULT_CLASS_MARGIN, DEFAULT_MARGIN, GateDecision, changed_labels, decide, write_compare
from training.train import train


@dataclass(frozen=True)
class EvalSet:
    """Labeled texts both models are scored on (the held-out split, real-dev)."""

    name: str
    records: Sequence[Record]
    path: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a retraining run produced and decided."""

    version: str
    promoted: bool
    forced: bool
    decision: GateDecision
    verdict: str
    corrections: CorrectionFacts | None
    report: dict[str, Any]
    report_dir: Path
    train_facts: dict[str, Any]


def metrics_line(name: str, m: Mapping[str, Any]) -> str:
    """One console line for a metrics summary."""
    return (f"{name}: macro-F1 {m['macro_f1']:.4f}  " + "  ".join(f"{k} F1 {v:.4f}" for k, v in m["f1"].items())
            + f"  ECE {m['ece']:.4f}  (n={m['n']})")


def _verdict(decision: GateDecision, promoted: bool, promote: bool) -> str:
    if not promote:
        would = "promoted" if decision.passed else "refused"
        return f"kept, not promoted (--no-promote); the gate would have {would} it"
    if promoted and decision.passed:
        return "promoted"
    if promoted:
        return "promoted by --force although the gate refused it"
    return "kept, not promoted: the gate refused it"


def retrain(
    models_dir: Path,
    config: TrainConfig,
    records: Sequence[Record],
    eval_sets: Sequence[EvalSet],
    *,
    corrections: Sequence[Record] | None = None,
    invalid_corrections: int = 0,
    provenance: Mapping[str, Any] | None = None,
    margin: float = DEFAULT_MARGIN,
    class_margin: float = DEFAULT_CLASS_MARGIN,
    force: bool = False,
    promote: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Train on records (+ corrections), save a new version, gate it against the current one.

    Corrections whose text is in an evaluation set are not trained on. The new version is
    always kept; it becomes current when the gate passes (or `force`), unless `promote` is
    False. `provenance` (e.g. training files, correction sources) goes into the manifest.
    Raises ArtifactError when the version folder already exists.
    """
    facts: CorrectionFacts | None = None
    train_records = list(records)
    if corrections is not None:
        evaluation = itertools.chain.from_iterable(s.records for s in eval_sets)
        train_records, facts = apply_corrections(records, corrections, evaluation=evaluation, invalid=invalid_corrections)
        log(facts.line())

    log(f"training on {len(train_records)} records ...")
    model, train_facts = train(config, train_records)
    dhash = data_hash(train_records)
    version = artifacts.new_version(dhash)
    manifest: dict[str, Any] = {
        "training_data_sha256": dhash,
        **(provenance or {}),
        "config": config.as_dict(),
        "asset_sha256": model.asset_sha256_,
        "training": train_facts,
        "corrections": facts.as_dict() if facts else None,
        "metrics": {},
    }
    artifacts.save(model, models_dir, version, manifest)
    report_dir = models_dir / version / "report"

    new_metrics: dict[str, dict[str, Any]] = {}
    new_preds: dict[str, list[Prediction]] = {}
    for s in eval_sets:
        full, new_preds[s.name] = evaluate_with_predictions(model, s.records)
        write_report(full, report_dir, s.name, version)
        new_metrics[s.name] = summary(full)
        log(metrics_line(f"new     {s.name}", new_metrics[s.name]))
    del model

    current: str | None = None
    current_error: str | None = None
    old_metrics: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, int]] = {}
    notes: list[str] = []
    try:
        current = artifacts.current_version(models_dir)
        if current is not None:
            loaded = artifacts.load(models_dir, current)
            recorded = loaded.manifest.get("metrics") or {}
            for s in eval_sets:
                full, old_preds = evaluate_with_predictions(loaded.model, s.records)
                old_metrics[s.name] = summary(full)
                changed[s.name] = changed_labels(s.records, old_preds, new_preds[s.name])
                log(metrics_line(f"current {s.name}", old_metrics[s.name]))
                then = (recorded.get(s.name) or {}).get("macro_f1")
                if then is not None and abs(float(then) - old_metrics[s.name]["macro_f1"]) > 1e-4:
                    notes.append(f"{current}'s manifest says {s.name} macro-F1 {then:.4f}, today it scores "
                                 f"{old_metrics[s.name]['macro_f1']:.4f}: the {s.name} file changed since")
            del loaded
    except artifacts.ArtifactError as exc:
        current_error = str(exc)
        current = current or "(unreadable)"

    decision = decide(current, old_metrics if current_error is None else None, new_metrics,
                      margin=margin, class_margin=class_margin, current_error=current_error)
    decision = GateDecision(decision.passed, decision.reasons, decision.against, margin, class_margin, tuple(notes))
    promoted = promote and (decision.passed or force)
    forced = promoted and not decision.passed
    verdict = _verdict(decision, promoted, promote)

    report: dict[str, Any] = {
        "new": version,
        "current": current,
        "decision": verdict,
        "promoted": promoted,
        "forced": forced,
        "gate": decision.as_dict(),
        "corrections": facts.as_dict() if facts else None,
        "sets": {
            s.name: {
                "n": len(s.records),
                "file": s.path,
                "current": old_metrics.get(s.name),
                "new": new_metrics[s.name],
                "changed": changed.get(s.name),
            }
            for s in eval_sets
        },
    }
    write_compare(report, report_dir)
    manifest = artifacts.read_manifest(models_dir, version)
    manifest["metrics"] = new_metrics
    manifest["evaluation"] = {s.name: {"file": s.path, "n": len(s.records), "sha256": data_hash(s.records)} for s in eval_sets}
    manifest["gate"] = {**decision.as_dict(), "decision": verdict}
    artifacts.write_manifest(models_dir / version, manifest)
    if promoted:
        artifacts.set_current(models_dir, version, action="force" if forced else "promote",
                              reason=f"uxcx train: {verdict}: {decision.reason}")
    return Outcome(version, promoted, forced, decision, verdict, facts, report, report_dir, train_facts)

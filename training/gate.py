"""The promotion gate and the old-vs-new comparison report.

A new model replaces the current one only if, on every evaluation set both were scored on in
the same run, its macro-F1 is not lower by more than `margin` and no class's F1 is lower by
more than `class_margin`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifier.labels import LABELS
from classifier.model import Prediction
from training.data import Record

DEFAULT_MARGIN = 0.01
DEFAULT_CLASS_MARGIN = 0.03
#: Metrics are rounded to 4 places; a drop equal to the margin passes.
_EPS = 1e-9


@dataclass(frozen=True)
class GateDecision:
    """Whether the new model may become current, and why."""

    passed: bool
    reasons: tuple[str, ...]
    against: str | None = None
    margin: float = DEFAULT_MARGIN
    class_margin: float = DEFAULT_CLASS_MARGIN
    notes: tuple[str, ...] = field(default=())

    @property
    def reason(self) -> str:
        """The reasons as one sentence."""
        return "; ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for the manifest and the report."""
        return {
            "passed": self.passed,
            "against": self.against,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "margin": self.margin,
            "class_margin": self.class_margin,
        }


def regressions(
    current: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    margin: float = DEFAULT_MARGIN,
    class_margin: float = DEFAULT_CLASS_MARGIN,
) -> list[str]:
    """Where the new model is worse than allowed: one message per set and metric; empty if none.

    Both arguments map an evaluation set's name to a metrics summary (`macro_f1`, `f1` per class).
    Only sets present in both are compared.
    """
    out: list[str] = []
    for name, n in new.items():
        c = current.get(name)
        if c is None:
            continue
        drop = float(c["macro_f1"]) - float(n["macro_f1"])
        if drop > margin + _EPS:
            out.append(f"{name}: macro-F1 {n['macro_f1']:.4f} is {drop:.4f} below the current {c['macro_f1']:.4f} "
                       f"(allowed {margin})")
        for lab in LABELS:
            cdrop = float(c["f1"][lab]) - float(n["f1"][lab])
            if cdrop > class_margin + _EPS:
                out.append(f"{name}: {lab} F1 {n['f1'][lab]:.4f} is {cdrop:.4f} below the current {c['f1'][lab]:.4f} "
                           f"(allowed {class_margin})")
    return out


def decide(
    current_version: str | None,
    current: Mapping[str, Mapping[str, Any]] | None,
    new: Mapping[str, Mapping[str, Any]],
    *,
    margin: float = DEFAULT_MARGIN,
    class_margin: float = DEFAULT_CLASS_MARGIN,
    current_error: str | None = None,
) -> GateDecision:
    """The gate's verdict on a new model against the current one (None when there is none)."""
    def verdict(passed: bool, *reasons: str) -> GateDecision:
        return GateDecision(passed, reasons, current_version, margin, class_margin)

    if current_version is None:
        return verdict(True, "there is no current model: the first one is promoted")
    if current_error is not None:
        return verdict(False, f"the current model {current_version} cannot be loaded to compare with ({current_error})")
    shared = [name for name in new if current is not None and name in current]
    if not shared:
        return verdict(False, "no evaluation set to compare the two models on")
    found = regressions(current or {}, new, margin, class_margin)
    if found:
        return verdict(False, *found)
    return verdict(True, f"not worse than {current_version} on {', '.join(shared)} "
                         f"(macro-F1 margin {margin}, per-class F1 margin {class_margin})")


def changed_labels(records: Sequence[Record], current: Sequence[Prediction], new: Sequence[Prediction]) -> dict[str, int]:
    """How many texts got another label from the new model; of those, how many it fixed or broke."""
    changed = fixed = broke = 0
    for r, c, n in zip(records, current, new, strict=True):
        if c.label != n.label:
            changed += 1
            fixed += n.label == r.label
            broke += c.label == r.label
    return {"changed": changed, "fixed": fixed, "broken": broke}


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float | int) and not isinstance(x, bool) else "–"


def _delta(c: Any, n: Any) -> str:
    if not isinstance(c, float | int) or not isinstance(n, float | int):
        return ""
    return f"{n - c:+.4f}"


def compare_markdown(report: Mapping[str, Any]) -> str:
    """The comparison report (see `training.retrain`) as Markdown."""
    cur = report.get("current") or "none"
    gate = report["gate"]
    lines = [
        f"# Model {report['new']} against the current {cur}",
        "",
        f"**Decision: {report['decision']}.**",
        "",
    ]
    lines += [f"- {r}" for r in gate["reasons"]]
    lines += [f"- note: {r}" for r in gate.get("notes", [])]
    lines += ["", f"Gate: macro-F1 may drop by at most {gate['margin']}, each class's F1 by at most {gate['class_margin']}, "
              "on every evaluation set.", ""]
    corr = report.get("corrections")
    if corr:
        lines += [
            f"Corrections: {corr['used']} used ({corr['overrode']} overrode a corpus label, {corr['confirmed']} agreed, "
            f"{corr['added']} added); {corr['superseded']} superseded, {corr['invalid']} invalid, "
            f"{corr['in_evaluation']} not trained on (text in an evaluation set).",
            "",
        ]
    for name, s in report["sets"].items():
        c, n = s.get("current") or {}, s["new"]
        lines += [f"## {name} ({s['n']} texts)", "", f"| metric | current {cur} | new {report['new']} | change |", "|---|---|---|---|"]
        rows: list[tuple[str, Any, Any]] = [
            ("macro-F1", c.get("macro_f1"), n["macro_f1"]),
            ("accuracy", c.get("accuracy"), n["accuracy"]),
        ]
        rows += [(f"F1 {lab}", (c.get("f1") or {}).get(lab), n["f1"][lab]) for lab in LABELS]
        rows += [("ECE", c.get("ece"), n["ece"]), ("topic accuracy", c.get("topic_accuracy"), n["topic_accuracy"])]
        lines += [f"| {label} | {_fmt(a)} | {_fmt(b)} | {_delta(a, b)} |" for label, a, b in rows]
        ch = s.get("changed")
        if ch is not None:
            lines += ["", f"Texts whose label changed: **{ch['changed']}** of {s['n']} "
                      f"({ch['fixed']} now right, {ch['broken']} now wrong, the rest wrong either way)."]
        lines.append("")
    return "\n".join(lines)


def write_compare(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write `compare.md` and `compare.json` under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "compare.md", out_dir / "compare.json"
    md.write_text(compare_markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [md, js]

"""The model registry: list and show versions, promote one by hand, roll back to the previous current."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from classifier import artifacts


@dataclass(frozen=True)
class VersionRow:
    """One line of `uxcx models list`."""

    version: str
    created: str
    data_hash: str
    heldout_f1: float | None
    real_dev_f1: float | None
    gate: str
    current: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for `--json`."""
        return asdict(self)


def _f1(manifest: dict[str, Any], name: str) -> float | None:
    value = ((manifest.get("metrics") or {}).get(name) or {}).get("macro_f1")
    return float(value) if isinstance(value, float | int) else None


def _gate_word(manifest: dict[str, Any]) -> str:
    gate = manifest.get("gate")
    if not isinstance(gate, dict):
        return "-"
    return "passed" if gate.get("passed") else "refused"


def version_rows(models_dir: Path) -> list[VersionRow]:
    """Every version in models_dir, oldest first, with the numbers its manifest recorded."""
    current = artifacts.current_version(models_dir)
    rows = []
    for version in artifacts.list_versions(models_dir):
        try:
            m = artifacts.read_manifest(models_dir, version)
        except artifacts.ArtifactError:
            m = {}
        rows.append(VersionRow(
            version=version,
            created=str(m.get("created", "?")),
            data_hash=str(m.get("training_data_sha256", "?"))[:8],
            heldout_f1=_f1(m, "heldout"),
            real_dev_f1=_f1(m, "real-dev"),
            gate=_gate_word(m),
            current=version == current,
        ))
    return rows


def format_table(rows: list[VersionRow]) -> str:
    """`uxcx models list` as a plain-text table; `*` marks the current version."""
    def f(x: float | None) -> str:
        return f"{x:.4f}" if x is not None else "-"

    head = f"  {'version':<28} {'created':<25} {'data':<8} {'heldout F1':>10} {'real-dev F1':>11}  gate"
    lines = [head]
    for r in rows:
        mark = "*" if r.current else " "
        lines.append(f"{mark} {r.version:<28} {r.created:<25} {r.data_hash:<8} {f(r.heldout_f1):>10} {f(r.real_dev_f1):>11}  {r.gate}")
    if not rows:
        lines.append("  (no model versions)")
    return "\n".join(lines)


def describe(models_dir: Path, version: str) -> str:
    """`uxcx models show`: what a version is, how it was made, how it scored, whether it verifies."""
    m = artifacts.read_manifest(models_dir, version)
    try:
        artifacts.verify(models_dir, version)
        verified = "ok (checksum, libraries, label set)"
    except artifacts.ArtifactError as exc:
        verified = f"FAILED: {exc}"
    current = artifacts.current_version(models_dir)
    lines = [
        f"version:        {m.get('version', version)}{'  (current)' if version == current else ''}",
        f"created:        {m.get('created', '?')}",
        f"payload sha256: {m.get('sha256', '?')}",
        f"verification:   {verified}",
        f"training data:  {m.get('training_data_sha256', '?')}  {', '.join(m.get('training_files') or [])}",
        f"config:         {json.dumps(m.get('config', {}), sort_keys=True)}",
    ]
    training = m.get("training") or {}
    if training:
        lines.append("training:       " + ", ".join(f"{k} {v}" for k, v in training.items()))
    corr = m.get("corrections")
    if corr:
        lines.append(f"corrections:    {corr.get('used')} used ({corr.get('overrode')} overrode, {corr.get('confirmed')} agreed, "
                     f"{corr.get('added')} added), {corr.get('superseded')} superseded, {corr.get('invalid')} invalid, "
                     f"{corr.get('in_evaluation')} kept out (evaluation texts); from {', '.join(m.get('correction_sources') or []) or '?'}")
    for name, s in (m.get("metrics") or {}).items():
        f1 = "  ".join(f"{k} {v:.4f}" for k, v in (s.get("f1") or {}).items())
        lines.append(f"{name + ':':<15} macro-F1 {s.get('macro_f1', 0):.4f}  F1 {f1}  ECE {s.get('ece', 0):.4f}  (n={s.get('n')})")
    gate = m.get("gate")
    if isinstance(gate, dict):
        lines.append(f"gate:           {gate.get('decision', '?')} (against {gate.get('against') or 'none'})")
        lines += [f"                - {r}" for r in gate.get("reasons", [])]
    lines.append("libraries:      " + ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items()))
    return "\n".join(lines)


def promote(models_dir: Path, version: str, reason: str = "uxcx models promote") -> str | None:
    """Make a verified version current by hand (no gate); return the version it replaced."""
    artifacts.check_version_name(version)
    previous = artifacts.current_version(models_dir)
    if previous == version:
        artifacts.verify(models_dir, version)
        return previous
    artifacts.set_current(models_dir, version, action="promote", reason=reason)
    return previous


def rollback(models_dir: Path) -> tuple[str | None, str]:
    """Make the previous current version current again: (the version left, the version restored)."""
    target = artifacts.previous_current(models_dir)
    if target is None:
        raise artifacts.ArtifactError(f"no earlier current version recorded in {models_dir / artifacts.HISTORY}; nothing to roll back to")
    left = artifacts.current_version(models_dir)
    artifacts.set_current(models_dir, target, action="rollback", reason=f"uxcx models rollback from {left}")
    return left, target

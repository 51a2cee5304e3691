"""Label audit: likely mislabeled examples, by confident learning on out-of-fold probabilities.

The model is fitted once on the audited records with `keep_oof=True`: its k-fold out-of-fold
label probabilities (the ones its temperature is fitted on) go to cleanlab's
`find_label_issues`, which flags examples whose given label the held-out folds confidently
disagree with (per-class thresholds, pruned by the estimated noise rates).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifier.labels import LABELS
from training.config import TrainConfig
from training.data import Record
from training.train import train

#: cleanlab's filters (`filter_by`); the default prunes by the estimated noise rate per class pair.
METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")


@dataclass(frozen=True)
class Suspect:
    """One example whose given label is likely wrong."""

    rank: int
    record: Record
    origin: str
    suggested: str
    p_given: float
    p_suggested: float
    scores: dict[str, float]

    @property
    def secondary(self) -> bool:
        """The suggestion is already the text's second label: a dispute over which label is primary."""
        return self.suggested in self.record.labels

    def as_dict(self) -> dict[str, Any]:
        """The JSONL form written for review."""
        r = self.record
        return {
            "rank": self.rank,
            "id": r.id,
            "text": r.text,
            "given_label": r.label,
            "suggested_label": self.suggested,
            "p_given": round(self.p_given, 4),
            "p_suggested": round(self.p_suggested, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "given_labels": list(r.labels),
            "secondary": self.secondary,
            "given_topic": r.topic,
            "source": r.source,
            "origin": self.origin,
        }


def out_of_fold_proba(records: Sequence[Record], config: TrainConfig, cv: int = 5) -> np.ndarray:
    """Calibrated k-fold out-of-fold label probabilities (columns in LABELS order) of the records."""
    counts = Counter(r.label for r in records)
    short = [lab for lab in LABELS if counts[lab] < cv]
    if short:
        raise ValueError(f"too few examples to audit: label(s) {short} have fewer than {cv} (the number of folds)")
    audit_config = TrainConfig(model={**config.model, "calibrate": True, "keep_oof": True, "cv": cv}, seed=config.seed)
    model, _ = train(audit_config, records)
    return np.asarray(model.oof_proba_)


def find_suspects(
    records: Sequence[Record],
    proba: np.ndarray,
    origins: Sequence[str] | None = None,
    *,
    threshold: float = 0.0,
    method: str = "prune_by_noise_rate",
) -> list[Suspect]:
    """Likely label errors, most certain first; `threshold` drops those whose suggested label is less likely."""
    from cleanlab.filter import find_label_issues

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if proba.shape != (len(records), len(LABELS)):
        raise ValueError(f"proba has shape {proba.shape}, expected ({len(records)}, {len(LABELS)})")
    given = np.asarray([LABELS.index(r.label) for r in records])
    ranked = find_label_issues(
        labels=given, pred_probs=proba, filter_by=method, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    out: list[Suspect] = []
    for i in ranked.tolist():
        others = proba[i].copy()
        others[given[i]] = -1.0
        s = int(others.argmax())
        if proba[i, s] < threshold:
            continue
        out.append(Suspect(
            rank=len(out) + 1,
            record=records[i],
            origin=origins[i] if origins is not None else "",
            suggested=LABELS[s],
            p_given=float(proba[i, given[i]]),
            p_suggested=float(proba[i, s]),
            scores={lab: float(proba[i, k]) for k, lab in enumerate(LABELS)},
        ))
    return out


def pair_counts(suspects: Sequence[Suspect]) -> Counter[tuple[str, str]]:
    """How many suspects per (given label, suggested label)."""
    return Counter((s.record.label, s.suggested) for s in suspects)


def write_suspects(suspects: Sequence[Suspect], path: Path) -> None:
    """Write the suspects as JSONL, atomically (a new file, never an edit of the input)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for s in suspects:
            fh.write(json.dumps(s.as_dict(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)

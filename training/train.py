"""Training: fit the classifier on records. Pure: no file I/O (the CLI does that)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from classifier.model import UXCXClassifier
from training.config import TrainConfig
from training.data import Record


def build_model(config: TrainConfig) -> UXCXClassifier:
    """An unfitted classifier with the configured parameters (unknown ones are refused)."""
    params = {"random_state": config.seed, **config.model}
    valid = UXCXClassifier().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"unknown model parameters {unknown}; allowed: {sorted(valid)}")
    return UXCXClassifier(**params)


def train(config: TrainConfig, records: Sequence[Record]) -> tuple[UXCXClassifier, dict[str, Any]]:
    """Fit on records; return the model and training facts (size, time)."""
    if not records:
        raise ValueError("no training records")
    model = build_model(config)
    start = time.perf_counter()
    model.fit(
        [r.text for r in records],
        [r.label for r in records],
        labels=[list(r.labels) for r in records],
        topics=[r.topic for r in records],
    )
    facts = {
        "n_train": len(records),
        "train_seconds": round(time.perf_counter() - start, 2),
        "temperature": round(float(model.temperature_), 4),
        "n_lexical_features": model.lexical_.n_features,
    }
    return model, facts

"""Shared fixtures: a tiny trained model (unit level) and the shipped model (model level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.jsonl"
REAL_DEV = ROOT.parent / "shared" / "data" / "real-dev.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def tiny_records() -> list[dict]:
    return read_jsonl(TINY)


@pytest.fixture(scope="session")
def tiny_model(tiny_records):
    from classifier.model import UXCXClassifier

    return UXCXClassifier(cv=2, C=2.0).fit(
        [r["text"] for r in tiny_records],
        [r["label"] for r in tiny_records],
        labels=[r["labels"] for r in tiny_records],
        topics=[r["topic"] for r in tiny_records],
    )


@pytest.fixture(scope="session")
def shipped():
    """The current model in ./models (`make test` trains one first when there is none)."""
    from classifier import artifacts

    models = ROOT / "models"
    if artifacts.current_version(models) is None:
        pytest.fail("no current model in models/: run `make train` (make test does it for you)")
    return artifacts.load(models)

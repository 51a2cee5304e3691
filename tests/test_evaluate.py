"""Metrics and reports."""

import json

import numpy as np
import pytest

from tests.conftest import TINY
from training.data import load
from training.evaluate import evaluate, expected_calibration_error, label_metrics, write_report


def test_ece_zero_for_perfect_calibration_and_positive_otherwise():
    proba = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert expected_calibration_error(proba, np.array([0, 1])) == 0.0
    over = np.array([[0.9, 0.05, 0.05]] * 10)
    y = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(over, y) == pytest.approx(0.4)


def test_label_metrics_macro_f1():
    m = label_metrics(["ux", "cx", "other", "cx"], ["ux", "cx", "cx", "cx"])
    assert m["per_class"]["ux"]["f1"] == 1.0
    assert m["per_class"]["other"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((1.0 + 0.8 + 0.0) / 3, abs=1e-4)


def test_report_files(tmp_path, tiny_model):
    records = load([TINY]).records
    metrics = evaluate(tiny_model, records)
    paths = write_report(metrics, tmp_path, "tiny", "v1")
    assert [p.name for p in paths] == ["tiny.md", "tiny.json", "tiny-confusion.png"]
    assert json.loads(paths[1].read_text())["n"] == len(records)
    assert "macro-F1" in paths[0].read_text()
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(map(sum, metrics["confusion_matrix"]["rows_true_cols_pred"])) == len(records)
    assert set(metrics["per_source"]) == {"test"}

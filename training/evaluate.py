"""Evaluation: per-class scores, macro-F1, confusion matrix, calibration (ECE), per-source slices, reports."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from classifier.labels import LABELS
from classifier.model import Prediction, UXCXClassifier
from training.data import Record


def expected_calibration_error(proba: np.ndarray, y_idx: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-label confidence: weighted |accuracy - confidence| over equal-width bins."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_idx
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def label_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and macro-F1 over the three labels."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(LABELS), zero_division=0)
    return {
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=list(LABELS), average="macro", zero_division=0)), 4),
        "accuracy": round(float(np.mean(np.asarray(y_true) == np.asarray(y_pred))), 4) if len(y_true) else 0.0,
        "per_class": {
            lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4), "f1": round(float(f[i]), 4), "support": int(s[i])}
            for i, lab in enumerate(LABELS)
        },
    }


def evaluate(model: UXCXClassifier, records: Sequence[Record]) -> dict[str, Any]:
    """All metrics of a model on labeled records."""
    return evaluate_with_predictions(model, records)[0]


def evaluate_with_predictions(model: UXCXClassifier, records: Sequence[Record]) -> tuple[dict[str, Any], list[Prediction]]:
    """All metrics of a model on labeled records, and its predictions (for comparing two models)."""
    texts = [r.text for r in records]
    start = time.perf_counter()
    preds = model.predict_batch(texts)
    seconds = time.perf_counter() - start
    y_true = [r.label for r in records]
    y_pred = [p.label for p in preds]
    proba = np.asarray([[p.scores[lab] for lab in LABELS] for p in preds])
    y_idx = np.asarray([LABELS.index(y) for y in y_true])
    out = label_metrics(y_true, y_pred)
    out["n"] = len(records)
    out["ece"] = round(expected_calibration_error(proba, y_idx), 4)
    out["confusion_matrix"] = {
        "labels": list(LABELS),
        "rows_true_cols_pred": confusion_matrix(y_true, y_pred, labels=list(LABELS)).tolist(),
    }
    out["topic_accuracy"] = round(float(np.mean([p.topic == r.topic for p, r in zip(preds, records)])), 4)
    out["labels_exact_match"] = round(
        float(np.mean([set(p.labels) == set(r.labels) for p, r in zip(preds, records)])), 4
    )
    by_source: dict[str, Any] = {}
    for source in sorted({r.source for r in records}):
        idx = [i for i, r in enumerate(records) if r.source == source]
        m = label_metrics([y_true[i] for i in idx], [y_pred[i] for i in idx])
        by_source[source] = {"n": len(idx), "macro_f1": m["macro_f1"], "accuracy": m["accuracy"]}
    out["per_source"] = by_source
    out["texts_per_second"] = round(len(records) / seconds, 1) if seconds > 0 else None
    return out, preds


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a manifest keeps."""
    return {
        "n": metrics["n"],
        "macro_f1": metrics["macro_f1"],
        "f1": {k: v["f1"] for k, v in metrics["per_class"].items()},
        "ece": metrics["ece"],
        "accuracy": metrics["accuracy"],
        "topic_accuracy": metrics["topic_accuracy"],
    }


def to_markdown(name: str, metrics: dict[str, Any], version: str) -> str:
    """A readable report."""
    lines = [
        f"# Evaluation of model {version} on {name}",
        "",
        f"- texts: {metrics['n']}",
        f"- macro-F1: **{metrics['macro_f1']:.4f}**  (accuracy {metrics['accuracy']:.4f})",
        f"- ECE (15 bins, top label): {metrics['ece']:.4f}",
        f"- topic accuracy: {metrics['topic_accuracy']:.4f}; labels exact match: {metrics['labels_exact_match']:.4f}",
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for lab, m in metrics["per_class"].items():
        lines.append(f"| {lab} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |")
    cm = metrics["confusion_matrix"]
    lines += ["", "Confusion matrix (rows: true, columns: predicted)", "", "| | " + " | ".join(cm["labels"]) + " |"]
    lines.append("|---" * (len(cm["labels"]) + 1) + "|")
    for lab, row in zip(cm["labels"], cm["rows_true_cols_pred"]):
        lines.append(f"| **{lab}** | " + " | ".join(str(x) for x in row) + " |")
    lines += ["", "| source | n | macro-F1 | accuracy |", "|---|---|---|---|"]
    for src, m in metrics["per_source"].items():
        lines.append(f"| {src} | {m['n']} | {m['macro_f1']:.4f} | {m['accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def write_report(metrics: dict[str, Any], out_dir: Path, name: str, version: str) -> list[Path]:
    """Write `<name>.md`, `<name>.json` and `<name>-confusion.png` under out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{name}.md"
    js = out_dir / f"{name}.json"
    png = out_dir / f"{name}-confusion.png"
    md.write_text(to_markdown(name, metrics, version), encoding="utf-8")
    js.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    cm = np.asarray(metrics["confusion_matrix"]["rows_true_cols_pred"])
    labels = metrics["confusion_matrix"]["labels"]
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=120)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{name}: macro-F1 {metrics['macro_f1']:.3f}")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return [md, js, png]

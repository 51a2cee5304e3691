"""Label audit: confident learning on out-of-fold probabilities finds deliberately flipped labels."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from classifier.labels import LABELS, TOPICS_BY_LABEL
from tests.conftest import ROOT, read_jsonl
from training.audit import find_suspects, pair_counts, write_suspects
from training.data import TRAIN_FILE, Record


def test_find_suspects_on_known_probabilities(tmp_path):
    rng = np.random.default_rng(0)
    records, proba = [], []
    for i in range(90):
        lab = LABELS[i % 3]
        records.append(Record(f"r{i}", f"text {i}", lab, (lab,), TOPICS_BY_LABEL[lab][0], "t"))
        p = rng.dirichlet([1, 1, 1]) * 0.2
        p[i % 3] += 0.8
        proba.append(p)
    proba = np.asarray(proba)
    flipped = {3: 1, 10: 2, 20: 0, 40: 2}  # record index -> the label the model is sure of
    for i, k in flipped.items():
        proba[i] = np.full(3, 0.02)
        proba[i, k] = 0.96
    suspects = find_suspects(records, proba, ["corpus"] * 90)
    assert {s.record.id for s in suspects} == {f"r{i}" for i in flipped}
    assert {s.record.id: s.suggested for s in suspects} == {f"r{i}": LABELS[k] for i, k in flipped.items()}
    assert [s.rank for s in suspects] == [1, 2, 3, 4] and all(s.p_suggested == pytest.approx(0.96) for s in suspects)
    assert sum(pair_counts(suspects).values()) == 4
    assert find_suspects(records, proba, threshold=0.99) == []
    out = tmp_path / "s.jsonl"
    write_suspects(suspects, out)
    row = json.loads(out.read_text().splitlines()[0])
    assert set(row) >= {"rank", "id", "text", "given_label", "suggested_label", "p_given", "p_suggested", "scores", "origin"}
    assert row["secondary"] is False
    both = Record("b", "t", "ux", ("ux", "cx"), "crash_error", "t")
    assert find_suspects([*records, both], np.vstack([proba, [0.01, 0.98, 0.01]]))[0].secondary
    with pytest.raises(ValueError, match="shape"):
        find_suspects(records, proba[:5])


def test_audit_command_finds_flipped_labels(tmp_path):
    rows = read_jsonl(TRAIN_FILE)
    random.Random(7).shuffle(rows)
    per = dict.fromkeys(LABELS, 0)
    sample = []
    for r in rows:
        if per[r["label"]] < 100 and len(r["labels"]) == 1:
            per[r["label"]] += 1
            sample.append(r)
    flipped = {}
    for r in sample[:12]:
        new = LABELS[(LABELS.index(r["label"]) + 1) % 3]
        flipped[r["id"]] = r["label"]
        r.update(label=new, labels=[new], topic=TOPICS_BY_LABEL[new][0])
    data = tmp_path / "sample.jsonl"
    # Nine flips are in the data file, three arrive as (wrong) corrections of the right rows.
    data.write_text("".join(json.dumps(r) + "\n" for r in sample[3:]) + "".join(
        json.dumps({**r, "label": flipped[r["id"]], "labels": [flipped[r["id"]]], "topic": TOPICS_BY_LABEL[flipped[r["id"]]][0]}) + "\n"
        for r in sample[:3]))
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_text("".join(json.dumps(r) + "\n" for r in sample[:3]))
    out = tmp_path / "suspects.jsonl"
    r = subprocess.run([sys.executable, "-m", "cli.main", "data", "audit", str(data), "--corrections", str(corrections),
                        "-o", str(out), "--cv", "3"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    suspects = read_jsonl(out)
    found = {s["id"]: s for s in suspects if s["id"] in flipped}
    assert len(found) >= 8, (len(found), len(suspects))
    assert sum(s["suggested_label"] == flipped[i] for i, s in found.items()) >= len(found) - 3, found
    # flipped labels rank high: 4 % of the sample, but at least 15 % of the top 20 suspects
    top = [s["id"] for s in suspects[:20]]
    assert sum(i in flipped for i in top) >= 3
    assert any(s["origin"].endswith("(correction)") for s in found.values())
    assert "likely mislabeled of 300" in r.stdout and "given    suggested" in r.stdout


def test_audit_without_the_extra_says_how_to_install_it():
    # As on a default install: cleanlab (and the pandas it pulls in) is the optional `audit` extra.
    code = "import sys; sys.modules['cleanlab'] = None; from cli.main import main; sys.exit(main(['data', 'audit']))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "pip install 'uxcx[audit]'" in out.stderr and "Traceback" not in out.stderr

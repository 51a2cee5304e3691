"""`uxcx train` end to end on tiny data: corrections, new versions, the gate, --force, compare report.

Four real trainings in subprocesses, in one models folder, in this order:
first (with corrections) -> same again (as good: promoted) -> shuffled labels (worse: refused,
exit 3) -> shuffled labels with --force (promoted, and it says so).
"""

import json
import re
import shutil
import subprocess
import sys

import pytest

from classifier import artifacts
from classifier.labels import LABELS, TOPICS_BY_LABEL
from tests.conftest import ROOT, TINY, read_jsonl


def uxcx(*args):
    return subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600)


def version_of(result):
    return re.search(r"model (\S+) written to", result.stdout).group(1)


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    d = tmp_path_factory.mktemp("retrain")
    models = d / "models"
    cfg = d / "cfg.toml"
    cfg.write_text("seed = 3\n[model]\ncv = 2\nC = 1.0\n")
    tiny = read_jsonl(TINY)
    shuffled = d / "shuffled.jsonl"
    with shuffled.open("w") as fh:
        for r in tiny:  # every label moved to the next one: a model that is clearly worse
            new = LABELS[(LABELS.index(r["label"]) + 1) % 3]
            fh.write(json.dumps({**r, "label": new, "labels": [new], "topic": TOPICS_BY_LABEL[new][0]}) + "\n")
    corrections = d / "corrections.jsonl"
    rows = [
        {"text": "the refund took six weeks", "label": "ux", "topic": "crash_error"},  # superseded by the next row
        {"id": "k-new", "text": "The refund took six weeks!", "label": "cx", "topic": "billing_refund", "note": "agent"},
        {"id": "k-held", "text": tiny[0]["text"], "label": "other", "topic": "praise"},  # an evaluation text
        {"id": "k-bad", "text": "bad pair", "label": "ux", "topic": "praise"},
    ]
    corrections.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--heldout", TINY, "--config", cfg, "--real-dev", d / "absent.jsonl"]
    runs = {
        "first": uxcx("--models-dir", models, "train", "--data", TINY, "--corrections", corrections, *common),
        "as_good": uxcx("--models-dir", models, "train", "--data", TINY, "--corrections", corrections, *common),
        "worse": uxcx("--models-dir", models, "train", "--data", shuffled, *common),
    }
    current_after_worse = artifacts.current_version(models)
    runs["forced"] = uxcx("--models-dir", models, "train", "--data", shuffled, "--force", *common)
    return models, runs, current_after_worse


def manifest(models, version):
    return artifacts.read_manifest(models, version)


def test_first_model_is_promoted_with_corrections_counted(flow):
    models, runs, _ = flow
    r = runs["first"]
    assert r.returncode == 0, r.stderr
    v = version_of(r)
    assert "promoted" in r.stdout and "no current model" in r.stdout
    assert "invalid correction skipped" in r.stderr and "topic 'praise' belongs to 'other'" in r.stderr
    facts = manifest(models, v)["corrections"]
    assert {k: facts[k] for k in ("read", "invalid", "superseded", "in_evaluation", "overrode", "added", "used")} == {
        "read": 3, "invalid": 1, "superseded": 1, "in_evaluation": 1, "overrode": 0, "added": 1, "used": 1}
    assert facts["evaluation_ids"] == ["k-held"] and "corrections: 1 used" in r.stdout
    # the held-out text's correction was not trained on; the new text was
    assert manifest(models, v)["training"]["n_train"] == 46
    assert manifest(models, v)["correction_sources"][0].endswith("corrections.jsonl")
    assert artifacts.read_history(models)[0]["version"] == v


def test_a_model_as_good_as_the_current_one_is_promoted(flow):
    models, runs, _ = flow
    r = runs["as_good"]
    assert r.returncode == 0, r.stderr
    v = version_of(r)
    report = json.loads((models / v / "report" / "compare.json").read_text())
    assert report["promoted"] and report["current"] == version_of(runs["first"])
    assert report["sets"]["heldout"]["changed"]["changed"] == 0
    assert report["sets"]["heldout"]["new"] == report["sets"]["heldout"]["current"]
    assert "not worse than" in r.stdout


def test_a_worse_model_is_kept_but_not_promoted(flow):
    models, runs, current_after_worse = flow
    r = runs["worse"]
    assert r.returncode == 3, (r.stdout, r.stderr)
    v = version_of(r)
    assert "kept but not promoted" in r.stderr and "heldout: macro-F1" in r.stderr and "below the current" in r.stderr
    assert current_after_worse == version_of(runs["as_good"])
    assert (models / v / artifacts.PAYLOAD).is_file()
    gate = manifest(models, v)["gate"]
    assert gate["passed"] is False and gate["against"] == current_after_worse
    md = (models / v / "report" / "compare.md").read_text()
    assert "**Decision: kept, not promoted: the gate refused it.**" in md and "| F1 ux |" in md
    changed = json.loads((models / v / "report" / "compare.json").read_text())["sets"]["heldout"]["changed"]
    assert changed["changed"] > 20 and changed["broken"] == changed["changed"]


def test_force_promotes_a_refused_model_and_says_so(flow):
    models, runs, _ = flow
    r = runs["forced"]
    assert r.returncode == 0, r.stderr
    v = version_of(r)
    assert "--force" in r.stderr and "promoted by --force although the gate refused it" in r.stdout
    assert artifacts.current_version(models) == v
    assert artifacts.read_history(models)[-1]["action"] == "force"


def test_every_run_kept_its_own_version_and_rollback_walks_back(flow, tmp_path):
    models, runs, _ = flow
    versions = [version_of(runs[k]) for k in ("first", "as_good", "worse", "forced")]
    assert len(set(versions)) == 4 and artifacts.list_versions(models) == sorted(versions)
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    r = uxcx("--models-dir", copy, "models", "rollback")
    assert r.returncode == 0 and f"{versions[1]} is current again" in r.stdout
    r = uxcx("--models-dir", copy, "models", "list")
    assert f"* {versions[1]}" in r.stdout and "refused" in r.stdout

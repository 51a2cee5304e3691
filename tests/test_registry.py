"""The registry: history of `current`, rollback in undo order, verified promotion, list and show."""

import json
import shutil
import subprocess
import sys

import pytest

from classifier import artifacts
from classifier.artifacts import ArtifactError
from tests.conftest import ROOT
from training.registry import describe, format_table, promote, rollback, version_rows

VERSIONS = ("20260101-000000-aaaaaaaa", "20260102-000000-bbbbbbbb", "20260103-000000-cccccccc")


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("saved")
    artifacts.save(tiny_model, folder, VERSIONS[0], {})
    return folder / VERSIONS[0]


@pytest.fixture()
def models(tmp_path, saved_once):
    """Three versions of one saved payload (a copy of a saved folder is a valid artifact)."""
    for i, v in enumerate(VERSIONS):
        shutil.copytree(saved_once, tmp_path / v)
        manifest = artifacts.read_manifest(tmp_path, v)
        manifest.update(version=v, training_data_sha256=f"{i}" * 64,
                        metrics={"heldout": {"n": 45, "macro_f1": 0.8 + i / 100, "f1": {"ux": 0.8, "cx": 0.8, "other": 0.8}, "ece": 0.05}},
                        gate={"passed": i != 1, "decision": "x", "reasons": []})
        artifacts.write_manifest(tmp_path / v, manifest)
    return tmp_path


def tamper(models, version):
    payload = models / version / artifacts.PAYLOAD
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))


def test_set_current_appends_the_history(models):
    a, b, _ = VERSIONS
    artifacts.set_current(models, a)
    artifacts.set_current(models, b, action="force", reason="because")
    history = artifacts.read_history(models)
    assert [(h["action"], h["version"], h["previous"]) for h in history] == [("promote", a, None), ("force", b, a)]
    assert history[1]["reason"] == "because" and history[1]["time"].endswith("+00:00")
    assert (models / "current").read_text() == b + "\n" and not (models / "current.tmp").exists()
    with pytest.raises(ValueError, match="unknown action"):
        artifacts.set_current(models, a, action="yolo")


def test_rollback_goes_back_in_undo_order(models):
    a, b, c = VERSIONS
    for v in VERSIONS:
        artifacts.set_current(models, v)
    assert rollback(models) == (c, b)
    assert rollback(models) == (b, a)
    assert artifacts.current_version(models) == a
    with pytest.raises(ArtifactError, match="nothing to roll back to"):
        rollback(models)
    assert [h["action"] for h in artifacts.read_history(models)] == ["promote"] * 3 + ["rollback"] * 2


def test_rollback_passes_over_deleted_versions_and_hand_edits(models):
    a, b, c = VERSIONS
    artifacts.set_current(models, a)
    artifacts.set_current(models, b)
    (models / "current").write_text(c + "\n")  # changed by hand, outside the history
    assert artifacts.previous_current(models) == b
    shutil.rmtree(models / b)
    assert artifacts.previous_current(models) == a


def test_a_current_from_before_the_history_can_be_rolled_back_to(models):
    a, b, _ = VERSIONS
    (models / "current").write_text(a + "\n")  # e.g. a models folder from before history.jsonl
    artifacts.set_current(models, b)
    assert rollback(models) == (b, a)


def test_promote_verifies_first_and_refuses_a_tampered_artifact(models):
    a, b, _ = VERSIONS
    assert promote(models, a) is None
    tamper(models, b)
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        promote(models, b)
    assert artifacts.current_version(models) == a and len(artifacts.read_history(models)) == 1
    assert promote(models, a) == a  # already current: nothing recorded
    assert len(artifacts.read_history(models)) == 1
    with pytest.raises(ArtifactError, match="invalid model version"):
        promote(models, "../elsewhere")
    assert "FAILED: checksum mismatch" in describe(models, b)


def test_list_rows_and_show(models):
    artifacts.set_current(models, VERSIONS[2])
    rows = version_rows(models)
    assert [r.version for r in rows] == list(VERSIONS)
    assert [r.current for r in rows] == [False, False, True]
    assert rows[0].data_hash == "00000000" and rows[2].heldout_f1 == pytest.approx(0.82) and rows[0].real_dev_f1 is None
    assert [r.gate for r in rows] == ["passed", "refused", "passed"]
    table = format_table(rows)
    assert f"* {VERSIONS[2]}" in table and "0.8200" in table and "heldout F1" in table
    text = describe(models, VERSIONS[2])
    assert "(current)" in text and "verification:   ok" in text and "macro-F1 0.8200" in text


def uxcx(*args):
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_models_commands(models):
    a, b, c = VERSIONS
    d = str(models)
    r = uxcx("--models-dir", d, "models", "promote", a)
    assert r.returncode == 0 and f"{a} is now current (was none)" in r.stdout
    r = uxcx("--models-dir", d, "models", "promote", c)
    assert r.returncode == 0 and f"(was {a})" in r.stdout
    r = uxcx("--models-dir", d, "models", "list", "--json")
    assert [(x["version"], x["current"]) for x in json.loads(r.stdout)] == [(a, False), (b, False), (c, True)]
    r = uxcx("--models-dir", d, "models", "show")
    assert r.returncode == 0 and c in r.stdout and "(current)" in r.stdout
    r = uxcx("--models-dir", d, "models", "rollback")
    assert r.returncode == 0 and f"{a} is current again (was {c})" in r.stdout
    tamper(models, b)
    r = uxcx("--models-dir", d, "models", "promote", b)
    assert r.returncode == 2 and "checksum mismatch" in r.stderr
    r = uxcx("--models-dir", d, "models", "rollback")
    assert r.returncode == 2 and "nothing to roll back to" in r.stderr
    r = uxcx("--models-dir", d, "models", "show", "no-such-version")
    assert r.returncode == 2 and "no manifest" in r.stderr
    assert artifacts.current_version(models) == a

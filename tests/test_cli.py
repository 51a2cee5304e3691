"""The `uxcx` command end to end, on real files, with real subprocesses."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY

UXCX = [sys.executable, "-m", "cli.main"]


def run(*args, stdin=None, cwd=ROOT):
    return subprocess.run([*UXCX, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=600)


def lines(text):
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def test_data_check_passes_on_the_shipped_corpus():
    r = run("data", "check")
    assert r.returncode == 0, r.stderr
    assert "records:" in r.stdout and "near-duplicate pairs" in r.stdout


def test_data_check_fails_on_bad_rows(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"id": "1", "text": "", "label": "ux", "labels": ["ux"], "topic": "crash_error", "source": "t"}\n')
    r = run("data", "check", str(f))
    assert r.returncode == 1 and "missing field(s) text" in r.stdout


@pytest.fixture(scope="module")
def shipped_version(shipped):
    return shipped.version


def test_classify_jsonl_keeps_order_ids_and_reports_bad_lines(tmp_path, shipped_version):
    f = tmp_path / "in.jsonl"
    f.write_text(
        '{"id": "a", "text": "payment page freezes when I press pay"}\n'
        '{"text": "I was charged twice for one order"}\n'
        '{"id": "c", "text": ""}\n'
        "not json\n"
        '{"id": "e", "text": 42}\n'
        '{"id": "f", "text": "love this app"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    r = run("classify", str(f), "-o", str(out))
    assert r.returncode == 1 and "3 of 6" in r.stderr
    recs = lines(out.read_text())
    assert [x["id"] for x in recs] == ["a", "2", "c", "4", "e", "f"]
    assert recs[0]["label"] == "ux" and recs[1]["label"] == "cx" and recs[5]["label"] == "other"
    assert "empty" in recs[2]["error"] and "invalid JSON" in recs[3]["error"] and "must be a string" in recs[4]["error"]
    keys = {"id", "label", "labels", "topic", "confidence", "scores", "evidence", "model_version"}
    assert set(recs[0]) == keys and recs[0]["model_version"] == shipped_version
    assert set(recs[0]["scores"]) == {"ux", "cx", "other"}


def test_classify_csv_and_stdin(tmp_path, shipped_version):
    f = tmp_path / "in.csv"
    f.write_text('id,text\nt1,"the app crashes, every single time"\nt2,my parcel never arrived\n', encoding="utf-8")
    r = run("classify", str(f))
    assert r.returncode == 0, r.stderr
    assert [(x["id"], x["label"]) for x in lines(r.stdout)] == [("t1", "ux"), ("t2", "cx")]
    r = run("classify", "-", stdin="checkout button does nothing\nthanks, great service\n")
    assert [(x["id"], x["label"]) for x in lines(r.stdout)] == [("1", "ux"), ("2", "other")]


def test_classify_whole_file_errors_are_clear(tmp_path, shipped_version):
    f = tmp_path / "in.csv"
    f.write_text("id,body\n1,hello\n")
    r = run("classify", str(f))
    assert r.returncode == 2 and "no 'text' column" in r.stderr
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    r = run("classify", str(empty))
    assert r.returncode == 2 and "empty" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "caf\xe9"}\n')
    r = run("classify", str(bad))
    assert r.returncode == 2 and "not valid UTF-8" in r.stderr
    r = run("classify", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2 and "not found" in r.stderr


def test_train_and_evaluate_on_tiny_data(tmp_path):
    models = tmp_path / "models"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("seed = 3\n[model]\ncv = 2\nC = 1.0\n")
    r = run("--models-dir", str(models), "train", "--data", str(TINY), "--heldout", str(TINY),
            "--config", str(cfg), "--real-dev", str(tmp_path / "absent.jsonl"))
    assert r.returncode == 0, r.stderr
    version = (models / "current").read_text().strip()
    manifest = json.loads((models / version / "manifest.json").read_text())
    assert manifest["config"] == {"model": {"cv": 2, "C": 1.0}, "seed": 3}
    assert manifest["metrics"]["heldout"]["n"] == 45 and len(manifest["training_data_sha256"]) == 64
    report = models / version / "report"
    assert (report / "heldout.md").is_file() and (report / "heldout-confusion.png").is_file()
    r = run("--models-dir", str(models), "evaluate", "--data", str(TINY), "--name", "again")
    assert r.returncode == 0, r.stderr
    assert json.loads((report / "again.json").read_text())["n"] == 45


def test_unknown_config_key_is_refused(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[model]\nlearning_rate = 3\n")
    r = run("--models-dir", str(tmp_path), "train", "--data", str(TINY), "--config", str(cfg))
    assert r.returncode != 0 and "unknown model parameters ['learning_rate']" in r.stderr

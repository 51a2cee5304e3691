"""`uxcx train --corrections-from DATABASE_URL`: what POST /v1/feedback stored becomes training data."""

import subprocess
import sys
from datetime import datetime

from classifier import artifacts
from service.store import Correction, Record, Store, make_engine, migrate
from tests.conftest import ROOT, TINY


def test_train_uses_the_service_database_corrections(tmp_path):
    url = f"sqlite:///{tmp_path / 'uxcx.db'}"
    engine = make_engine(url)
    migrate(engine)
    store = Store(engine)
    now = datetime(2030, 1, 1)

    def record(item_id: str, text: str | None) -> Record:
        return Record(item_id, now, None, "app", "ux", ["ux"], "crash_error", 0.6,
                      {"ux": 0.6, "cx": 0.3, "other": 0.1}, "v0", "0" * 64, text)

    store.add_predictions([record("db-1", "the courier left my parcel in the rain"), record("db-2", None)])
    store.add_correction(Correction("db-1", "cx", ["cx"], "delivery_fulfilment", "agent fixed"))
    store.add_correction(Correction("db-2", "other", ["other"], "none"))  # no text known: cannot be used
    engine.dispose()
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("seed = 3\n[model]\ncv = 2\nC = 1.0\n")
    models = tmp_path / "models"
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "--models-dir", str(models), "train", "--data", str(TINY), "--heldout", str(TINY),
         "--config", str(cfg), "--real-dev", str(tmp_path / "absent.jsonl"), "--corrections-from", url],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "1 correction(s) read from" in out.stdout and "1 correction(s)" in out.stderr and "no known text" in out.stderr
    manifest = artifacts.read_manifest(models, artifacts.current_version(models))
    assert manifest["corrections"]["added"] == 1 and manifest["corrections"]["used"] == 1
    assert any("uxcx.db" in s for s in manifest["correction_sources"])


def test_train_refuses_a_missing_database_plainly(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "--models-dir", str(tmp_path / "m"), "train", "--data", str(TINY),
         "--corrections-from", f"sqlite:///{tmp_path / 'nope.db'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 2 and "no SQLite database" in out.stderr and "Traceback" not in out.stderr

"""Faults: the database goes away mid-run and comes back; damaged or foreign model artifacts.

The service must keep answering, say it is not ready, count what it could not write, keep it for a
retry and write it when the database returns, without a restart. A model that fails verification
is refused at start and at reload, and the old one keeps serving.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from classifier import artifacts
from service.app import create_app
from service.settings import Settings
from service.store import predictions
from tests.conftest import ROOT
from tests.test_service import KEY, _free_port, _store


def _metric(client: TestClient, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", client.get("/metrics").text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def _recorded_ids(client: TestClient) -> list[str]:
    with _store(client).engine.connect() as conn:
        return [r.item_id for r in conn.execute(select(predictions.c.item_id).order_by(predictions.c.pk))]


def _classify(client: TestClient, item_id: str, text: str = "the app crashes when I pay") -> dict[str, Any]:
    r = client.post("/v1/classify", json={"text": text, "id": item_id})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _wait_ready(client: TestClient, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while (r := client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, f"not ready again after {seconds} s: {r.json()}"
        time.sleep(0.2)


# ------------------------------------------------------------------ SQLite
def test_locked_sqlite_file_is_503_then_everything_waiting_is_written(tmp_path, shipped):
    db = tmp_path / "uxcx.db"
    settings = Settings(
        models_dir=ROOT / "models", database_url=f"sqlite:///{db}?timeout=0.2", max_pending_records=3, rate_limit=""
    )
    with TestClient(create_app(settings)) as c:
        _classify(c, "a")
        assert c.get("/readyz").status_code == 200
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            assert _classify(c, "b")["label"] == "ux"  # answered all the same
            _classify(c, "c")
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["database"] == "unavailable"
            assert "2 predictions wait to be recorded" in r.json()["detail"]
            _classify(c, "d")
            _classify(c, "e")  # four waiting, room for three: the oldest ("b") is dropped
            assert _metric(c, "uxcx_records_pending") == 3
            assert _metric(c, "uxcx_records_dropped_total") == 1
            assert _metric(c, "uxcx_records_failed_total") == 4
            assert _metric(c, "uxcx_record_write_errors_total") >= 1
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        _wait_ready(c)  # the lock is gone: the waiting rows are written, no restart
        assert _metric(c, "uxcx_records_pending") == 0
        assert _recorded_ids(c) == ["a", "c", "d", "e"]
        _classify(c, "f")
        assert _recorded_ids(c)[-1] == "f"


# -------------------------------------------------------------- PostgreSQL
def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


class PrivatePostgres:
    """A throw-away PostgreSQL server of our own, so stopping it disturbs no other test."""

    def __init__(self, bindir: Path, root: Path, as_user: list[str]) -> None:
        self.bindir, self.root, self.as_user = bindir, root, as_user
        self.port = _free_port()
        self.url = f"postgresql+psycopg://uxcx@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.root / "data"), "-U", "uxcx", "--auth=trust", "-E", "UTF8", "-N")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-o", opts, "start")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl, initdb): .ci/run installs Debian's postgresql package")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="uxcx-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no postgres user to run a PostgreSQL server as")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    pg = PrivatePostgres(bindir, root, as_user)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        try:
            pg.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_stopped_mid_run_then_back_without_restart(private_pg, shipped):
    settings = Settings(models_dir=ROOT / "models", database_url=private_pg.url, rate_limit="", api_keys=[KEY])
    with TestClient(create_app(settings)) as c:
        for i in range(3):
            _classify(c, f"before-{i}")
        assert c.get("/readyz").status_code == 200

        private_pg.stop()
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["database"] == "unavailable"
        for i in range(3):
            assert _classify(c, f"during-{i}", "my parcel never arrived")["label"] == "cx"
        assert _metric(c, "uxcx_records_failed_total") == 3 and _metric(c, "uxcx_records_pending") == 3
        r = c.get("/v1/stats")
        assert r.status_code == 503 and "database" in r.json()["detail"] and "Traceback" not in r.text
        r = c.post("/v1/feedback", json={"id": "before-0", "label": "ux", "topic": "crash_error"}, headers={"X-API-Key": KEY})
        assert r.status_code == 503 and "try again" in r.json()["detail"]

        private_pg.start()
        _wait_ready(c)
        assert _metric(c, "uxcx_records_pending") == 0 and _metric(c, "uxcx_records_written_total") == 6
        _classify(c, "after-0")
        assert _recorded_ids(c) == [*(f"before-{i}" for i in range(3)), *(f"during-{i}" for i in range(3)), "after-0"]
        assert c.get("/v1/stats").json()["count"] == 7
        assert _metric(c, "uxcx_records_dropped_total") == 0


# --------------------------------------------------------------- artifacts
def _damage(models: Path, version: str, how: str) -> str:
    """Damage a copy of the shipped version; return the message the refusal must contain."""
    folder = models / version
    payload = folder / artifacts.PAYLOAD
    if how == "tampered":
        data = bytearray(payload.read_bytes())
        data[len(data) // 3] ^= 0x01
        payload.write_bytes(bytes(data))
        return "checksum mismatch"
    if how == "truncated":
        payload.write_bytes(payload.read_bytes()[: payload.stat().st_size // 2])
        return "checksum mismatch"
    if how == "foreign-copy":  # another version's folder copied in under this name
        manifest = json.loads((folder / artifacts.MANIFEST).read_text())
        manifest["version"] = "20200101-000000-elsewhere"
        (folder / artifacts.MANIFEST).write_text(json.dumps(manifest))
        return "foreign or copied artifact"
    if how == "foreign-labels":
        manifest = json.loads((folder / artifacts.MANIFEST).read_text())
        manifest["labels"] = ["bug", "feature", "praise"]
        (folder / artifacts.MANIFEST).write_text(json.dumps(manifest))
        return "another label or topic set"
    if how == "foreign-object":  # a well-formed pickle of something else, with a matching checksum
        joblib.dump({"not": "a model"}, payload)
        manifest = json.loads((folder / artifacts.MANIFEST).read_text())
        manifest["sha256"] = artifacts.sha256_file(payload)
        (folder / artifacts.MANIFEST).write_text(json.dumps(manifest))
        return "not a uxcx model"
    raise AssertionError(how)


KINDS = ["tampered", "truncated", "foreign-copy", "foreign-labels", "foreign-object"]


@pytest.fixture
def models_copy(tmp_path, shipped) -> Path:
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / shipped.version, models / shipped.version)
    artifacts.set_current(models, shipped.version)
    return models


@pytest.mark.parametrize("how", KINDS)
def test_a_damaged_or_foreign_artifact_is_refused_at_start(models_copy, shipped, tmp_path, how):
    needle = _damage(models_copy, shipped.version, how)
    env = {**os.environ, "UXCX_MODELS_DIR": str(models_copy), "UXCX_DATA_DIR": str(tmp_path / "var")}
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(_free_port())], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode != 0 and needle in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("how", KINDS)
def test_a_damaged_or_foreign_artifact_is_refused_at_reload(models_copy, shipped, tmp_path, how):
    settings = Settings(models_dir=models_copy, data_dir=tmp_path / "var", api_keys=[KEY], rate_limit="")
    with TestClient(create_app(settings)) as c:
        bad = "20991231-000000-damaged"
        shutil.copytree(models_copy / shipped.version, models_copy / bad)
        manifest = json.loads((models_copy / bad / artifacts.MANIFEST).read_text())
        manifest["version"] = bad
        (models_copy / bad / artifacts.MANIFEST).write_text(json.dumps(manifest))
        needle = _damage(models_copy, bad, how)
        (models_copy / artifacts.CURRENT).write_text(bad + "\n")  # swapped in behind the service's back
        r = c.post("/v1/admin/reload", headers={"X-API-Key": KEY})
        assert r.status_code == 409 and needle in r.json()["detail"] and f"still serving {shipped.version}" in r.json()["detail"]
        assert c.get("/readyz").json()["model_version"] == shipped.version
        r = c.post("/v1/classify", json={"text": "refund refused", "record": False})
        assert r.status_code == 200 and r.json()["model_version"] == shipped.version


def test_rows_dropped_while_a_write_is_in_flight_never_take_a_newer_row_with_them(tmp_path, shipped):
    """A full buffer drops its oldest rows while another thread is writing them: when that write
    succeeds, only the rows still waiting that it wrote are taken off, so the newer ones are kept."""
    import threading
    from datetime import datetime

    from service.metrics import Metrics
    from service.recorder import Recorder
    from service.store import Record, Store, make_engine, migrate

    db = tmp_path / "uxcx.db"
    engine = make_engine(f"sqlite:///{db}?timeout=3")
    migrate(engine)
    recorder = Recorder(Store(engine), Metrics(), max_pending=3)

    def rec(item: str) -> Record:
        return Record(item, datetime(2030, 1, 1), None, None, "ux", ["ux"], "crash_error", 0.9,
                      {"ux": 0.9, "cx": 0.05, "other": 0.05}, "v", "0" * 64, None)

    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for item in "abc":
        recorder.add([rec(item)])  # the first waits for the lock and fails; all three wait in memory
    assert recorder.pending == 3
    writer = threading.Thread(target=recorder.flush, kwargs={"force": True})
    writer.start()  # blocks on the lock, writing a, b, c
    time.sleep(0.3)
    recorder.add([rec("d")])  # the writer is busy: d waits, and the full buffer drops "a"
    locker.execute("ROLLBACK")
    locker.close()
    writer.join(timeout=10)
    assert not writer.is_alive()
    if recorder.pending:  # d came in after the writer's last look: the next flush takes it
        assert recorder.flush() is True
    with engine.connect() as conn:
        written = [r.item_id for r in conn.execute(select(predictions.c.item_id).order_by(predictions.c.pk))]
    assert written == ["a", "b", "c", "d"]  # "a" was already on its way; nothing newer was lost
    engine.dispose()

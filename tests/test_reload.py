"""Reloading the model without downtime, over HTTP against a real uvicorn process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from classifier import artifacts
from tests.conftest import ROOT
from tests.test_service import _free_port

KEY = "reload-key"


def _post(port: int, path: str, body: dict[str, Any], key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"content-type": "application/json", **({"X-API-Key": key} if key else {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _ready_version(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return str(json.loads(r.read())["model_version"])
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, shipped, tiny_model) -> tuple[Path, str, str]:
    """A models folder holding the shipped model and a tiny one, with the shipped one current."""
    models = tmp_path_factory.mktemp("models")
    shutil.copytree(ROOT / "models" / shipped.version, models / shipped.version)
    tiny = "20300101-000000-tinytiny"
    artifacts.save(tiny_model, models, tiny, {"training_data_sha256": "t", "metrics": {}})
    artifacts.set_current(models, shipped.version)
    return models, shipped.version, tiny


@pytest.fixture(scope="module")
def server(two_versions, tmp_path_factory):
    models, first, _ = two_versions
    artifacts.set_current(models, first)
    port = _free_port()
    env = {**os.environ, "UXCX_MODELS_DIR": str(models), "UXCX_DATA_DIR": str(tmp_path_factory.mktemp("var")), "UXCX_API_KEYS": KEY,
           "UXCX_RATE_LIMIT": ""}
    env.pop("UXCX_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _ready_version(port) is None:
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(proc.communicate()[1].decode(errors="replace")[-2000:])
        time.sleep(0.3)
    yield port, proc
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]


def test_reloads_under_load_drop_no_request(two_versions, server):
    models, first, second = two_versions
    port, _ = server
    versions: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            status, body = _post(port, "/v1/classify", {"text": f"the app crashes when I pay, try {n}-{i}", "record": i % 2 == 0})
            if status == 200:
                versions.append(body["model_version"])
            else:
                failures.append(f"{status}: {body}")
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        for k in range(4):
            target = second if k % 2 == 0 else first
            artifacts.set_current(models, target)
            status, body = _post(port, "/v1/admin/reload", {}, key=KEY)
            assert status == 200 and body["model_version"] == target, body
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert len(versions) > 50 and set(versions) == {first, second}
    assert _ready_version(port) == first


def test_reload_needs_a_key_and_refuses_a_bad_version(two_versions, server):
    models, first, second = two_versions
    port, proc = server
    assert _post(port, "/v1/admin/reload", {})[0] == 401
    assert _post(port, "/v1/admin/reload", {}, key="nope")[0] == 403
    # A tampered copy of the tiny model: refused, the old model keeps serving.
    bad = "20300101-000001-tampered"
    shutil.copytree(models / second, models / bad)
    manifest = json.loads((models / bad / artifacts.MANIFEST).read_text())
    manifest["version"] = bad
    (models / bad / artifacts.MANIFEST).write_text(json.dumps(manifest))
    artifacts.set_current(models, bad)  # promoted while sound, damaged afterwards
    payload = models / bad / artifacts.PAYLOAD
    payload.write_bytes(payload.read_bytes()[:-5])
    status, body = _post(port, "/v1/admin/reload", {}, key=KEY)
    assert status == 409 and f"still serving {first}" in body["detail"] and "checksum" in body["detail"]
    assert _ready_version(port) == first
    # SIGHUP reloads too.
    artifacts.set_current(models, second)
    proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 60
    while _ready_version(port) != second:
        assert time.time() < deadline, "SIGHUP did not reload the model"
        time.sleep(0.2)
    status, body = _post(port, "/v1/classify", {"text": "parcel never came"})
    assert status == 200 and body["model_version"] == second

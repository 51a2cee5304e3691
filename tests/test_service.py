"""The HTTP service through the real app, and once through a real uvicorn process."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from fastapi.testclient import TestClient

from classifier import artifacts
from service.app import create_app
from service.settings import Settings
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def client(shipped):
    with TestClient(create_app(Settings(models_dir=ROOT / "models", max_batch=5, max_text_chars=300, max_body_bytes=4096))) as c:
        yield c


def test_classify_one(client, shipped):
    r = client.post("/v1/classify", json={"text": "the payment page freezes when I press pay", "id": "t-1"})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "t-1" and body["label"] == "ux" and body["model_version"] == shipped.version
    assert abs(sum(body["scores"].values()) - 1) < 1e-3


def test_classify_batch_keeps_order(client):
    items = [{"text": "charged twice for one order"}, {"text": "love this app"}, {"text": "app crashes on start"}]
    r = client.post("/v1/classify", json={"items": items})
    assert r.status_code == 200
    assert [x["label"] for x in r.json()["items"]] == ["cx", "other", "ux"]


@pytest.mark.parametrize(
    "payload,status,needle",
    [
        ({"text": ""}, 422, "at least 1 character"),
        ({"text": "   "}, 422, "blank"),
        ({"text": "x" * 301}, 422, "limit is 300"),
        ({"text": 5}, 422, "valid string"),
        ({"txt": "hello"}, 422, "text"),
        ({"text": "ok", "colour": "red"}, 422, "colour"),
        ({"items": []}, 422, "at least 1 item"),
        ({"items": [{"text": "a"}] * 6}, 422, "limit is 5"),
    ],
)
def test_bad_input_is_a_clear_4xx(client, payload, status, needle):
    r = client.post("/v1/classify", json=payload)
    assert r.status_code == status
    assert needle in json.dumps(r.json())


def test_malformed_json_and_big_body(client):
    r = client.post("/v1/classify", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/v1/classify", content=b"x" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit is 4096" in r.json()["detail"]


def test_health_and_docs(client, shipped):
    assert client.get("/healthz").json() == {"status": "ok", "model_version": None}
    assert client.get("/readyz").json() == {"status": "ready", "model_version": shipped.version}
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]


def test_refuses_to_start_with_a_tampered_model(tmp_path, shipped):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / shipped.version, models / shipped.version)
    artifacts.set_current(models, shipped.version)
    payload = models / shipped.version / artifacts.PAYLOAD
    payload.write_bytes(payload.read_bytes()[:-10])
    with pytest.raises(artifacts.ArtifactError, match="checksum mismatch"):
        with TestClient(create_app(Settings(models_dir=models))):
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_uvicorn_process_over_http(shipped):
    port = _free_port()
    env = {**os.environ, "UXCX_MODELS_DIR": str(ROOT / "models")}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert json.loads(r.read())["model_version"] == shipped.version
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/classify", data=json.dumps({"text": "I was charged twice"}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["label"] == "cx"
    finally:
        proc.terminate()
        proc.wait(timeout=30)

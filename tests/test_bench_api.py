"""The load test's peers: the bare endpoint and the constant-model service answer what the real one does."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from bench.api import bare_app, constant_model_app
from classifier.model import UXCXClassifier

ROOT = Path(__file__).resolve().parents[1]


def test_bare_endpoint_takes_both_shapes():
    with TestClient(bare_app()) as c:
        assert c.post("/v1/classify", json={"text": "x"}).json()["model_version"] == "bare"
        assert len(c.post("/v1/classify", json={"items": [{"text": "a"}, {"text": "b"}]}).json()["items"]) == 2
        assert c.post("/v1/classify", json={"txt": "x"}).status_code == 422


def test_constant_model_service_answers_one_prediction_and_still_records(tmp_path, monkeypatch, shipped):
    # The factory replaces the model's predict_batch in its own server process; put it back after the test.
    predict = UXCXClassifier.predict_batch
    monkeypatch.setattr(UXCXClassifier, "predict_batch", predict)
    monkeypatch.setenv("UXCX_MODELS_DIR", str(ROOT / "models"))
    monkeypatch.setenv("UXCX_DATA_DIR", str(tmp_path / "var"))
    with TestClient(constant_model_app()) as c:
        texts = ["the courier never came and support hung up on me", "love it", "checkout page spins forever"]
        answers = [c.post("/v1/classify", json={"text": t, "id": f"t{i}"}).json() for i, t in enumerate(texts)]
        # One answer for every text: the one the real model gives the constant's text (a crash when paying).
        real = predict(shipped.model, ["the app crashes when I pay"])[0]
        assert {a["label"] for a in answers} == {real.label} and {a["topic"] for a in answers} == {real.topic}
        assert predict(shipped.model, texts[:1])[0].label != real.label  # so the answers are not the model's own
        assert [a["id"] for a in answers] == ["t0", "t1", "t2"]
        assert c.get("/v1/stats").json()["count"] == 3  # recording is the real service's

"""The HTTP service through the real app and a real database (SQLite always, PostgreSQL when given),
and once through real uvicorn processes over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from classifier import artifacts
from service.app import create_app
from service.settings import Settings
from service.store import Record, Store, feedback, make_engine, metadata, predictions
from tests.conftest import ROOT

PG_URL = os.environ.get("UXCX_TEST_DATABASE_URL")
KEY = "test-key-123"
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="no PostgreSQL: set UXCX_TEST_DATABASE_URL=postgresql+psycopg://... (.ci/run does)"
        ),
    ),
]


def _fresh_url(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'uxcx.db'}"
    assert PG_URL
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    return PG_URL


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def client(shipped, backend, tmp_path_factory) -> Iterator[TestClient]:
    url = _fresh_url(backend, tmp_path_factory.mktemp("db"))
    settings = Settings(
        models_dir=ROOT / "models", database_url=url, max_batch=5, max_text_chars=300, max_body_bytes=4096,
        api_keys=[KEY, "second-key"], store_text=True, rate_limit="",
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _store(client: TestClient) -> Store:
    store: Store = client.app.state.runtime.store  # type: ignore[attr-defined]
    return store


def _rows(client: TestClient, item_id: str) -> list[Any]:
    with _store(client).engine.connect() as conn:
        return list(conn.execute(select(predictions).where(predictions.c.item_id == item_id)))


# ------------------------------------------------------------------ classify
def test_classify_one_is_answered_and_recorded(client, shipped):
    r = client.post("/v1/classify", json={"text": "the payment page freezes, mail me at ann@example.com", "id": "t-1", "source": "zendesk"})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "t-1" and body["label"] == "ux" and body["model_version"] == shipped.version
    assert abs(sum(body["scores"].values()) - 1) < 1e-3
    (row,) = _rows(client, "t-1")
    assert (row.label, row.topic, row.source, row.model_version) == ("ux", body["topic"], "zendesk", shipped.version)
    assert row.p_ux == pytest.approx(body["scores"]["ux"], abs=1e-3)
    assert len(row.text_sha256) == 64
    assert row.text == "the payment page freezes, mail me at [email]"  # stored masked (UXCX_STORE_TEXT on)


def test_classify_without_id_gets_one_and_opt_out_records_nothing(client):
    made = client.post("/v1/classify", json={"text": "parcel never arrived"}).json()
    assert len(made["id"]) == 32 and len(_rows(client, made["id"])) == 1
    before = client.app.state.metrics.recorded._value.get()  # type: ignore[attr-defined]
    r = client.post("/v1/classify", json={"items": [{"text": "parcel never arrived", "id": "no-rec"}], "record": False})
    assert r.status_code == 200 and r.json()["items"][0]["id"] == "no-rec"
    assert _rows(client, "no-rec") == []
    assert client.app.state.metrics.recorded._value.get() == before  # type: ignore[attr-defined]
    r = client.post("/v1/classify", json={"text": "app crashes", "record": False})
    assert r.json()["id"] is None


def test_batch_keeps_order_in_one_model_call(client):
    metrics = client.app.state.metrics  # type: ignore[attr-defined]
    calls, items_before = metrics.model_batch._sum.get(), len(metrics.model_batch._buckets)
    count_before = sum(b.get() for b in metrics.model_batch._buckets)
    items = [{"text": "charged twice for one order"}, {"text": "love this app"}, {"text": "app crashes on start"}]
    r = client.post("/v1/classify", json={"items": items})
    assert r.status_code == 200
    assert [x["label"] for x in r.json()["items"]] == ["cx", "other", "ux"]
    assert metrics.model_batch._sum.get() - calls == 3
    assert sum(b.get() for b in metrics.model_batch._buckets) - count_before == 1 and items_before
    lean = client.post("/v1/classify", json={"items": items, "evidence": False}).json()["items"]
    assert [x["label"] for x in lean] == ["cx", "other", "ux"] and all(x["evidence"] == [] for x in lean)
    assert [x["scores"] for x in lean] == [x["scores"] for x in r.json()["items"]]


@pytest.mark.parametrize(
    "payload,status,needle",
    [
        ({"text": ""}, 422, "at least 1 character"),
        ({"text": "   "}, 422, "blank"),
        ({"text": "x" * 301}, 422, "limit is 300"),
        ({"text": 5}, 422, "valid string"),
        ({"txt": "hello"}, 422, "text"),
        ({"text": "ok", "colour": "red"}, 422, "colour"),
        ({"text": "ok", "created_at": "last tuesday"}, 422, "created_at"),
        ({"items": []}, 422, "at least 1 item"),
        ({"items": [{"text": "a"}] * 6}, 422, "limit is 5"),
    ],
)
def test_bad_input_is_a_clear_4xx(client, payload, status, needle):
    r = client.post("/v1/classify", json=payload)
    assert r.status_code == status
    assert needle in json.dumps(r.json())


@pytest.mark.parametrize(
    "body,content_type,status,needle",
    [
        (b"{not json", "application/json", 422, "not valid JSON: Expecting property name enclosed in double quotes at character 1"),
        (b'{"text": "caf\xe9 app crashes"}', "application/json", 400, "send JSON encoded as UTF-8"),
        (b"the app crashes", "text/plain", 422, "Content-Type: application/json"),
        (b'[{"text": "a list, not an object"}]', "application/json", 422, "must be a JSON object"),
        (b'{"text": "one", "items": [{"text": "two"}]}', "application/json", 422, '"loc": ["body", "text"], "msg": "Extra inputs'),
        (b'{"items": {"text": "not a list"}}', "application/json", 422, '"loc": ["body", "items"], "msg": "Input should be a valid list'),
        (b'{"items": [{"text": "ok"}, {"text": 5}]}', "application/json", 422, '"loc": ["body", "items", 1, "text"]'),
    ],
)
def test_unreadable_bodies_say_what_to_fix(client, body, content_type, status, needle):
    r = client.post("/v1/classify", content=body, headers={"content-type": content_type})
    assert r.status_code == status and needle in json.dumps(r.json()), r.text


def test_malformed_json_and_big_bodies(client):
    r = client.post("/v1/classify", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/v1/classify", content=b"x" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit is 4096" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it streams
        for _ in range(5):
            yield b"x" * 1000

    r = client.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit is 4096" in r.json()["detail"]


# --------------------------------------------------------------------- stats
def _known_rows(store: Store, version: str) -> None:
    def rec(i: int, label: str, p: tuple[float, float, float], when: str, source: str, topic: str, model: str = version) -> Record:
        return Record(
            item_id=f"s-{i}", received_at=datetime(2030, 1, 1), created_at=datetime.fromisoformat(when), source=source,
            label=label, labels=[label], topic=topic, confidence=max(p), scores=dict(zip(("ux", "cx", "other"), p)),
            model_version=model, text_sha256="0" * 64, text=None,
        )

    store.add_predictions(
        [
            rec(1, "ux", (0.9, 0.05, 0.05), "2031-03-03T10:00:00", "app", "crash_error"),  # a Monday
            rec(2, "ux", (0.6, 0.3, 0.1), "2031-03-04T23:00:00", "app", "performance"),
            rec(3, "cx", (0.2, 0.7, 0.1), "2031-03-04T08:00:00", "mail", "delivery_fulfilment"),
            rec(4, "other", (0.1, 0.1, 0.8), "2031-03-10T09:00:00", "mail", "praise"),  # next Monday
            rec(5, "cx", (0.25, 0.5, 0.25), "2031-03-11T12:00:00", "app", "billing_refund", "old-model"),
        ]
    )


@pytest.fixture(scope="module")
def stats_client(client, shipped):
    _known_rows(_store(client), shipped.version)
    return client


WINDOW = {"from": "2031-01-01T00:00:00", "to": "2032-01-01T00:00:00"}


def test_stats_counts_and_expected_counts_are_exact(stats_client):
    s = stats_client.get("/v1/stats", params=WINDOW).json()
    assert s["count"] == 5
    assert s["labels"]["ux"] == {"count": 2, "expected": pytest.approx(2.05)}
    assert s["labels"]["cx"] == {"count": 2, "expected": pytest.approx(1.65)}
    assert s["labels"]["other"] == {"count": 1, "expected": pytest.approx(1.3)}


def test_stats_filters(stats_client, shipped):
    assert stats_client.get("/v1/stats", params={**WINDOW, "source": "mail"}).json()["count"] == 2
    assert stats_client.get("/v1/stats", params={**WINDOW, "model_version": "old-model"}).json()["count"] == 1
    assert stats_client.get("/v1/stats", params={"from": "2031-03-04T00:00:00", "to": "2031-03-10T09:00:00"}).json()["count"] == 2
    # An offset is honoured: 2031-03-04T09:00+01:00 is 08:00 UTC, the time of row 3.
    assert stats_client.get("/v1/stats", params={"from": "2031-03-04T09:00:00+01:00", "to": "2031-03-04T08:00:01Z"}).json()["count"] == 1


def test_stats_group_by_week_and_label(stats_client):
    s = stats_client.get("/v1/stats", params={**WINDOW, "group_by": "week,label"}).json()
    cells = {(g["week"], g["label"]): (g["count"], g["expected"]) for g in s["groups"]}
    assert cells[("2031-03-03", "ux")] == (2, pytest.approx(1.7))  # week of Monday 3 March: rows 1-3
    assert cells[("2031-03-03", "cx")] == (1, pytest.approx(1.05))
    assert cells[("2031-03-10", "cx")] == (1, pytest.approx(0.6))
    assert cells[("2031-03-10", "other")] == (1, pytest.approx(1.05))


def test_stats_group_by_day_source_and_topic(stats_client):
    days = stats_client.get("/v1/stats", params={**WINDOW, "group_by": ["day", "source"]}).json()["groups"]
    assert {(g["day"], g["source"]): g["count"] for g in days} == {
        ("2031-03-03", "app"): 1, ("2031-03-04", "app"): 1, ("2031-03-04", "mail"): 1,
        ("2031-03-10", "mail"): 1, ("2031-03-11", "app"): 1,
    }
    topics = stats_client.get("/v1/stats", params={**WINDOW, "group_by": "topic"}).json()["groups"]
    praise = next(g for g in topics if g["topic"] == "praise")
    assert praise["count"] == 1 and praise["labels"]["other"] == {"count": 1, "expected": pytest.approx(0.8)}


@pytest.mark.parametrize(
    "params,needle",
    [({"group_by": "colour"}, "unknown"), ({"group_by": "day,week"}, "not both"), ({"from": "2031-02-01", "to": "2031-01-01"}, "before"),
     ({"from": "yesterday"}, "from")],
)
def test_stats_bad_query_is_422(stats_client, params, needle):
    r = stats_client.get("/v1/stats", params=params)
    assert r.status_code == 422 and needle in json.dumps(r.json())


# ------------------------------------------------------------------ feedback
CORRECTION = {"id": "fb-1", "label": "cx", "labels": ["cx", "ux"], "topic": "billing_refund", "note": "double charge"}


@pytest.fixture(scope="module")
def fb_client(client):
    client.post("/v1/classify", json={"text": "the app charged my card twice, call me on +44 20 7946 0958", "id": "fb-1"})
    client.post("/v1/classify", json={"text": "no text kept for this one", "id": "fb-2", "record": True})
    return client


@pytest.mark.parametrize(
    "headers,status",
    [({}, 401), ({"X-API-Key": "wrong"}, 403), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": "Basic abc"}, 401)],
)
def test_feedback_needs_a_valid_key(fb_client, headers, status):
    r = fb_client.post("/v1/feedback", json=CORRECTION, headers=headers)
    assert r.status_code == status
    assert "wrong" not in r.text and KEY not in r.text
    assert fb_client.get("/v1/feedback/export", headers=headers).status_code == status


def test_feedback_is_stored_beside_the_prediction(fb_client):
    r = fb_client.post("/v1/feedback", json=CORRECTION, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 201
    out = r.json()
    assert out["id"] == "fb-1" and out["predicted_label"] in ("ux", "cx")
    (pred,) = _rows(fb_client, "fb-1")
    assert pred.label == out["predicted_label"]  # the prediction is not overwritten
    with _store(fb_client).engine.connect() as conn:
        (fb,) = conn.execute(select(feedback).where(feedback.c.item_id == "fb-1"))
    assert (fb.prediction_pk, fb.label, fb.labels, fb.topic, fb.note) == (pred.pk, "cx", "cx,ux", "billing_refund", "double charge")


@pytest.mark.parametrize(
    "body,status,needle",
    [
        ({**CORRECTION, "id": "never-seen"}, 404, "never-seen"),
        ({**CORRECTION, "topic": "praise"}, 422, "belongs to 'other'"),
        ({**CORRECTION, "labels": ["other", "cx"]}, 422, "'other' cannot stand"),
        ({**CORRECTION, "label": "bug"}, 422, "Input should be"),
        ({**CORRECTION, "text": "some other text"}, 422, "not the text"),
        ({**CORRECTION, "extra": 1}, 422, "extra"),
    ],
)
def test_feedback_errors_say_what_to_fix(fb_client, body, status, needle):
    r = fb_client.post("/v1/feedback", json=body, headers={"X-API-Key": KEY})
    assert r.status_code == status and needle in json.dumps(r.json())


def test_export_streams_corrections_in_training_format(fb_client):
    fb_client.post("/v1/feedback", json={"id": "fb-2", "label": "other", "topic": "none"}, headers={"X-API-Key": KEY})
    r = fb_client.get("/v1/feedback/export", headers={"X-API-Key": KEY})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in r.text.splitlines()]
    mine = [x for x in rows if x["id"] == "fb-1"]
    assert mine and mine[-1]["text"] == "the app charged my card twice, call me on [phone]"
    assert (mine[-1]["label"], mine[-1]["labels"], mine[-1]["topic"]) == ("cx", ["cx", "ux"], "billing_refund")
    # fb-2's text is stored too (store_text on), so every correction is exported.
    assert r.headers["x-uxcx-without-text"] == "0" and any(x["id"] == "fb-2" for x in rows)


# ---------------------------------------------------------- health, metrics
def test_health_metrics_and_docs(client, shipped):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"] == shipped.version and ready.json()["database"] == "ok"
    text = client.get("/metrics").text
    assert 'uxcx_requests_total{method="POST",route="/v1/classify",status="200"}' in text
    assert 'uxcx_predictions_total{label="ux"}' in text
    assert f'uxcx_model_info{{version="{shipped.version}"}} 1.0' in text
    assert "uxcx_request_items_bucket" in text and "uxcx_request_duration_seconds_bucket" in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/classify", "/v1/stats", "/v1/feedback", "/v1/feedback/export", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    assert client.get("/docs").status_code == 200


# ------------------------------------------------------------ settings-made
def _app(tmp_path: Path, **kw: Any) -> TestClient:
    return TestClient(create_app(Settings(models_dir=ROOT / "models", data_dir=tmp_path / "var", **kw)))


def test_default_database_is_a_sqlite_file_in_wal_mode(tmp_path, shipped):
    with _app(tmp_path) as c:
        c.post("/v1/classify", json={"text": "checkout crashes", "id": "d-1"})
        with _store(c).engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
            row = conn.execute(select(predictions.c.text)).one()
    assert (tmp_path / "var" / "uxcx.db").is_file()
    assert row.text is None  # text is not stored unless UXCX_STORE_TEXT is on


def test_keys_rate_limit_and_cors(tmp_path, shipped):
    with _app(tmp_path, api_keys=[KEY], classify_needs_key=True, stats_needs_key=True, rate_limit="3/minute") as c:
        assert c.post("/v1/classify", json={"text": "hello"}).status_code == 401
        assert c.get("/v1/stats").status_code == 401
        assert c.post("/v1/classify", json={"text": "hello"}, headers={"X-API-Key": KEY}).status_code == 200
        r = c.post("/v1/classify", json={"text": "hello"}, headers={"X-API-Key": KEY})
        r = c.post("/v1/classify", json={"text": "hello"}, headers={"X-API-Key": KEY})
        r = c.post("/v1/classify", json={"text": "hello"}, headers={"X-API-Key": KEY})
        assert r.status_code == 429 and "3 per 1 minute" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
        pre = c.options("/v1/classify", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers
    with _app(tmp_path, cors_origins=["https://app.example"]) as c:
        pre = c.options("/v1/classify", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
    with _app(tmp_path) as c:  # no keys configured: write endpoints stay shut
        r = c.post("/v1/feedback", json=CORRECTION, headers={"X-API-Key": "anything"})
        assert r.status_code == 403 and "UXCX_API_KEYS" in r.json()["detail"]


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("UXCX_API_KEYS", "key-alpha, key-beta ,,key-gamma")
    monkeypatch.setenv("UXCX_CORS_ORIGINS", "https://x.example")
    s = Settings()
    assert [k.get_secret_value() for k in s.api_keys] == ["key-alpha", "key-beta", "key-gamma"] and s.cors_origins == ["https://x.example"]
    assert "key-" not in repr(s)  # keys never show up in logs or reprs
    monkeypatch.setenv("UXCX_RATE_LIMIT", "lots")
    with pytest.raises(ValueError, match="not a rate"):
        Settings()


def test_refuses_to_start_with_a_tampered_model(tmp_path, shipped):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / shipped.version, models / shipped.version)
    artifacts.set_current(models, shipped.version)
    payload = models / shipped.version / artifacts.PAYLOAD
    payload.write_bytes(payload.read_bytes()[:-10])
    with pytest.raises(artifacts.ArtifactError, match="checksum mismatch"):
        with TestClient(create_app(Settings(models_dir=models, data_dir=tmp_path / "var"))):
            pass


# ----------------------------------------------------------- real processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(port: int, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json", **({"X-API-Key": key} if key else {})}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read().decode()
            return r.status, json.loads(raw) if r.headers.get_content_type() == "application/json" else raw
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_real_uvicorn_workers_over_http(shipped, tmp_path):
    port = _free_port()
    env = {**os.environ, "UXCX_MODELS_DIR": str(ROOT / "models"), "UXCX_DATA_DIR": str(tmp_path / "var"), "UXCX_API_KEYS": KEY}
    if PG_URL:
        env["UXCX_DATABASE_URL"] = _fresh_url("postgresql", tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                status, ready = _call(port, "/readyz")
                assert status == 200 and ready["model_version"] == shipped.version
                break
            except (OSError, json.JSONDecodeError):
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        for i in range(6):
            status, out = _call(port, "/v1/classify", {"text": "I was charged twice", "id": f"w-{i}", "source": "web"})
            assert status == 200 and out["label"] == "cx"
        assert _call(port, "/v1/feedback", {"id": "w-0", "label": "cx", "topic": "billing_refund"})[0] == 401
        assert _call(port, "/v1/feedback", {"id": "w-0", "label": "cx", "topic": "billing_refund"}, key=KEY)[0] == 201
        status, stats = _call(port, "/v1/stats?source=web&group_by=label")
        assert status == 200 and stats["count"] == 6 and stats["labels"]["cx"]["count"] == 6
        status, text = _call(port, "/metrics")
        # Both workers' counters are summed (prometheus multiprocess mode).
        assert 'uxcx_predictions_total{label="cx"} 6.0' in text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]


# ---------------------------------------------------------- CLI on the store
def test_review_queue_lists_the_least_certain_uncorrected_predictions(backend, tmp_path, shipped):
    from service.store import Correction, migrate

    url = _fresh_url(backend, tmp_path)
    engine = make_engine(url)
    migrate(engine)
    store = Store(engine)
    _known_rows(store, shipped.version)
    store.add_correction(Correction("s-5", "cx", ["cx"], "billing_refund"))
    engine.dispose()
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "review-queue", "--limit", "3", "--database-url", url],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    # Margins: s-1 0.85, s-2 0.30, s-3 0.50, s-4 0.70; s-5 (0.25) is already corrected.
    assert [r["id"] for r in rows] == ["s-2", "s-3", "s-4"]
    assert rows[0]["margin"] == pytest.approx(0.3) and rows[0]["label"] == "ux" and rows[0]["topic"] == "performance"
    assert "3 predictions to review" in out.stderr and "without stored text" in out.stderr


def test_serve_refuses_bad_settings_plainly(tmp_path):
    env = {**os.environ, "UXCX_MODELS_DIR": str(ROOT / "models"), "UXCX_MAX_BATCH": "lots"}
    out = subprocess.run([sys.executable, "-m", "cli.main", "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "UXCX_MAX_BATCH" in out.stderr and "Traceback" not in out.stderr


def test_made_up_ids_are_unique_and_sort_by_time():
    from service.runtime import new_id

    first = [new_id() for _ in range(1000)]
    time.sleep(0.002)
    later = new_id()
    assert len(set(first)) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    assert max(i[:12] for i in first) < later[:12]

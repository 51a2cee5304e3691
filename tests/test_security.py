"""Security: keys guard every write and admin endpoint and never leak; no endpoint takes a file path;
stored text is masked; error answers carry no internals."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.settings import Settings
from service.store import predictions
from tests.conftest import ROOT
from tests.test_service import _store

SECRET = "sk-live-7f3a9c1e5b2d4f60"  # a key that must never show up in an answer or a log line
WRONG = "sk-wrong-0b1c2d3e4f5a6b7c"

# Every endpoint that writes or administers: (method, path, json body).
GUARDED = [
    ("POST", "/v1/feedback", {"id": "x-1", "label": "cx", "topic": "billing_refund"}),
    ("GET", "/v1/feedback/export", None),
    ("POST", "/v1/admin/reload", None),
]


@pytest.fixture(scope="module")
def app_client(shipped, tmp_path_factory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("sec")
    settings = Settings(models_dir=ROOT / "models", data_dir=folder / "var", api_keys=[SECRET], rate_limit="", store_text=True)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize("method,path,body", GUARDED)
@pytest.mark.parametrize(
    "headers,status",
    [
        ({}, 401),
        ({"X-API-Key": WRONG}, 403),
        ({"Authorization": f"Bearer {WRONG}"}, 403),
        ({"Authorization": f"Basic {WRONG}"}, 401),  # not a scheme we take: as if no key was sent
        ({"X-API-Key": SECRET[:-1]}, 403),  # a prefix of the right key is still wrong
        ({"X-API-Key": ""}, 401),
    ],
)
def test_write_and_admin_endpoints_refuse_missing_or_wrong_keys(app_client, caplog, method, path, body, headers, status):
    with caplog.at_level(logging.DEBUG):
        r = app_client.request(method, path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert WRONG not in r.text and SECRET not in r.text and SECRET[:-1] not in r.text  # never echoed
    assert "key" in r.json()["detail"].lower()
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert WRONG not in logged and SECRET[:-1] not in logged


def test_the_right_key_opens_them_and_is_never_logged(app_client, caplog):
    app_client.post("/v1/classify", json={"text": "the app crashed at checkout", "id": "x-1"})
    with caplog.at_level(logging.DEBUG):
        for method, path, body in GUARDED:
            r = app_client.request(method, path, json=body, headers={"Authorization": f"Bearer {SECRET}"})
            assert r.status_code in (200, 201), (path, r.text)
            assert SECRET not in r.text
    assert SECRET not in "\n".join(rec.getMessage() for rec in caplog.records)


_PATHLIKE = re.compile(r"path|file|dir|folder|url|uri|location", re.I)


def _names(schema: Any, spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every property name (with its schema) reachable from a request schema."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield from _names(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], spec)
            return
        for name, sub in schema.get("properties", {}).items():
            yield name, sub
            yield from _names(sub, spec)
        for key in ("items", "anyOf", "oneOf", "allOf"):
            value = schema.get(key)
            for sub in value if isinstance(value, list) else [value] if value else []:
                yield from _names(sub, spec)


def test_no_endpoint_takes_a_file_path(app_client):
    """Nothing in any request names a file: the model comes only from the configured models folder."""
    spec = app_client.get("/openapi.json").json()
    seen = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            names = [(p["name"], p.get("schema", {})) for p in op.get("parameters", [])]
            for media in op.get("requestBody", {}).get("content", {}).values():
                names += list(_names(media["schema"], spec))
            seen += [n for n, _ in names]
            bad = [n for n, s in names if _PATHLIKE.search(n) or (isinstance(s, dict) and s.get("format") in ("path", "uri", "binary"))]
            assert not bad, f"{method.upper()} {path} takes {bad}"
    assert {"text", "id", "source", "label", "topic", "from", "group_by"} <= set(seen)  # the walk does reach the inputs
    # The reload endpoint ignores whatever it is sent: it loads models/current, and only after verification.
    r = app_client.post(
        "/v1/admin/reload", json={"path": "/etc/passwd", "version": "../../tmp/evil"},
        params={"models_dir": "/tmp"}, headers={"X-API-Key": SECRET},
    )
    assert r.status_code == 200 and r.json()["model_version"] == app_client.get("/readyz").json()["model_version"]


def test_stored_text_is_masked_and_off_by_default(app_client, shipped, tmp_path):
    text = "card 4111 1111 1111 1111 charged twice, mail jo.bloggs@example.com or call +1 415 555 0134, see https://x.example/o/9"
    assert app_client.post("/v1/classify", json={"text": text, "id": "pii-1"}).status_code == 200
    with _store(app_client).engine.connect() as conn:
        stored = conn.execute(select(predictions.c.text).where(predictions.c.item_id == "pii-1")).scalar_one()
    for secret in ("4111 1111 1111 1111", "jo.bloggs@example.com", "555 0134", "https://x.example"):
        assert secret not in stored
    assert "charged twice" in stored
    # Without UXCX_STORE_TEXT no text is stored at all, only its hash.
    assert Settings().store_text is False
    with TestClient(create_app(Settings(models_dir=ROOT / "models", data_dir=tmp_path / "var"))) as c:
        c.post("/v1/classify", json={"text": text, "id": "pii-2"})
        with _store(c).engine.connect() as conn:
            row = conn.execute(select(predictions.c.text, predictions.c.text_sha256)).one()
    assert row.text is None and len(row.text_sha256) == 64


def test_error_answers_carry_no_internals(shipped, tmp_path: Path):
    settings = Settings(models_dir=ROOT / "models", data_dir=tmp_path / "var", api_keys=[SECRET], rate_limit="")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        _store(c).engine.dispose()
        (tmp_path / "var" / "uxcx.db").write_bytes(b"this is not a database file" * 200)  # corrupted under the service
        for name in ("uxcx.db-wal", "uxcx.db-shm"):
            (tmp_path / "var" / name).unlink(missing_ok=True)
        answers = [
            c.get("/v1/stats"),
            c.post("/v1/feedback", json={"id": "nope", "label": "ux", "topic": "crash_error"}, headers={"X-API-Key": SECRET}),
            c.post("/v1/classify", content=b'{"text": ', headers={"content-type": "application/json"}),
            c.post("/v1/classify", json={"text": ["a", "list"]}),
            c.get("/v1/stats", params={"group_by": "colour"}),
            c.get("/readyz"),
        ]
        assert [a.status_code for a in answers] == [503, 503, 422, 422, 422, 503]
        for a in answers:
            assert a.headers["content-type"].startswith("application/json")
            for leak in ("Traceback", 'File "', "sqlalchemy", "sqlite3", str(tmp_path), "site-packages"):
                assert leak not in a.text, (a.request.url, a.text)
        # Classify still answers while the database is broken.
        assert c.post("/v1/classify", json={"text": "refund never came"}).status_code == 200

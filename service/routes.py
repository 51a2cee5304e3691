"""Routes: parse with a schema, call one domain function, return a schema."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import StreamingResponse

from classifier import artifacts
from classifier.labels import validate_annotation
from service.deps import ClassifyDep, MetricsDep, RuntimeDep, SettingsDep, StatsGuard, StoreDep, WriteGuard
from service.runtime import Answer, Job
from service.schemas import (  # noqa: F401 - BatchOut and PredictionOut document the classify answer
    BatchOut,
    ClassifyBatch,
    ClassifyItem,
    ErrorOut,
    FeedbackIn,
    FeedbackOut,
    Health,
    PredictionOut,
    ReloadOut,
    StatsOut,
)
from service.store import GROUP_KEYS, Correction, Mismatch, NotFound, dumps_line, to_utc


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


# Every error this service answers has the same shape; FastAPI's default 422 schema (a list only)
# would not match the plain-message 422s (limits, the guide's rules).
router = APIRouter(responses=_errors(400, 413, 422, 429, 500, 503))


def _out(answer: Answer) -> dict[str, Any]:
    return {"id": answer.id, **answer.prediction.as_dict(), "model_version": answer.model_version}


def _json(obj: Any) -> Response:
    # The answer is built from our own types, so FastAPI's re-validation against the response
    # model (documented in the schema all the same) is skipped: it cost as much as the model.
    return Response(json.dumps(obj, ensure_ascii=False, allow_nan=False), media_type="application/json")


def _jobs(items: list[ClassifyItem], record: bool, evidence: bool, max_batch: int, max_chars: int) -> list[Job]:
    if len(items) > max_batch:
        raise HTTPException(422, f"batch has {len(items)} items; the limit is {max_batch} (UXCX_MAX_BATCH)")
    jobs = []
    for i, item in enumerate(items):
        if not item.text.strip():
            raise HTTPException(422, f"item {i}: 'text' is blank; send the feedback text")
        if len(item.text) > max_chars:
            raise HTTPException(
                422, f"item {i}: 'text' has {len(item.text)} characters; the limit is {max_chars} (UXCX_MAX_TEXT_CHARS)"
            )
        jobs.append(Job(item.text, item.id, item.source, item.created_at, record and item.record, evidence and item.evidence))
    return jobs


@router.post(
    "/v1/classify",
    response_model=PredictionOut | BatchOut,
    tags=["classify"],
    # The key is read in ClassifyDep; say so in the schema (optional unless UXCX_CLASSIFY_NEEDS_KEY).
    openapi_extra={"security": [{}, {"HTTPBearer": []}, {"APIKeyHeader": []}]},
    responses=_errors(401, 403),
)
async def classify(body: ClassifyItem | ClassifyBatch, ctx: ClassifyDep) -> Response:
    """Classify one text (`{"text": ...}`) or a batch (`{"items": [...]}`) in one vectorised call; record each."""
    runtime, settings = ctx
    if isinstance(body, ClassifyBatch):
        jobs = _jobs(body.items, body.record and settings.record, body.evidence, settings.max_batch, settings.max_text_chars)
        return _json({"items": [_out(a) for a in await runtime.classify(jobs)]})
    jobs = _jobs([body], settings.record, True, settings.max_batch, settings.max_text_chars)
    return _json(_out((await runtime.classify(jobs))[0]))


def _group_by(values: list[str]) -> list[str]:
    keys = [k.strip() for v in values for k in v.split(",") if k.strip()]
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        raise HTTPException(422, f"group_by {unknown} unknown; choose from {', '.join(GROUP_KEYS)}")
    if "day" in keys and "week" in keys:
        raise HTTPException(422, "group_by takes 'day' or 'week', not both")
    return keys


@router.get(
    "/v1/stats", response_model=StatsOut, response_model_exclude_none=True, tags=["stats"], dependencies=[StatsGuard],
    responses=_errors(401, 403),
)
def stats(
    store: StoreDep,
    since: Annotated[datetime | None, Query(alias="from", description="from this time on (inclusive, ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="before this time (exclusive, ISO 8601)")] = None,
    source: Annotated[str | None, Query(max_length=100)] = None,
    model_version: Annotated[str | None, Query(max_length=64)] = None,
    group_by: Annotated[list[str], Query(description=f"any of {', '.join(GROUP_KEYS)}; repeat or comma-separate")] = [],  # noqa: B006 - FastAPI copies defaults
) -> StatsOut:
    """Counts and expected counts (sums of probabilities) of labels over recorded predictions.

    Times are when the feedback was written (`created_at`), or when it was received when that is unknown.
    """
    since_utc, until_utc = to_utc(since), to_utc(until)
    if since_utc is not None and until_utc is not None and since_utc >= until_utc:
        raise HTTPException(422, "'from' must be before 'to'")
    return StatsOut.model_validate(store.stats(_group_by(group_by), since_utc, until_utc, source, model_version))


@router.post(
    "/v1/feedback", response_model=FeedbackOut, status_code=201, tags=["feedback"], dependencies=[WriteGuard],
    responses=_errors(401, 403, 404),
)
def add_feedback(body: FeedbackIn, store: StoreDep) -> FeedbackOut:
    """Store a correction beside the recorded prediction with this id (the prediction itself is kept)."""
    label, topic = body.label.value, str(body.topic.value)
    labels = [x.value for x in body.labels] if body.labels is not None else [label]
    problems = validate_annotation(label, labels, topic)
    if problems:
        raise HTTPException(422, "; ".join(problems))
    try:
        stored = store.add_correction(Correction(body.id, label, labels, topic, body.note, body.text))
    except NotFound as exc:
        raise HTTPException(404, f"{exc}; classify it first (with recording on)") from exc
    except Mismatch as exc:
        raise HTTPException(422, str(exc)) from exc
    return FeedbackOut.model_validate(stored)


@router.get(
    "/v1/feedback/export",
    tags=["feedback"],
    dependencies=[WriteGuard],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "one correction per line, training format"},
        **_errors(401, 403),
    },
)
def export_feedback(store: StoreDep) -> StreamingResponse:
    """Stream corrections as JSONL in the training format (id, text, label, labels, topic, ...).

    Corrections whose text is unknown (not sent with the correction, and UXCX_STORE_TEXT off) can't be
    trained on: they are left out and counted in the `X-Uxcx-Without-Text` header.
    """
    skipped = store.count_corrections_without_text()
    lines = (dumps_line(row) for row in store.corrections(with_text_only=True))
    return StreamingResponse(lines, media_type="application/x-ndjson", headers={"X-Uxcx-Without-Text": str(skipped)})


@router.post("/v1/admin/reload", response_model=ReloadOut, tags=["admin"], dependencies=[WriteGuard], responses=_errors(401, 403, 409))
async def reload_model(runtime: RuntimeDep, settings: SettingsDep) -> ReloadOut:
    """Load `models/current` again and swap it in without downtime (this worker; with several
    workers, send SIGHUP to the server's parent process instead)."""
    try:
        previous, current = await runtime.reload(settings.models_dir)
    except artifacts.ArtifactError as exc:
        raise HTTPException(409, f"reload refused, still serving {runtime.loaded.version}: {exc}") from exc
    return ReloadOut(previous_version=previous, model_version=current)


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["health"], responses={503: {"model": Health}})
def readyz(runtime: RuntimeDep, response: Response) -> Health:
    """The model is loaded, the database answers and no prediction is waiting to be recorded; 503 otherwise."""
    version = runtime.loaded.version
    try:
        runtime.store.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database means not ready
        response.status_code = 503
        return Health(status="unavailable", model_version=version, database="unavailable", detail=type(exc).__name__)
    # Reads can work while writes fail (a locked SQLite file): try to write what is waiting.
    if runtime.recorder.pending and not runtime.recorder.flush(force=True):
        response.status_code = 503
        detail = f"{runtime.recorder.pending} predictions wait to be recorded ({runtime.recorder.last_error or 'retrying'})"
        return Health(status="unavailable", model_version=version, database="unavailable", detail=detail)
    return Health(status="ready", model_version=version, database="ok")


@router.get("/metrics", tags=["health"], response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(m: MetricsDep) -> Response:
    """Prometheus metrics: requests and latency by route and status, predictions by label, model version, batch sizes."""
    return Response(m.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

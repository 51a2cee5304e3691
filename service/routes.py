"""Routes: parse with a schema, call one domain function, return a schema."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from classifier.model import Prediction
from service.deps import ClassifierDep, SettingsDep
from service.schemas import BatchOut, ClassifyBatch, ClassifyItem, Health, PredictionOut

router = APIRouter()


def _out(item: ClassifyItem, pred: Prediction, version: str) -> PredictionOut:
    return PredictionOut.model_validate({"id": item.id, **pred.as_dict(), "model_version": version})


def _check_limits(items: list[ClassifyItem], max_batch: int, max_chars: int) -> None:
    if len(items) > max_batch:
        raise HTTPException(422, f"batch has {len(items)} items; the limit is {max_batch} (UXCX_MAX_BATCH)")
    for i, item in enumerate(items):
        if not item.text.strip():
            raise HTTPException(422, f"item {i}: 'text' is blank; send the feedback text")
        if len(item.text) > max_chars:
            raise HTTPException(
                422, f"item {i}: 'text' has {len(item.text)} characters; the limit is {max_chars} (UXCX_MAX_TEXT_CHARS)"
            )


@router.post("/v1/classify", response_model=PredictionOut | BatchOut, tags=["classify"])
def classify(body: ClassifyItem | ClassifyBatch, model: ClassifierDep, settings: SettingsDep) -> PredictionOut | BatchOut:
    """Classify one text (`{"text": ...}`) or a batch (`{"items": [...]}`) in one vectorised call."""
    items = body.items if isinstance(body, ClassifyBatch) else [body]
    _check_limits(items, settings.max_batch, settings.max_text_chars)
    preds = model.model.predict_batch([it.text for it in items])
    outs = [_out(it, p, model.version) for it, p in zip(items, preds)]
    return BatchOut(items=outs) if isinstance(body, ClassifyBatch) else outs[0]


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["health"])
def readyz(model: ClassifierDep) -> Health:
    """The model is loaded and answering."""
    model.model.predict_batch(["ready?"], evidence=False)
    return Health(status="ready", model_version=model.version)

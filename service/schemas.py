"""API schemas: pydantic models at the edge (the domain uses frozen dataclasses)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ClassifyItem(BaseModel):
    """One text to classify."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="the feedback text")
    id: str | None = Field(default=None, max_length=200, description="your id for the text; echoed back")
    source: str | None = Field(default=None, max_length=100, description="where the text comes from")
    created_at: datetime | None = Field(default=None, description="when the text was written")


class ClassifyBatch(BaseModel):
    """Several texts, classified in one vectorised call."""

    model_config = ConfigDict(extra="forbid")

    items: list[ClassifyItem] = Field(min_length=1)


class Scores(BaseModel):
    """Calibrated probabilities of the three labels; they sum to 1."""

    ux: float
    cx: float
    other: float


class PredictionOut(BaseModel):
    """The answer for one text: the same fields as `uxcx classify`."""

    id: str | None
    label: str
    labels: list[str]
    topic: str
    confidence: float
    scores: Scores
    evidence: list[str]
    model_version: str


class BatchOut(BaseModel):
    """Answers for a batch, in request order."""

    items: list[PredictionOut]


class Health(BaseModel):
    """Liveness and readiness."""

    status: str
    model_version: str | None = None

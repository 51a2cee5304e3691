"""API schemas: pydantic models at the edge (the domain uses frozen dataclasses and named tuples)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from classifier.labels import TOPICS, Label

#: The guide's topics as an enum, so the schema lists them and bad ones are refused at the edge.
Topic = StrEnum("Topic", {t: t for t in TOPICS})  # type: ignore[misc]


class ClassifyItem(BaseModel):
    """One text to classify."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="the feedback text")
    id: str | None = Field(default=None, min_length=1, max_length=200, description="your id for the text; one is made up when absent")
    source: str | None = Field(default=None, max_length=100, description="where the text comes from, e.g. 'zendesk'")
    created_at: datetime | None = Field(default=None, description="when the text was written (ISO 8601; UTC when no offset)")
    record: bool = Field(default=True, strict=True, description="false: answer without recording the prediction")
    evidence: bool = Field(default=True, strict=True, description="false: leave `evidence` empty")


class ClassifyBatch(BaseModel):
    """Several texts, classified in one vectorised call."""

    model_config = ConfigDict(extra="forbid")

    items: list[ClassifyItem] = Field(min_length=1, description="up to UXCX_MAX_BATCH items")
    record: bool = Field(default=True, strict=True, description="false: answer without recording any of the predictions")
    evidence: bool = Field(default=True, strict=True, description="false: leave `evidence` empty for every item")


class Scores(BaseModel):
    """Calibrated probabilities of the three labels; they sum to 1."""

    ux: float
    cx: float
    other: float


class PredictionOut(BaseModel):
    """The answer for one text: the same fields as `uxcx classify`."""

    id: str | None = Field(description="your id, or the one made up for a recorded item; null when not recorded and none given")
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


class FeedbackIn(BaseModel):
    """A person's correction of a recorded prediction."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="the id of the recorded prediction")
    label: Label = Field(description="the true primary label")
    labels: list[Label] | None = Field(default=None, min_length=1, max_length=2, description="all labels that apply; default [label]")
    topic: Topic = Field(description="the true topic, one of the guide's")
    note: str | None = Field(default=None, max_length=2000, description="free text for the reviewer")
    text: str | None = Field(
        default=None, min_length=1, description="the text that was classified, so retraining can use the correction"
    )


class FeedbackOut(BaseModel):
    """Where the correction was stored."""

    feedback_id: int
    id: str
    predicted_label: str
    model_version: str


class LabelCount(BaseModel):
    """How many texts got the label, and the sum of its probability over the same texts."""

    count: int
    expected: float


class StatsGroup(BaseModel):
    """One group: its keys, then either one label's count (group_by label) or all three."""

    topic: str | None = None
    source: str | None = None
    model_version: str | None = None
    day: str | None = None
    week: str | None = None
    label: str | None = None
    count: int
    expected: float | None = None
    labels: dict[str, LabelCount] | None = None


class StatsOut(BaseModel):
    """Aggregate counts over recorded predictions."""

    count: int = Field(description="recorded predictions matching the filters")
    labels: dict[str, LabelCount] = Field(description="per label: predicted count and expected count (sum of probabilities)")
    group_by: list[str]
    groups: list[StatsGroup]


class Health(BaseModel):
    """Liveness and readiness."""

    status: str
    model_version: str | None = None
    database: str | None = None
    detail: str | None = None


class ReloadOut(BaseModel):
    """The model served before and after a reload."""

    previous_version: str
    model_version: str


class ErrorOut(BaseModel):
    """Every error answer: `detail` says what to fix (a list of field errors for malformed requests)."""

    detail: str | list[dict[str, Any]]

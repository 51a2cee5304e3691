"""Storage of predictions and corrections (SQLAlchemy 2 Core): SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ColumnElement

from classifier.labels import LABELS

metadata = MetaData()

# The id column is BIGINT on PostgreSQL and INTEGER (the rowid) on SQLite.
_PK = BigInteger().with_variant(Integer(), "sqlite")

predictions = Table(
    "predictions",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("item_id", String(200), nullable=False),
    Column("received_at", DateTime(), nullable=False),
    Column("created_at", DateTime(), nullable=True),
    # When the feedback happened: created_at when given, else received_at. Stats filter and bucket on it.
    Column("occurred_at", DateTime(), nullable=False),
    Column("source", String(100), nullable=True),
    Column("label", String(8), nullable=False),
    Column("labels", String(16), nullable=False),
    Column("topic", String(40), nullable=False),
    Column("confidence", Float(), nullable=False),
    Column("p_ux", Float(), nullable=False),
    Column("p_cx", Float(), nullable=False),
    Column("p_other", Float(), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("text", Text(), nullable=True),
    Index("ix_predictions_item_id", "item_id"),
    Index("ix_predictions_occurred_at", "occurred_at"),
    Index("ix_predictions_source", "source"),
    Index("ix_predictions_model_version", "model_version"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("prediction_pk", _PK, ForeignKey("predictions.pk"), nullable=False),
    Column("item_id", String(200), nullable=False),
    Column("received_at", DateTime(), nullable=False),
    Column("label", String(8), nullable=False),
    Column("labels", String(16), nullable=False),
    Column("topic", String(40), nullable=False),
    Column("note", Text(), nullable=True),
    Column("text", Text(), nullable=True),
    Index("ix_feedback_item_id", "item_id"),
)

GROUP_KEYS = ("label", "topic", "source", "model_version", "day", "week")


class NotFound(LookupError):
    """No recorded prediction has this id."""


class Mismatch(ValueError):
    """A correction's text is not the text of the prediction it names."""


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (what the database columns hold)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc(value: datetime | None) -> datetime | None:
    """A datetime as naive UTC; naive inputs are taken to be UTC already."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def text_hash(text: str) -> str:
    """The sha256 of a text, hex: stored in place of the text unless text storage is on."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def make_engine(url: str) -> Engine:
    """An engine for the URL; a SQLite file (and its folder) is created, in WAL mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # How long a write waits for a lock held by another process (the URL may say ?timeout=N).
        engine = create_engine(url, connect_args={} if "timeout" in parsed.query else {"timeout": 5})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-16384")  # 16 MB of pages: the id index stays in memory longer
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Record(NamedTuple):
    """One classified item to store (a named tuple: a frozen dataclass cost microseconds per row to build)."""

    item_id: str
    received_at: datetime
    created_at: datetime | None
    source: str | None
    label: str
    labels: Sequence[str]
    topic: str
    confidence: float
    scores: dict[str, float]
    model_version: str
    text_sha256: str
    text: str | None


@dataclass(frozen=True)
class Correction:
    """A person's answer for a recorded prediction."""

    item_id: str
    label: str
    labels: Sequence[str]
    topic: str
    note: str | None = None
    text: str | None = None


class Store:
    """Predictions and corrections in one database; every method opens and closes its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert: str | None = None

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def add_predictions(self, records: Sequence[Record]) -> None:
        """Insert many predictions in one transaction.

        This is on the hot path of every classify request, so rows go to the driver's executemany as
        plain tuples: SQLAlchemy's per-row parameter processing cost twice what SQLite itself did.
        """
        if not records:
            return
        sqlite = self.engine.dialect.name == "sqlite"

        def ts(value: datetime | None) -> Any:
            # The format SQLAlchemy's SQLite DateTime reads back; other drivers take datetimes.
            return value.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite and value is not None else value

        received = {r.received_at for r in records}
        stamp = {v: ts(v) for v in received}
        rows = [
            (
                r.item_id, stamp[r.received_at], ts(r.created_at), ts(r.created_at) if r.created_at else stamp[r.received_at],
                r.source, r.label, ",".join(r.labels), r.topic, r.confidence,
                r.scores["ux"], r.scores["cx"], r.scores["other"], r.model_version, r.text_sha256, r.text,
            )
            for r in records
        ]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._insert_sql(), rows)

    def _insert_sql(self) -> str:
        if self._insert is None:
            marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            cols = [c.name for c in predictions.columns if c.name != "pk"]
            self._insert = f"INSERT INTO predictions ({', '.join(cols)}) VALUES ({', '.join([marker] * len(cols))})"
        return self._insert

    def add_correction(self, c: Correction) -> dict[str, Any]:
        """Store a correction beside the latest prediction with its id; the prediction is never changed."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(predictions.c.pk, predictions.c.text_sha256, predictions.c.label, predictions.c.model_version)
                .where(predictions.c.item_id == c.item_id)
                .order_by(predictions.c.pk.desc())
                .limit(1)
            ).first()
            if row is None:
                raise NotFound(f"no recorded prediction has id {c.item_id!r}")
            if c.text is not None and text_hash(c.text) != row.text_sha256:
                raise Mismatch(f"'text' is not the text that was classified as {c.item_id!r}")
            result = conn.execute(
                insert(feedback).values(
                    prediction_pk=row.pk,
                    item_id=c.item_id,
                    received_at=utcnow(),
                    label=c.label,
                    labels=",".join(c.labels),
                    topic=c.topic,
                    note=c.note,
                    text=c.text,
                )
            )
            pk = result.inserted_primary_key
            assert pk is not None  # an INSERT of one row always has its key
        return {"feedback_id": int(pk[0]), "id": c.item_id, "predicted_label": row.label, "model_version": row.model_version}

    def corrections(self, with_text_only: bool = True) -> Iterator[dict[str, Any]]:
        """Corrections in the order they came, as training records (newest answer last)."""
        query = (
            select(
                feedback.c.pk,
                feedback.c.item_id,
                feedback.c.label,
                feedback.c.labels,
                feedback.c.topic,
                feedback.c.note,
                feedback.c.received_at,
                func.coalesce(feedback.c.text, predictions.c.text).label("text"),
                predictions.c.source,
                predictions.c.label.label("predicted_label"),
                predictions.c.model_version,
            )
            .join(predictions, predictions.c.pk == feedback.c.prediction_pk)
            .order_by(feedback.c.pk)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=500).execute(query):
                if with_text_only and row.text is None:
                    continue
                yield {
                    "id": row.item_id,
                    "text": row.text,
                    "label": row.label,
                    "labels": row.labels.split(","),
                    "topic": row.topic,
                    "source": row.source,
                    "note": row.note,
                    "corrected_at": row.received_at.isoformat(),
                    "predicted_label": row.predicted_label,
                    "model_version": row.model_version,
                }

    def count_corrections_without_text(self) -> int:
        """Corrections whose text is unknown (not sent, not stored): they cannot be trained on."""
        query = (
            select(func.count())
            .select_from(feedback.join(predictions, predictions.c.pk == feedback.c.prediction_pk))
            .where(feedback.c.text.is_(None), predictions.c.text.is_(None))
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def least_certain(self, limit: int) -> list[dict[str, Any]]:
        """Recorded predictions the model was least sure of (smallest gap between its top two labels),
        not yet corrected, as training-format rows pre-filled with the prediction for a person to fix."""
        p = [predictions.c.p_ux, predictions.c.p_cx, predictions.c.p_other]
        if self.engine.dialect.name == "postgresql":
            top, low = func.greatest(*p), func.least(*p)
        else:  # SQLite's scalar max()/min() take several arguments
            top, low = func.max(*p), func.min(*p)
        # The gap between the top two: top - (sum - top - low) = 2*top + low - sum.
        margin = (2 * top + low - p[0] - p[1] - p[2]).label("margin")
        corrected = select(feedback.c.prediction_pk)
        query = (
            select(predictions, margin)
            .where(predictions.c.pk.not_in(corrected))
            .order_by(margin, predictions.c.pk)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "id": r.item_id,
                "text": r.text,
                "label": r.label,
                "labels": r.labels.split(","),
                "topic": r.topic,
                "source": r.source,
                "margin": round(float(r.margin), 4),
                "scores": {"ux": r.p_ux, "cx": r.p_cx, "other": r.p_other},
                "model_version": r.model_version,
                "received_at": r.received_at.isoformat(),
            }
            for r in rows
        ]

    def _bucket(self, unit: str) -> ColumnElement[Any]:
        col = predictions.c.occurred_at
        if self.engine.dialect.name == "postgresql":
            return func.to_char(func.date_trunc(unit, col), "YYYY-MM-DD")
        # SQLite: weeks start on Monday, like PostgreSQL's date_trunc('week').
        return func.date(col) if unit == "day" else func.date(col, "-6 days", "weekday 1")

    def stats(
        self,
        group_by: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        model_version: str | None = None,
    ) -> dict[str, Any]:
        """Counts and expected counts (sums of probabilities) of labels, overall and per group."""
        keys = [k for k in GROUP_KEYS if k in group_by and k != "label"]
        cols: dict[str, ColumnElement[Any]] = {}
        for k in keys:
            cols[k] = self._bucket(k) if k in ("day", "week") else predictions.c[k]
        sums = [func.sum(predictions.c[f"p_{lab}"]).label(f"e_{lab}") for lab in LABELS]
        query = select(*(c.label(k) for k, c in cols.items()), predictions.c.label, func.count().label("n"), *sums)
        if since is not None:
            query = query.where(predictions.c.occurred_at >= since)
        if until is not None:
            query = query.where(predictions.c.occurred_at < until)
        if source is not None:
            query = query.where(predictions.c.source == source)
        if model_version is not None:
            query = query.where(predictions.c.model_version == model_version)
        query = query.group_by(*cols.values(), predictions.c.label)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()

        def empty() -> dict[str, Any]:
            return {"count": 0, "labels": {lab: {"count": 0, "expected": 0.0} for lab in LABELS}}

        total = empty()
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:
            key = tuple(getattr(row, k) for k in keys)
            group = groups.setdefault(key, empty())
            for target in (total, group):
                target["count"] += row.n
                target["labels"][row.label]["count"] += row.n
                for lab in LABELS:
                    target["labels"][lab]["expected"] += float(getattr(row, f"e_{lab}") or 0.0)
        out_groups: list[dict[str, Any]] = []
        for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
            g = groups[key]
            base = dict(zip(keys, (str(v) if isinstance(v, datetime) else v for v in key)))
            if "label" in group_by:
                out_groups.extend({**base, "label": lab, **_rounded(g["labels"][lab])} for lab in LABELS)
            else:
                out_groups.append({**base, "count": g["count"], "labels": {lab: _rounded(v) for lab, v in g["labels"].items()}})
        return {
            "count": total["count"],
            "labels": {lab: _rounded(v) for lab, v in total["labels"].items()},
            "group_by": [k for k in GROUP_KEYS if k in group_by],
            "groups": out_groups,
        }


def _rounded(cell: dict[str, Any]) -> dict[str, Any]:
    return {"count": cell["count"], "expected": round(cell["expected"], 3)}


def dumps_line(obj: dict[str, Any]) -> str:
    """One JSONL line."""
    return json.dumps(obj, ensure_ascii=False) + "\n"


def migrate(engine: Engine) -> str | None:
    """Apply the Alembic migrations up to head; return the revision now in place.

    On PostgreSQL an advisory lock keeps several workers starting at once from racing.
    """
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(74230641)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
    return rev

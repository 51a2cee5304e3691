"""Batch classification of files: read JSONL, CSV or plain lines; classify in chunks; one output per input."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # the readers are also used by processes that never load the model (relabel's parent)
    from classifier.model import UXCXClassifier

#: Longest text accepted, in characters; longer ones are rejected with a clear error.
MAX_TEXT_CHARS = 50_000


class InputError(ValueError):
    """The input as a whole cannot be read (wrong format, missing column)."""


@dataclass(frozen=True)
class Item:
    """One input row: its id, and either a text or the reason it cannot be classified."""

    id: str
    text: str | None
    error: str | None = None


def _check_text(value: object, max_chars: int) -> tuple[str | None, str | None]:
    if value is None:
        return None, "missing field 'text'"
    if not isinstance(value, str):
        return None, f"'text' must be a string, got {type(value).__name__}"
    if not value.strip():
        return None, "'text' is empty"
    if len(value) > max_chars:
        return None, f"'text' is {len(value)} characters, over the limit of {max_chars}"
    return value, None


def _row_id(value: object, line_no: int) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return str(line_no)
    return str(value)


def read_jsonl(lines: Iterable[str], max_chars: int = MAX_TEXT_CHARS) -> Iterator[Item]:
    """Items from JSONL (field `text`, optional `id`); a bad line becomes an error item."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            yield Item(str(n), None, "empty line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Item(str(n), None, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(obj, dict):
            yield Item(str(n), None, "line is not a JSON object")
            continue
        text, error = _check_text(obj.get("text"), max_chars)
        yield Item(_row_id(obj.get("id"), n), text, error)


def read_csv(stream: IO[str], max_chars: int = MAX_TEXT_CHARS) -> Iterator[Item]:
    """Items from CSV with a header holding `text` (and optionally `id`); ids default to the row number."""
    reader = csv.DictReader(stream)
    if reader.fieldnames is None:
        raise InputError("the CSV file is empty: expected a header row with a 'text' column")
    if "text" not in reader.fieldnames:
        raise InputError(f"the CSV file has no 'text' column (columns: {', '.join(reader.fieldnames)})")
    for n, row in enumerate(reader, start=1):
        text, error = _check_text(row.get("text"), max_chars)
        yield Item(_row_id(row.get("id"), n), text, error)


def read_lines(lines: Iterable[str], max_chars: int = MAX_TEXT_CHARS) -> Iterator[Item]:
    """Items from plain text, one text per line."""
    for n, line in enumerate(lines, start=1):
        text, error = _check_text(line.rstrip("\r\n"), max_chars)
        yield Item(str(n), text, error)


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def classify_items(
    model: UXCXClassifier, items: Iterable[Item], model_version: str, chunk_size: int = 1000
) -> Iterator[dict[str, Any]]:
    """Output records in input order; each chunk of valid texts is one vectorised call."""
    for chunk in _chunks(items, chunk_size):
        good = [it for it in chunk if it.text is not None]
        preds = iter(model.predict_batch([it.text for it in good if it.text is not None]))
        for it in chunk:
            if it.text is None:
                yield {"id": it.id, "error": it.error, "model_version": model_version}
            else:
                yield {"id": it.id, **next(preds).as_dict(), "model_version": model_version}

"""Corrections: labeled texts that override or extend the training corpus.

A correction has the corpus format (`text`, `label`, `labels`, `topic`; `id`, `source` and a
free `note` optional) and passes the same checks. It comes from a JSONL/CSV file or, through
`parse_corrections`, from rows the service stored. Matching is on `norm_text`; the latest
correction of a text wins; a correction of an evaluation text is never trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from training.data import LoadResult, Record, load, norm_text, parse_record

#: `source` of a correction that does not name one.
CORRECTION_SOURCE = "correction"


def parse_correction(raw: Mapping[str, object]) -> Record:
    """A correction row as a Record: the corpus checks, with `id`, `labels` and `source` optional.

    A missing id becomes `corr-` plus a hash of the normalised text, missing labels become
    `[label]`, a missing source becomes "correction"; `note` and unknown fields are ignored.
    """
    row = dict(raw)
    text = row.get("text")
    if not row.get("id") and isinstance(text, str) and text.strip():
        row["id"] = "corr-" + hashlib.sha256(norm_text(text).encode("utf-8")).hexdigest()[:12]
    if not row.get("labels") and row.get("label"):
        row["labels"] = [row["label"]]
    if not row.get("source"):
        row["source"] = CORRECTION_SOURCE
    return parse_record(row)


def load_corrections(paths: Sequence[Path]) -> LoadResult:
    """Read corrections from JSONL/CSV files, in order; invalid rows become messages in `errors`."""
    return load(paths, parse=parse_correction)


def parse_corrections(rows: Iterable[Mapping[str, object]], origin: str = "corrections") -> LoadResult:
    """Validate correction rows from any source (e.g. the service database), oldest first."""
    result = LoadResult()
    for n, row in enumerate(rows, start=1):
        try:
            result.records.append(parse_correction(row))
        except ValueError as exc:
            result.errors.append(f"{origin}#{n}: {exc}")
    return result


@dataclass(frozen=True)
class CorrectionFacts:
    """What the corrections did to the training data."""

    read: int
    invalid: int
    superseded: int
    in_evaluation: int
    overrode: int
    confirmed: int
    added: int
    evaluation_ids: tuple[str, ...] = ()

    @property
    def used(self) -> int:
        """Corrections trained on: those that overrode, confirmed or added a text."""
        return self.overrode + self.confirmed + self.added

    def as_dict(self) -> dict[str, object]:
        """Plain dict for the manifest and the report."""
        return {**asdict(self), "evaluation_ids": list(self.evaluation_ids), "used": self.used}

    def line(self) -> str:
        """One line for the console."""
        text = (
            f"corrections: {self.used} used ({self.overrode} overrode a corpus label, {self.confirmed} agreed "
            f"with it, {self.added} added) of {self.read} valid; {self.superseded} superseded by a later "
            f"correction of the same text, {self.invalid} invalid, {self.in_evaluation} not trained on "
            "because the text is in an evaluation set"
        )
        if self.evaluation_ids:
            shown = ", ".join(self.evaluation_ids[:10]) + (" ..." if len(self.evaluation_ids) > 10 else "")
            text += f" ({shown}: fix the evaluation file by hand if the correction is right)"
        return text


def _same_annotation(a: Record, b: Record) -> bool:
    return a.label == b.label and set(a.labels) == set(b.labels) and a.topic == b.topic


def apply_corrections(
    records: Sequence[Record],
    corrections: Sequence[Record],
    *,
    evaluation: Iterable[Record] = (),
    invalid: int = 0,
) -> tuple[list[Record], CorrectionFacts]:
    """Training records with the corrections applied, and the facts.

    `corrections` are oldest first: the last one for a normalised text wins. A correction of
    a corpus text replaces its label, labels and topic (the corpus id, text and source stay);
    others are appended. A correction whose text is in `evaluation` (held-out, real-dev) is
    left out, so it can neither leak into nor move the yardstick both models are judged on.
    `invalid` is only counted into the facts (rows that failed validation upstream).
    """
    latest: dict[str, Record] = {}
    for c in corrections:
        latest.pop(norm_text(c.text), None)  # re-insert so dict order is the order of the winners
        latest[norm_text(c.text)] = c
    protected = {norm_text(r.text) for r in evaluation}
    kept_out = [c for key, c in latest.items() if key in protected]
    usable = {key: c for key, c in latest.items() if key not in protected}

    out: list[Record] = []
    matched: set[str] = set()
    overrode = confirmed = 0
    for r in records:
        key = norm_text(r.text)
        fix = usable.get(key)
        if fix is None:
            out.append(r)
            continue
        if key not in matched:
            matched.add(key)
            if _same_annotation(r, fix):
                confirmed += 1
            else:
                overrode += 1
        out.append(Record(id=r.id, text=r.text, label=fix.label, labels=fix.labels, topic=fix.topic, source=r.source))
    added = [c for key, c in usable.items() if key not in matched]
    out.extend(added)
    facts = CorrectionFacts(
        read=len(corrections),
        invalid=invalid,
        superseded=len(corrections) - len(latest),
        in_evaluation=len(kept_out),
        overrode=overrode,
        confirmed=confirmed,
        added=len(added),
        evaluation_ids=tuple(c.id for c in kept_out),
    )
    return out, facts

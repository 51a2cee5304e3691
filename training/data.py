"""Labeled data: loading JSONL/CSV, schema and label checks, near-duplicates, balance, the held-out split."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from classifier.labels import LABELS, TOPICS, validate_annotation

_PUNCT_RE = re.compile(r"[!-/:-@\[-`{-~\u2018\u2019\u201c\u201d\u2026]")
FIELDS = ("id", "text", "label", "labels", "topic", "source")
DATA_DIR = Path(__file__).parent / "data"
TRAIN_FILE = DATA_DIR / "train.jsonl"
HELDOUT_FILE = DATA_DIR / "heldout.jsonl"


@dataclass(frozen=True)
class Record:
    """One labeled example."""

    id: str
    text: str
    label: str
    labels: tuple[str, ...]
    topic: str
    source: str

    def as_dict(self) -> dict[str, object]:
        """The JSONL form of the guide."""
        return {
            "id": self.id,
            "text": self.text,
            "label": self.label,
            "labels": list(self.labels),
            "topic": self.topic,
            "source": self.source,
        }


@dataclass
class LoadResult:
    """Records that passed, and one message per row that did not."""

    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _rows(path: Path) -> Iterable[tuple[int, dict[str, object] | str]]:
    """Yield (line number, raw dict or an error string) from a JSONL or CSV file."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                raw: dict[str, object] = dict(row)
                labels = str(raw.get("labels") or raw.get("label") or "")
                raw["labels"] = [x.strip() for x in re.split(r"[|,;]", labels) if x.strip()]
                yield n, raw
        return
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, f"invalid JSON ({exc.msg})"
                continue
            yield n, obj if isinstance(obj, dict) else "not a JSON object"


def parse_record(raw: Mapping[str, object]) -> Record:
    """Build a Record from a raw row, raising ValueError with every problem found."""
    missing = [f for f in FIELDS if f not in raw or raw[f] in (None, "")]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    text = raw["text"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    labels = raw["labels"]
    if not isinstance(labels, list):
        raise ValueError("labels must be a list")
    problems = validate_annotation(str(raw["label"]), [str(x) for x in labels], str(raw["topic"]))
    if problems:
        raise ValueError("; ".join(problems))
    return Record(
        id=str(raw["id"]),
        text=text,
        label=str(raw["label"]),
        labels=tuple(str(x) for x in labels),
        topic=str(raw["topic"]),
        source=str(raw["source"]),
    )


def load(paths: Sequence[Path], parse: Callable[[Mapping[str, object]], Record] = parse_record) -> LoadResult:
    """Load and validate every row of the given files; bad rows become messages, not exceptions."""
    result = LoadResult()
    for path in paths:
        if not path.is_file():
            result.errors.append(f"{path}: file not found")
            continue
        for n, raw in _rows(path):
            if isinstance(raw, str):
                result.errors.append(f"{path}:{n}: {raw}")
                continue
            try:
                result.records.append(parse(raw))
            except ValueError as exc:
                result.errors.append(f"{path}:{n}: {exc}")
    return result


def norm_text(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced: the key for duplicate checks."""
    return " ".join(_PUNCT_RE.sub(" ", text.lower()).split())


def shingles(text: str, n: int = 5) -> set[str]:
    """Word n-grams of the normalised text (the whole text if shorter than n words)."""
    words = norm_text(text).split()
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def near_duplicates(records: Sequence[Record], threshold: float = 0.7) -> list[tuple[str, str, float]]:
    """Pairs whose 5-gram sets have Jaccard similarity >= threshold (MinHash LSH, then exact check)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    sets: dict[str, set[str]] = {}
    pairs: list[tuple[str, str, float]] = []
    for i, rec in enumerate(records):
        key = f"{i}"
        sh = shingles(rec.text)
        mh = MinHash(num_perm=128, seed=1)
        mh.update_batch([s.encode("utf-8") for s in sh])
        for other in lsh.query(mh):
            o = sets[other]
            jac = len(sh & o) / len(sh | o)
            if jac >= threshold:
                pairs.append((records[int(other)].id, rec.id, round(jac, 3)))
        lsh.insert(key, mh)
        sets[key] = sh
    return pairs


@dataclass
class CheckReport:
    """What `uxcx data check` found."""

    n_records: int
    errors: list[str]
    duplicate_ids: list[str]
    duplicate_texts: list[tuple[str, str]]
    near_duplicates: list[tuple[str, str, float]]
    label_counts: Counter[str]
    topic_counts: Counter[str]
    source_counts: Counter[str]
    both: int

    @property
    def ok(self) -> bool:
        """True when no row is invalid and nothing is duplicated."""
        return not (self.errors or self.duplicate_ids or self.duplicate_texts)

    @property
    def near_duplicate_rate(self) -> float:
        """Share of records that have a near-duplicate partner."""
        ids = {a for a, _, _ in self.near_duplicates} | {b for _, b, _ in self.near_duplicates}
        return len(ids) / max(self.n_records, 1)

    def table(self) -> str:
        """The balance table, as plain text."""
        n = max(self.n_records, 1)
        lines = [f"records: {self.n_records}", "", f"{'label':<8} {'count':>6} {'share':>7}"]
        for lab in LABELS:
            lines.append(f"{lab:<8} {self.label_counts[lab]:>6} {self.label_counts[lab] / n:>7.1%}")
        lines.append(f"{'both':<8} {self.both:>6} {self.both / n:>7.1%}")
        lines += ["", f"{'topic':<24} {'count':>6}"]
        lines += [f"{t:<24} {self.topic_counts[t]:>6}" for t in TOPICS]
        lines += ["", f"{'source':<24} {'count':>6}"]
        lines += [f"{s:<24} {c:>6}" for s, c in self.source_counts.most_common()]
        lines += [
            "",
            f"invalid rows: {len(self.errors)}",
            f"duplicate ids: {len(self.duplicate_ids)}",
            f"duplicate texts: {len(self.duplicate_texts)}",
            f"near-duplicate pairs (5-gram Jaccard >= 0.7): {len(self.near_duplicates)}"
            f" ({self.near_duplicate_rate:.2%} of records)",
        ]
        return "\n".join(lines)


def check(result: LoadResult) -> CheckReport:
    """Validate a loaded corpus: schema errors, duplicate ids and texts, near-duplicates, balance."""
    records = result.records
    ids = Counter(r.id for r in records)
    seen: dict[str, str] = {}
    dup_texts: list[tuple[str, str]] = []
    for r in records:
        key = norm_text(r.text)
        if key in seen:
            dup_texts.append((seen[key], r.id))
        else:
            seen[key] = r.id
    return CheckReport(
        n_records=len(records),
        errors=list(result.errors),
        duplicate_ids=sorted(i for i, c in ids.items() if c > 1),
        duplicate_texts=dup_texts,
        near_duplicates=near_duplicates(records),
        label_counts=Counter(r.label for r in records),
        topic_counts=Counter(r.topic for r in records),
        source_counts=Counter(r.source for r in records),
        both=sum(len(r.labels) == 2 for r in records),
    )


def data_hash(records: Sequence[Record]) -> str:
    """sha256 over the records in order: identifies the training data in a manifest."""
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps(r.as_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def split_heldout(records: Sequence[Record], fraction: float = 0.15, seed: int = 13) -> tuple[list[Record], list[Record]]:
    """Seeded split stratified by topic: (train, held-out)."""
    from sklearn.model_selection import train_test_split

    train, held = train_test_split(
        list(records), test_size=fraction, random_state=seed, stratify=[r.topic for r in records]
    )
    return sorted(train, key=lambda r: r.id), sorted(held, key=lambda r: r.id)


def write_jsonl(records: Iterable[Record], path: Path) -> None:
    """Write records as JSONL (UTF-8, one object per line)."""
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.as_dict(), ensure_ascii=False) + "\n")

"""The diff between an earlier relabelled file and a new one: rows whose label or topic changed.

Joined on the id column with a bucketed hash join (ids hashed into buckets on disk, one bucket's
previous ids in memory at a time), so memory stays bounded whatever the size of either file.
The diff lists changed rows in the new file's order.
"""

from __future__ import annotations

import heapq
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from classifier.batch import InputError
from classifier.relabel_io import FinalWriter, csv_header, csv_records, format_of, input_files

#: Bytes of previous output per bucket (roughly, ids held in memory at once).
BUCKET_BYTES = 64 << 20
DIFF_COLUMNS = ("old_label", "new_label", "old_topic", "new_topic")
_NEEDED = ("uxcx_label", "uxcx_topic")


def _columns(path: Path, fmt: str) -> list[str] | None:
    files = input_files(path, fmt)
    if fmt == "csv":
        return csv_header(files[0])[0]
    if fmt == "parquet":
        from classifier.relabel_io import parquet_schema

        return list(parquet_schema(files[0]).names)
    return None  # JSONL: keys are checked row by row


def check_previous(previous: Path, id_column: str, src: Any) -> None:
    """Refuse up front (before hours of work) a previous output that cannot be diffed against."""
    if not previous.exists():
        raise InputError(f"previous output {previous} not found")
    if src.spec.columns and id_column not in src.spec.columns:
        raise InputError(f"--diff joins on the id column, but the input has no '{id_column}' column; "
                         "pick one with --id-column")
    cols = _columns(previous, format_of(previous))
    if cols is not None:
        missing = [c for c in (id_column, *_NEEDED) if c not in cols]
        if missing:
            raise InputError(f"previous output {previous} has no column(s) {', '.join(missing)}: "
                             "is it the output of uxcx relabel?")


def label_rows(path: Path, fmt: str, id_column: str) -> Iterator[tuple[str | None, str, str]]:
    """(id, label, topic) of every row of a relabelled file (or folder of parts), in order."""
    for part in input_files(path, fmt):
        if fmt == "csv":
            header, start = csv_header(part)
            try:
                ii, li, ti = header.index(id_column), header.index("uxcx_label"), header.index("uxcx_topic")
            except ValueError:
                raise InputError(f"{part} has no '{id_column}', 'uxcx_label' or 'uxcx_topic' column") from None
            width = len(header)
            for row, _ in csv_records(part, start):
                if len(row) == width:
                    yield row[ii], row[li], row[ti]
        elif fmt == "jsonl":
            with part.open("rb") as f:
                for raw in f:
                    if not raw.strip():
                        continue
                    obj = json.loads(raw.decode("utf-8", "surrogateescape"))
                    rid = obj.get(id_column)
                    yield (None if rid is None else str(rid)), obj.get("uxcx_label"), obj.get("uxcx_topic")
        else:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(part)
            for batch in pf.iter_batches(columns=[id_column, "uxcx_label", "uxcx_topic"], use_threads=False):
                ids = batch.column(0).to_pylist()
                for rid, lab, top in zip(ids, batch.column(1).to_pylist(), batch.column(2).to_pylist()):
                    yield (None if rid is None else str(rid)), lab, top


def _bucket(rid: str, k: int) -> int:
    return zlib.crc32(rid.encode("utf-8", "surrogateescape")) % k if k > 1 else 0


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def diff_outputs(previous: Path, new: Path, out: Path, id_column: str, fmt: str, workdir: Path,
                 bucket_bytes: int = BUCKET_BYTES) -> dict[str, Any]:
    """Write the changed rows of ``new`` against ``previous`` to ``out`` (format ``fmt``); return a summary."""
    k = max(1, math.ceil(_size(previous) / bucket_bytes))
    tmp = workdir / "diff-buckets"
    tmp.mkdir(exist_ok=True)
    try:
        return _diff(previous, new, out, id_column, fmt, k, tmp)
    finally:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


def _diff(previous: Path, new: Path, out: Path, id_column: str, fmt: str, k: int, tmp: Path) -> dict[str, Any]:
    old_files = [(tmp / f"old-{b}.jsonl").open("w", encoding="utf-8", errors="surrogateescape") for b in range(k)]
    new_files = [(tmp / f"new-{b}.jsonl").open("w", encoding="utf-8", errors="surrogateescape") for b in range(k)]
    old_n = 0
    for rid, lab, top in label_rows(previous, format_of(previous), id_column):
        if rid is not None:
            old_files[_bucket(rid, k)].write(json.dumps([rid, lab, top]) + "\n")
            old_n += 1
    new_n, no_id = 0, 0
    for row, (rid, lab, top) in enumerate(label_rows(new, fmt, id_column)):
        if rid is None:
            no_id += 1
            continue
        new_files[_bucket(rid, k)].write(json.dumps([row, rid, lab, top]) + "\n")
        new_n += 1
    for f in (*old_files, *new_files):
        f.close()

    moved: Counter[tuple[str, str]] = Counter()
    topic_only = 0
    new_ids = 0
    missing = 0
    dup_old = 0
    for b in range(k):
        old: dict[str, tuple[str, str]] = {}
        with (tmp / f"old-{b}.jsonl").open(encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                rid, lab, top = json.loads(line)
                dup_old += rid in old
                old[rid] = (lab, top)
        seen: set[str] = set()
        with (tmp / f"new-{b}.jsonl").open(encoding="utf-8", errors="surrogateescape") as f, \
                (tmp / f"changed-{b}.jsonl").open("w", encoding="utf-8", errors="surrogateescape") as w:
            for line in f:
                row, rid, lab, top = json.loads(line)
                prev = old.get(rid)
                if prev is None:
                    new_ids += 1
                    continue
                seen.add(rid)
                if prev == (lab, top):
                    continue
                if prev[0] != lab:
                    moved[(prev[0], lab)] += 1
                else:
                    topic_only += 1
                w.write(json.dumps([row, rid, prev[0], lab, prev[1], top]) + "\n")
        missing += len(old.keys() - seen)
        del old, seen

    writer = _diff_writer(out, fmt, id_column)
    changed = 0
    readers = [(tmp / f"changed-{b}.jsonl").open(encoding="utf-8", errors="surrogateescape") for b in range(k)]
    try:
        batch: list[list[str]] = []
        for line in heapq.merge(*readers, key=lambda s: json.loads(s)[0]):
            batch.append(json.loads(line)[1:])
            changed += 1
            if len(batch) >= 10_000:
                writer.add(_encode(batch, fmt, id_column))
                batch = []
        if batch:
            writer.add(_encode(batch, fmt, id_column))
    finally:
        for r in readers:
            r.close()
        writer.close()

    parts = [f"{n:,} rows moved {a}→{b}" if i == 0 else f"{n:,} {a}→{b}"
             for i, ((a, b), n) in enumerate(sorted(moved.items(), key=lambda kv: (-kv[1], kv[0])))]
    text = ", ".join(parts) if parts else "no row changed label"
    text += f"; {topic_only:,} changed topic only; {new_n:,} rows compared"
    if new_ids:
        text += f", {new_ids:,} ids not in the previous output"
    if missing:
        text += f", {missing:,} previous ids no longer present"
    if no_id:
        text += f", {no_id:,} rows without an id"
    return {"changed": changed, "moved": {f"{a}→{b}": n for (a, b), n in sorted(moved.items())},
            "topic_only": topic_only, "compared": new_n, "new_ids": new_ids, "missing_ids": missing,
            "duplicate_previous_ids": dup_old, "rows_without_id": no_id, "text": text}


def _diff_writer(out: Path, fmt: str, id_column: str) -> FinalWriter:
    if fmt == "parquet":
        import pyarrow as pa

        schema = pa.schema([pa.field(c, pa.string()) for c in (id_column, *DIFF_COLUMNS)])
        return FinalWriter(out, fmt, schema=schema)
    return FinalWriter(out, fmt, header=[id_column, *DIFF_COLUMNS] if fmt == "csv" else None)


def _encode(rows: list[list[str]], fmt: str, id_column: str) -> Any:
    cols = (id_column, *DIFF_COLUMNS)
    if fmt == "csv":
        from classifier.relabel_io import _csv_bytes

        return _csv_bytes(rows)
    if fmt == "jsonl":
        return "".join(json.dumps(dict(zip(cols, r)), ensure_ascii=False) + "\n" for r in rows).encode("utf-8", "surrogateescape")
    import pyarrow as pa

    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(cols)})

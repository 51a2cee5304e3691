"""Formats for backlog relabelling: chunked readers, the per-chunk labelling step, chunk and final writers.

A *chunk* is a fixed number of data rows (the last one may be shorter), cut the same way by the
local engine and by the Dask engine, so both feed the model identical batches and write identical
bytes. CSV is read as bytes and decoded with ``surrogateescape``: every value round-trips exactly,
undecodable bytes included, and record boundaries are known as byte offsets.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from classifier.batch import MAX_TEXT_CHARS, InputError, _check_text

FORMATS = ("csv", "jsonl", "parquet")
#: Columns added to every relabelled row, in this order. Existing columns of these names are replaced.
UXCX_COLUMNS = ("uxcx_label", "uxcx_labels", "uxcx_topic", "uxcx_confidence", "uxcx_model_version")
#: Leading columns of a rejects file.
REJECT_COLUMNS = ("uxcx_row", "uxcx_reason")
#: Separator of ``uxcx_labels`` in CSV (a list in JSONL and Parquet).
LABELS_SEP = "|"
#: Decimals kept of the confidence, in every format and engine.
CONFIDENCE_DECIMALS = 4
#: Target rows per Parquet row group in the final output (chunks are merged up to this).
PARQUET_ROW_GROUP = 65_536

_SURROGATE = re.compile("[\ud800-\udfff]")
_BOM = b"\xef\xbb\xbf"


def format_of(path: Path, explicit: str | None = None) -> str:
    """The format named explicitly, or guessed from the suffix (of a part file for a directory)."""
    if explicit:
        return explicit
    probe = path
    if path.is_dir():
        parts = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lstrip(".") in FORMATS)
        if not parts:
            raise InputError(f"{path} holds no .csv, .jsonl or .parquet part files")
        probe = parts[0]
    suffix = probe.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if suffix in {"json", "ndjson"}:
        return "jsonl"
    if suffix in {"pq", "parq"}:
        return "parquet"
    raise InputError(f"cannot tell the format of {path} from its suffix; pass --format csv|jsonl|parquet")


def input_files(path: Path, fmt: str) -> list[Path]:
    """The file itself, or the part files of a directory in name order (a partitioned input)."""
    if path.is_dir():
        parts = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") == fmt)
        if not parts:
            raise InputError(f"{path} holds no .{fmt} part files")
        return parts
    if not path.is_file():
        raise InputError(f"input file {path} not found")
    return [path]


# ------------------------------------------------------------------- spec
@dataclass(frozen=True)
class Spec:
    """Everything a worker needs to label a chunk; small and picklable."""

    fmt: str
    text_column: str
    model_version: str
    columns: tuple[str, ...] = ()
    max_chars: int = MAX_TEXT_CHARS
    #: Parquet only: the input schema (pyarrow.Schema), kept as serialized bytes to stay picklable.
    schema_ipc: bytes = b""

    @property
    def keep(self) -> list[int] | None:
        """Indexes of input columns kept (CSV); None when all are kept."""
        idx = [i for i, c in enumerate(self.columns) if c not in UXCX_COLUMNS]
        return None if len(idx) == len(self.columns) else idx

    @property
    def out_columns(self) -> list[str]:
        """CSV header of the output."""
        return [c for c in self.columns if c not in UXCX_COLUMNS] + list(UXCX_COLUMNS)

    @property
    def text_index(self) -> int:
        return self.columns.index(self.text_column)


@dataclass
class Chunk:
    """A run of consecutive data rows; ``first_row`` is the 1-based number of its first row."""

    index: int
    first_row: int
    rows: Any  # CSV: list[list[str]]; JSONL: list[str] (raw lines); Parquet: pyarrow.Table
    n_rows: int
    end_offset: int = 0  # bytes of the input consumed after this chunk (progress)


@dataclass
class Counts:
    """Per-chunk (and, summed, per-job) counts."""

    read: int = 0
    written: int = 0
    rejected: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    topics: Counter[str] = field(default_factory=Counter)

    def add(self, other: Counts) -> None:
        self.read += other.read
        self.written += other.written
        self.rejected += other.rejected
        self.labels.update(other.labels)
        self.topics.update(other.topics)

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "written": self.written, "rejected": self.rejected,
                "labels": dict(sorted(self.labels.items())), "topics": dict(sorted(self.topics.items()))}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Counts:
        return cls(int(d["read"]), int(d["written"]), int(d["rejected"]), Counter(d["labels"]), Counter(d["topics"]))


@dataclass
class ChunkResult:
    """A labelled chunk: output rows and rejects in the format's own form, and the counts."""

    out: Any  # CSV/JSONL: bytes; Parquet: pyarrow.Table
    rejects: Any  # same, or None when there are none
    counts: Counts


def check_text(value: object, column: str, max_chars: int, from_bytes: bool = True) -> str | None:
    """The reason a text cannot be labelled, or None; messages as `uxcx classify` gives them.

    ``from_bytes=False`` says the value cannot hold undecoded input bytes (a JSONL line that was valid
    UTF-8), so a surrogate in it came from a ``\\u`` escape.
    """
    _, error = _check_text(value, max_chars)
    if error is not None:
        return error.replace("'text'", f"'{column}'").replace("field 'text'", f"field '{column}'")
    assert isinstance(value, str)
    bad = _SURROGATE.search(value)
    if bad is None:
        return None
    i, ch = bad.start(), bad.group()
    if from_bytes and "\udc80" <= ch <= "\udcff":
        # surrogateescape put the undecodable byte 0xNN at U+DCNN; everything before it is valid UTF-8
        at = len(value[:i].encode("utf-8"))
        return f"'{column}' is not valid UTF-8: invalid byte 0x{ord(ch) - 0xDC00:02X} at byte offset {at} of the value"
    return f"'{column}' is not valid Unicode: a lone surrogate \\u{ord(ch):04x} at character {i} of the value"


def _fmt_conf(x: float) -> float:
    return round(x, CONFIDENCE_DECIMALS)


# -------------------------------------------------------------------- CSV
class _Lines:
    """Lines of a binary CSV file as text, keeping the byte offset of what the csv reader consumed."""

    def __init__(self, f: BinaryIO, start: int, end: int | None):
        self.f = f
        self.pos = start
        self.end = end
        f.seek(start)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.end is not None and self.pos >= self.end:
            raise StopIteration
        raw = self.f.readline()
        if not raw:
            raise StopIteration
        if self.pos == 0 and raw.startswith(_BOM):
            self.pos += len(_BOM)
            raw = raw[len(_BOM):]
        self.pos += len(raw)
        return raw.decode("utf-8", "surrogateescape")


def _raise_field_limit() -> None:
    # A field over csv's default 128 KiB limit must become a rejected row, not a crash; the
    # over-length check happens afterwards. (Process-wide setting, harmless to raise.)
    if csv.field_size_limit() < 2**30:
        csv.field_size_limit(2**30)


def csv_header(path: Path) -> tuple[list[str], int]:
    """The header row of a CSV file and the byte offset where its data starts."""
    _raise_field_limit()
    with path.open("rb") as f:
        lines = _Lines(f, 0, None)
        reader = csv.reader(lines)
        for row in reader:
            if row:
                return row, lines.pos
    raise InputError(f"{path} is empty: expected a header row")


class Unparsed(list[str]):
    """A record the CSV reader could not split as written: its first line, with the reason.

    It counts as a row (row numbers stay those of the file) and goes to the rejects.
    """

    reason: str


_RAN_ON = (
    "CSV quoting: a quoted field opens on this line and is not closed properly, so the rows after it would "
    "have been read into it; this row was read up to the end of its line and the next line as a new row"
)


def _leaves_quote_open(line: str) -> bool:
    """Whether a CSV line ends inside a quoted field (its record would run on over the line break)."""
    try:
        next(csv.reader([line], strict=True), None)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def csv_records(path: Path, start: int, end: int | None = None) -> Iterator[tuple[list[str], int]]:
    """Data records (blank lines skipped) from byte ``start`` up to ``end``, each with its end offset.

    The reader is strict about quotes. A quoted field that is never closed, or closed with text after
    it, would otherwise run on over the line breaks and swallow the rows that follow it into one field
    (to the end of the file, or to the next quote). When a record fails and its first line ends inside
    a quoted field, with more of the file after it, that line is yielded as an :class:`Unparsed` row and
    reading starts again on the next line, so each later row is read on its own. Any other record that
    fails strictly (``"a"b`` on one line, or an open quote on the file's last line) is read leniently
    from its first line, as csv always read it.
    """
    _raise_field_limit()
    with path.open("rb") as f:
        lines = _Lines(f, start, end)
        reader = csv.reader(lines, strict=True)
        while True:
            at = lines.pos
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                first = _Lines(f, at, None)  # the record's first line alone
                text = next(first)
                after = first.pos
                try:
                    row = next(csv.reader([text.rstrip("\r\n")]), [])
                except csv.Error as exc:  # a line that lenient csv cannot read either
                    raise InputError(f"{path}: CSV cannot be parsed near byte {at}: {exc}") from exc
                # Decided from the line and the file alone, not from where this range of it ends, so
                # every engine and a resumed job cut the same rows.
                if _leaves_quote_open(text) and f.read(1):
                    bad = Unparsed(row)
                    bad.reason = _RAN_ON
                    row = bad
                lines = _Lines(f, after, end)
                reader = csv.reader(lines, strict=True)
                if row:
                    yield row, after
                continue
            if row:
                yield row, lines.pos


def csv_chunks(path: Path, data_start: int, chunk_size: int, first_index: int = 0, first_row: int = 1,
               end: int | None = None) -> Iterator[Chunk]:
    """Chunks of ``chunk_size`` records of one CSV file."""
    rows: list[list[str]] = []
    index, row_no, offset = first_index, first_row, data_start
    for row, offset in csv_records(path, data_start, end):
        rows.append(row)
        if len(rows) == chunk_size:
            yield Chunk(index, row_no, rows, len(rows), offset)
            index, row_no, rows = index + 1, row_no + len(rows), []
    if rows:
        yield Chunk(index, row_no, rows, len(rows), offset)


def csv_chunk_bounds(path: Path, data_start: int, chunk_size: int) -> list[tuple[int, int, int]]:
    """(start byte, end byte, rows) of every chunk of one CSV file: what the local engine would cut."""
    bounds: list[tuple[int, int, int]] = []
    start, n, offset = data_start, 0, data_start
    for _, offset in csv_records(path, data_start):
        n += 1
        if n == chunk_size:
            bounds.append((start, offset, n))
            start, n = offset, 0
    if n:
        bounds.append((start, offset, n))
    return bounds


def _csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogateescape")


def csv_header_bytes(columns: Sequence[str]) -> bytes:
    """One CSV header line."""
    return _csv_bytes([columns])


def label_csv(model: Any, spec: Spec, chunk: Chunk) -> ChunkResult:
    """Validate, label and format one CSV chunk."""
    counts = Counts(read=chunk.n_rows)
    ncol, ti, keep = len(spec.columns), spec.text_index, spec.keep
    good: list[list[str]] = []
    bad: list[list[Any]] = []
    limit = spec.max_chars
    # Undecodable bytes are rare: one search over the chunk's texts, and row by row only if it hits.
    any_surrogate = _SURROGATE.search("".join(r[ti] for r in chunk.rows if len(r) == ncol)) is not None
    for i, row in enumerate(chunk.rows):
        if type(row) is Unparsed:
            bad.append([chunk.first_row + i, row.reason, *row])
            continue
        if len(row) != ncol:
            bad.append([chunk.first_row + i, f"row has {len(row)} fields, the header has {ncol}", *row])
            continue
        t = row[ti]
        if t and len(t) <= limit and not t.isspace() and not (any_surrogate and _SURROGATE.search(t)):
            good.append(row)
            continue
        reason = check_text(t, spec.text_column, limit)
        if reason is None:
            good.append(row)
        else:
            bad.append([chunk.first_row + i, reason, *row])
    preds = model.predict_batch([r[ti] for r in good], evidence=False) if good else []
    out_rows = []
    version = spec.model_version
    for row, p in zip(good, preds, strict=True):
        base = row if keep is None else [row[k] for k in keep]
        out_rows.append([*base, p.label, LABELS_SEP.join(p.labels), p.topic,
                         f"{_fmt_conf(p.confidence):.{CONFIDENCE_DECIMALS}f}", version])
        counts.labels[p.label] += 1
        counts.topics[p.topic] += 1
    counts.written, counts.rejected = len(out_rows), len(bad)
    return ChunkResult(_csv_bytes(out_rows), _csv_bytes(bad) if bad else None, counts)


# ------------------------------------------------------------------ JSONL
def jsonl_chunks(path: Path, chunk_size: int, first_index: int = 0, first_row: int = 1) -> Iterator[Chunk]:
    """Chunks of ``chunk_size`` lines (parsed by the workers, not here)."""
    lines: list[str] = []
    index, row_no, offset = first_index, first_row, 0
    with path.open("rb") as f:
        for raw in f:
            if offset == 0 and raw.startswith(_BOM):
                offset += len(_BOM)
                raw = raw[len(_BOM):]
            offset += len(raw)
            lines.append(raw.decode("utf-8", "surrogateescape").rstrip("\r\n"))
            if len(lines) == chunk_size:
                yield Chunk(index, row_no, lines, len(lines), offset)
                index, row_no, lines = index + 1, row_no + len(lines), []
    if lines:
        yield Chunk(index, row_no, lines, len(lines), offset)


def _json_line(obj: Any) -> str:
    s = json.dumps(obj, ensure_ascii=False)
    try:
        s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate written as a \u escape in the input: keep it escaped
        s = json.dumps(obj, ensure_ascii=True)
    return s


def label_jsonl(model: Any, spec: Spec, chunk: Chunk) -> ChunkResult:
    """Parse, validate, label and format one JSONL chunk; every input key is kept, in order."""
    counts = Counts(read=chunk.n_rows)
    good: list[tuple[dict[str, Any], str]] = []
    bad: list[str] = []
    col = spec.text_column
    for i, line in enumerate(chunk.rows):
        row_no = chunk.first_row + i
        reason: str | None
        if not line.strip():
            reason = "empty line"
        else:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj, reason = None, f"invalid JSON: {exc.msg} at column {exc.colno}"
            else:
                if not isinstance(obj, dict):
                    reason = "line is not a JSON object"
                else:
                    reason = check_text(obj.get(col), col, spec.max_chars, from_bytes=_SURROGATE.search(line) is not None)
            if reason is None:
                good.append((obj, obj[col]))
                continue
        bad.append(_json_line({"uxcx_row": row_no, "uxcx_reason": reason, "uxcx_raw": line}))
    preds = model.predict_batch([t for _, t in good], evidence=False) if good else []
    out: list[str] = []
    version = spec.model_version
    for (obj, _), p in zip(good, preds, strict=True):
        for c in UXCX_COLUMNS:
            obj.pop(c, None)
        obj.update(uxcx_label=p.label, uxcx_labels=list(p.labels), uxcx_topic=p.topic,
                   uxcx_confidence=_fmt_conf(p.confidence), uxcx_model_version=version)
        out.append(_json_line(obj))
        counts.labels[p.label] += 1
        counts.topics[p.topic] += 1
    counts.written, counts.rejected = len(out), len(bad)

    def enc(lines: list[str]) -> bytes:
        return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape") if lines else b""

    return ChunkResult(enc(out), enc(bad) if bad else None, counts)


# ---------------------------------------------------------------- Parquet
def parquet_schema(path: Path) -> Any:
    """The Arrow schema of a Parquet file."""
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InputError(f"{path} is not a readable Parquet file: {exc}") from exc


def schema_bytes(schema: Any) -> bytes:
    """An Arrow schema as IPC bytes (picklable)."""
    return bytes(schema.serialize())


def _schema(spec: Spec) -> Any:
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(spec.schema_ipc))


def parquet_out_schema(spec: Spec) -> Any:
    """Output schema: the input's fields (uxcx ones replaced) plus the five uxcx columns."""
    import pyarrow as pa

    schema = _schema(spec)
    fields = [f for f in schema if f.name not in UXCX_COLUMNS]
    fields += [pa.field("uxcx_label", pa.string()), pa.field("uxcx_labels", pa.list_(pa.string())),
               pa.field("uxcx_topic", pa.string()), pa.field("uxcx_confidence", pa.float64()),
               pa.field("uxcx_model_version", pa.string())]
    meta = {k: v for k, v in (schema.metadata or {}).items() if k != b"pandas"}
    return pa.schema(fields, metadata=meta or None)


def parquet_rejects_schema(spec: Spec) -> Any:
    """Rejects schema: row number and reason, then every input field."""
    import pyarrow as pa

    schema = _schema(spec)
    return pa.schema([pa.field("uxcx_row", pa.int64()), pa.field("uxcx_reason", pa.string()), *schema])


def parquet_row_starts(files: Sequence[Path]) -> list[int]:
    """Rows per file (from metadata only)."""
    import pyarrow.parquet as pq

    return [pq.ParquetFile(p).metadata.num_rows for p in files]


def parquet_chunks(path: Path, chunk_size: int, first_index: int = 0, first_row: int = 1,
                   start: int = 0, stop: int | None = None) -> Iterator[Chunk]:
    """Chunks of exactly ``chunk_size`` rows (the last shorter) of rows [start, stop) of one file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.metadata
    stop = meta.num_rows if stop is None else stop
    # Only the row groups that overlap [start, stop); rows before `start` in the first are skipped.
    groups: list[int] = []
    skip, pos = 0, 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if pos + n > start and pos < stop:
            if not groups:
                skip = start - pos
            groups.append(g)
        pos += n
    pending: list[Any] = []
    have, index, row_no, want = 0, first_index, first_row, stop - start
    if groups:
        for batch in pf.iter_batches(batch_size=chunk_size, row_groups=groups, use_threads=False):
            if skip:
                drop = min(skip, batch.num_rows)
                batch, skip = batch.slice(drop), skip - drop
            if batch.num_rows > want:
                batch = batch.slice(0, want)
            want -= batch.num_rows
            pending.append(batch)
            have += batch.num_rows
            while have >= chunk_size:
                table = pa.Table.from_batches(pending, schema=pf.schema_arrow)
                yield Chunk(index, row_no, table.slice(0, chunk_size), chunk_size, 0)
                rest = table.slice(chunk_size)
                pending, have = rest.to_batches(), rest.num_rows
                index, row_no = index + 1, row_no + chunk_size
            if want <= 0:
                break
    if have:
        yield Chunk(index, row_no, pa.Table.from_batches(pending, schema=pf.schema_arrow), have, 0)


def parquet_texts(column: Any) -> list[str | None]:
    """A string column as Python strings; values that are not valid UTF-8 keep their bytes (surrogateescape).

    Parquet writers do not all check that strings are UTF-8; such a row must become a reject, not a crash.
    """
    import pyarrow as pa

    try:
        return list(column.to_pylist())
    except UnicodeDecodeError:
        raw = column.cast(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary())
        return [None if b is None else b.decode("utf-8", "surrogateescape") for b in raw.to_pylist()]


def label_parquet(model: Any, spec: Spec, chunk: Chunk) -> ChunkResult:
    """Validate, label and build the output and rejects tables of one Parquet chunk."""
    import pyarrow as pa

    table = chunk.rows
    counts = Counts(read=chunk.n_rows)
    col = spec.text_column
    texts = parquet_texts(table.column(col))
    reasons = [check_text(t, col, spec.max_chars) for t in texts]
    ok = [r is None for r in reasons]
    good_texts = [t for t, k in zip(texts, ok) if k]
    preds = model.predict_batch(good_texts, evidence=False) if good_texts else []
    good = table.filter(pa.array(ok, pa.bool_()))
    good = good.drop_columns([c for c in UXCX_COLUMNS if c in good.column_names])
    out_schema = parquet_out_schema(spec)
    labels = [p.label for p in preds]
    topics = [p.topic for p in preds]
    n = len(preds)
    out = good.append_column(out_schema.field("uxcx_label"), pa.array(labels, pa.string()))
    out = out.append_column(out_schema.field("uxcx_labels"), pa.array([list(p.labels) for p in preds], pa.list_(pa.string())))
    out = out.append_column(out_schema.field("uxcx_topic"), pa.array(topics, pa.string()))
    out = out.append_column(out_schema.field("uxcx_confidence"), pa.array([_fmt_conf(p.confidence) for p in preds], pa.float64()))
    out = out.append_column(out_schema.field("uxcx_model_version"), pa.array([spec.model_version] * n, pa.string()))
    out = out.replace_schema_metadata(out_schema.metadata)
    counts.labels.update(labels)
    counts.topics.update(topics)
    bad_idx = [i for i, k in enumerate(ok) if not k]
    rejects = None
    if bad_idx:
        bad = table.take(pa.array(bad_idx, pa.int64()))
        bad = bad.add_column(0, pa.field("uxcx_reason", pa.string()), pa.array([reasons[i] for i in bad_idx], pa.string()))
        bad = bad.add_column(0, pa.field("uxcx_row", pa.int64()), pa.array([chunk.first_row + i for i in bad_idx], pa.int64()))
        rejects = bad
    counts.written, counts.rejected = n, len(bad_idx)
    return ChunkResult(out, rejects, counts)


LABELLERS = {"csv": label_csv, "jsonl": label_jsonl, "parquet": label_parquet}


def label_chunk(model: Any, spec: Spec, chunk: Chunk) -> ChunkResult:
    """Label one chunk in its format."""
    return LABELLERS[spec.fmt](model, spec, chunk)


# ----------------------------------------------------------- chunk files
def write_part(path: Path, fmt: str, data: Any) -> int:
    """Write a chunk's output or rejects (bytes, or an Arrow table as an IPC file); return its size."""
    if fmt == "parquet":
        import pyarrow as pa

        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
            writer.write_table(data)
    else:
        path.write_bytes(data)
    return path.stat().st_size


def read_part_table(path: Path) -> Any:
    """An Arrow table written by `write_part`."""
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


class FinalWriter:
    """Writes a final output or rejects file from chunk parts, in chunk order."""

    def __init__(self, path: Path, fmt: str, header: Sequence[str] | None = None, schema: Any = None):
        self.path, self.fmt = path, fmt
        self._pending: list[Any] = []
        self._pending_rows = 0
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._pq = pq.ParquetWriter(str(path), schema)
            self._schema = schema
        else:
            self._f = path.open("wb")
            if header is not None:
                self._f.write(csv_header_bytes(header))

    def add(self, data: Any) -> None:
        """Append one chunk (bytes, or an Arrow table)."""
        if self.fmt != "parquet":
            self._f.write(data)
            return
        self._pending.append(data.cast(self._schema))
        self._pending_rows += data.num_rows
        if self._pending_rows >= PARQUET_ROW_GROUP:
            self._flush()

    def add_file(self, part: Path) -> None:
        """Append one chunk file written by `write_part`."""
        if self.fmt == "parquet":
            self.add(read_part_table(part))
        else:
            with part.open("rb") as f:
                while block := f.read(1 << 20):
                    self._f.write(block)

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            self._pq.write_table(pa.concat_tables(self._pending), row_group_size=max(self._pending_rows, 1))
            self._pending, self._pending_rows = [], 0

    def close(self, fsync: bool = True) -> None:
        """Finish the file and flush it to disk."""
        import os

        if self.fmt == "parquet":
            self._flush()
            self._pq.close()
            if fsync:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        else:
            self._f.flush()
            if fsync:
                os.fsync(self._f.fileno())
            self._f.close()

"""Backlog relabelling: stream a CSV/JSONL/Parquet file through the model in chunks, in parallel, resumably.

The parent process reads and cuts the input into fixed-size chunks; worker processes (each loading
the model once) label a chunk and write it into the state folder ``OUTPUT.partial/`` (data first,
then a small JSON marker, each by tmp + rename). A killed job resumes by skipping chunks whose
marker is there. When every chunk is done the parent concatenates them into a temporary file,
fsyncs it and renames it into place, then removes the state.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifier import artifacts
from classifier.batch import MAX_TEXT_CHARS, InputError
from classifier.relabel_io import (
    Chunk,
    Counts,
    FinalWriter,
    Spec,
    csv_chunks,
    csv_header,
    format_of,
    input_files,
    jsonl_chunks,
    label_chunk,
    parquet_chunks,
    parquet_out_schema,
    parquet_rejects_schema,
    parquet_schema,
    schema_bytes,
    write_part,
)

STATE_VERSION = 1
DEFAULT_CHUNK_SIZE = 5_000
MAX_WORKERS = 64
_HEAD_BYTES = 1 << 20


class StateError(InputError):
    """The state folder of an earlier run is in the way, or does not match this job."""


@dataclass(frozen=True)
class Job:
    """What to relabel, and how."""

    input: Path
    output: Path
    models_dir: Path
    model_version: str | None = None
    fmt: str | None = None
    text_column: str = "text"
    id_column: str = "id"
    workers: int = 1
    chunk_size: int = DEFAULT_CHUNK_SIZE
    resume: bool = False
    diff: Path | None = None
    max_chars: int = MAX_TEXT_CHARS


@dataclass
class Progress:
    """Where a running job is; handed to the progress callback after every chunk."""

    rows: int
    done_bytes: int
    total_bytes: int
    total_rows: int | None
    elapsed: float


@dataclass
class Summary:
    """What a finished job did."""

    output: str
    rejects: str
    model_version: str
    counts: Counts
    seconds: float
    chunks: int
    resumed_chunks: int = 0
    diff: dict[str, Any] | None = None
    engine: str = "local"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.counts.read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (one line with `--summary-json`)."""
        c = self.counts
        return {"output": self.output, "rejects": self.rejects, "engine": self.engine,
                "model_version": self.model_version, "rows_read": c.read, "rows_written": c.written,
                "rows_rejected": c.rejected, "labels": dict(sorted(c.labels.items())),
                "topics": dict(sorted(c.topics.items())), "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 1), "chunks": self.chunks,
                "resumed_chunks": self.resumed_chunks, "diff": self.diff, **self.extra}

    def text(self) -> str:
        """The human summary printed at the end."""
        c = self.counts
        lines = [
            f"rows read {c.read:,}, written {c.written:,}, rejected {c.rejected:,} "
            f"in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s; engine {self.engine}, model {self.model_version})",
            "labels: " + ", ".join(f"{k} {v:,}" for k, v in sorted(c.labels.items(), key=lambda kv: -kv[1])),
            "topics: " + ", ".join(f"{k} {v:,}" for k, v in sorted(c.topics.items(), key=lambda kv: -kv[1])),
            f"output: {self.output}",
            f"rejects: {self.rejects}" + ("" if c.rejected else " (none)"),
        ]
        if self.resumed_chunks:
            lines.append(f"resumed: {self.resumed_chunks} of {self.chunks} chunks were already done")
        if self.diff is not None:
            lines.append(f"diff: {self.diff['path']}: {self.diff['text']}")
        return "\n".join(lines)


# ------------------------------------------------------------- the input
@dataclass(frozen=True)
class Source:
    """The input resolved: its files, format, columns and the spec workers label with."""

    files: tuple[Path, ...]
    fmt: str
    spec: Spec
    data_starts: tuple[int, ...]  # CSV: byte offset of the first data row of each file
    total_bytes: int
    total_rows: int | None  # known up front for Parquet only


def open_source(job: Job, model_version: str) -> Source:
    """Resolve the input and check it up front: format, columns, text column (InputError if unusable)."""
    if not job.input.exists():
        raise InputError(f"input file {job.input} not found")
    fmt = format_of(job.input, job.fmt)
    files = input_files(job.input, fmt)
    for p in files:
        _check_not_empty_or_utf16(p, fmt, job.text_column)
    total = sum(p.stat().st_size for p in files)
    starts: list[int] = []
    columns: tuple[str, ...] = ()
    schema = b""
    total_rows = None
    if fmt == "csv":
        for p in files:
            header, start = csv_header(p)
            if columns and tuple(header) != columns:
                raise InputError(f"{p} has other columns than {files[0]}: every part must have the same header")
            columns = tuple(header)
            starts.append(start)
        if job.text_column not in columns:
            raise InputError(_no_column("CSV", files[0], job.text_column, columns))
    elif fmt == "parquet":
        import pyarrow as pa

        from classifier.relabel_io import parquet_row_starts

        first = parquet_schema(files[0])
        for p in files[1:]:
            if not parquet_schema(p).equals(first):
                raise InputError(f"{p} has another schema than {files[0]}: every part must have the same schema")
        if job.text_column not in first.names:
            raise InputError(_no_column("Parquet", files[0], job.text_column, first.names))
        ttype = first.field(job.text_column).type
        if not (pa.types.is_string(ttype) or pa.types.is_large_string(ttype)):
            raise InputError(f"column '{job.text_column}' is {ttype}, not a string column")
        columns = tuple(first.names)
        schema = schema_bytes(first)
        total_rows = sum(parquet_row_starts(files))
        starts = [0] * len(files)
    else:
        starts = [0] * len(files)
    spec = Spec(fmt=fmt, text_column=job.text_column, model_version=model_version, columns=columns,
                max_chars=job.max_chars, schema_ipc=schema)
    return Source(tuple(files), fmt, spec, tuple(starts), total, total_rows)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_EXPECTED = {"csv": "a header row with a '{}' column", "jsonl": "one JSON object per line",
             "parquet": "a Parquet file with a '{}' column"}


def _check_not_empty_or_utf16(path: Path, fmt: str, text_column: str) -> None:
    """A zero-byte file, or a UTF-16 text file, is refused as a whole rather than read as rows."""
    with path.open("rb") as f:
        head = f.read(2)
    if not head:
        raise InputError(f"{path} is empty (0 bytes): expected {_EXPECTED[fmt].format(text_column)}")
    if fmt != "parquet" and head in _UTF16_BOMS:
        raise InputError(f"{path} is UTF-16 text (it starts with a UTF-16 byte-order mark); relabel reads UTF-8: "
                         f"convert it first, e.g. iconv -f UTF-16 -t UTF-8")


def _no_column(kind: str, path: Path, column: str, found: Sequence[str]) -> str:
    # repr: a stray space or BOM in a column name must show
    return (f"the {kind} file {path} has no '{column}' column (columns found: {', '.join(map(repr, found)) or 'none'}); "
            "name the text column with --text-column")


def iter_chunks(src: Source, chunk_size: int) -> Iterator[Chunk]:
    """Every chunk of the input, in order; chunks never span two part files, rows are numbered across them."""
    index, row = 0, 1
    done_bytes = 0
    for path, start in zip(src.files, src.data_starts):
        last: Chunk | None = None
        if src.fmt == "csv":
            gen = csv_chunks(path, start, chunk_size, index, row)
        elif src.fmt == "jsonl":
            gen = jsonl_chunks(path, chunk_size, index, row)
        else:
            gen = parquet_chunks(path, chunk_size, index, row)
        for chunk in gen:
            chunk.end_offset += done_bytes
            last = chunk
            yield chunk
        done_bytes += path.stat().st_size
        if last is not None:
            index, row = last.index + 1, last.first_row + last.n_rows


# -------------------------------------------------------------- the state
def state_dir(output: Path) -> Path:
    """Where a running or killed job keeps its chunks: ``OUTPUT.partial/``."""
    return output.with_name(output.name + ".partial")


def side_path(output: Path, kind: str, fmt: str) -> Path:
    """``OUTPUT.rejects.<fmt>`` and ``OUTPUT.diff.<fmt>``."""
    return output.with_name(f"{output.name}.{kind}.{fmt}")


def _fingerprint(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(_HEAD_BYTES))
        if size > 2 * _HEAD_BYTES:
            f.seek(size - _HEAD_BYTES)
        h.update(f.read(_HEAD_BYTES))
    return {"path": str(path.resolve()), "size": size, "sha256_head_tail": h.hexdigest()}


def job_manifest(job: Job, src: Source, engine: str) -> dict[str, Any]:
    """What must be the same for a resumed run to continue a killed one."""
    return {
        "uxcx_relabel_state": STATE_VERSION,
        "engine": engine,
        "inputs": [_fingerprint(p) for p in src.files],
        "format": src.fmt,
        "columns": list(src.spec.columns),
        "text_column": job.text_column,
        "chunk_size": job.chunk_size,
        "max_text_chars": job.max_chars,
        "model_version": src.spec.model_version,
    }


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class State:
    """The ``OUTPUT.partial/`` folder: manifest, lock, and one marker plus data files per finished chunk."""

    def __init__(self, root: Path):
        self.root = root
        self._lock_fd: int | None = None

    def open(self, manifest: dict[str, Any], resume: bool) -> int:
        """Create or re-open the state; return how many chunks are already done. Raises StateError."""
        mpath = self.root / "manifest.json"
        if self.root.exists() and not resume:
            raise StateError(
                f"{self.root} is left from an earlier run that did not finish; add --resume to continue it, "
                f"or delete that folder to start over"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            if mpath.is_file():
                try:
                    old = json.loads(mpath.read_text(encoding="utf-8"))
                except json.JSONDecodeError:
                    old = None
                if old != manifest:
                    raise StateError(self._mismatch(old, manifest, self.root))
            else:
                _write_atomic(mpath, json.dumps(manifest, indent=1).encode())
            for tmp in self.root.glob("*.tmp"):
                tmp.unlink()
            return len(self.done())
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _mismatch(old: Any, new: dict[str, Any], root: Path) -> str:
        if not isinstance(old, dict):
            what = ["its manifest is unreadable"]
        else:
            names = {"inputs": "the input file (path, size or content)", "chunk_size": "--chunk-size",
                     "model_version": "the model version", "format": "the format", "columns": "the columns",
                     "text_column": "--text-column", "engine": "the engine", "max_text_chars": "--max-text-chars"}
            what = [f"{names.get(k, k)} ({old.get(k)!r} then, {new.get(k)!r} now)" if k != "inputs" else names[k]
                    for k in new if old.get(k) != new.get(k)]
        return (f"cannot resume from {root}: it belongs to another job; differs: {'; '.join(what)}. "
                f"Delete {root} to start over.")

    def _lock(self) -> None:
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(f"another uxcx relabel is writing {self.root}") from None
        self._lock_fd = fd

    def marker(self, index: int) -> Path:
        return self.root / f"{index:08d}.json"

    def part(self, index: int, kind: str) -> Path:
        return self.root / f"{index:08d}.{kind}"

    def done(self) -> dict[int, dict[str, Any]]:
        """Finished chunks: a marker whose recorded sizes match the data files beside it."""
        out: dict[int, dict[str, Any]] = {}
        for m in self.root.glob("[0-9]*.json"):
            try:
                meta = json.loads(m.read_text(encoding="utf-8"))
                ok = all((self.root / name).stat().st_size == size for name, size in meta["files"].items())
            except (OSError, ValueError, KeyError):
                ok = False
            if ok:
                out[int(m.stem)] = meta
        return out

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)


def save_chunk(root: Path, fmt: str, index: int, result: Any) -> dict[str, Any]:
    """Write one labelled chunk into the state (data files, then the marker); return the marker."""
    files: dict[str, int] = {}
    for kind, data in (("out", result.out), ("rej", result.rejects)):
        if data is None:
            continue
        final = root / f"{index:08d}.{kind}"
        tmp = final.with_name(final.name + ".tmp")
        write_part(tmp, fmt, data)
        os.replace(tmp, final)
        files[final.name] = final.stat().st_size
    meta = {"index": index, "files": files, "counts": result.counts.as_dict()}
    _write_atomic(root / f"{index:08d}.json", json.dumps(meta).encode())
    return meta


# ---------------------------------------------------------- worker side
@dataclass
class _Worker:
    model: Any
    spec: Spec
    root: Path


# One per worker process, set by the pool initializer: a process-wide model is the point of a pool
# worker (loaded once, reused for every chunk). The parent never sets it.
_worker: _Worker | None = None


def freeze_model_memory() -> None:
    """Keep the garbage collector off long-lived model objects (it costs up to 30 % otherwise)."""
    gc.collect()
    gc.freeze()


def warm_up(model: Any) -> None:
    """Build the model's lazy runtime (embedding tables) before timing or freezing starts."""
    model.predict_batch(["warm up"], evidence=False)


def limit_blas_threads() -> None:
    """One BLAS thread per worker process: parallelism comes from the processes."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _init_worker(models_dir: str, version: str, spec: Spec, root: str) -> None:
    global _worker
    limit_blas_threads()
    loaded = artifacts.load(Path(models_dir), version)
    _worker = _Worker(loaded.model, spec, Path(root))
    warm_up(loaded.model)
    freeze_model_memory()


def _work(chunk: Chunk) -> tuple[int, dict[str, Any]]:
    assert _worker is not None, "worker not initialised"
    result = label_chunk(_worker.model, _worker.spec, chunk)
    return chunk.n_rows, save_chunk(_worker.root, _worker.spec.fmt, chunk.index, result)


# ------------------------------------------------------------ local run
ProgressFn = Callable[[Progress], None]


def pin_version(job: Job) -> str:
    """The model version every worker will load, verified up front (checksum, libraries, labels)."""
    name = job.model_version or artifacts.current_version(job.models_dir)
    if name is None:
        raise artifacts.ArtifactError(f"no current model in {job.models_dir}; run `uxcx train` (or `make train`) first")
    artifacts.verify(job.models_dir, artifacts.check_version_name(name))
    return name


def _map_chunks(job: Job, version: str, loaded: artifacts.LoadedModel | None, src: Source, root: Path, skip: set[int],
                on_done: Callable[[Chunk, int, dict[str, Any] | None], None]) -> None:
    """Label every chunk not in ``skip``, in order; ``on_done`` sees each chunk once it is saved."""
    global _worker
    chunks = iter_chunks(src, job.chunk_size)
    if job.workers <= 1:
        limit_blas_threads()
        loaded = loaded or artifacts.load(job.models_dir, version)
        _worker = _Worker(loaded.model, src.spec, root)
        warm_up(loaded.model)
        freeze_model_memory()
        try:
            for chunk in chunks:
                if chunk.index in skip:
                    on_done(chunk, chunk.n_rows, None)
                    continue
                _, meta = _work(chunk)
                on_done(chunk, chunk.n_rows, meta)
        finally:
            _worker = None
        return
    if sys.platform == "linux":
        # fork after loading, warming and freezing the model here: the workers share its pages
        # (embedding tables, heads, imports) copy-on-write instead of each holding ~450 MB of its own,
        # and start at once. Safe here: this process has started no threads of its own yet.
        loaded = loaded or artifacts.load(job.models_dir, version)
        _worker = _Worker(loaded.model, src.spec, root)
        warm_up(loaded.model)
        freeze_model_memory()
        ctx: Any = multiprocessing.get_context("fork")
        init: Callable[..., None] = limit_blas_threads
        initargs: tuple[Any, ...] = ()
    else:
        # Elsewhere (no safe fork): a server process imports the libraries once; each worker loads the model.
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["classifier.relabel", "classifier.model"])
        init, initargs = _init_worker, (str(job.models_dir), version, src.spec, str(root))
    # Bounded hand-off: at most two chunks per worker in flight, so memory stays flat however fast we read.
    inflight: deque[tuple[Chunk, Any]] = deque()
    try:
        pool = ctx.Pool(job.workers, initializer=init, initargs=initargs)
    finally:
        _worker = None  # the parent only reads and writes; the forked workers keep their copy
    with pool:
        for chunk in chunks:
            if chunk.index in skip:
                inflight.append((chunk, None))
            else:
                # The parent keeps only the chunk's position; its rows travel to the worker.
                light = Chunk(chunk.index, chunk.first_row, None, chunk.n_rows, chunk.end_offset)
                inflight.append((light, pool.apply_async(_work, (chunk,))))
            while len(inflight) > 2 * job.workers:
                _drain_one(inflight, on_done)
        while inflight:
            _drain_one(inflight, on_done)
        pool.close()
        pool.join()


def _drain_one(inflight: deque[tuple[Chunk, Any]], on_done: Callable[[Chunk, int, dict[str, Any] | None], None]) -> None:
    chunk, res = inflight.popleft()
    if res is None:
        on_done(chunk, chunk.n_rows, None)
    else:
        _, meta = res.get()
        on_done(chunk, chunk.n_rows, meta)


def relabel(job: Job, progress: ProgressFn | None = None, loaded: artifacts.LoadedModel | None = None) -> Summary:
    """Run a relabelling job with the local engine; raises InputError/StateError/ArtifactError.

    ``loaded`` (optional) is used in-process with one worker instead of loading the model again.
    """
    t0 = time.perf_counter()
    version = loaded.version if loaded is not None else pin_version(job)
    src = open_source(job, version)
    if job.diff is not None:
        from classifier.relabel_diff import check_previous

        check_previous(job.diff, job.id_column, src)
    st = State(state_dir(job.output))
    resumed = st.open(job_manifest(job, src, "local"), job.resume)
    try:
        done = st.done()
        n_chunks = 0
        rows = 0
        last_report = 0.0

        def on_done(chunk: Chunk, n: int, meta: dict[str, Any] | None) -> None:
            nonlocal n_chunks, rows, last_report
            n_chunks = chunk.index + 1
            rows += n
            if meta is not None:
                done[chunk.index] = meta
            now = time.perf_counter()
            if progress is not None and now - last_report >= 0.5:
                last_report = now
                progress(Progress(rows, chunk.end_offset, src.total_bytes, src.total_rows, now - t0))

        _map_chunks(job, version, loaded, src, st.root, set(done), on_done)
        if progress is not None:
            progress(Progress(rows, src.total_bytes, src.total_bytes, src.total_rows, time.perf_counter() - t0))
        counts = Counts()
        for i in range(n_chunks):
            counts.add(Counts.from_dict(done[i]["counts"]))
        out_tmp, rej_tmp = _assemble(st.root, src, n_chunks, done)
        diff_info = None
        diff_tmp = None
        if job.diff is not None:
            from classifier.relabel_diff import diff_outputs

            diff_tmp = st.root / "diff.assembling"
            diff_info = diff_outputs(job.diff, out_tmp, diff_tmp, job.id_column, src.fmt, st.root)
            diff_info["path"] = str(side_path(job.output, "diff", src.fmt))
        rejects_path = side_path(job.output, "rejects", src.fmt)
        os.replace(rej_tmp, rejects_path)
        if diff_tmp is not None:
            os.replace(diff_tmp, side_path(job.output, "diff", src.fmt))
        # The output goes last: once it is there, everything beside it is complete too.
        os.replace(out_tmp, job.output)
        _fsync_dir(job.output.parent)
    except BaseException:
        st.close()
        raise
    st.remove()
    return Summary(str(job.output), str(rejects_path), version, counts, time.perf_counter() - t0,
                   n_chunks, resumed, diff_info)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def final_writers(src: Source, out: Path, rej: Path) -> tuple[FinalWriter, FinalWriter]:
    """Writers of the output and rejects files, with the header or schema of the format."""
    from classifier.relabel_io import REJECT_COLUMNS

    spec = src.spec
    if src.fmt == "csv":
        return (FinalWriter(out, "csv", header=spec.out_columns),
                FinalWriter(rej, "csv", header=[*REJECT_COLUMNS, *spec.columns]))
    if src.fmt == "parquet":
        return (FinalWriter(out, "parquet", schema=parquet_out_schema(spec)),
                FinalWriter(rej, "parquet", schema=parquet_rejects_schema(spec)))
    return FinalWriter(out, "jsonl"), FinalWriter(rej, "jsonl")


def _assemble(root: Path, src: Source, n_chunks: int, done: dict[int, dict[str, Any]]) -> tuple[Path, Path]:
    out_tmp, rej_tmp = root / "output.assembling", root / "rejects.assembling"
    missing = [i for i in range(n_chunks) if i not in done]
    if missing:
        raise RuntimeError(f"chunks {missing[:5]} are not done; cannot assemble")  # a bug, not bad input
    out_w, rej_w = final_writers(src, out_tmp, rej_tmp)
    for i in range(n_chunks):
        files = done[i]["files"]
        if f"{i:08d}.out" in files:
            out_w.add_file(root / f"{i:08d}.out")
        if f"{i:08d}.rej" in files:
            rej_w.add_file(root / f"{i:08d}.rej")
    out_w.close()
    rej_w.close()
    return out_tmp, rej_tmp

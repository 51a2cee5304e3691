"""The Dask engine of backlog relabelling: the same chunks, labelled on a Dask cluster.

The client cuts the input into exactly the chunks the local engine would cut (CSV: one parsing pass
for the byte offsets of chunk boundaries; Parquet: row counts from the metadata), groups
consecutive chunks into partitions, ships the model to every worker once (``scatter`` with
``broadcast``), and each task labels its chunks with the local engine's own code and writes one
part file. The model sees identical batches, so the output equals the local engine's row for row,
byte for byte. Needs the optional extra: ``pip install 'uxcx[dask]'``.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier import artifacts
from classifier.batch import InputError
from classifier.relabel import (
    Job,
    Progress,
    ProgressFn,
    Source,
    State,
    Summary,
    _fsync_dir,
    freeze_model_memory,
    job_manifest,
    open_source,
    side_path,
    state_dir,
    warm_up,
)
from classifier.relabel_io import (
    REJECT_COLUMNS,
    Counts,
    FinalWriter,
    Spec,
    csv_chunk_bounds,
    csv_chunks,
    label_chunk,
    parquet_chunks,
    parquet_out_schema,
    parquet_rejects_schema,
    parquet_row_starts,
)

#: Rows per partition the planner aims at (a partition is a whole number of chunks).
PARTITION_ROWS = 200_000


@dataclass(frozen=True)
class Partition:
    """Consecutive chunks of one file: CSV byte range or Parquet row range, and their numbering."""

    number: int
    path: str
    start: int
    end: int
    first_index: int
    first_row: int
    n_rows: int
    n_chunks: int
    input_bytes: int


def plan(src: Source, chunk_size: int, workers: int) -> list[Partition]:
    """Partitions covering the input, each a whole number of the local engine's chunks."""
    # (path, start, end, rows) per chunk, in order.
    chunks: list[tuple[Path, int, int, int]] = []
    if src.fmt == "csv":
        for path, data_start in zip(src.files, src.data_starts):
            chunks += [(path, s, e, n) for s, e, n in csv_chunk_bounds(path, data_start, chunk_size)]
    else:
        for path, n_rows in zip(src.files, parquet_row_starts(src.files)):
            chunks += [(path, a, min(a + chunk_size, n_rows), min(chunk_size, n_rows - a))
                       for a in range(0, n_rows, chunk_size)]
    # Enough partitions to keep every worker busy, none much over PARTITION_ROWS.
    per = max(1, min(PARTITION_ROWS // chunk_size, math.ceil(len(chunks) / (4 * workers))))
    parts: list[Partition] = []
    index, row, i = 0, 1, 0
    while i < len(chunks):
        group = [chunks[i]]
        while len(group) < per and i + len(group) < len(chunks) and chunks[i + len(group)][0] == group[0][0]:
            group.append(chunks[i + len(group)])
        n = sum(c[3] for c in group)
        nbytes = group[-1][2] - group[0][1] if src.fmt == "csv" else 0
        parts.append(Partition(len(parts), str(group[0][0]), group[0][1], group[-1][2], index, row, n, len(group), nbytes))
        index, row, i = index + len(group), row + n, i + len(group)
    return parts


def _final_writer(spec: Spec, path: Path, rejects: bool) -> FinalWriter:
    if spec.fmt == "csv":
        header = [*REJECT_COLUMNS, *spec.columns] if rejects else spec.out_columns
        return FinalWriter(path, "csv", header=header)
    schema = parquet_rejects_schema(spec) if rejects else parquet_out_schema(spec)
    return FinalWriter(path, "parquet", schema=schema)


def _prepare_worker(model: Any) -> None:
    warm_up(model)
    freeze_model_memory()


def run_partition(model: Any, spec: Spec, part: Partition, out_dir: str, chunk_size: int) -> dict[str, Any]:
    """Label one partition on a worker: write its part file (and its rejects part); return the counts."""
    path = Path(part.path)
    if spec.fmt == "csv":
        chunks = csv_chunks(path, part.start, chunk_size, part.first_index, part.first_row, end=part.end)
    else:
        chunks = parquet_chunks(path, chunk_size, part.first_index, part.first_row, start=part.start, stop=part.end)
    name = f"part-{part.number:05d}.{spec.fmt}"
    out_w = _final_writer(spec, Path(out_dir) / "parts" / name, rejects=False)
    rej_path = Path(out_dir) / "rejects" / name
    rej_w: FinalWriter | None = None
    counts = Counts()
    for chunk in chunks:
        result = label_chunk(model, spec, chunk)
        out_w.add(result.out)
        if result.rejects is not None:
            rej_w = rej_w or _final_writer(spec, rej_path, rejects=True)
            rej_w.add(result.rejects)
        counts.add(result.counts)
    out_w.close()
    if rej_w is not None:
        rej_w.close()
    return {"counts": counts.as_dict(), "rejects": rej_w is not None}


def relabel_dask(job: Job, scheduler: str | None = None, progress: ProgressFn | None = None) -> Summary:
    """Run a relabelling job on Dask (a LocalCluster of ``job.workers`` processes, or ``scheduler``)."""
    from dask.distributed import Client, LocalCluster, as_completed

    t0 = time.perf_counter()
    if job.resume:
        raise InputError("--resume is for the local engine; a Dask job reruns its failed tasks itself")
    loaded = artifacts.load(job.models_dir, job.model_version)
    src = open_source(job, loaded.version)
    if src.fmt == "jsonl":
        raise InputError("--engine dask reads CSV or Parquet; use --engine local for JSONL")
    if job.diff is not None:
        from classifier.relabel_diff import check_previous

        check_previous(job.diff, job.id_column, src)
    st = State(state_dir(job.output))
    st.open(job_manifest(job, src, "dask"), resume=False)
    try:
        for sub in ("parts", "rejects"):
            (st.root / sub).mkdir()
        parts = plan(src, job.chunk_size, job.workers)
        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=job.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            # Shipped once to every worker, not once per partition.
            model = client.scatter(loaded.model, broadcast=True, hash=False)
            # Warm the model and freeze it out of the GC on every worker, before the partitions run.
            client.gather([client.submit(_prepare_worker, model, workers=[w], allow_other_workers=False, pure=False)
                           for w in client.scheduler_info()["workers"]])
            futures = [client.submit(run_partition, model, src.spec, p, str(st.root), job.chunk_size,
                                     key=f"uxcx-relabel-part-{p.number}-{os.getpid()}-{time.time_ns()}")
                       for p in parts]
            by_key = {f.key: p for f, p in zip(futures, parts)}
            rows, done_bytes = 0, 0
            for fut in as_completed(futures):
                fut.result()  # raises a task's error here
                p = by_key[fut.key]
                rows += p.n_rows
                done_bytes += p.input_bytes
                if progress is not None:
                    progress(Progress(rows, done_bytes, src.total_bytes, src.total_rows, time.perf_counter() - t0))
            results = client.gather(futures)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        counts = Counts()
        for r in results:
            counts.add(Counts.from_dict(r["counts"]))
        rej_tmp = st.root / "rejects.assembling"
        w = _final_writer(src.spec, rej_tmp, rejects=True)
        for p, r in zip(parts, results):
            if r["rejects"]:
                part_file = st.root / "rejects" / f"part-{p.number:05d}.{src.fmt}"
                if src.fmt == "csv":
                    with part_file.open("rb") as f:
                        f.readline()  # the part's own header
                        shutil.copyfileobj(f, w._f)
                else:
                    import pyarrow.parquet as pq

                    w.add(pq.read_table(part_file))
        w.close()
        diff_info = None
        if job.diff is not None:
            from classifier.relabel_diff import diff_outputs

            diff_tmp = st.root / "diff.assembling"
            diff_info = diff_outputs(job.diff, st.root / "parts", diff_tmp, job.id_column, src.fmt, st.root)
            diff_info["path"] = str(side_path(job.output, "diff", src.fmt))
            os.replace(diff_tmp, side_path(job.output, "diff", src.fmt))
        rejects_path = side_path(job.output, "rejects", src.fmt)
        os.replace(rej_tmp, rejects_path)
        _fsync_dir(st.root / "parts")
        _replace_dir(st.root / "parts", job.output, st.root / "previous-output")
        _fsync_dir(job.output.parent)
    except BaseException:
        # A Dask job is not resumable: its half-written state would only block the next run.
        st.remove()
        raise
    st.remove()
    return Summary(str(job.output), str(rejects_path), loaded.version, counts, time.perf_counter() - t0,
                   sum(p.n_chunks for p in parts), 0, diff_info, engine="dask", extra={"partitions": len(parts)})


def _replace_dir(new: Path, target: Path, aside: Path) -> None:
    """Put the folder ``new`` at ``target``; an earlier output there is moved aside first, then removed."""
    if target.is_dir() and not target.is_symlink():
        os.replace(target, aside)
    elif target.exists():
        target.unlink()
    os.replace(new, target)
    if aside.exists():
        shutil.rmtree(aside)

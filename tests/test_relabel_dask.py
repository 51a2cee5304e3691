"""The Dask engine (classifier.relabel_dask) on a LocalCluster: the same output as the local engine, row for row."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.relabel import Job, relabel
from tests.conftest import ROOT
from tests.test_relabel import corpus_texts, write_csv

pytest.importorskip("distributed", reason="the Dask engine is an optional extra: pip install 'uxcx[dask]'")

MODELS = ROOT / "models"


def _parts(folder: Path, suffix: str) -> list[Path]:
    return sorted(folder.glob(f"part-*.{suffix}"))


@pytest.fixture(scope="module")
def scheduler():
    """One LocalCluster (2 worker processes, 1 thread each) for the module, reached by its address."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_dask_csv_and_parquet_equal_the_local_engine(tmp_path, shipped, scheduler):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from classifier.relabel_dask import relabel_dask

    texts = corpus_texts(1200)
    texts[17] = ""
    texts[400] = "multi-line\nquoted, \"text\": the app\ncrashes on start"
    rows = [[f"{i:05d}", ("app", "mail")[i % 2], t] for i, t in enumerate(texts)]
    src = tmp_path / "in.csv"
    write_csv(src, rows, ["id", "channel", "text"])
    local = tmp_path / "local.csv"
    relabel(Job(src, local, MODELS, chunk_size=50), loaded=shipped)

    out = tmp_path / "dask_out"
    s = relabel_dask(Job(src, out, MODELS, workers=2, chunk_size=50), scheduler=scheduler)
    parts = _parts(out, "csv")
    assert len(parts) > 2 and s.extra["partitions"] == len(parts)
    header, *body = local.read_bytes().splitlines(keepends=True)
    joined = []
    for p in parts:
        lines = p.read_bytes().splitlines(keepends=True)
        assert lines[0] == header
        joined += lines[1:]
    assert b"".join(joined) == b"".join(body)  # byte for byte, multi-line field included
    assert (tmp_path / "dask_out.rejects.csv").read_bytes() == (tmp_path / "local.csv.rejects.csv").read_bytes()
    assert (s.counts.read, s.counts.written, s.counts.rejected) == (1200, 1199, 1)

    psrc = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(1200)), "text": texts}), psrc, row_group_size=333)
    plocal = tmp_path / "local.parquet"
    relabel(Job(psrc, plocal, MODELS, chunk_size=50), loaded=shipped)
    pout = tmp_path / "dask_pq"
    relabel_dask(Job(psrc, pout, MODELS, workers=2, chunk_size=50), scheduler=scheduler)
    got = pa.concat_tables([pq.read_table(p) for p in _parts(pout, "parquet")])
    assert got.equals(pq.read_table(plocal))

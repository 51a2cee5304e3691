"""`uxcx relabel` (classifier.relabel*): columns, order, rejects, formats, atomic output, resume after SIGKILL, diff."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from classifier.relabel import Job, StateError, relabel, state_dir
from classifier.relabel_diff import diff_outputs
from classifier.relabel_io import UXCX_COLUMNS
from tests.conftest import ROOT

UXCX = [sys.executable, "-m", "cli.main"]
MODELS = ROOT / "models"
TRAIN = ROOT / "training" / "data" / "train.jsonl"


def corpus_texts(n: int) -> list[str]:
    texts = []
    with TRAIN.open(encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) == n:
                break
    return texts


def write_csv(path: Path, rows: list[list[str]], header: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def read_csv_bytes(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return list(csv.reader(io.StringIO(text, newline="")))


def job(src: Path, out: Path, **kw) -> Job:
    return Job(input=src, output=out, models_dir=MODELS, **kw)


# ------------------------------------------------------------------ CSV
@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory) -> Path:
    """Leading zeros, a multi-line quoted text, invalid UTF-8 in text and in another column, bad rows."""
    path = tmp_path_factory.mktemp("csv") / "backlog.csv"
    body = (
        b"id,channel,text,date\r\n"
        b'007,app,"the app crashes every time I open the camera",2026-01-01\r\n'
        b'008,mail,"Subject: refund\n\nI was charged twice, the parcel never arrived.\nPlease help",2026-01-02\r\n'
        b"009,app,,2026-01-03\r\n"
        b"010,caf\xe9,love this app,2026-01-04\r\n"
        b"011,app,caf\xe9 app keeps freezing,2026-01-05\r\n"
        b"012,app,too many,fields,here\r\n"
        b'013,app,"' + b"x" * 300 + b'",2026-01-06\r\n'
        b'014,app,"   ",2026-01-07\r\n'
        b"\r\n"
        b'015,tweet,"checkout button does nothing, ""pay"" greyed out",2026-01-08\r\n'
    )
    path.write_bytes(body)
    return path


def test_csv_keeps_every_column_value_and_order_and_rejects_bad_rows(tmp_path, messy_csv, shipped):
    before = messy_csv.read_bytes()
    out = tmp_path / "out.csv"
    s = relabel(job(messy_csv, out, max_chars=200, chunk_size=3), loaded=shipped)
    assert messy_csv.read_bytes() == before

    rows = read_csv_bytes(out)
    assert rows[0] == ["id", "channel", "text", "date", *UXCX_COLUMNS]
    inp = read_csv_bytes(messy_csv)
    kept = [r for r in inp[1:] if r and r[0] in {"007", "008", "010", "015"}]
    assert [r[:4] for r in rows[1:]] == kept  # values byte for byte (undecodable ones too), in input order
    by_id = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_id["007"]["uxcx_label"] == "ux" and by_id["008"]["uxcx_label"] == "cx"
    assert by_id["015"]["uxcx_topic"] == "checkout_payment_flow"
    assert by_id["010"]["channel"] == "caf\udce9"  # written back as the original byte
    for r in by_id.values():
        assert r["uxcx_model_version"] == shipped.version
        assert r["uxcx_label"] in r["uxcx_labels"].split("|")
        assert len(r["uxcx_confidence"].split(".")[1]) == 4

    rej = read_csv_bytes(out.with_name("out.csv.rejects.csv"))
    assert rej[0] == ["uxcx_row", "uxcx_reason", "id", "channel", "text", "date"]
    reasons = {r[2]: (int(r[0]), r[1]) for r in rej[1:]}
    assert reasons["009"] == (3, "'text' is empty")
    assert reasons["011"] == (5, "'text' is not valid UTF-8")
    assert reasons["012"] == (6, "row has 5 fields, the header has 4")
    assert reasons["013"] == (7, "'text' is 300 characters, over the limit of 200")
    assert reasons["014"] == (8, "'text' is empty")
    assert next(r for r in rej if r[2] == "012")[2:] == ["012", "app", "too many", "fields", "here"]  # nothing lost
    assert (s.counts.read, s.counts.written, s.counts.rejected) == (9, 4, 5)
    assert sum(s.counts.labels.values()) == 4 and sum(s.counts.topics.values()) == 4
    assert not state_dir(out).exists()


def test_csv_other_text_column_and_existing_uxcx_columns_are_replaced(tmp_path, shipped):
    src = tmp_path / "old.csv"
    write_csv(src, [["1", "my parcel never came", "cx", "stale"]], ["id", "body", "uxcx_label", "uxcx_model_version"])
    out = tmp_path / "new.csv"
    relabel(job(src, out, text_column="body"), loaded=shipped)
    rows = read_csv_bytes(out)
    assert rows[0] == ["id", "body", *UXCX_COLUMNS]
    assert rows[1][:3] == ["1", "my parcel never came", "cx"] and rows[1][-1] == shipped.version


def test_whole_input_errors_are_clear_exit_2_and_leave_no_output(tmp_path, shipped):
    from classifier.batch import InputError

    nocol = tmp_path / "nocol.csv"
    nocol.write_text("id,body\n1,hello\n")
    out = tmp_path / "nocol.out.csv"
    r = subprocess.run([*UXCX, "relabel", str(nocol), "-o", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "no 'text' column" in r.stderr and "Traceback" not in r.stderr, r.stderr
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    for src, needle in ((empty, "empty"), (tmp_path / "absent.csv", "not found")):
        with pytest.raises(InputError, match=needle):
            relabel(job(src, out), loaded=shipped)
    assert not out.exists() and not state_dir(out).exists()


# --------------------------------------------------------- JSONL, Parquet
def test_jsonl_keeps_keys_and_order_and_rejects_bad_lines(tmp_path, shipped):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"id": 1, "text": "the login page loops forever", "meta": {"store": "play"}, "stars": 1}\n'
        b'{"id": 2, "stars": 5}\n'
        b"not json\n"
        b"[1, 2]\n"
        b'{"id": 5, "text": 42}\n'
        b"\n"
        b'{"id": 7, "text": "refund still not processed after 3 weeks", "note": "caf\xe9"}\n'
        b'{"id": 8, "text": "bad \xff byte"}\n'
    )
    out = tmp_path / "out.jsonl"
    s = relabel(job(src, out, chunk_size=2), loaded=shipped)
    recs = [json.loads(x) for x in out.read_bytes().decode("utf-8", "surrogateescape").splitlines()]
    assert [r["id"] for r in recs] == [1, 7]
    assert list(recs[0]) == ["id", "text", "meta", "stars", *UXCX_COLUMNS]
    assert recs[0]["meta"] == {"store": "play"} and recs[0]["uxcx_label"] == "ux"
    assert recs[1]["uxcx_label"] == "cx" and isinstance(recs[1]["uxcx_labels"], list)
    assert b'"note": "caf\xe9"' in out.read_bytes()  # the undecodable byte round-trips
    rej = [json.loads(x) for x in out.with_name("out.jsonl.rejects.jsonl").read_bytes().decode("utf-8", "surrogateescape").splitlines()]
    assert [(r["uxcx_row"], r["uxcx_reason"].split(":")[0]) for r in rej] == [
        (2, "missing field 'text'"), (3, "invalid JSON"), (4, "line is not a JSON object"),
        (5, "'text' must be a string, got int"), (6, "empty line"), (8, "'text' is not valid UTF-8")]
    assert rej[0]["uxcx_raw"] == '{"id": 2, "stars": 5}'
    assert (s.counts.read, s.counts.written, s.counts.rejected) == (8, 2, 6)


def test_parquet_keeps_schema_types_and_order(tmp_path, shipped):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = corpus_texts(50)
    texts[3], texts[10] = None, ""
    table = pa.table({
        "id": pa.array(range(50), pa.int64()),
        "score": pa.array([None if i % 7 == 0 else i / 3 for i in range(50)], pa.float64()),
        "text": pa.array(texts, pa.string()),
        "tags": pa.array([["a", "b"]] * 50, pa.list_(pa.string())),
    })
    src = tmp_path / "in.parquet"
    pq.write_table(table, src, row_group_size=13)  # row groups that do not line up with chunks
    out = tmp_path / "out.parquet"
    s = relabel(job(src, out, chunk_size=8), loaded=shipped)
    got = pq.read_table(out)
    assert got.schema.names == ["id", "score", "text", "tags", *UXCX_COLUMNS]
    assert got.schema.field("id").type == pa.int64() and got.schema.field("uxcx_labels").type == pa.list_(pa.string())
    keep = [i for i in range(50) if i not in (3, 10)]
    assert got.select(["id", "score", "text", "tags"]).equals(table.take(keep))
    rej = pq.read_table(out.with_name("out.parquet.rejects.parquet")).to_pylist()
    assert [(r["uxcx_row"], r["uxcx_reason"], r["id"]) for r in rej] == [(4, "missing field 'text'", 3), (11, "'text' is empty", 10)]
    assert s.counts.written == 48 and s.counts.rejected == 2


# ------------------------------------------------- parallel, resume, kill
@pytest.fixture(scope="module")
def backlog(tmp_path_factory) -> Path:
    """A few thousand realistic rows with extra columns and a couple of bad rows."""
    texts = corpus_texts(2500)
    rows = [[f"{i:06d}", f"2026-01-{i % 28 + 1:02d}", ("app", "email", "chat")[i % 3], t] for i, t in enumerate(texts)]
    rows += [[f"{i:06d}", "2026-02-01", "app", t + " " + texts[(i * 7) % 2500]] for i, t in enumerate(texts, start=2500)]
    rows[100][3] = ""
    path = tmp_path_factory.mktemp("backlog") / "backlog.csv"
    write_csv(path, rows, ["id", "date", "channel", "text"])
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, backlog, shipped) -> Path:
    """The uninterrupted, in-process, one-worker run every other run must equal."""
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    relabel(job(backlog, out, chunk_size=100), loaded=shipped)
    return out


def test_two_worker_processes_write_what_one_does(tmp_path, backlog, reference):
    out = tmp_path / "out.csv"
    r = subprocess.run([*UXCX, "relabel", str(backlog), "-o", str(out), "--workers", "2", "--chunk-size", "100",
                        "--summary-json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 1, r.stderr  # one row rejected: reported, and exit 1 like `uxcx classify`
    summary = json.loads(r.stdout)
    assert summary["rows_read"] == 5000 and summary["rows_rejected"] == 1 and summary["rows_written"] == 4999
    assert sum(summary["labels"].values()) == 4999 and "1 of 5000 row(s)" in r.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert out.with_name("out.csv.rejects.csv").read_bytes() == reference.with_name("ref.csv.rejects.csv").read_bytes()


def test_resume_after_sigkill_gives_the_uninterrupted_output(tmp_path, backlog, reference, shipped):
    before = backlog.read_bytes()
    out = tmp_path / "out.csv"
    state = state_dir(out)
    cmd = [*UXCX, "relabel", str(backlog), "-o", str(out), "--workers", "1", "--chunk-size", "100", "--progress", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(list(state.glob("*.json"))) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the job ended before it could be killed"
        assert not out.exists()  # nothing at OUTPUT while the job runs
        os.killpg(proc.pid, signal.SIGKILL)  # like `kill -9`, the whole job at once
    finally:
        proc.wait(timeout=60)
    done_before = len(list(state.glob("[0-9]*.json")))
    assert 2 <= done_before < 50 and not out.exists()  # nor after a failed run

    # A stale state is refused without --resume; a different chunk size is refused with it.
    with pytest.raises(StateError, match="--resume"):
        relabel(job(backlog, out, chunk_size=100), loaded=shipped)
    with pytest.raises(StateError, match="--chunk-size"):
        relabel(job(backlog, out, chunk_size=50, resume=True), loaded=shipped)

    r = subprocess.run([*cmd, "--resume", "--summary-json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert summary["resumed_chunks"] >= done_before - 1 and summary["rows_read"] == 5000
    assert out.read_bytes() == reference.read_bytes()  # no row lost, none written twice
    assert out.with_name("out.csv.rejects.csv").read_bytes() == reference.with_name("ref.csv.rejects.csv").read_bytes()
    assert not state.exists() and backlog.read_bytes() == before


# ------------------------------------------------------------------ diff
def test_diff_lists_changed_rows_in_order_and_summarises_moves(tmp_path, backlog, reference, shipped):
    rows = read_csv_bytes(reference)
    header, body = rows[0], rows[1:]
    li, ti = header.index("uxcx_label"), header.index("uxcx_topic")
    other_topic = {"ux": "crash_error", "cx": "billing_refund", "other": "praise"}
    flips = {}
    prev_rows = []
    for n, r in enumerate(body):
        r = list(r)
        if n in (5, 50, 500):  # pretend the old model said something else
            old = {"ux": "cx", "cx": "other", "other": "ux"}[r[li]]
            flips[r[0]] = (old, r[li])
            r[li], r[ti] = old, other_topic[old]
        if n == 7:
            r[ti] = "performance" if r[ti] != "performance" else "crash_error"
            flips[r[0]] = (r[li], r[li])
        if n == 9:
            continue  # an id the previous output did not have
        prev_rows.append(r)
    prev = tmp_path / "previous.csv"
    write_csv(prev, prev_rows, header)

    out = tmp_path / "out.csv"
    s = relabel(job(backlog, out, chunk_size=100, diff=prev), loaded=shipped)
    diff = read_csv_bytes(tmp_path / "out.csv.diff.csv")
    assert diff[0] == ["id", "old_label", "new_label", "old_topic", "new_topic"]
    assert [d[0] for d in diff[1:]] == [body[n][0] for n in (5, 7, 50, 500)]  # the new file's order
    assert all((d[1], d[2]) == flips[d[0]] for d in diff[1:])
    assert s.diff is not None and s.diff["changed"] == 4 and s.diff["topic_only"] == 1 and s.diff["new_ids"] == 1
    assert sum(s.diff["moved"].values()) == 3 and "rows moved" in s.diff["text"] and "→" in s.diff["text"]

    # The bucketed join (tiny buckets) gives the same diff as the in-memory one.
    again = tmp_path / "again.csv"
    info = diff_outputs(prev, out, again, "id", "csv", tmp_path, bucket_bytes=4096)
    assert again.read_bytes() == (tmp_path / "out.csv.diff.csv").read_bytes()
    assert {k: v for k, v in info.items()} == {k: v for k, v in s.diff.items() if k != "path"}


def test_diff_refuses_a_file_that_is_not_a_relabelled_output(tmp_path, backlog, shipped):
    from classifier.batch import InputError

    with pytest.raises(InputError, match="uxcx_label"):
        relabel(job(backlog, tmp_path / "o.csv", diff=backlog), loaded=shipped)
    assert not (tmp_path / "o.csv").exists() and not state_dir(tmp_path / "o.csv").exists()

"""`uxcx relabel` (classifier.relabel*): columns, order, rejects, formats, atomic output, resume after SIGKILL, diff."""

from __future__ import annotations

import csv
import io
import json
import os
import random
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
    assert reasons["011"] == (5, "'text' is not valid UTF-8: invalid byte 0xE9 at byte offset 3 of the value")
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


def _parquet_bytes(columns: dict) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue().to_pybytes()


# (input file name, its bytes or None for no file, extra arguments, what stderr must say)
WHOLE_INPUT_ERRORS = {
    "absent": ("absent.csv", None, [], "absent.csv not found"),
    "empty-csv": ("in.csv", b"", [], "in.csv is empty (0 bytes): expected a header row with a 'text' column"),
    "empty-jsonl": ("in.jsonl", b"", [], "in.jsonl is empty (0 bytes): expected one JSON object per line"),
    "empty-parquet": ("in.parquet", b"", [], "in.parquet is empty (0 bytes)"),
    "blank-lines-csv": ("in.csv", b"\n\r\n\n", [], "in.csv is empty: expected a header row"),
    "no-text-column": ("in.csv", b"id,body\n1,hello\n", [],
                       "in.csv has no 'text' column (columns found: 'id', 'body'); name the text column with --text-column"),
    "text-column-not-there": ("in.csv", b"id,text\n1,hello\n", ["--text-column", "body"],
                              "in.csv has no 'body' column (columns found: 'id', 'text')"),
    "stray-space-in-header": ("in.csv", b"id, text\n1,hello\n", [], "has no 'text' column (columns found: 'id', ' text')"),
    "no-text-column-parquet": ("in.parquet", None, [], "in.parquet has no 'text' column (columns found: 'id', 'body')"),
    "utf16-csv": ("in.csv", "id,text\n1,hello\n".encode("utf-16"), [], "in.csv is UTF-16 text"),
}


@pytest.mark.parametrize("case", list(WHOLE_INPUT_ERRORS))
def test_whole_input_errors_are_clear_exit_2_and_leave_no_output(tmp_path, case):
    name, data, extra, message = WHOLE_INPUT_ERRORS[case]
    src = tmp_path / name
    if case == "no-text-column-parquet":
        data = _parquet_bytes({"id": [1], "body": ["hello"]})
    if data is not None:
        src.write_bytes(data)
    out = tmp_path / ("out" + src.suffix)
    r = subprocess.run([*UXCX, "relabel", str(src), "-o", str(out), *extra], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and r.stdout == ""  # one line, no summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ([name] if data is not None else [])  # no output, rejects, state


def test_csv_rows_with_invalid_utf8_text_are_rejected_with_the_byte_offset_and_the_rest_kept(tmp_path):
    src = tmp_path / "in.csv"
    body = (
        b"id,channel,text\r\n"
        b"1,app,the app crashes when I open the camera\r\n"
        b"2,caf\xe9,love this app\r\n"  # invalid byte in another column: labelled, the byte kept
        b"3,app,crash \xf0\x9f\x98\x80 caf\xe9 freezes\r\n"  # 'crash 😀 caf' is 14 bytes, 11 characters
        b'4,app,"refund \xff\xfe, not processed"\r\n'
        b"5,app,\xc3\r\n"  # a truncated sequence at the end of the value
        b"6,app,na\xc3\xafve checkout button does nothing\r\n"
    )
    src.write_bytes(body)
    out = tmp_path / "out.csv"
    r = subprocess.run([*UXCX, "relabel", str(src), "-o", str(out), "--workers", "1", "--chunk-size", "2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 1 and "3 of 6 row(s) could not be labelled" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert src.read_bytes() == body

    inp = read_csv_bytes(src)
    rows = read_csv_bytes(out)
    assert [r[:3] for r in rows[1:]] == [inp[1], inp[2], inp[6]]  # every value as it was, undecodable bytes too
    assert b"\n2,caf\xe9,love this app," in out.read_bytes() and all(r[3] for r in rows[1:])
    rej = read_csv_bytes(out.with_name("out.csv.rejects.csv"))
    assert rej[0] == ["uxcx_row", "uxcx_reason", "id", "channel", "text"]
    assert [(int(r[0]), r[1], r[2:]) for r in rej[1:]] == [
        (3, "'text' is not valid UTF-8: invalid byte 0xE9 at byte offset 14 of the value", inp[3]),
        (4, "'text' is not valid UTF-8: invalid byte 0xFF at byte offset 7 of the value", inp[4]),
        (5, "'text' is not valid UTF-8: invalid byte 0xC3 at byte offset 0 of the value", inp[5]),
    ]
    assert b'4,app,"refund \xff\xfe, not processed"\n' in out.with_name("out.csv.rejects.csv").read_bytes()


QUOTING = (
    b"id,text\r\n"
    b"1,the app crashes when I pay\r\n"
    b'2,"refund refused, support hung up\r\n'  # opened, then closed only on row 4 with text after it
    b"3,parcel arrived broken\r\n"
    b'4,"slow, so slow" honestly\r\n'
    b'5,"Subject: login\n\ncannot log in since the update"\r\n'  # a real multi-line field: one row
    b'6,"ok"thanks\r\n'  # junk after a closing quote on one line: read as csv always did
    b"7,checkout page spins forever\r\n"
    b'8,"the courier left it in the rain\r\n'  # opened and never closed
    b"9,love the new design\r\n"
    b"10,card charged twice\r\n"
)


@pytest.mark.parametrize("chunk_size", [2, 100])
def test_csv_quote_left_open_rejects_its_line_and_keeps_every_later_row(tmp_path, chunk_size):
    # Python's csv, left lenient, reads from an unclosed quote over the line breaks: rows 3-4 and 9-10
    # vanished into one text field, labelled as one row or rejected as one.
    src = tmp_path / "in.csv"
    src.write_bytes(QUOTING)
    out = tmp_path / "out.csv"
    r = subprocess.run([*UXCX, "relabel", str(src), "-o", str(out), "--workers", "1", "--chunk-size", str(chunk_size),
                        "--summary-json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 1 and "2 of 10 row(s) could not be labelled" in r.stderr and "Traceback" not in r.stderr, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["rows_read"], summary["rows_written"], summary["rows_rejected"]) == (10, 8, 2)
    rows = read_csv_bytes(out)
    assert [row[:2] for row in rows[1:]] == [
        ["1", "the app crashes when I pay"],
        ["3", "parcel arrived broken"],
        ["4", "slow, so slow honestly"],
        ["5", "Subject: login\n\ncannot log in since the update"],
        ["6", "okthanks"],
        ["7", "checkout page spins forever"],
        ["9", "love the new design"],
        ["10", "card charged twice"],
    ]
    rej = read_csv_bytes(out.with_name("out.csv.rejects.csv"))
    assert [(row[0], row[2:]) for row in rej[1:]] == [
        ("2", ["2", "refund refused, support hung up"]),
        ("8", ["8", "the courier left it in the rain"]),
    ]
    assert all("quoted field opens on this line and is not closed" in row[1] for row in rej[1:])


def test_csv_chunk_bounds_cut_where_the_reader_does_around_open_quotes(tmp_path):
    # The Dask engine and --resume cut the file by byte ranges: each range must read the same rows.
    from classifier.relabel_io import csv_chunk_bounds, csv_chunks, csv_header

    src = tmp_path / "in.csv"
    src.write_bytes(QUOTING + b'11,"never closed at the end')
    _, start = csv_header(src)
    def rows(chunks) -> list[tuple[str, list[str]]]:
        return [(type(r).__name__, list(r)) for c in chunks for r in c.rows]

    whole = rows(csv_chunks(src, start, 2))
    assert [kind for kind, _ in whole].count("Unparsed") == 2 and len(whole) == 11
    for size in (1, 2, 3):
        ranged = rows(c for s, e, _ in csv_chunk_bounds(src, start, size) for c in csv_chunks(src, s, size, end=e))
        assert ranged == whole, size
    assert whole[-1] == ("list", ["11", "never closed at the end"])  # the file's last line: read as csv always did


def test_jsonl_bad_lines_and_invalid_utf8_are_rejected_and_the_rest_kept(tmp_path):
    lines = [
        b'{"id": 1, "text": "the app crashes when I open the camera"}',
        b'{"id": 2, "text": "love this app", "note": "caf\xe9"}',  # invalid byte outside the text: kept
        b'{"id": 3, "text": "crash \xf0\x9f\x98\x80 caf\xe9 freezes"}',
        b"not json",
        b"[1, 2]",
        b'{"id": 6, "body": "no text field"}',
        b'{"id": 7, "text": "checkout button does nothing"}',
        b'{"id": 8, "text": "lone \\udce9 escape"}',  # valid UTF-8, but the escape is no character
        b'{"id": 9, \xe9"text": "x"}',  # an invalid byte where JSON expects a key
    ]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    r = subprocess.run([*UXCX, "relabel", str(src), "-o", str(out), "--workers", "1", "--chunk-size", "4"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 1 and "6 of 9 row(s) could not be labelled" in r.stderr and "Traceback" not in r.stderr, r.stderr

    recs = [json.loads(x) for x in out.read_bytes().decode("utf-8", "surrogateescape").splitlines()]
    assert [x["id"] for x in recs] == [1, 2, 7] and all(x["uxcx_label"] for x in recs)
    assert b'"note": "caf\xe9"' in out.read_bytes()
    raw = out.with_name("out.jsonl.rejects.jsonl").read_bytes().decode("utf-8", "surrogateescape")
    rej = [json.loads(x) for x in raw.splitlines()]
    assert [(x["uxcx_row"], x["uxcx_reason"]) for x in rej] == [
        (3, "'text' is not valid UTF-8: invalid byte 0xE9 at byte offset 14 of the value"),
        (4, "invalid JSON: Expecting value at column 1"),
        (5, "line is not a JSON object"),
        (6, "missing field 'text'"),
        (8, "'text' is not valid Unicode: a lone surrogate \\udce9 at character 5 of the value"),
        (9, "invalid JSON: Expecting property name enclosed in double quotes at column 11"),
    ]
    assert [x["uxcx_raw"].encode("utf-8", "surrogateescape") for x in rej] == [lines[i] for i in (2, 3, 4, 5, 7, 8)]


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


def test_parquet_text_that_is_not_utf8_is_a_rejected_row_not_a_crash(tmp_path, shipped):
    """Regression: a string column holding invalid UTF-8 (some writers do not check) crashed the job."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = [b"the app crashes when I open the camera", b"crash \xf0\x9f\x98\x80 caf\xe9 freezes", None,
           b"refund never arrived"]
    notes = pa.array([b"ok", b"ok", b"caf\xe9", b"\xff"], pa.binary()).view(pa.string())
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3, 4], "text": pa.array(raw, pa.binary()).view(pa.string()), "note": notes}), src)
    out = tmp_path / "out.parquet"
    s = relabel(job(src, out, chunk_size=2), loaded=shipped)
    assert (s.counts.read, s.counts.written, s.counts.rejected) == (4, 2, 2)
    got = pq.read_table(out)
    assert got.column("id").to_pylist() == [1, 4]
    assert got.column("note").cast(pa.binary()).to_pylist() == [b"ok", b"\xff"]  # other columns keep their bytes
    rej = pq.read_table(out.with_name("out.parquet.rejects.parquet"))
    assert rej.column("uxcx_reason").to_pylist() == [
        "'text' is not valid UTF-8: invalid byte 0xE9 at byte offset 14 of the value", "missing field 'text'"]
    assert rej.column("text").cast(pa.binary()).to_pylist() == [raw[1], None]


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


# Where the kill tests kill the job. Chunk numbers come from a seeded RNG: every run kills at the same
# points, and a failing case names its point. "file:X" kills as soon as X appears in the state folder
# (phases that last long enough to hit from outside); "pause:P" lets the job stop itself at point P of
# tests/relabel_pause.py first (phases too short to hit by watching; the hook only stops the process).
KILL_SEED = 1207
N_CHUNKS = 50  # the backlog's 5,000 rows at --chunk-size 100
_rng = random.Random(KILL_SEED)
KILL_POINTS = [
    ("before-any-state", "spawn", 1),  # just started: not even the state folder exists
    ("loading-the-model", "file:manifest.json", 1),  # state opened, model loading, no chunk done
    ("after-the-first-chunk", "file:00000000.json", 1),
    ("mid-way", f"file:{_rng.randint(15, 25):08d}.json", 1),
    ("near-the-end", f"pause:marker:{_rng.randint(40, 48)}", 1),  # a chunk's data saved, its marker not yet
    ("concatenating", f"pause:part:{_rng.randint(2, 49)}", 1),  # output.assembling half written
    ("renaming-into-place", "pause:rename", 1),  # rejects renamed into place, output not yet
    ("removing-the-state", f"pause:rmtree:{_rng.randint(1, 90)}", 1),  # output in place, state half removed
    ("two-workers-mid-way", f"file:{_rng.randint(5, 15):08d}.json", 2),  # the whole process group killed
]


def _proc_stat(pid: int, tid: int | None = None) -> list[str] | None:
    """State, parent, process group... of a live process or one of its threads (fields 3.. of its stat), or None."""
    path = Path(f"/proc/{pid}/stat") if tid is None else Path(f"/proc/{pid}/task/{tid}/stat")
    try:
        stat = path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()


def _threads_alive(pid: int) -> bool:
    """Whether any thread of ``pid`` is still running. A killed process's leader thread shows ``Z`` while its other
    threads are still exiting, and those still hold the process's files (and so the state's lock): look at every
    thread, not the leader."""
    try:
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any((st := _proc_stat(pid, tid)) is not None and st[0] not in ("Z", "X") for tid in tids)


def _group_alive(pgid: int) -> list[int]:
    """Processes of a process group that still run a thread (zombies do not count)."""
    alive = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _proc_stat(int(d.name))
            if st is not None and int(st[2]) == pgid and _threads_alive(int(d.name)):
                alive.append(int(d.name))
    return alive


def kill_when(cmd: list[str], ready, log: Path) -> None:
    """Start ``cmd`` in a process group of its own and SIGKILL the whole group once ``ready(proc)``."""
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not ready(proc):
            assert proc.poll() is None, f"the job ended (exit {proc.returncode}) before the kill point: {log.read_text()}"
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.001)
        os.killpg(proc.pid, signal.SIGKILL)  # like `kill -9` of the job: parent and workers at once
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _group_alive(proc.pid), "a worker survived the kill"


@pytest.mark.parametrize(("point", "how", "workers"), KILL_POINTS, ids=[f"{p}({h})" for p, h, _ in KILL_POINTS])
def test_killed_at_any_point_then_resumed_gives_the_uninterrupted_output(tmp_path, backlog, reference, shipped,
                                                                       point, how, workers):
    before = backlog.read_bytes()
    out = tmp_path / "job" / "out.csv"
    out.parent.mkdir()
    rejects, state = out.with_name("out.csv.rejects.csv"), state_dir(out)
    args = ["relabel", str(backlog), "-o", str(out), "--workers", str(workers), "--chunk-size", "100", "--progress", "none"]
    kind, _, arg = how.partition(":")
    cmd = [sys.executable, "-m", "tests.relabel_pause", arg, "--", *args] if kind == "pause" else [*UXCX, *args]

    def ready(proc: subprocess.Popen) -> bool:
        if kind == "pause":
            return (_proc_stat(proc.pid) or ["?"])[0] == "T"  # it has stopped itself at the point
        return kind == "spawn" or (state / arg).exists()

    kill_when(cmd, ready, tmp_path / "killed.log")

    # What the kill left: the phase each point stands for.
    done = len(list(state.glob("[0-9]*.json")))
    if point == "before-any-state":
        assert not state.exists() and not out.exists() and not rejects.exists()
    elif point == "loading-the-model":
        assert (state / "manifest.json").is_file() and done == 0 and not out.exists()
    elif kind == "file":
        assert done >= (1 if workers > 1 else int(arg[:8]) + 1) and not out.exists()
    elif point == "near-the-end":
        k = int(arg.split(":")[1])
        assert done == k and (state / f"{k:08d}.out").is_file() and (state / f"{k:08d}.json.tmp").is_file()
        assert not out.exists()
    elif point == "concatenating":
        assert done == N_CHUNKS and (state / "output.assembling").is_file() and not out.exists() and not rejects.exists()
    elif point == "renaming-into-place":
        assert done == N_CHUNKS and (state / "output.assembling").is_file() and rejects.is_file() and not out.exists()
    else:
        assert point == "removing-the-state" and state.is_dir() and out.read_bytes() == reference.read_bytes()

    if point == "mid-way":
        # A stale state is refused without --resume; a different chunk size is refused with it.
        with pytest.raises(StateError, match="--resume"):
            relabel(job(backlog, out, chunk_size=100), loaded=shipped)
        with pytest.raises(StateError, match="--chunk-size"):
            relabel(job(backlog, out, chunk_size=50, resume=True), loaded=shipped)

    if point == "before-any-state":
        # Nothing was kept: --resume says so and starts from the first chunk (through the CLI, for the message).
        r = subprocess.run([*UXCX, *args, "--resume", "--summary-json"], capture_output=True, text=True, cwd=ROOT,
                           timeout=600)
        assert r.returncode == 1 and "nothing to resume" in r.stderr and "Traceback" not in r.stderr, r.stderr
        summary = json.loads(r.stdout)
        assert summary["resumed_chunks"] == 0 and summary["rows_read"] == 5000 and summary["chunks"] == N_CHUNKS
    else:
        # The same job with --resume (in-process, one worker: resuming may use another --workers).
        s = relabel(job(backlog, out, chunk_size=100, resume=True), loaded=shipped)
        assert (s.counts.read, s.counts.written, s.counts.rejected, s.chunks) == (5000, 4999, 1, N_CHUNKS)
        if point != "removing-the-state":  # there, some finished chunks may have lost their files
            assert s.resumed_chunks == done  # every finished chunk kept, none redone
    assert out.read_bytes() == reference.read_bytes()  # no row lost, none written twice
    assert rejects.read_bytes() == reference.with_name("ref.csv.rejects.csv").read_bytes()
    assert not state.exists() and sorted(p.name for p in out.parent.iterdir()) == ["out.csv", "out.csv.rejects.csv"]
    assert backlog.read_bytes() == before


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

"""Labeled data: loading, checks, near-duplicates, the split, and the shipped corpus itself."""

from pathlib import Path

from classifier.labels import TOPICS
from training.data import HELDOUT_FILE, TRAIN_FILE, Record, check, load, near_duplicates, split_heldout


def test_bad_rows_are_reported_not_raised(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(
        '{"id": "1", "text": "ok", "label": "ux", "labels": ["ux"], "topic": "crash_error", "source": "t"}\n'
        "{not json\n"
        '{"id": "3", "text": "x", "label": "ux", "labels": ["ux"], "topic": "billing_refund", "source": "t"}\n'
        '{"id": "4", "label": "ux", "labels": ["ux"], "topic": "crash_error", "source": "t"}\n',
        encoding="utf-8",
    )
    result = load([f])
    assert [r.id for r in result.records] == ["1"]
    assert any(":2: invalid JSON" in e for e in result.errors)
    assert any(":3: topic 'billing_refund' belongs to 'cx'" in e for e in result.errors)
    assert any(":4: missing field(s) text" in e for e in result.errors)


def test_csv_with_pipe_separated_labels(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("id,text,label,labels,topic,source\n7,charged twice and app froze,cx,cx|ux,billing_refund,ticket\n")
    (rec,) = load([f]).records
    assert rec.labels == ("cx", "ux") and rec.source == "ticket"


def test_near_duplicates_are_found():
    base = "the checkout page froze three times and then my card was declined at the very end of the whole process today"
    recs = [
        Record("a", base, "ux", ("ux",), "checkout_payment_flow", "t"),
        Record("b", base.replace("today", "again"), "ux", ("ux",), "checkout_payment_flow", "t"),
        Record("c", "completely different text about a parcel that never arrived at my door", "cx", ("cx",), "delivery_fulfilment", "t"),
    ]
    pairs = near_duplicates(recs)
    assert [(a, b) for a, b, _ in pairs] == [("a", "b")]


def test_split_is_seeded_and_stratified():
    recs = [Record(str(i), f"text number {i}", "ux", ("ux",), TOPICS[i % 6], "t") for i in range(120)]
    a = split_heldout(recs, 0.25, seed=1)
    b = split_heldout(recs, 0.25, seed=1)
    assert [r.id for r in a[1]] == [r.id for r in b[1]]
    assert len(a[1]) == 30 and {r.topic for r in a[1]} == set(TOPICS[:6])


def test_shipped_corpus_meets_the_issue():
    report = check(load([TRAIN_FILE, HELDOUT_FILE]))
    assert report.ok, (report.errors[:3], report.duplicate_texts[:3])
    assert report.n_records >= 6000
    assert all(report.topic_counts[t] >= 150 for t in TOPICS), report.topic_counts
    assert report.label_counts["other"] / report.n_records >= 0.20
    assert report.both / report.n_records >= 0.08
    assert report.near_duplicate_rate < 0.01


def test_heldout_is_disjoint_from_train():
    train = {r.text for r in load([TRAIN_FILE]).records}
    held = load([HELDOUT_FILE]).records
    assert held and not any(r.text in train for r in held)


def test_no_real_dev_text_in_the_corpus():
    real_dev = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev.jsonl"
    if not real_dev.is_file():
        import pytest

        pytest.skip("../shared/data/real-dev.jsonl is not present (a user's fresh clone)")
    dev = {r.text.strip().lower() for r in load([real_dev]).records}
    ours = {r.text.strip().lower() for r in load([TRAIN_FILE, HELDOUT_FILE]).records}
    assert not dev & ours

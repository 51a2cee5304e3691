"""Corrections: parsing with the corpus checks, override/add/latest-wins, evaluation texts kept out."""

import json

import pytest

from training.corrections import CORRECTION_SOURCE, apply_corrections, load_corrections, parse_correction, parse_corrections
from training.data import Record


def rec(id_, text, label="ux", topic="crash_error", labels=None, source="t"):
    return Record(id_, text, label, tuple(labels or [label]), topic, source)


CORPUS = [
    rec("c1", "The app crashes when I open it"),
    rec("c2", "My parcel never arrived", "cx", "delivery_fulfilment"),
    rec("c3", "Love the new design", "other", "praise"),
]


def test_parse_fills_the_optional_fields_and_keeps_the_checks():
    c = parse_correction({"text": "Charged twice!", "label": "cx", "topic": "billing_refund", "note": "agent fixed"})
    assert c.labels == ("cx",) and c.source == CORRECTION_SOURCE and c.id.startswith("corr-")
    assert parse_correction({"text": "charged  TWICE", "label": "cx", "topic": "billing_refund"}).id == c.id
    with pytest.raises(ValueError, match="belongs to 'cx'"):
        parse_correction({"text": "x", "label": "ux", "topic": "billing_refund"})
    with pytest.raises(ValueError, match="missing field"):
        parse_correction({"label": "ux", "topic": "crash_error"})


def test_load_corrections_counts_invalid_rows(tmp_path):
    f = tmp_path / "corr.jsonl"
    rows = [
        {"id": "k1", "text": "The app crashes when I open it!", "label": "cx", "labels": ["cx", "ux"], "topic": "customer_service"},
        {"id": "k2", "text": "no topic here", "label": "ux"},
        {"id": "k3", "text": "wrong pair", "label": "other", "labels": ["other", "ux"], "topic": "praise"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n", encoding="utf-8")
    result = load_corrections([f])
    assert [c.id for c in result.records] == ["k1"]
    assert len(result.errors) == 3 and any(":4: invalid JSON" in e for e in result.errors)
    from_rows = parse_corrections(rows, origin="db")
    assert [c.id for c in from_rows.records] == ["k1"] and from_rows.errors[0].startswith("db#2: ")


def test_override_add_confirm_and_latest_wins():
    corrections = [
        rec("k1", "the app CRASHES when i open it", "cx", "customer_service"),   # superseded by k2
        rec("k2", "The app crashes when I open it.", "cx", "customer_service", labels=["cx", "ux"]),
        rec("k3", "My parcel never arrived!", "cx", "delivery_fulfilment"),       # agrees with the corpus
        rec("k4", "Checkout button does nothing", "ux", "checkout_payment_flow"),  # new text
    ]
    out, facts = apply_corrections(CORPUS, corrections, invalid=2)
    assert [r.id for r in out] == ["c1", "c2", "c3", "k4"]
    assert (out[0].label, out[0].labels, out[0].topic, out[0].text) == (
        "cx", ("cx", "ux"), "customer_service", "The app crashes when I open it")
    assert out[1] == CORPUS[1] and out[2] == CORPUS[2]
    assert (facts.read, facts.superseded, facts.overrode, facts.confirmed, facts.added, facts.invalid) == (4, 1, 1, 1, 1, 2)
    assert facts.used == 3 and facts.in_evaluation == 0
    assert facts.as_dict()["used"] == 3 and "3 used" in facts.line()


def test_corrections_of_evaluation_texts_are_not_trained_on():
    heldout = [rec("h1", "Search never finds anything", "ux", "navigation_usability")]
    corrections = [rec("k1", "search never finds anything!!", "cx", "customer_service"), rec("k2", "Love the new design", "other", "praise")]
    out, facts = apply_corrections(CORPUS, corrections, evaluation=heldout)
    assert "search never finds anything" not in {r.text.lower() for r in out}
    assert len(out) == len(CORPUS)
    assert facts.in_evaluation == 1 and facts.evaluation_ids == ("k1",) and facts.used == 1
    assert "k1" in facts.line()


def test_no_corrections_changes_nothing():
    out, facts = apply_corrections(CORPUS, [])
    assert out == CORPUS and facts.used == 0 and facts.read == 0

"""Behavioural tests and quality floors on the shipped model (models/current)."""

import pytest

from tests.conftest import REAL_DEV
from training.data import HELDOUT_FILE, load
from training.evaluate import evaluate

CLEAR = [
    ("The checkout page crashes every time I press pay", "ux"),
    ("I was charged twice for my order", "cx"),
    ("The app keeps logging me out and I can't get back in", "ux"),
    ("My parcel is two weeks late and nobody answers my emails", "cx"),
    ("Love this app, works perfectly", "other"),
]


@pytest.mark.parametrize("text,label", CLEAR)
def test_clear_cases(shipped, text, label):
    assert shipped.model.predict([text])[0] == label


@pytest.mark.parametrize("text,label", CLEAR)
def test_invariant_to_please_case_and_punctuation(shipped, text, label):
    variants = [f"{text} please", f"Please, {text[0].lower()}{text[1:]}", text.upper(), text.lower(), text + "!!!", text.rstrip(".") + "."]
    assert list(shipped.model.predict(variants)) == [label] * len(variants)


def test_guide_boundary_cases(shipped):
    m = shipped.model
    assert m.predict(["no crashes at all, but the parcel never came"])[0] == "cx"
    assert m.predict(["charged twice"])[0] == "cx"
    assert m.predict(["payment page freezes"])[0] == "ux"
    assert m.predict(["my account was suspended by the company for no reason"])[0] == "cx"
    assert m.predict(["can't log in, the app says error 403"])[0] == "ux"


def test_both_labels_when_both_apply(shipped):
    p = shipped.model.predict_batch(["The app crashed during checkout and then I was charged twice and support never replied"])[0]
    assert set(p.labels) == {"ux", "cx"}


def test_quality_floor_on_heldout(shipped):
    metrics = evaluate(shipped.model, load([HELDOUT_FILE]).records)
    assert metrics["macro_f1"] >= 0.85
    assert metrics["ece"] <= 0.06


def test_quality_floor_on_real_dev(shipped):
    if not REAL_DEV.is_file():
        pytest.skip("../shared/data/real-dev.jsonl is not present (a user's fresh clone)")
    metrics = evaluate(shipped.model, load([REAL_DEV]).records)
    assert metrics["macro_f1"] >= 0.75, metrics["per_class"]

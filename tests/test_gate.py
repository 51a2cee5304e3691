"""The promotion gate and the comparison report, on metric summaries (no model needed)."""

from classifier.model import Prediction
from training.data import Record
from training.gate import changed_labels, compare_markdown, decide, regressions


def summ(macro, ux, cx, other, ece=0.02):
    return {"n": 100, "macro_f1": macro, "f1": {"ux": ux, "cx": cx, "other": other}, "ece": ece,
            "accuracy": macro, "topic_accuracy": 0.8}


CURRENT = {"heldout": summ(0.90, 0.88, 0.90, 0.92), "real-dev": summ(0.76, 0.75, 0.83, 0.70)}


def test_as_good_or_within_the_margins_passes():
    assert decide("v1", CURRENT, CURRENT).passed
    within = {"heldout": summ(0.89, 0.85, 0.90, 0.92), "real-dev": summ(0.76, 0.75, 0.83, 0.70)}
    d = decide("v1", CURRENT, within)
    assert d.passed and "not worse than v1" in d.reason


def test_macro_drop_beyond_the_margin_is_refused_with_the_reason():
    worse = {"heldout": summ(0.885, 0.88, 0.88, 0.90), "real-dev": CURRENT["real-dev"]}
    d = decide("v1", CURRENT, worse)
    assert not d.passed and d.reasons == ("heldout: macro-F1 0.8850 is 0.0150 below the current 0.9000 (allowed 0.01)",)
    assert decide("v1", CURRENT, worse, margin=0.02).passed


def test_one_class_dropping_too_far_is_refused_even_if_macro_holds():
    new = {"heldout": CURRENT["heldout"], "real-dev": summ(0.77, 0.79, 0.83, 0.66)}
    found = regressions(CURRENT, new)
    assert found == ["real-dev: other F1 0.6600 is 0.0400 below the current 0.7000 (allowed 0.03)"]
    assert not decide("v1", CURRENT, new).passed
    assert decide("v1", CURRENT, new, class_margin=0.05).passed


def test_first_model_unreadable_current_and_nothing_to_compare():
    assert decide(None, None, CURRENT).passed
    d = decide("v1", None, CURRENT, current_error="checksum mismatch")
    assert not d.passed and "cannot be loaded" in d.reason and "checksum mismatch" in d.reason
    assert not decide("v1", {}, CURRENT).passed


def test_changed_labels_counts_fixed_and_broken():
    recs = [Record(str(i), "t", lab, (lab,), "none", "s") for i, lab in enumerate(["ux", "cx", "other", "ux"])]

    def preds(labels):
        return [Prediction(lab, (lab,), "none", 0.9, {}) for lab in labels]

    out = changed_labels(recs, preds(["ux", "ux", "cx", "cx"]), preds(["cx", "cx", "other", "cx"]))
    assert out == {"changed": 3, "fixed": 2, "broken": 1}


def test_compare_markdown_shows_both_models_side_by_side():
    d = decide("v1", CURRENT, CURRENT)
    report = {
        "new": "v2", "current": "v1", "decision": "promoted", "gate": d.as_dict(), "corrections": None,
        "sets": {"heldout": {"n": 100, "current": CURRENT["heldout"], "new": CURRENT["heldout"],
                             "changed": {"changed": 4, "fixed": 3, "broken": 1}}},
    }
    md = compare_markdown(report)
    assert "**Decision: promoted.**" in md and "| F1 other | 0.9200 | 0.9200 | +0.0000 |" in md
    assert "Texts whose label changed: **4** of 100 (3 now right, 1 now wrong" in md

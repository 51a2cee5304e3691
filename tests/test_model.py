"""The estimator on tiny data: contract, output shape, calibration, batch independence."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from classifier.labels import LABEL_OF_TOPIC, LABELS
from classifier.model import UXCXClassifier


def test_estimator_contract(tiny_model):
    params = tiny_model.get_params()
    assert params["C"] == 2.0 and params["cv"] == 2
    fresh = clone(tiny_model)
    assert not hasattr(fresh, "label_head_") and fresh.get_params() == params


def test_fits_its_training_data(tiny_model, tiny_records):
    pred = tiny_model.predict([r["text"] for r in tiny_records])
    acc = np.mean(pred == np.asarray([r["label"] for r in tiny_records]))
    assert acc >= 0.9


def test_prediction_fields_are_consistent(tiny_model):
    preds = tiny_model.predict_batch(["the checkout page freezes and I was charged twice", "love it", "??"])
    for p in preds:
        assert p.label in LABELS and p.label == p.labels[0]
        assert LABEL_OF_TOPIC[p.topic] == p.label
        assert abs(sum(p.scores.values()) - 1.0) < 1e-6
        assert p.confidence == pytest.approx(max(p.scores.values()))
        assert "other" not in p.labels or len(p.labels) == 1
        assert len(p.evidence) <= 3


def test_evidence_names_words_of_the_text(tiny_model):
    p = tiny_model.predict_batch(["the app crashes every time, blank screen"])[0]
    assert p.label == "ux"
    assert p.evidence and all(any(w in "the app crashes every time, blank screen" for w in e.split()) for e in p.evidence)


def test_result_does_not_depend_on_batch_position(tiny_model):
    text = "refund never arrived after six weeks"
    alone = tiny_model.predict_batch([text])[0]
    inside = tiny_model.predict_batch(["hello", "blank screen again", text, "zzz qqq unknownish"])[2]
    assert alone.label == inside.label and alone.topic == inside.topic
    assert alone.scores == pytest.approx(inside.scores, abs=1e-6)


def test_pickle_roundtrip_gives_same_scores(tiny_model):
    texts = ["payment page freezes", "parcel is late"]
    before = tiny_model.predict_proba(texts)
    again = pickle.loads(pickle.dumps(tiny_model))
    assert np.allclose(again.predict_proba(texts), before)


def test_temperature_is_fitted(tiny_model):
    assert 0.05 <= tiny_model.temperature_ <= 20.0


def test_rejects_bad_training_input():
    with pytest.raises(ValueError, match="unknown labels"):
        UXCXClassifier().fit(["a", "b"], ["ux", "bug"])
    with pytest.raises(ValueError, match="2 texts but y has 1"):
        UXCXClassifier().fit(["a", "b"], ["ux"])
    with pytest.raises(TypeError, match="text 1 is int"):
        UXCXClassifier().fit(["a", 3], ["ux", "cx"])


def test_empty_batch_and_odd_texts(tiny_model):
    assert tiny_model.predict_batch([]) == []
    odd = ["", "   ", "😡😡😡", "x" * 5000, "مرحبا التطبيق لا يعمل", "\x00\x01 control"]
    preds = tiny_model.predict_batch(odd)
    assert len(preds) == len(odd)
    assert all(abs(sum(p.scores.values()) - 1) < 1e-6 for p in preds)

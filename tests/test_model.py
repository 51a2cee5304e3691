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


def _reference_predictions(model, texts, heads="stacked"):
    """Label, labels, topic and scores the plain way: scipy feature matrices, scipy softmax.

    heads="stacked": the float32 stacked heads the predict path uses (scores agree to 1e-6);
    heads="sklearn": each head's decision_function in float64 (the training-time view).
    """
    from scipy.special import log_softmax, softmax

    from classifier.labels import TOPICS

    batch = model.table_.tokenize(texts)
    if heads == "stacked":
        w_lex, w_emb, bias = model._stacked_heads()
        emb = model._embedder().transform(batch)[0]
        logits = np.asarray(model.lexical_.transform(model.table_, batch) @ w_lex).astype(np.float64) + bias
        logits += emb @ w_emb
        label_logits, issue_logits, topic_logits = logits[:, :3], logits[:, 3:5], logits[:, 5:]
    else:
        feats, _ = model._features(batch)
        label_logits = model.label_head_.decision_function(feats)
        issue_logits = np.stack([model.issue_heads_[k].decision_function(feats) for k in ("ux", "cx")], axis=1)
        topic_logits = np.full((len(texts), len(TOPICS)), -1e9)
        topic_logits[:, model.topic_head_.classes_] = model.topic_head_.decision_function(feats)
    to_label = np.asarray([[LABEL_OF_TOPIC[t] == lab for lab in LABELS] for t in TOPICS], dtype=float)
    mixed = (1 - model.topic_mix) * log_softmax(label_logits, axis=1) + model.topic_mix * np.log(
        softmax(topic_logits, axis=1) @ to_label + 1e-12
    )
    proba = softmax(mixed / model.temperature_, axis=1)
    issue = issue_logits >= np.log(model.both_threshold / (1 - model.both_threshold))
    out = []
    for i, row in enumerate(proba):
        label = LABELS[int(row.argmax())]
        second = {"ux": (1, "cx"), "cx": (0, "ux")}.get(label)
        labels = (label, second[1]) if second is not None and issue[i, second[0]] else (label,)
        allowed = [j for j, t in enumerate(TOPICS) if LABEL_OF_TOPIC[t] == label]
        topic = TOPICS[max(allowed, key=lambda j: topic_logits[i, j])]
        out.append((label, labels, topic, dict(zip(LABELS, row.tolist()))))
    return out


def test_fast_predict_path_matches_the_training_path_in_mixed_batches(shipped):
    """The predict path (raw CSR arrays, small-batch shortcuts) agrees with scipy + sklearn,
    and its evidence does not depend on batch size, whichever internal path a size takes."""
    from training.data import TRAIN_FILE, load

    model = shipped.model
    records = load([TRAIN_FILE]).records
    texts = [r.text for r in records[::5]][:3000]
    texts += ["", "   ", "😡😡😡", "no crashes, but not loading", "zzqx flurble not working!!", "Ünïcödé ﬁne", "\x00 sep"]
    sizes, got, start = [1, 7, 16, 500], [], 0
    while start < len(texts):
        size = sizes[len(got) % len(sizes)]
        got.append(model.predict_batch(texts[start : start + size]))
        start += size
    preds = [p for batch in got for p in batch]
    reference = _reference_predictions(model, texts)
    for text, p, (label, labels, topic, scores) in zip(texts, preds, reference):
        assert (p.label, p.labels, p.topic) == (label, labels, topic), text
        assert p.scores == pytest.approx(scores, abs=1e-6), text
        assert p.confidence == max(p.scores.values())
    # float32 heads against sklearn's float64 decision functions: close, not bit-equal.
    for p, (_, _, _, scores) in zip(preds, _reference_predictions(model, texts, heads="sklearn")):
        assert p.scores == pytest.approx(scores, abs=1e-4)
    alone = [model.predict_batch([t])[0].evidence for t in texts[:600]]
    together = [p.evidence for p in model.predict_batch(texts[:600])]
    assert alone == together == [p.evidence for p in preds[:600]]
    assert sum(bool(e) for e in alone) > 500

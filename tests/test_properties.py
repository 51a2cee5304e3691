"""Property tests (hypothesis) on the text path and the shipped classifier: any Unicode string gives a
valid prediction, scores sum to 1, and the answer does not depend on the text's place in the batch."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from classifier.labels import LABEL_OF_TOPIC, LABELS
from classifier.redact import mask_personal_data

ANY_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=300)
FEW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid(pred) -> None:
    assert pred.label in LABELS and pred.label in pred.labels
    assert LABEL_OF_TOPIC[pred.topic] == pred.label
    assert set(pred.scores) == set(LABELS) and all(0.0 <= v <= 1.0 for v in pred.scores.values())
    assert math.isclose(sum(pred.scores.values()), 1.0, abs_tol=1e-6)
    assert pred.confidence == max(pred.scores.values())


@FEW
@given(text=ANY_TEXT)
@example(text="")
@example(text="   \t\n ")
@example(text="😡😡😡 app crashed 💥")
@example(text="التطبيق لا يعمل والطرد لم يصل")  # right-to-left
@example(text="\x00\x01\x7f\u200b\u202e\ud800 lone surrogate")
@example(text="the app crashes " * 6_250)  # 100 kB
def test_any_string_gives_a_valid_prediction(shipped, text):
    (pred,) = shipped.model.predict_batch([text])
    _valid(pred)


@FEW
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=12), pos=st.integers(0, 11))
def test_answer_does_not_depend_on_batch_position(shipped, texts, pos):
    probe = "the checkout page freezes and support never answered"
    batch = list(texts)
    batch.insert(min(pos, len(batch)), probe)
    in_batch = shipped.model.predict_batch(batch)[min(pos, len(texts))]
    (alone,) = shipped.model.predict_batch([probe])
    assert (in_batch.label, in_batch.labels, in_batch.topic, in_batch.evidence) == (alone.label, alone.labels, alone.topic, alone.evidence)
    assert all(math.isclose(in_batch.scores[k], alone.scores[k], abs_tol=1e-6) for k in LABELS)
    for pred in shipped.model.predict_batch(texts):
        _valid(pred)


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_masking_never_fails_and_is_stable(text):
    once = mask_personal_data(text)
    assert isinstance(once, str) and mask_personal_data(once) == once

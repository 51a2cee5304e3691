"""The vocabulary and annotation rules of the guide."""

from classifier.labels import LABEL_OF_TOPIC, LABELS, TOPICS, TOPICS_BY_LABEL, validate_annotation


def test_fifteen_topics_each_under_one_label():
    assert len(TOPICS) == 15 == len(set(TOPICS))
    assert all(LABEL_OF_TOPIC[t] == lab for lab, ts in TOPICS_BY_LABEL.items() for t in ts)
    assert LABELS == ("ux", "cx", "other")


def test_valid_annotations_pass():
    assert validate_annotation("ux", ["ux"], "crash_error") == []
    assert validate_annotation("cx", ["cx", "ux"], "billing_refund") == []


def test_invalid_annotations_say_why():
    assert "belongs to 'cx'" in " ".join(validate_annotation("ux", ["ux"], "billing_refund"))
    assert "cannot stand beside" in " ".join(validate_annotation("other", ["other", "ux"], "none"))
    assert "missing from labels" in " ".join(validate_annotation("cx", ["ux"], "billing_refund"))
    assert "not one of" in " ".join(validate_annotation("bug", ["bug"], "none"))

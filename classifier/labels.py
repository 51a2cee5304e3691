"""The one vocabulary of uxcx: labels and topics, as defined by the labeling guide."""

from __future__ import annotations

from enum import StrEnum


class Label(StrEnum):
    """Primary label of a text: where the problem lives."""

    UX = "ux"
    CX = "cx"
    OTHER = "other"


LABELS: tuple[str, ...] = tuple(label.value for label in Label)

TOPICS_BY_LABEL: dict[str, tuple[str, ...]] = {
    Label.UX.value: (
        "crash_error",
        "performance",
        "layout_design",
        "navigation_usability",
        "checkout_payment_flow",
        "login_account_access",
    ),
    Label.CX.value: (
        "product_quality",
        "delivery_fulfilment",
        "customer_service",
        "billing_refund",
        "returns_warranty",
        "pricing_policy",
    ),
    Label.OTHER.value: ("praise", "feature_request", "none"),
}

TOPICS: tuple[str, ...] = tuple(t for topics in TOPICS_BY_LABEL.values() for t in topics)

LABEL_OF_TOPIC: dict[str, str] = {
    topic: label for label, topics in TOPICS_BY_LABEL.items() for topic in topics
}

#: Labels that may stand together in ``labels``; ``other`` always stands alone.
ISSUE_LABELS: tuple[str, ...] = (Label.UX.value, Label.CX.value)


def validate_annotation(label: str, labels: list[str], topic: str) -> list[str]:
    """Return the reasons a (label, labels, topic) triple breaks the guide; empty if valid."""
    problems: list[str] = []
    if label not in LABELS:
        problems.append(f"label {label!r} is not one of {', '.join(LABELS)}")
        return problems
    if not isinstance(labels, list) or not labels:
        problems.append("labels must be a non-empty list")
        return problems
    unknown = [x for x in labels if x not in LABELS]
    if unknown:
        problems.append(f"labels holds unknown values {unknown}")
    if len(set(labels)) != len(labels):
        problems.append("labels holds a value twice")
    if label not in labels:
        problems.append(f"label {label!r} is missing from labels {labels}")
    if Label.OTHER.value in labels and len(labels) > 1:
        problems.append("'other' cannot stand beside 'ux' or 'cx' in labels")
    if topic not in LABEL_OF_TOPIC:
        problems.append(f"topic {topic!r} is not a topic of the guide")
    elif LABEL_OF_TOPIC[topic] != label:
        problems.append(f"topic {topic!r} belongs to {LABEL_OF_TOPIC[topic]!r}, not to label {label!r}")
    return problems

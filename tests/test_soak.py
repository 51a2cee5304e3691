"""bench/soak.py: the request mix is valid API input, the verdict's arithmetic, the response-head parser."""

import json

import pytest

from bench.soak import Sample, growth, parse_head, request_body
from service.schemas import ClassifyBatch, ClassifyItem


def _sample(requests: int, rss_mb: float) -> Sample:
    return Sample(requests, 0.0, rss_mb, 0.0, 0.0, 0.0, 1, 1)


def test_the_mix_is_valid_requests_with_the_documented_shares():
    texts = [f"text {i}" for i in range(37)]
    sent = recorded = batches = unrecorded = 0
    for i in range(1000):
        body, n_texts, n_recorded = request_body(i, texts)
        data = json.loads(body)
        if "items" in data:
            batches += 1
            assert len(ClassifyBatch.model_validate(data).items) == n_texts == 10
        else:
            item = ClassifyItem.model_validate(data)
            assert n_texts == 1 and item.record == bool(n_recorded)
            unrecorded += not item.record
        sent += n_texts
        recorded += n_recorded
    assert (batches, unrecorded) == (20, 10)
    assert (sent, recorded) == (1180, 1170)


def test_growth_is_measured_from_the_first_sample_after_warmup_to_the_last():
    samples = [_sample(0, 400.0), _sample(10, 500.0), _sample(20, 520.0), _sample(30, 560.0), _sample(40, 550.0)]
    base, last, grew = growth(samples, warmup=20)
    assert (base.requests, last.requests) == (20, 40)
    assert grew == pytest.approx(30 / 520)


def test_growth_needs_two_samples_after_warmup():
    with pytest.raises(ValueError, match="two samples"):
        growth([_sample(0, 1.0), _sample(10, 1.0)], warmup=10)


def test_parse_head_reads_status_length_and_keep_alive():
    head = b"HTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\ncontent-length: 57\r\n\r\n"
    assert parse_head(head) == (422, 57, True)
    assert parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n") == (200, 2, False)
    with pytest.raises(ValueError, match="Content-Length"):
        parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")

"""Dynamic batching: concurrent requests share one model call and each gets its own answers back."""

import asyncio

import pytest

from service.batcher import Batcher


def test_concurrent_submits_share_one_call_and_keep_their_order():
    calls: list[list[int]] = []

    def work(jobs: list[int]) -> list[int]:
        calls.append(list(jobs))
        return [j * 10 for j in jobs]

    async def scenario() -> list[list[int]]:
        b: Batcher[int, int] = Batcher(work, max_items=100)
        b.start()
        results = await asyncio.gather(b.submit([1, 2]), b.submit([3]), b.submit([4, 5, 6]))
        await b.stop()
        return results

    assert asyncio.run(scenario()) == [[10, 20], [30], [40, 50, 60]]
    assert calls == [[1, 2, 3, 4, 5, 6]]


def test_batches_stop_at_the_item_limit_without_splitting_a_request():
    calls: list[list[int]] = []

    def work(jobs: list[int]) -> list[int]:
        calls.append(list(jobs))
        return jobs

    async def scenario() -> None:
        b: Batcher[int, int] = Batcher(work, max_items=3)
        b.start()
        await asyncio.gather(b.submit([1, 2]), b.submit([3, 4]), b.submit([5]))
        await b.stop()

    asyncio.run(scenario())
    assert calls == [[1, 2, 3, 4], [5]]


def test_an_error_reaches_every_waiting_caller_and_the_loop_goes_on():
    def work(jobs: list[int]) -> list[int]:
        if 0 in jobs:
            raise ValueError("bad batch")
        return jobs

    async def scenario() -> tuple[list[object], list[int]]:
        b: Batcher[int, int] = Batcher(work, max_items=10)
        b.start()
        failed = await asyncio.gather(b.submit([0]), b.submit([1]), return_exceptions=True)
        ok = await b.submit([7])
        await b.stop()
        return failed, ok

    failed, ok = asyncio.run(scenario())
    assert all(isinstance(e, ValueError) for e in failed) and ok == [7]


def test_stop_fails_callers_still_queued():
    async def scenario() -> None:
        b: Batcher[int, int] = Batcher(lambda jobs: jobs, max_items=10)  # never started
        waiting = asyncio.ensure_future(b.submit([1]))
        await asyncio.sleep(0)
        await b.stop()
        with pytest.raises(RuntimeError, match="shutting down"):
            await waiting

    asyncio.run(scenario())

"""Dynamic batching: requests that arrive together are classified in one vectorised call.

A single-text call costs about as much as a call with a dozen texts (numpy's per-call overhead),
so under concurrent load the requests waiting at one moment are merged into one batch.

The batch runs on the event loop's own thread. A worker thread would fight the loop for the GIL:
every short release inside numpy or the database driver costs it up to the 5 ms switch interval,
which made batches ten times slower. Requests that arrive during a batch wait in the socket
buffers and form the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs `work` over merged lists of jobs; each caller gets back the results of its own jobs."""

    def __init__(self, work: Callable[[list[T]], list[R]], max_items: int) -> None:
        self._work = work
        self._max_items = max_items
        self._queue: asyncio.Queue[tuple[Sequence[T], asyncio.Future[list[R]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="uxcx-batcher")

    async def stop(self) -> None:
        """Finish the batch in hand and stop; callers still waiting get an error."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(RuntimeError("the service is shutting down"))

    async def submit(self, jobs: Sequence[T]) -> list[R]:
        """Queue jobs and wait for their results, in order."""
        fut: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        await self._queue.put((jobs, fut))
        return await fut

    async def _run(self) -> None:
        while True:
            taken = [await self._queue.get()]
            # Let the requests already read from the sockets reach the queue before taking the batch.
            await asyncio.sleep(0)
            size = len(taken[0][0])
            # Take whatever else is already waiting, whole requests only, up to the batch limit.
            while size < self._max_items and not self._queue.empty():
                nxt = self._queue.get_nowait()
                taken.append(nxt)
                size += len(nxt[0])
            jobs = [job for batch, _ in taken for job in batch]
            try:
                results = self._work(jobs)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, fut in taken:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            start = 0
            for batch, fut in taken:
                if not fut.done():
                    fut.set_result(results[start : start + len(batch)])
                start += len(batch)

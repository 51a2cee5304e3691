"""Recording that survives a database outage: rows the database refuses wait in a bounded buffer.

Classify answers whether or not its predictions could be written. When a write fails (the SQLite
file is locked, the PostgreSQL server is down), the rows stay in memory, in order, and are written
when the database is back: the periodic retry (in a thread) or a `/readyz` probe succeeds and
the buffer drains. Retries back off (0.5 s doubling to 30 s) so a dead database does not cost
every batch a timeout. Only when more than `max_pending` rows are waiting are the oldest dropped,
and every dropped row is counted and logged: nothing is lost silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice

from service.metrics import Metrics
from service.store import Record, Store

log = logging.getLogger("uxcx.service")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
CHUNK = 5_000


class Recorder:
    """Writes predictions through a Store; holds them while the database is unavailable."""

    def __init__(self, store: Store, metrics: Metrics, max_pending: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.metrics = metrics
        self.max_pending = max_pending
        self._clock = clock
        self._pending: deque[Record] = deque()
        self._lock = threading.Lock()  # guards the buffer and the back-off state
        self._writing = threading.Lock()  # one writer at a time (the loop, the retry thread, /readyz)
        self._retry_at = 0.0
        self._backoff = 0.0
        self.last_error: str | None = None
        self._dropping = False
        self._counted = 0  # the oldest pending rows already counted in uxcx_records_failed_total
        self._head = 0  # the number of rows ever taken off the left of the buffer (written or dropped)

    @property
    def pending(self) -> int:
        """Rows waiting for the database."""
        return len(self._pending)

    def add(self, records: Sequence[Record]) -> None:
        """Write these rows (after any that are waiting); keep them for a retry if the database fails."""
        if not records:
            return
        with self._lock:
            backlog = bool(self._pending)
            self._pending.extend(records)
            self._trim()
        if backlog:
            # The database has failed already: the retry thread writes these, so the event loop
            # does not wait out a lock or a connection timeout on every batch of the outage.
            self._count_failed()
        elif self.flush() is False:
            self._count_failed()

    def flush(self, force: bool = False) -> bool | None:
        """Write what is waiting. True: nothing is left; False: the database failed or we are backing
        off (unless `force`); None: another thread is writing, and will write these rows too."""
        if not self._writing.acquire(blocking=False):
            return None
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        return True
                    if not force and self._clock() < self._retry_at:
                        return False
                    rows = list(islice(self._pending, CHUNK))
                    first = self._head
                try:
                    self.store.add_predictions(rows)
                except Exception as exc:  # noqa: BLE001 - any driver error: keep the rows, back off
                    self._failed(exc)
                    return False
                with self._lock:
                    # Take off the rows just written, less any that a full buffer dropped meanwhile.
                    done = max(0, first + len(rows) - self._head)
                    for _ in range(done):
                        self._pending.popleft()
                    self._head += done
                    self._counted = max(0, self._counted - done)
                    self.metrics.records_pending.set(len(self._pending))
                    recovered = self._backoff > 0
                    self._backoff = 0.0
                    self._retry_at = 0.0
                    self.last_error = None
                    self._dropping = False
                self.metrics.recorded.inc(len(rows))
                if recovered:
                    log.warning("the database is back: writing the %d waiting predictions", len(self._pending) + len(rows))
        finally:
            self._writing.release()

    def close(self) -> None:
        """Last attempt at shutdown; what still cannot be written is counted and logged as lost."""
        deadline = self._clock() + 30.0
        while (done := self.flush(force=True)) is None and self._clock() < deadline:
            time.sleep(0.05)  # a retry thread is still writing: let it finish first
        if done is not True:
            with self._lock:
                lost = len(self._pending)
                self._pending.clear()
                self._head += lost
            if lost:
                self.metrics.records_dropped.inc(lost)
                log.error("shutting down with the database unavailable: %d predictions were not recorded", lost)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._backoff == 0
            self._backoff = FIRST_BACKOFF if first else min(self._backoff * 2, MAX_BACKOFF)
            self._retry_at = self._clock() + self._backoff
            self.last_error = type(exc).__name__
            waiting = len(self._pending)
        self.metrics.record_errors.inc()
        self._count_failed()
        if first:
            log.error(
                "could not record predictions (%s): keeping %d in memory (at most %d) and retrying",
                type(exc).__name__, waiting, self.max_pending,
            )

    def _count_failed(self) -> None:
        """Count, once each, the waiting rows whose write has failed (or was put off by the back-off)."""
        with self._lock:
            fresh = len(self._pending) - self._counted
            self._counted = len(self._pending)
        if fresh > 0:
            self.metrics.record_failures.inc(fresh)

    def _trim(self) -> None:
        over = len(self._pending) - self.max_pending
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self._head += over
            self._counted = max(0, self._counted - over)
            self.metrics.records_dropped.inc(over)
            if not self._dropping:  # once per outage, not once per batch
                self._dropping = True
                log.error("the database is still unavailable and %d predictions wait: dropping the oldest", self.max_pending)
        self.metrics.records_pending.set(len(self._pending))

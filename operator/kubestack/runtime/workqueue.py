"""A work queue with controller-runtime's guarantees, for level-triggered reconcilers.

- a key queued many times before a worker takes it is reconciled once (dedup);
- one key is never reconciled by two workers at once; a key queued while it is being
  reconciled is reconciled again afterwards (nothing is lost);
- a reconcile that raises is retried with exponential backoff (capped); a reconcile may
  also ask to be called again after a delay (polling something that has no watch event).

kopf's watch handlers only call `add`; the workers run the synchronous reconcile with the
kubernetes client in threads, so a slow API call never blocks the watch streams.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class Requeue(Exception):
    """Raised by a reconcile to be called again after `delay` seconds (not an error)."""

    def __init__(self, delay: float, reason: str = ""):
        super().__init__(reason)
        self.delay = delay


class WorkQueue:
    def __init__(self, name: str, reconcile: Callable[[Hashable], float | None], workers: int = 8,
                 base_delay: float = 0.5, max_delay: float = 60.0):
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self._base = base_delay
        self._max = max_delay
        self._cond = threading.Condition()
        self._ready: list[Hashable] = []  # FIFO of keys ready to run
        self._queued: set[Hashable] = set()  # keys in _ready
        self._active: set[Hashable] = set()  # keys being reconciled
        self._dirty: set[Hashable] = set()  # keys added while active
        self._delayed: list[tuple[float, int, Hashable]] = []  # heap of (due, seq, key)
        self._seq = 0
        self._failures: dict[Hashable, int] = {}
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # ---- producers --------------------------------------------------------------------------
    def add(self, key: Hashable, delay: float = 0.0) -> None:
        with self._cond:
            if delay > 0:
                self._seq += 1
                heapq.heappush(self._delayed, (time.monotonic() + delay, self._seq, key))
            elif key in self._active:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queued) + len(self._active) + len(self._delayed)

    # ---- workers ----------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self._workers):
            t = threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)

    def _promote_due(self) -> float | None:
        """Move due delayed keys to ready; returns seconds until the next one (or None)."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key in self._active:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
        return self._delayed[0][0] - now if self._delayed else None

    def _next(self) -> Hashable | None:
        with self._cond:
            while not self._stopping:
                wait = self._promote_due()
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    self._active.add(key)
                    return key
                self._cond.wait(timeout=wait if wait is not None else 1.0)
            return None

    def _done(self, key: Hashable, retry_in: float | None) -> None:
        with self._cond:
            self._active.discard(key)
            if retry_in is not None:
                self._seq += 1
                heapq.heappush(self._delayed, (time.monotonic() + retry_in, self._seq, key))
            if key in self._dirty:
                self._dirty.discard(key)
                if key not in self._queued:
                    self._queued.add(key)
                    self._ready.append(key)
            self._cond.notify()

    def _work(self) -> None:
        while (key := self._next()) is not None:
            retry_in: float | None = None
            try:
                self._reconcile(key)
                self._failures.pop(key, None)
            except Requeue as req:
                self._failures.pop(key, None)
                retry_in = req.delay
            except Exception:  # noqa: BLE001 - a reconcile bug must not kill the worker
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                retry_in = min(self._max, self._base * 2 ** (n - 1))
                log.exception("%s: reconcile of %s failed (attempt %d), retrying in %.1fs",
                              self.name, key, n, retry_in)
            self._done(key, retry_in)

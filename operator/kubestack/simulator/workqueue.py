"""The simulator's work queue: deduplicated keys, delayed adds, and several workers that never
reconcile two keys of one group at the same time.

The guarantees are client-go's workqueue ones, with "key" widened to "group" for exclusion:

* a key is queued at most once (adding a queued key is a no-op);
* a key is handed to one worker at a time, and no other key of its group is handed out until
  that worker calls `done` (the group of a key defaults to the key itself);
* a key added while it (or a key of its group) is being worked on waits in the queue and is
  handed out again after `done`: a change seen during a reconcile is never lost;
* `add_after` keeps only the earliest pending due time per key (a reconcile always asks again
  for the next time it needs, so a later request adds nothing);
* `wait_idle` returns once nothing is ready and nothing is being worked on (delayed keys may
  remain).

Why not `kubestack.runtime.workqueue`: that one is the operator's; it owns its worker threads
and the reconcile call, turning exceptions into exponential back-off, and has neither group
exclusion nor `wait_idle`. The simulator's retry policy is its own (fixed short delays), so this
small queue stays separate.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Callable, Hashable

from kubestack.simulator.common import Key


class WorkQueue:
    """Deduplicating queue with delayed adds and per-group exclusion of the keys handed out.

    `group(key)` is called with the queue's lock held when a key is about to be handed out: it
    must be quick and must not take locks of its own that are held while calling into the queue.
    """

    def __init__(self, group: Callable[[Key], Hashable] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._group = group or (lambda key: key)
        self._clock = clock
        self._cond = threading.Condition()
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._active: dict[Key, Hashable] = {}  # key being worked on -> the group it holds
        self._busy_groups: set[Hashable] = set()
        self._delayed: list[tuple[float, int, Key]] = []  # heap; stale entries are skipped
        self._due: dict[Key, tuple[float, int]] = {}      # key -> its valid heap entry
        self._seq = 0

    # -- adding -----------------------------------------------------------------------------
    def add(self, key: Key) -> None:
        with self._cond:
            if self._push(key):
                self._cond.notify_all()

    def add_after(self, key: Key, seconds: float) -> None:
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            at = self._clock() + seconds
            due = self._due.get(key)
            if due is not None and due[0] <= at:
                return
            self._seq += 1
            self._due[key] = (at, self._seq)
            heapq.heappush(self._delayed, (at, self._seq, key))
            self._cond.notify_all()

    def _push(self, key: Key) -> bool:
        if key in self._queued:
            return False
        self._queued.add(key)
        self._ready.append(key)
        return True

    def _promote_due(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            at, seq, key = heapq.heappop(self._delayed)
            if self._due.get(key) == (at, seq):
                del self._due[key]
                self._push(key)

    # -- working ----------------------------------------------------------------------------
    def get(self, stop: threading.Event) -> Key | None:
        """The next key no worker holds the group of (waiting for one); None once `stop` is set.
        The caller must call `done(key)` when it has finished with it."""
        with self._cond:
            while not stop.is_set():
                now = self._clock()
                self._promote_due(now)
                key = self._take()
                if key is not None:
                    return key
                wait = self._delayed[0][0] - now if self._delayed else 0.5
                self._cond.wait(min(max(wait, 0.01), 0.5))
            return None

    def _take(self) -> Key | None:
        for i, key in enumerate(self._ready):
            group = self._group(key)
            if group in self._busy_groups:
                continue  # it (or a key of its group) is being worked on: it runs after `done`
            del self._ready[i]
            self._queued.discard(key)
            self._active[key] = group
            self._busy_groups.add(group)
            return key
        return None

    def done(self, key: Key) -> None:
        with self._cond:
            group = self._active.pop(key)
            self._busy_groups.discard(group)
            self._cond.notify_all()

    # -- observing --------------------------------------------------------------------------
    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is ready or being worked on (delayed keys may remain)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._ready or self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    def pending_delayed(self) -> int:
        with self._cond:
            return len(self._due)

    def active(self) -> set[Key]:
        with self._cond:
            return set(self._active)

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready)

"""Re-syncs of one kind's objects when something they name changes.

A FloatingIP, Port or Router reads other objects (its server, port, network) that a GitOps
apply may create after it, delete or recreate. kopf keeps each object's own create and spec
changes; a `Resyncer` re-syncs it for its dependencies' events through a work queue:

* only an object kopf has synced once (it has an observedGeneration): kopf's create handler
  runs first (finalizers on, everything read fresh), and reads the dependencies itself;
* as it is now, read under its lock, which kopf's handlers take too: one object is never
  synced by two threads at once, nor while its delete handler releases what it holds;
* never one being deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from kubestack.k8s import objects
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.workqueue import WorkQueue

Key = tuple[str, str]


class Resyncer:
    def __init__(self, gvr: objects.GVR, sync: Callable[[dict, str, str], None], *, workers: int = 2,
                 locks: int = 64):
        """`sync(body, namespace, name)` brings one object's status to what it names now."""
        self.gvr = gvr
        self._sync = sync
        self._workers = workers
        self._locks = [threading.Lock() for _ in range(locks)]
        self._queue: WorkQueue | None = None
        self._reconcile = instrumented(gvr.kind)(self._resync)

    def lock(self, namespace: str, name: str) -> threading.Lock:
        return self._locks[hash((namespace, name)) % len(self._locks)]

    def sync_current(self, namespace: str, name: str, *, resync: bool = False) -> None:
        """Sync the object as it is now (read under its lock); `resync`: for a dependency's
        event, so only once kopf has synced it."""
        with self.lock(namespace, name):
            body = objects.get(self.gvr, namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return
            if resync and (body.get("status") or {}).get("observedGeneration") is None:
                return  # kopf's create handler has not run yet: it will, and read everything fresh
            self._sync(body, namespace, name)

    def _resync(self, key: Key) -> None:
        """The work queue's reconcile (raises to be retried with back-off)."""
        self.sync_current(*key, resync=True)

    def add(self, keys: Iterable[Key]) -> None:
        """Queue re-syncs (none come before `start`: kopf runs startup handlers before it watches)."""
        if self._queue is not None:
            for key in keys:
                self._queue.add(key)

    def start(self) -> None:
        self._queue = WorkQueue(self.gvr.plural, self._reconcile, workers=self._workers)
        self._queue.start()

    def stop(self) -> None:
        if self._queue is not None:
            self._queue.stop()

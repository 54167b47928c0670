"""Publishes the availability zones (`kubestack.compute.zones`) for users who may not read
Nodes: the ConfigMap `kubestack-availability-zones` in the operator's namespace.

Not a controller of its own (it is not in CONTROLLER_MODULES): the server controller already
watches every Node for its host cache, so its Node handler tells the publisher which host
changed and the publisher reads that host back from the cache (parsed once, by the cache).
Only a change of some zone's status schedules a publish, and it is written after a short
delay by a one-key work queue, so a node storm (a rack coming up, a fleet-wide heartbeat)
ends in one write, not one per Node event. The ConfigMap is written only when its content
differs from what it holds, so an operator restarted on an unchanged cluster writes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable

from kubernetes.client.rest import ApiException

from kubestack.compute import zones
from kubestack.k8s.client import core
from kubestack.runtime.workqueue import WorkQueue
from kubestack.scheduler import HostCache

log = logging.getLogger(__name__)

KEY = "zones"
# how long a zone change waits for the ones following it (a storm's Node events arrive
# within this): one write per second at most while nodes keep changing
DEBOUNCE_SECONDS = 1.0


class ZonePublisher:
    def __init__(self, cache: HostCache, namespace: str, debounce: float = DEBOUNCE_SECONDS):
        self.cache = cache
        self.namespace = namespace
        self.debounce = debounce
        self._lock = threading.Lock()
        self._tally = zones.ZoneTally(cache.config.default_availability_zone)
        self._scheduled = False  # a publish is queued and has not read the tally yet
        self._published: dict[str, str] | None = None  # the ConfigMap's data, once read or written
        self.queue = WorkQueue("zones", self._publish, workers=1)

    def host_changed(self, name: str) -> None:
        """Node `name` was added, changed or deleted and the host cache has recorded it."""
        with self._lock:
            if not self._tally.set(name, self.cache.get_host(name)) or self._scheduled:
                return
            self._scheduled = True
        self.queue.add(KEY, delay=self.debounce)

    def start(self) -> None:
        """Count every host of the (rebuilt) cache and publish once at once: the ConfigMap may
        be missing, or stale from before a restart."""
        with self.cache.lock:
            hosts = list(self.cache.hosts())
        with self._lock:
            for host in hosts:
                self._tally.set(host.name, host)
        self.queue.start()
        self.queue.add(KEY)

    def stop(self) -> None:
        self.queue.stop()

    def _publish(self, _key: Hashable) -> None:
        with self._lock:
            self._scheduled = False  # changes from now on are not in this publish: queue another
            summary = self._tally.summary()
        current = self._published if self._published is not None else self._read()
        if summary == current:
            self._published = summary
            return
        self._write(summary)
        self._published = summary
        log.info("availability zones published in %s/%s: %s", self.namespace, zones.CONFIGMAP,
                 ", ".join(f"{z} {s}" for z, s in summary.items()) or "none")

    def _read(self) -> dict[str, str] | None:
        try:
            obj = core().read_namespaced_config_map(zones.CONFIGMAP, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj.data or {})

    def _write(self, summary: dict[str, str]) -> None:
        """Replace the whole ConfigMap (a zone gone must go from it too); create it when absent."""
        body = zones.configmap(self.namespace, summary)
        try:
            core().replace_namespaced_config_map(zones.CONFIGMAP, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            core().create_namespaced_config_map(self.namespace, body)

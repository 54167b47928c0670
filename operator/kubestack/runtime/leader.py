"""Leader election on a coordination.k8s.io/v1 Lease, so two replicas never both act.

kopf's own peering pauses lower-priority peers but lets equal-priority peers run together,
which is not enough for an operator that allocates IPs and claims hosts. The rule here is
client-go's: the holder renews the Lease every `renew` seconds; another replica takes it over
only once `renewTime + leaseDurationSeconds` has passed; every write carries the
resourceVersion it read, so two candidates racing for an expired Lease cannot both win.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time

from kubernetes import client
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _fmt(ts: datetime.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class LeaderElector:
    def __init__(self, api: client.ApiClient, namespace: str, name: str, identity: str | None = None,
                 lease_seconds: int = 15, renew_seconds: float = 5.0):
        self.coord = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.is_leader = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()

    def _body(self, resource_version: str | None, transitions: int, acquired: datetime.datetime) -> dict:
        meta = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": _fmt(acquired),
                "renewTime": _fmt(_now()),
                "leaseTransitions": transitions,
            },
        }

    def try_acquire_or_renew(self) -> bool:
        """One round of the protocol; True when this replica holds the Lease afterwards."""
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            try:
                self.coord.create_namespaced_lease(self.namespace, self._body(None, 0, _now()))
                return True
            except ApiException as create_exc:
                if create_exc.status == 409:  # another replica created it first
                    return False
                raise
        spec = lease.spec
        holder = spec.holder_identity
        renewed = spec.renew_time or spec.acquire_time
        duration = spec.lease_duration_seconds or self.lease_seconds
        expired = renewed is None or renewed + datetime.timedelta(seconds=duration) < _now()
        if holder != self.identity and holder and not expired:
            return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = spec.acquire_time if holder == self.identity and spec.acquire_time else _now()
        try:
            self.coord.replace_namespaced_lease(
                self.name, self.namespace, self._body(lease.metadata.resource_version, transitions, acquired)
            )
            return True
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote in between: they won this round
                return False
            raise

    def wait_for_leadership(self) -> None:
        """Block until this replica leads, then keep renewing in a background thread."""
        while not self._stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    break
            except ApiException as exc:
                log.warning("leader election: %s", exc.reason)
            self._stop.wait(self.renew_seconds)
        if self._stop.is_set():
            return
        log.info("leader election: %s now leads (%s/%s)", self.identity, self.namespace, self.name)
        self.is_leader.set()
        threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True).start()

    def _renew_loop(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.renew_seconds):
            try:
                if self.try_acquire_or_renew():
                    last_ok = time.monotonic()
                    continue
            except ApiException as exc:
                log.warning("leader election: renew failed: %s", exc.reason)
                if time.monotonic() - last_ok < self.lease_seconds:
                    continue
            # someone else holds it now, or we could not renew within the lease: stop acting
            log.error("leader election: lost the lease %s/%s", self.namespace, self.name)
            self.is_leader.clear()
            self.lost.set()
            return

    def release(self) -> None:
        """Give the Lease up on a clean stop so a standby takes over at once."""
        self._stop.set()
        if not self.is_leader.is_set():
            return
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self.coord.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            log.warning("leader election: release failed: %s", exc.reason)
        self.is_leader.clear()

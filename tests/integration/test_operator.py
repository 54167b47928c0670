"""`kubestack operator` against the real API server: leader Lease, probes, metrics, SIGTERM."""

from __future__ import annotations

import time
import uuid

from kubernetes import client

from support.processes import Operator


def _holder(cluster, namespace: str) -> str | None:
    lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease("kubestack-operator", namespace)
    return lease.spec.holder_identity


def test_operator_leads_serves_metrics_and_stops_cleanly(cluster, tmp_path):
    lease_ns = f"lease-{uuid.uuid4().hex[:6]}"
    first = Operator(cluster.kubeconfig, tmp_path / "first.log", identity="first", namespace=lease_ns,
                     extra=["--controllers", ""])
    try:
        first.wait_ready()
        assert _holder(cluster, lease_ns) == "first"
        status, metrics = first.get("/metrics")
        assert status == 200
        assert "kubestack_leader 1.0" in metrics
        assert "kubestack_handler_calls_total" in metrics
        assert first.get("/healthz")[0] == 200

        # a second replica is alive but stands by while the first holds the Lease
        second = Operator(cluster.kubeconfig, tmp_path / "second.log", identity="second", namespace=lease_ns,
                          extra=["--controllers", ""])
        try:
            time.sleep(2)
            assert second.get("/healthz")[0] == 200
            assert second.get("/readyz")[0] == 503
            assert "kubestack_leader 0.0" in second.get("/metrics")[1]

            assert first.stop() == 0  # SIGTERM: clean exit, Lease released
            second.wait_ready()  # takes over at once, not after the lease duration
            assert _holder(cluster, lease_ns) == "second"
        finally:
            assert second.stop() == 0
    finally:
        first.stop()

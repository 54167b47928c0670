"""Servers boot to ACTIVE and follow every lifecycle action, against the real API server,
kube-controller-manager, the operator and the simulator."""

from __future__ import annotations

from support.compute import (
    create_flavor, create_image, create_server, events_for, server, vm, vmi, wait_for, wait_status,
)
from support.schemas import assert_valid


def test_boot_one_server_to_active(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, vcpus=2, ram=2048)
    create_image(cluster, namespace)
    create_server(cluster, namespace, "web-1", flavor, userData="#!/bin/sh\necho hi\n")
    s = wait_status(cluster, namespace, "web-1", "ACTIVE")
    st = s["status"]
    assert st["powerState"] == "RUNNING"
    assert st["host"].startswith("compute-")
    assert st["availabilityZone"] in ("az1", "az2")
    assert st["flavor"]["vcpus"] == 2 and st["flavorName"] == flavor
    assert st["launchedAt"]
    assert st["networks"].startswith("pod=10.244.")
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"Scheduled": "True", "Ready": "True"}
    machine = vm(cluster, namespace, "web-1")
    assert_valid(machine)
    tpl = machine["spec"]["template"]["spec"]
    assert tpl["nodeSelector"] == {"kubernetes.io/hostname": st["host"]}
    assert tpl["domain"]["cpu"]["cores"] == 2
    assert tpl["domain"]["memory"]["guest"] == "2048Mi"
    cloud = next(v for v in tpl["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]
    assert "echo hi" in cloud["userData"]
    assert vmi(cluster, namespace, "web-1")["status"]["nodeName"] == st["host"]
    reasons = [e.reason for e in events_for(cluster, namespace, "web-1")]
    assert "Scheduled" in reasons and "Active" in reasons

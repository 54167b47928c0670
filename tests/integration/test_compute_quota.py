"""Nova's quotas on servers (instances, cores, ram), enforced by the operator before anything
is built, also when many creates race for the last slots."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from support.compute import create_flavor, create_image, create_server, custom, patch_server, vm, wait_for, wait_status


def _project(cluster, quotas: dict, **spec) -> str:
    name = f"q-{uuid.uuid4().hex[:8]}"
    custom(cluster).create_cluster_custom_object("kubestack.io", "v1alpha1", "projects", {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "Project", "metadata": {"name": name},
        "spec": {"quotas": quotas, "cascadeDelete": True, **spec}})
    wait_for(lambda: ((custom(cluster).get_cluster_custom_object("kubestack.io", "v1alpha1", "projects", name)
                       .get("status") or {}).get("phase") == "Active"), what="project Active")
    return name


def _states(cluster, namespace) -> list[str]:
    items = custom(cluster).list_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "servers")["items"]
    return [(s.get("status") or {}).get("status") for s in items if not (s.get("status") or {}).get("taskState")]


def test_instances_cores_and_ram_quotas(cluster, kubestack):
    ns = _project(cluster, {"instances": 2, "cores": 3, "ram": 4096})
    try:
        small = create_flavor(cluster, vcpus=1, ram=1024)
        big = create_flavor(cluster, vcpus=2, ram=2048)
        create_image(cluster, ns)
        create_server(cluster, ns, "a", small)
        wait_status(cluster, ns, "a", "ACTIVE")
        create_server(cluster, ns, "b", big)
        create_server(cluster, ns, "c", big)  # would be 5 cores and 3 instances
        wait_status(cluster, ns, "b", "ACTIVE")
        s = wait_status(cluster, ns, "c", "ERROR")
        assert s["status"]["fault"]["message"] == (
            "Quota exceeded for instances, cores, ram: Requested 1, 2, 2048, but already used 2, 3, 3072 "
            "of 2, 3, 4096 instances, cores, ram")
        assert vm(cluster, ns, "c") is None
        # a resize that would exceed cores is refused, the server keeps running as it was
        patch_server(cluster, ns, "a", {"flavor": big})
        def refused():
            s = custom(cluster).get_namespaced_custom_object("kubestack.io", "v1alpha1", ns, "servers", "a")
            return next((c for c in s["status"].get("conditions") or [] if c["type"] == "RequestRefused"), None)

        cond = wait_for(refused, what="resize refused")
        assert cond["reason"] == "QuotaExceeded" and cond["message"].startswith("Quota exceeded for cores")
        s = custom(cluster).get_namespaced_custom_object("kubestack.io", "v1alpha1", ns, "servers", "a")
        assert s["status"]["status"] == "ACTIVE" and not s["status"].get("fault")
        assert s["status"]["flavorName"] == small
    finally:
        custom(cluster).delete_cluster_custom_object("kubestack.io", "v1alpha1", "projects", ns)


def test_twenty_concurrent_creates_race_for_five_slots(cluster, kubestack):
    ns = _project(cluster, {"instances": 5, "cores": 100, "ram": 1024000})
    try:
        flavor = create_flavor(cluster, vcpus=1, ram=512)
        create_image(cluster, ns)
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda i: create_server(cluster, ns, f"r{i:02d}", flavor), range(20)))
        wait_for(lambda: len([s for s in _states(cluster, ns) if s in ("ACTIVE", "ERROR")]) == 20,
                 timeout=120, what="20 settled")
        states = _states(cluster, ns)
        assert states.count("ACTIVE") == 5 and states.count("ERROR") == 15
        vms = custom(cluster).list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines")["items"]
        assert len(vms) == 5
    finally:
        custom(cluster).delete_cluster_custom_object("kubestack.io", "v1alpha1", "projects", ns)


def test_a_parent_project_bounds_its_children_together(cluster, kubestack):
    """Keystone's hierarchy with strict-two-level limits: the parent's cores bound the
    parent's and its children's servers together."""
    org = _project(cluster, {"cores": 3})
    teams = [_project(cluster, {"cores": 2}, parent=org) for _ in range(2)]
    try:
        flavor = create_flavor(cluster, vcpus=2, ram=1024)
        for team in teams:
            create_image(cluster, team)
        create_server(cluster, teams[0], "a", flavor)
        wait_status(cluster, teams[0], "a", "ACTIVE")
        create_server(cluster, teams[1], "b", flavor)  # team-b's own 2 cores fit; org's 3 do not
        s = wait_status(cluster, teams[1], "b", "ERROR")
        assert s["status"]["fault"]["message"] == (
            f"Quota exceeded for cores: Requested 2, but already used 2 of 3 cores "
            f"(the limit of parent project {org}, for it and its children)")
        assert vm(cluster, teams[1], "b") is None
    finally:
        for name in (*teams, org):
            custom(cluster).delete_cluster_custom_object("kubestack.io", "v1alpha1", "projects", name)



def test_what_quota_refused_goes_through_once_room_is_freed(cluster, kubestack):
    """A server refused for quota (in ERROR, unbuilt) boots once a server is deleted, and a
    resize refused for quota goes through once the Project's quota is raised: nobody touches
    the refused objects again (a GitOps apply converges by itself)."""
    ns = _project(cluster, {"instances": 1, "cores": 1, "ram": 10240})
    try:
        small = create_flavor(cluster, vcpus=1, ram=512)
        big = create_flavor(cluster, vcpus=2, ram=1024)
        create_image(cluster, ns)
        create_server(cluster, ns, "a", small)
        wait_status(cluster, ns, "a", "ACTIVE")
        create_server(cluster, ns, "b", small)
        s = wait_status(cluster, ns, "b", "ERROR")
        assert s["status"]["fault"]["message"].startswith("Quota exceeded for instances")
        custom(cluster).delete_namespaced_custom_object("kubestack.io", "v1alpha1", ns, "servers", "a")
        s = wait_status(cluster, ns, "b", "ACTIVE")
        assert not s["status"].get("fault")

        patch_server(cluster, ns, "b", {"flavor": big})
        wait_for(lambda: next((c for c in custom(cluster).get_namespaced_custom_object(
            "kubestack.io", "v1alpha1", ns, "servers", "b")["status"].get("conditions") or []
            if c["type"] == "RequestRefused" and c["reason"] == "QuotaExceeded"), None), what="resize refused")
        custom(cluster).patch_cluster_custom_object("kubestack.io", "v1alpha1", "projects", ns,
                                                    {"spec": {"quotas": {"cores": 2}}})
        s = wait_status(cluster, ns, "b", "VERIFY_RESIZE")
        assert s["status"]["flavorName"] == big
        assert not any(c["type"] == "RequestRefused" for c in s["status"].get("conditions") or [])
    finally:
        custom(cluster).delete_cluster_custom_object("kubestack.io", "v1alpha1", "projects", ns)

"""Servers boot to ACTIVE and follow every lifecycle action, against the real API server,
kube-controller-manager, the operator and the simulator."""

from __future__ import annotations

import yaml

from support.compute import (
    create_flavor, create_image, create_server, custom, events_with, get, patch_server, server, vm, vmi, wait_for,
    wait_status,
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
    events_with(cluster, namespace, "web-1", "Scheduled", "Active")


def test_large_user_data_lives_in_a_secret_that_follows_changes(cluster, kubestack, namespace):
    from kubernetes import client

    core = client.CoreV1Api(cluster.api)
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    script = "#!/bin/sh\n" + "echo big\n" * 400  # over the inline limit
    create_server(cluster, namespace, "big", flavor, userData=script)
    s = wait_status(cluster, namespace, "big", "ACTIVE")

    def secret_ref() -> str:
        tpl = vm(cluster, namespace, "big")["spec"]["template"]["spec"]
        return next(v for v in tpl["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]["secretRef"]["name"]

    first = secret_ref()
    secret = core.read_namespaced_secret(first, namespace)
    assert secret.metadata.owner_references[0].uid == s["metadata"]["uid"]  # goes with the server
    assert_valid(vm(cluster, namespace, "big"))

    patch_server(cluster, namespace, "big", {"userData": script + "echo more\n"})
    second = wait_for(lambda: (ref := secret_ref()) != first and ref, what="VM on the new user data")
    assert core.read_namespaced_secret(second, namespace).data["userdata"]
    wait_for(lambda: first not in [x.metadata.name for x in core.list_namespaced_secret(namespace).items],
             what="old cloud-init Secret deleted")


def test_a_deleted_key_pair_stays_in_the_guest_while_user_data_changes(cluster, kubestack, namespace):
    """Nova copies the key pair's key into the instance at boot: the server keeps it after the
    key pair is deleted, and user data changed later is rendered with it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " me@host"
    custom(cluster).create_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "keypairs", {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "KeyPair", "metadata": {"name": "k"},
        "spec": {"publicKey": key}})
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    create_server(cluster, namespace, "kp", flavor, keyName="k", userData="#cloud-config\nruncmd: [echo v1]\n")
    wait_status(cluster, namespace, "kp", "ACTIVE")

    def guest_config() -> dict:
        tpl = vm(cluster, namespace, "kp")["spec"]["template"]["spec"]
        cloud = next(v for v in tpl["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]
        return yaml.safe_load(cloud["userData"])

    assert guest_config()["ssh_authorized_keys"] == [key]
    custom(cluster).delete_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "keypairs", "k")
    wait_for(lambda: get(cluster, namespace, "keypairs", "k") is None, what="key pair deleted")

    generation = patch_server(cluster, namespace, "kp", {"userData": "#cloud-config\nruncmd: [echo v2]\n",
                                                         "hostname": "kp2"})["metadata"]["generation"]
    config = wait_for(lambda: (c := guest_config())["runcmd"] == ["echo v2"] and c, what="VM on the new user data")
    assert config["ssh_authorized_keys"] == [key] and config["hostname"] == "kp2"
    assert_valid(vm(cluster, namespace, "kp"))
    s = wait_for(lambda: (x := server(cluster, namespace, "kp"))["status"].get("observedGeneration") == generation
                 and x, what="new generation observed")
    assert s["status"]["status"] == "ACTIVE" and not s["status"].get("fault")
    assert "RequestRefused" not in [c["type"] for c in s["status"]["conditions"]]
    assert s["status"]["keyData"] == key
    # unshelve builds a new VM: still with the key the server was booted with
    patch_server(cluster, namespace, "kp", {"powerState": "Shelved"})
    wait_status(cluster, namespace, "kp", "SHELVED_OFFLOADED")
    patch_server(cluster, namespace, "kp", {"powerState": "Running"})
    wait_status(cluster, namespace, "kp", "ACTIVE")
    assert guest_config()["ssh_authorized_keys"] == [key]


def _boot(cluster, namespace, name, flavor, **spec):
    create_server(cluster, namespace, name, flavor, **spec)
    return wait_status(cluster, namespace, name, "ACTIVE")


def test_missing_flavor_or_image_gives_error_and_creates_nothing(cluster, kubestack, namespace):
    create_image(cluster, namespace)
    create_server(cluster, namespace, "no-flavor", "m1.does-not-exist")
    s = wait_status(cluster, namespace, "no-flavor", "ERROR")
    assert s["status"]["fault"]["message"] == "Flavor m1.does-not-exist could not be found."
    flavor = create_flavor(cluster)
    create_server(cluster, namespace, "no-image", flavor, image="nope")
    s = wait_status(cluster, namespace, "no-image", "ERROR")
    assert s["status"]["fault"]["message"] == "Image nope could not be found."
    assert vm(cluster, namespace, "no-flavor") is None and vm(cluster, namespace, "no-image") is None
    events_with(cluster, namespace, "no-flavor", "FlavorNotFound")


def test_flavor_too_big_for_every_host_reports_per_filter_counts(cluster, kubestack, namespace):
    create_image(cluster, namespace)
    flavor = create_flavor(cluster, vcpus=1, ram=1024 * 1024)  # 1 TiB of RAM: no host has it
    create_server(cluster, namespace, "huge", flavor)
    s = wait_status(cluster, namespace, "huge", "ERROR")
    fault = s["status"]["fault"]
    assert fault["code"] == 500
    assert fault["message"].startswith("No valid host was found")
    assert "Filter RamFilter returned 0 hosts" in fault["details"]
    assert vm(cluster, namespace, "huge") is None


def test_stop_start_pause_suspend_reboot(cluster, kubestack, namespace):
    from support.compute import patch_server

    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    _boot(cluster, namespace, "life", flavor)

    patch_server(cluster, namespace, "life", {"powerState": "Stopped"})
    s = wait_status(cluster, namespace, "life", "SHUTOFF")
    assert s["status"]["powerState"] == "SHUTDOWN"
    assert vm(cluster, namespace, "life")["spec"]["runStrategy"] == "Halted"
    wait_for(lambda: vmi(cluster, namespace, "life") is None, what="VMI gone")

    patch_server(cluster, namespace, "life", {"powerState": "Running"})
    wait_status(cluster, namespace, "life", "ACTIVE")
    assert vm(cluster, namespace, "life")["spec"]["runStrategy"] == "Always"

    patch_server(cluster, namespace, "life", {"powerState": "Paused"})
    s = wait_status(cluster, namespace, "life", "PAUSED")
    assert s["status"]["powerState"] == "PAUSED"
    patch_server(cluster, namespace, "life", {"powerState": "Running"})
    wait_status(cluster, namespace, "life", "ACTIVE")

    patch_server(cluster, namespace, "life", {"powerState": "Suspended"})
    wait_status(cluster, namespace, "life", "SUSPENDED")
    patch_server(cluster, namespace, "life", {"powerState": "Running"})
    wait_status(cluster, namespace, "life", "ACTIVE")

    before = vmi(cluster, namespace, "life")["metadata"]["uid"]
    patch_server(cluster, namespace, "life", {"reboot": {"type": "SOFT", "requestId": "r1"}})
    wait_for(lambda: (server(cluster, namespace, "life")["status"].get("lastRebootRequestId") == "r1"),
             what="soft reboot done")
    wait_status(cluster, namespace, "life", "ACTIVE")
    assert vmi(cluster, namespace, "life")["metadata"]["uid"] == before  # soft: same VMI

    patch_server(cluster, namespace, "life", {"reboot": {"type": "HARD", "requestId": "r2"}})
    wait_for(lambda: (server(cluster, namespace, "life")["status"].get("lastRebootRequestId") == "r2"),
             what="hard reboot done")
    wait_status(cluster, namespace, "life", "ACTIVE")
    assert vmi(cluster, namespace, "life")["metadata"]["uid"] != before  # hard: a new VMI
    events_with(cluster, namespace, "life", "Shutoff", "Paused", "Suspended", "Rebooting", "Rebooted")


def test_resize_verify_confirm_and_revert(cluster, kubestack, namespace):
    from support.compute import patch_server

    small = create_flavor(cluster, vcpus=1, ram=1024)
    big = create_flavor(cluster, vcpus=4, ram=4096)
    create_image(cluster, namespace)
    _boot(cluster, namespace, "rs", small)

    patch_server(cluster, namespace, "rs", {"flavor": big})
    s = wait_status(cluster, namespace, "rs", "VERIFY_RESIZE")
    assert s["status"]["resize"]["oldFlavor"] == small
    assert s["status"]["flavor"]["vcpus"] == 4
    tpl = vm(cluster, namespace, "rs")["spec"]["template"]["spec"]
    assert tpl["domain"]["cpu"]["cores"] == 4 and tpl["domain"]["memory"]["guest"] == "4096Mi"
    patch_server(cluster, namespace, "rs", {"confirmedFlavor": big})
    s = wait_status(cluster, namespace, "rs", "ACTIVE")
    assert s["status"]["flavorName"] == big and "resize" not in s["status"]

    patch_server(cluster, namespace, "rs", {"flavor": small})
    wait_status(cluster, namespace, "rs", "VERIFY_RESIZE")
    patch_server(cluster, namespace, "rs", {"flavor": big})  # revert: back to the old flavor
    s = wait_status(cluster, namespace, "rs", "ACTIVE")
    assert s["status"]["flavorName"] == big
    assert vm(cluster, namespace, "rs")["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] == 4


def test_rebuild_shelve_unshelve_and_live_migrate(cluster, kubestack, namespace):
    from support.compute import patch_server

    flavor = create_flavor(cluster)
    create_image(cluster, namespace, "cirros")
    create_image(cluster, namespace, "fedora", container_disk="quay.io/containerdisks/fedora:40")
    s = _boot(cluster, namespace, "mv", flavor)
    host = s["status"]["host"]

    patch_server(cluster, namespace, "mv", {"migrate": {"requestId": "m1", "live": True}})
    s = wait_for(lambda: (x := server(cluster, namespace, "mv"))["status"].get("lastMigrateRequestId") == "m1"
                 and x, what="migration done")
    assert s["status"]["host"] != host
    assert vmi(cluster, namespace, "mv")["status"]["nodeName"] == s["status"]["host"]

    patch_server(cluster, namespace, "mv", {"image": "fedora"})
    wait_for(lambda: server(cluster, namespace, "mv")["status"]["imageName"] == "fedora", what="rebuild")
    s = wait_status(cluster, namespace, "mv", "ACTIVE")
    events_with(cluster, namespace, "mv", "Rebuilding")
    vols = vm(cluster, namespace, "mv")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "rootdisk", "containerDisk": {"image": "quay.io/containerdisks/fedora:40"}} in vols

    patch_server(cluster, namespace, "mv", {"powerState": "Shelved"})
    s = wait_status(cluster, namespace, "mv", "SHELVED_OFFLOADED")
    assert "host" not in s["status"]
    wait_for(lambda: vm(cluster, namespace, "mv") is None, what="VM removed by shelve")
    patch_server(cluster, namespace, "mv", {"powerState": "Running"})
    s = wait_status(cluster, namespace, "mv", "ACTIVE")
    assert s["status"]["host"]


def test_delete_removes_what_the_server_created(cluster, kubestack, namespace):
    from support.compute import custom

    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    _boot(cluster, namespace, "gone", flavor)
    _boot(cluster, namespace, "stays", flavor)
    custom(cluster).delete_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "servers", "gone")
    wait_for(lambda: vm(cluster, namespace, "gone") is None and vmi(cluster, namespace, "gone") is None,
             what="VM and VMI garbage-collected")
    assert vm(cluster, namespace, "stays") is not None
    assert server(cluster, namespace, "stays")["status"]["status"] == "ACTIVE"


def test_multi_create_min_max(cluster, kubestack, namespace):
    """openstack server create --min 2 --max 3 batch: batch-1..3, placed together."""
    from support.compute import custom

    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    create_server(cluster, namespace, "batch", flavor, minCount=2, maxCount=3)
    s = wait_status(cluster, namespace, "batch", "ACTIVE")
    assert s["status"]["networks"] == "3 servers: batch-1, batch-2, batch-3"
    for i in (1, 2, 3):
        member = server(cluster, namespace, f"batch-{i}")
        assert member["status"]["status"] == "ACTIVE"
        assert member["metadata"]["ownerReferences"][0]["name"] == "batch"
        assert "minCount" not in member["spec"] or member["spec"]["minCount"] == 1
        assert vm(cluster, namespace, f"batch-{i}") is not None
    assert vm(cluster, namespace, "batch") is None  # the reservation itself has no VM
    custom(cluster).delete_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "servers", "batch")
    wait_for(lambda: all(server(cluster, namespace, f"batch-{i}") is None for i in (1, 2, 3)),
             what="members deleted with the reservation")


def test_evacuate_when_host_goes_down(cluster, kubestack, namespace):
    """A host that goes NotReady: its servers (container disks) are rebuilt on another host
    of the same zone."""
    import uuid

    from kubernetes import client

    from kubestack.devcluster.cluster import NodeSpec

    zone = f"ev-{uuid.uuid4().hex[:6]}"
    hosts = [NodeSpec(name=f"{zone}-{i}", zone=zone) for i in range(2)]
    cluster.dev.register_nodes(hosts)
    core = client.CoreV1Api(cluster.api)
    try:
        flavor = create_flavor(cluster)
        create_image(cluster, namespace)
        s = _boot(cluster, namespace, "evac", flavor, availabilityZone=zone)
        down = s["status"]["host"]
        node = core.read_node_status(down)
        for cond in node.status.conditions:
            if cond.type == "Ready":
                cond.status, cond.reason = "False", "KubeletNotReady"
        core.replace_node_status(down, node)
        s = wait_for(lambda: (x := server(cluster, namespace, "evac"))["status"].get("host") != down
                     and x["status"]["status"] == "ACTIVE" and x, what="evacuated", timeout=60)
        assert s["status"]["host"] in {h.name for h in hosts} - {down}
        assert vmi(cluster, namespace, "evac")["status"]["nodeName"] == s["status"]["host"]
        events_with(cluster, namespace, "evac", "Evacuated")
    finally:
        for h in hosts:
            core.delete_node(h.name)


def test_a_server_waits_in_build_for_an_image_another_project_is_still_uploading(cluster, kubestack, namespace,
                                                                                  admin):
    flavor = create_flavor(cluster, vcpus=1, ram=512)
    api = custom(cluster)
    api.create_namespaced_custom_object("kubestack.io", "v1alpha1", admin, "images", {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "Image", "metadata": {"name": "golden"},
        "spec": {"source": {"upload": {}}, "visibility": "public", "diskFormat": "raw"}})
    create_server(cluster, namespace, "early", flavor, image=f"{admin}/golden")

    def waiting():
        s = server(cluster, namespace, "early")
        ready = next((c for c in (s.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})
        return s if ready.get("reason") == "ImageNotActive" else None

    st = wait_for(waiting, what="the server waiting for its image")["status"]
    assert st["status"] == "BUILD" and not st.get("host") and not st.get("fault")
    assert vm(cluster, namespace, "early") is None
    events_with(cluster, namespace, "early", "Waiting")
    # the upload completes (kubestack image create --file; the simulator's CDI marks it so),
    # once the image service has made the DataVolume it streams into
    wait_for(lambda: get(cluster, admin, "datavolumes", "golden-image", "cdi.kubevirt.io", "v1beta1"),
             what="the image's DataVolume")
    api.patch_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", admin, "datavolumes", "golden-image", {
        "metadata": {"annotations": {"simulator.kubestack.io/uploaded": "true"}}})
    wait_status(cluster, namespace, "early", "ACTIVE")

"""Images and Volumes against the local control plane, with `kubestack operator` and
`kubestack simulate` (CDI, the CSI provisioner/resizer/snapshotter) as subprocesses:
imports reach active or are killed, visibility decides who may clone an image, volumes are
created blank / from an image / from a snapshot / as clones and extended, quota is enforced
before anything is created, and protected / in-use objects are not deleted. Every DataVolume
the operator writes validates against CDI's schema."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubestack.storage import names
from kubestack.storage.disks import DiskError, ensure_server_disks
from support.schemas import assert_valid

G, V = "kubestack.io", "v1alpha1"
WAIT = 90.0


def eventually(check, timeout=WAIT, interval=0.2):
    """Poll `check` until it returns something truthy (a deadline for hangs, not a speed test)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met; last value: {last!r}")


@pytest.fixture(scope="module")
def running(cluster, kubestack):
    """The session's operator and simulator (one of each per session: two would both act)."""
    storage = client.StorageV1Api(cluster.api)
    eventually(lambda: {"standard", "fast-ssd"} <= {s.metadata.name for s in storage.list_storage_class().items})
    return kubestack.operator, kubestack.simulator


@pytest.fixture
def custom(cluster):
    return client.CustomObjectsApi(cluster.api)


def create(custom, ns, plural, name, spec, **meta):
    kind = {"images": "Image", "volumes": "Volume", "servers": "Server"}[plural]
    body = {"apiVersion": f"{G}/{V}", "kind": kind, "metadata": {"name": name, **meta}, "spec": spec}
    return custom.create_namespaced_custom_object(G, V, ns, plural, body)


def get(custom, ns, plural, name):
    try:
        return custom.get_namespaced_custom_object(G, V, ns, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def status_of(custom, ns, plural, name, *states):
    def check():
        obj = get(custom, ns, plural, name)
        return obj if obj and (obj.get("status") or {}).get("status") in states else None
    return eventually(check)


def data_volume(custom, ns, name):
    dv = custom.get_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", ns, "datavolumes", name)
    clean = {k: dv[k] for k in ("apiVersion", "kind", "metadata", "spec")}
    assert_valid(clean)
    return dv


def gone(custom, ns, plural, name):
    return eventually(lambda: get(custom, ns, plural, name) is None)


@pytest.fixture
def namespace_b(cluster):
    core = client.CoreV1Api(cluster.api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"kubestack.io/test": "true"}}})
    yield name
    core.delete_namespace(name)


# ------------------------------------------------------------------------------ images


def test_image_import_reaches_active_or_is_killed(running, custom, namespace):
    create(custom, namespace, "images", "cirros", {
        "source": {"url": "https://download.example.com/cirros-0.6.2.img"}, "minDisk": 1,
        "properties": {"os_distro": "cirros", "hw_disk_bus": "virtio"}})
    create(custom, namespace, "images", "broken", {"source": {"url": "https://mirror.invalid/nothing.img"}})
    img = status_of(custom, namespace, "images", "cirros", "active")
    assert img["status"]["progress"] == "100.0%"
    assert img["status"]["size"] == 1024**3
    assert img["status"]["pvc"] == "cirros-image"
    ready = next(c for c in img["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    dv = data_volume(custom, namespace, "cirros-image")
    assert dv["spec"]["source"] == {"http": {"url": "https://download.example.com/cirros-0.6.2.img"}}

    bad = status_of(custom, namespace, "images", "broken", "killed")
    assert "no such host" in bad["status"]["reason"]
    assert {c["type"]: c["status"] for c in bad["status"]["conditions"]} == {"Ready": "False", "Stalled": "True"}
    assert "Stalled" not in {c["type"] for c in img["status"]["conditions"]}
    data_volume(custom, namespace, "broken-image")
    eventually(lambda: any(e.reason == "ImportFailed" for e in client.CoreV1Api(custom.api_client).list_namespaced_event(
        namespace, field_selector="involvedObject.name=broken").items))  # Events are posted asynchronously


def test_image_upload_through_the_cli(running, cluster, custom, namespace, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    result = subprocess.run(
        [sys.executable, "-m", "kubestack", "image", "create", "uploaded", "--file", str(disk),
         "--disk-format", "raw", "--property", "os_distro=test", "-n", namespace,
         "--kubeconfig", str(cluster.kubeconfig), "-f", "json", "--timeout", "60"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["status"], shown["disk_format"], shown["properties"]) == ("active", "raw", {"os_distro": "test"})
    dv = data_volume(custom, namespace, "uploaded-image")
    assert dv["spec"]["source"] == {"upload": {}}

    listing = subprocess.run(
        [sys.executable, "-m", "kubestack", "image", "list", "-n", namespace, "--kubeconfig",
         str(cluster.kubeconfig)], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "| ID " in listing.stdout and "uploaded" in listing.stdout and "active" in listing.stdout


def test_visibility_decides_who_may_boot_an_image(running, cluster, custom, namespace, namespace_b):
    create(custom, namespace, "images", "private-img", {"source": {"url": "https://example.com/p.img"}})
    create(custom, namespace, "images", "public-img", {"source": {"url": "https://example.com/q.img"},
                                                       "visibility": "public", "minDisk": 2})
    status_of(custom, namespace, "images", "private-img", "active")
    status_of(custom, namespace, "images", "public-img", "active")

    def server(name, image):
        return {"apiVersion": f"{G}/{V}", "kind": "Server",
                "metadata": {"name": name, "namespace": namespace_b},
                "spec": {"flavor": "m1.small", "image": image}}

    with pytest.raises(DiskError, match="private"):
        ensure_server_disks(cluster.api, server("web-a", f"{namespace}/private-img"))
    with pytest.raises(DiskError, match="could not be found"):
        ensure_server_disks(cluster.api, server("web-b", f"{namespace}/no-such-image"))
    with pytest.raises(DiskError, match="smaller than the minimum"):
        ensure_server_disks(cluster.api, server("web-c", f"{namespace}/public-img"), root_size_gib=1)
    dvs = custom.list_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", namespace_b, "datavolumes")
    assert dvs["items"] == []  # refused references created nothing

    # the owner project may boot its private image; every project its public one
    own = ensure_server_disks(cluster.api, {**server("own", "private-img"),
                                            "metadata": {"name": "own", "namespace": namespace}})
    assert own.root_disk == "own-root"
    public = server("web", f"{namespace}/public-img")
    disks = ensure_server_disks(cluster.api, public)
    assert disks.root_disk == "web-root"
    assert disks.volumes == [{"name": names.ROOT_DISK_NAME, "dataVolume": {"name": "web-root"}}]
    dv = data_volume(custom, namespace_b, "web-root")
    assert dv["spec"]["source"] == {"pvc": {"namespace": namespace, "name": "public-img-image"}}
    assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "2Gi"
    ready = eventually(lambda: (d := ensure_server_disks(cluster.api, public)).ready and d)
    assert ready.waiting_reason is None
    assert ensure_server_disks(cluster.api, public).created == []  # idempotent


# ------------------------------------------------------------------------------ volumes


def test_volume_create_extend_snapshot_restore_clone(running, cluster, custom, namespace):
    create(custom, namespace, "volumes", "data", {"size": 1})
    vol = status_of(custom, namespace, "volumes", "data", "available")
    assert (vol["status"]["volumeType"], vol["status"]["size"], vol["status"]["bootable"]) == ("standard", 1, False)
    assert data_volume(custom, namespace, "data-volume")["spec"]["source"] == {"blank": {}}

    # extend: the PVC grows, the volume reports the new size
    custom.patch_namespaced_custom_object(G, V, namespace, "volumes", "data", {"spec": {"size": 3}})
    eventually(lambda: (v := get(custom, namespace, "volumes", "data"))["status"].get("size") == 3
               and v["status"]["status"] == "available")
    pvc = client.CoreV1Api(cluster.api).read_namespaced_persistent_volume_claim("data-volume", namespace)
    assert pvc.status.capacity["storage"] == "3Gi"

    # snapshot (CLI) -> new volume from it -> a clone of that
    kc = ["--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    out = subprocess.run([sys.executable, "-m", "kubestack", "volume", "snapshot", "create", "snap1",
                          "--volume", "data", *kc], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    eventually(lambda: (custom.get_namespaced_custom_object(
        "snapshot.storage.k8s.io", "v1", namespace, "volumesnapshots", "snap1").get("status") or {}).get("readyToUse"))
    create(custom, namespace, "volumes", "restored", {"size": 3, "source": {"snapshot": "snap1"},
                                                      "volumeType": "fast-ssd"})
    restored = status_of(custom, namespace, "volumes", "restored", "available", "error")
    assert restored["status"]["status"] == "available", restored["status"]
    assert restored["status"]["volumeType"] == "fast-ssd"
    assert data_volume(custom, namespace, "restored-volume")["spec"]["source"] == \
        {"snapshot": {"namespace": namespace, "name": "snap1"}}
    create(custom, namespace, "volumes", "clone", {"size": 3, "source": {"volume": "restored"}})
    status_of(custom, namespace, "volumes", "clone", "available")
    assert data_volume(custom, namespace, "clone-volume")["spec"]["source"] == \
        {"pvc": {"namespace": namespace, "name": "restored-volume"}}
    # a snapshot's restore cannot be smaller than the snapshot
    create(custom, namespace, "volumes", "small", {"size": 1, "source": {"snapshot": "snap1"}})
    small = status_of(custom, namespace, "volumes", "small", "error")
    assert "smaller than the snapshot" in small["status"]["reason"]

    listing = subprocess.run([sys.executable, "-m", "kubestack", "volume", "list", *kc],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "Attached to" in listing.stdout and "restored" in listing.stdout
    types = subprocess.run([sys.executable, "-m", "kubestack", "volume", "type", "list", *kc, "-f", "json"],
                           capture_output=True, text=True, timeout=60)
    assert types.returncode == 0, types.stderr
    assert {"standard", "fast-ssd"} <= {t["Name"] for t in json.loads(types.stdout)}
    # the default type (openstack volume type list --default): standard, not fast-ssd
    default = subprocess.run([sys.executable, "-m", "kubestack", "volume", "type", "list", "--default", *kc,
                              "-f", "json"], capture_output=True, text=True, timeout=60)
    assert default.returncode == 0, default.stderr
    assert [t["Name"] for t in json.loads(default.stdout)] == ["standard"]
    snaps = subprocess.run([sys.executable, "-m", "kubestack", "volume", "snapshot", "list", "--long", *kc,
                            "-f", "json"], capture_output=True, text=True, timeout=60)
    assert snaps.returncode == 0, snaps.stderr
    assert ("snap1", "available", "data") in [(s["Name"], s["Status"], s["Volume"]) for s in json.loads(snaps.stdout)]


def test_volume_from_image_is_bootable_and_bad_sources_error(running, custom, namespace):
    create(custom, namespace, "images", "fedora", {"source": {"registry": "docker://quay.io/containerdisks/fedora:40"},
                                                   "minDisk": 2})
    create(custom, namespace, "volumes", "boot", {"size": 2, "source": {"image": "fedora"}})
    vol = status_of(custom, namespace, "volumes", "boot", "available")
    assert vol["status"]["bootable"] is True
    assert data_volume(custom, namespace, "boot-volume")["spec"]["source"] == \
        {"pvc": {"namespace": namespace, "name": "fedora-image"}}
    create(custom, namespace, "volumes", "too-small", {"size": 1, "source": {"image": "fedora"}})
    assert "smaller than the image" in status_of(custom, namespace, "volumes", "too-small", "error")["status"]["reason"]
    create(custom, namespace, "volumes", "no-type", {"size": 1, "volumeType": "gold"})
    assert "gold could not be found" in status_of(custom, namespace, "volumes", "no-type", "error")["status"]["reason"]
    create(custom, namespace, "volumes", "multi", {"size": 1, "multiattach": True})
    multi = status_of(custom, namespace, "volumes", "multi", "error")
    assert "multiattach" in multi["status"]["reason"]
    # kstatus (Flux's health checks): failed, not still in progress
    stalled = next(c for c in multi["status"]["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["message"]) == ("True", multi["status"]["reason"])


def test_volume_quota_is_enforced_before_anything_is_created(running, cluster, custom):
    project = f"q-{uuid.uuid4().hex[:8]}"
    custom.create_cluster_custom_object(G, V, "projects", {
        "apiVersion": f"{G}/{V}", "kind": "Project", "metadata": {"name": project},
        "spec": {"quotas": {"volumes": 2, "gigabytes": 3}}})
    try:
        core = client.CoreV1Api(cluster.api)
        eventually(lambda: (core.read_namespace(project).metadata.labels or {}).get("kubestack.io/project") == project
                   if project in {n.metadata.name for n in core.list_namespace().items} else False)
        create(custom, project, "volumes", "one", {"size": 2})
        status_of(custom, project, "volumes", "one", "available")
        create(custom, project, "volumes", "two", {"size": 2})
        refused = status_of(custom, project, "volumes", "two", "error")
        assert refused["status"]["reason"].startswith("Quota exceeded for gigabytes")
        assert get(custom, project, "volumes", "two")["status"].get("pvc") is None
        with pytest.raises(ApiException):
            custom.get_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", project, "datavolumes", "two-volume")
        create(custom, project, "volumes", "three", {"size": 1})
        status_of(custom, project, "volumes", "three", "available")
        create(custom, project, "volumes", "four", {"size": 1})
        assert status_of(custom, project, "volumes", "four", "error")["status"]["reason"] \
            .startswith("Quota exceeded for volumes")
        # deleting a volume gives its quota back
        custom.delete_namespaced_custom_object(G, V, project, "volumes", "three")
        gone(custom, project, "volumes", "three")
        create(custom, project, "volumes", "five", {"size": 1})
        status_of(custom, project, "volumes", "five", "available")
    finally:
        custom.patch_cluster_custom_object(G, V, "projects", project, {"spec": {"cascadeDelete": True}})
        custom.delete_cluster_custom_object(G, V, "projects", project)


# ------------------------------------------------------------------------------ protections


def test_protected_and_in_use_objects_are_not_deleted(running, custom, namespace):
    create(custom, namespace, "images", "keep", {"source": {"url": "https://example.com/k.img"}, "protected": True})
    create(custom, namespace, "images", "used", {"source": {"url": "https://example.com/u.img"}})
    create(custom, namespace, "volumes", "attached", {"size": 1})
    status_of(custom, namespace, "images", "keep", "active")
    status_of(custom, namespace, "images", "used", "active")
    status_of(custom, namespace, "volumes", "attached", "available")
    create(custom, namespace, "servers", "holder", {
        "flavor": "no-such-flavor", "image": "used",
        "blockDeviceMapping": [{"sourceType": "volume", "destinationType": "volume", "name": "attached"}]})
    vol = status_of(custom, namespace, "volumes", "attached", "reserved", "attaching", "in-use")
    assert vol["status"]["attachments"][0]["server"] == "holder"
    assert vol["status"]["attachedTo"].startswith("Attached to holder")

    # a protected image: Glance's 403, at admission; the image is not even marked for deletion
    with pytest.raises(ApiException) as refused:
        custom.delete_namespaced_custom_object(G, V, namespace, "images", "keep")
    assert refused.value.status == 403 and "Image keep is protected" in refused.value.body
    assert not get(custom, namespace, "images", "keep")["metadata"].get("deletionTimestamp")

    # in use: held by the finalizer until unused, as Kubernetes protects a PVC in use
    for plural, name, why in (("images", "used", "in use by server"), ("volumes", "attached", "attached to holder")):
        custom.delete_namespaced_custom_object(G, V, namespace, plural, name)
        obj = eventually(lambda: (o := get(custom, namespace, plural, name)) and
                         why in ((o.get("status") or {}).get("reason") or "") and o)
        assert obj["metadata"]["deletionTimestamp"]
    eventually(lambda: {e.involved_object.name for e in client.CoreV1Api(custom.api_client).list_namespaced_event(
        namespace).items if e.reason == "DeleteRefused"} >= {"used", "attached"})  # posted asynchronously

    # unprotect, then delete; detach: the deletions go through
    custom.patch_namespaced_custom_object(G, V, namespace, "images", "keep", {"spec": {"protected": False}})
    assert get(custom, namespace, "images", "keep") is not None  # unprotecting deletes nothing
    custom.delete_namespaced_custom_object(G, V, namespace, "images", "keep")
    gone(custom, namespace, "images", "keep")
    custom.patch_namespaced_custom_object(G, V, namespace, "servers", "holder",
                                          {"spec": {"blockDeviceMapping": []}})
    gone(custom, namespace, "volumes", "attached")
    assert get(custom, namespace, "images", "used") is not None  # the server still boots from it


# ------------------------------------------------------------------------------ a booting VM


def _vm(name, disks):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"runStrategy": "Always", "template": {
                "metadata": {"labels": {names.LABEL_SERVER: name}},
                "spec": {"domain": {"cpu": {"cores": 1}, "memory": {"guest": "512Mi"},
                                    "devices": {"disks": disks.disks,
                                                "interfaces": [{"name": "default", "masquerade": {}}]}},
                         "networks": [{"name": "default", "pod": {}}],
                         "volumes": disks.volumes}}}}


def test_root_disk_clone_boots_and_data_volumes_hotplug(running, cluster, custom, namespace):
    """What the compute controller does with `ensure_server_disks`, played by hand: a VM from the
    returned disks boots on the simulator (root disk cloned from the image, a data volume
    attached); a second volume is hotplugged into the running guest and detached again, and the
    attachment states follow KubeVirt's objects: reserved -> attaching -> in-use -> detaching."""
    from kubestack.compute.vmactions import Backend, VMActions
    from kubestack.k8s.rest import api_request
    from kubestack.storage import state

    create(custom, namespace, "images", "cirros", {"source": {"url": "https://example.com/c.img"}})
    create(custom, namespace, "volumes", "data1", {"size": 1})
    create(custom, namespace, "volumes", "data2", {"size": 1})
    status_of(custom, namespace, "images", "cirros", "active")
    server = {"apiVersion": f"{G}/{V}", "kind": "Server", "metadata": {"name": "vm1", "namespace": namespace},
              "spec": {"flavor": "m1.small", "image": "cirros", "blockDeviceMapping": [
                  {"sourceType": "volume", "destinationType": "volume", "name": "data1"}]}}
    disks = eventually(lambda: (d := ensure_server_disks(cluster.api, server)).ready and d)
    assert [v["name"] for v in disks.volumes] == [names.ROOT_DISK_NAME, names.vm_volume_name("data1")]
    vm = _vm("vm1", disks)
    assert_valid(vm)
    api_request(cluster.api, "POST", f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines", body=vm)

    def world():
        vms = custom.list_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines")["items"]
        vmis = custom.list_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachineinstances")["items"]
        return {v["metadata"]["name"]: v for v in vms}, {v["metadata"]["name"]: v for v in vmis}

    def attachment(volume, srv):
        vms, vmis = world()
        return state.attachments(volume, [srv], vms, vmis, now="now")

    att = eventually(lambda: (a := attachment("data1", server)).state == "in-use" and a)
    assert att.entries[0]["device"].startswith("/dev/sd") and att.entries[0]["hotplugged"] is True

    # attach data2 while running: the server references it first (reserved), then KubeVirt hotplugs it
    server["spec"]["blockDeviceMapping"].append({"sourceType": "volume", "destinationType": "volume",
                                                 "name": "data2"})
    assert attachment("data2", server).state == "reserved"
    actions = VMActions(cluster.api, Backend.SIMULATOR)
    actions.add_volume(namespace, "vm1", names.vm_volume_name("data2"), claim_name=names.volume_pvc("data2"))
    att = eventually(lambda: (a := attachment("data2", server)).state == "in-use" and a)
    assert att.entries[0]["hotplugged"] is True

    # detach: the server drops it (detaching while the VM holds it), KubeVirt unplugs it
    server["spec"]["blockDeviceMapping"] = server["spec"]["blockDeviceMapping"][:1]
    assert attachment("data2", server).state == "detaching"
    actions.remove_volume(namespace, "vm1", names.vm_volume_name("data2"))
    eventually(lambda: attachment("data2", server).state is None)
    assert attachment("data1", server).state == "in-use"


def test_boot_from_volume_and_attach_checks(running, cluster, custom, namespace):
    create(custom, namespace, "images", "cirros", {"source": {"url": "https://example.com/c.img"}, "minDisk": 2})
    status_of(custom, namespace, "images", "cirros", "active")

    def server(name, **spec):
        return {"apiVersion": f"{G}/{V}", "kind": "Server", "metadata": {"name": name, "namespace": namespace},
                "spec": {"flavor": "m1.small", **spec}}

    with pytest.raises(DiskError, match="smaller than the minimum"):
        ensure_server_disks(cluster.api, server("tiny", bootVolume={"image": "cirros", "size": 1}))
    assert get(custom, namespace, "volumes", "tiny-boot") is None

    # boot from a new volume made from the image: a Volume <server>-boot, the root disk its PVC
    fresh = server("bfv", bootVolume={"image": "cirros", "size": 3})
    disks = eventually(lambda: (d := ensure_server_disks(cluster.api, fresh)).ready and d)
    assert disks.volumes[0] == {"name": names.ROOT_DISK_NAME, "persistentVolumeClaim": {"claimName": "bfv-boot-volume"}}
    boot = get(custom, namespace, "volumes", "bfv-boot")
    assert (boot["spec"]["size"], boot["spec"]["source"]) == (3, {"image": "cirros"})
    assert boot["status"]["bootable"] is True and "ownerReferences" not in boot["metadata"]

    # boot from that existing volume, with a blank data volume created for the server
    again = server("bfv2", bootVolume={"volume": "bfv-boot"},
                   blockDeviceMapping=[{"sourceType": "blank", "destinationType": "volume", "volumeSize": 1}])
    disks = eventually(lambda: (d := ensure_server_disks(cluster.api, again)).ready and d)
    assert disks.root_disk == "bfv-boot-volume"
    assert disks.volumes[1]["persistentVolumeClaim"] == {"claimName": "bfv2-bdm0-volume", "hotpluggable": True}
    assert status_of(custom, namespace, "volumes", "bfv2-bdm0", "available")["spec"]["size"] == 1

    # a volume another server holds cannot be attached again unless multiattach
    create(custom, namespace, "servers", "holder", {
        "flavor": "no-such-flavor", "bootVolume": {"volume": "bfv-boot"}})
    with pytest.raises(DiskError, match="already attached to holder"):
        ensure_server_disks(cluster.api, server("thief", image="cirros", blockDeviceMapping=[
            {"sourceType": "volume", "destinationType": "volume", "name": "bfv-boot"}]))
    with pytest.raises(DiskError, match="Volume nope could not be found"):
        ensure_server_disks(cluster.api, server("thief", image="cirros", blockDeviceMapping=[
            {"sourceType": "volume", "destinationType": "volume", "name": "nope"}]))
    assert get(custom, namespace, "volumes", "thief-boot") is None
    dvs = {d["metadata"]["name"] for d in custom.list_namespaced_custom_object(
        "cdi.kubevirt.io", "v1beta1", namespace, "datavolumes")["items"]}
    assert "thief-root" not in dvs  # refused before anything was created


def test_registry_image_booted_as_container_disk(running, cluster, custom, namespace):
    create(custom, namespace, "images", "fedora-cd", {
        "source": {"registry": "docker://quay.io/containerdisks/fedora:40"}, "containerDisk": True})
    img = status_of(custom, namespace, "images", "fedora-cd", "active")
    assert img["status"]["containerDisk"] == "quay.io/containerdisks/fedora:40"
    assert "pvc" not in img["status"]
    server = {"apiVersion": f"{G}/{V}", "kind": "Server", "metadata": {"name": "cd1", "namespace": namespace},
              "spec": {"flavor": "m1.small", "image": "fedora-cd"}}
    disks = ensure_server_disks(cluster.api, server)
    assert disks.ready and disks.root_disk is None
    assert disks.volumes == [{"name": names.ROOT_DISK_NAME,
                              "containerDisk": {"image": "quay.io/containerdisks/fedora:40"}}]
    assert_valid(_vm("cd1", disks))
    # a volume from it imports the registry image itself (there is no golden PVC to clone)
    create(custom, namespace, "volumes", "from-cd", {"size": 1, "source": {"image": "fedora-cd"}})
    status_of(custom, namespace, "volumes", "from-cd", "available")
    assert data_volume(custom, namespace, "from-cd-volume")["spec"]["source"] == \
        {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}}

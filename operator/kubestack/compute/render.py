"""The KubeVirt VirtualMachine a Server becomes (DESIGN §2 step 7), as a pure function.

Everything the VM needs has been decided before: the host (scheduler), the flavor snapshot,
the disks (image / volumes), the interfaces (ports) and the user data. The VM is pinned to
the host with a nodeSelector on kubernetes.io/hostname, so KubeVirt places its launcher pod
where the scheduler claimed the resources.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubestack.api.server import FlavorSnapshot

SERVER_LABEL = "kubestack.io/server"
FLAVOR_ANNOTATION = "kubestack.io/flavor"
INTERFACE_ADDRESSES_ANNOTATION = "kubestack.io/interface-addresses"
HOSTNAME_LABEL = "kubernetes.io/hostname"
CLOUD_INIT_VOLUME = "cloudinitdisk"
ROOT_DISK = "rootdisk"
FLAVOR_DISKS = ("ephemeral0", "swap")  # Nova's ephemeral and swap disks, from the flavor
# KubeVirt's admission refuses inline NoCloud user/network data above 2 KiB; bigger
# documents (Nova allows 64 KiB of user data) go through a Secret.
INLINE_CLOUD_INIT_MAX = 2048


@dataclass(frozen=True)
class Interface:
    """One guest NIC: the pod network (masquerade) or a Multus network (bridge)."""

    name: str
    nad: str | None = None  # "namespace/name" of the NetworkAttachmentDefinition; None = pod
    mac: str | None = None
    ips: tuple[str, ...] = ()  # CIDR notation, e.g. 10.0.0.5/24
    network: str | None = None  # the Network's name, as `openstack server list` shows it

    def kubevirt(self) -> tuple[dict, dict]:
        """(domain.devices.interfaces entry, spec.networks entry)."""
        if self.nad is None:
            iface: dict[str, Any] = {"name": self.name, "masquerade": {}}
            net: dict[str, Any] = {"name": self.name, "pod": {}}
        else:
            iface = {"name": self.name, "bridge": {}}
            net = {"name": self.name, "multus": {"networkName": self.nad}}
        if self.mac:
            iface["macAddress"] = self.mac
        return iface, net


POD_NETWORK = Interface(name="default")


@dataclass(frozen=True)
class Disk:
    """One guest disk: its domain.devices.disks entry and its spec.volumes entry."""

    disk: dict
    volume: dict


def container_disk(image: str) -> Disk:
    return Disk(
        disk={"name": ROOT_DISK, "bootOrder": 1, "disk": {"bus": "virtio"}},
        volume={"name": ROOT_DISK, "containerDisk": {"image": image}},
    )


@dataclass
class VMInputs:
    name: str
    namespace: str
    owner: dict  # ownerReference to the Server
    host: str
    flavor: FlavorSnapshot
    hostname: str
    running: bool
    disks: list[Disk]
    interfaces: list[Interface] = field(default_factory=lambda: [POD_NETWORK])
    user_data: str = ""
    network_data: str | None = None
    cloud_init_secret: str | None = None  # set when the documents are too big to inline
    labels: dict[str, str] = field(default_factory=dict)


def needs_cloud_init_secret(user_data: str, network_data: str | None) -> bool:
    return len(user_data.encode()) > INLINE_CLOUD_INIT_MAX or len(
        (network_data or "").encode()) > INLINE_CLOUD_INIT_MAX


def cloud_init_secret_name(server: str, user_data: str, network_data: str | None) -> str:
    """Named after its content: changed user data is a new Secret the VM template points to
    (so the VM sees the change, as with inline user data), never an edit under a running guest."""
    digest = hashlib.sha256(f"{user_data}\0{network_data or ''}".encode()).hexdigest()[:10]
    return f"{server}-cloudinit-{digest}"


def cloud_init_secret(name: str, namespace: str, owner: dict, user_data: str,
                      network_data: str | None) -> dict:
    data = {"userdata": user_data}
    if network_data:
        data["networkdata"] = network_data
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner],
                     "labels": {SERVER_LABEL: owner["name"]}},
        "type": "Opaque", "stringData": data,
    }


def _cpu(flavor: FlavorSnapshot) -> dict:
    specs = flavor.extra_specs
    sockets = int(specs.get("hw:cpu_sockets", 1))
    threads = int(specs.get("hw:cpu_threads", 1))
    cores = int(specs.get("hw:cpu_cores", max(1, flavor.vcpus // (sockets * threads))))
    cpu: dict[str, Any] = {"sockets": sockets, "cores": cores, "threads": threads}
    if specs.get("hw:cpu_policy") == "dedicated":
        cpu["dedicatedCpuPlacement"] = True
    return cpu


def _memory(flavor: FlavorSnapshot) -> dict:
    memory: dict[str, Any] = {"guest": f"{flavor.ram}Mi"}
    page = flavor.extra_specs.get("hw:mem_page_size")
    if page in ("large", "1GB", "1048576"):
        memory["hugepages"] = {"pageSize": "1Gi" if page != "large" else "2Mi"}
    elif page in ("2MB", "2048"):
        memory["hugepages"] = {"pageSize": "2Mi"}
    return memory


def _flavor_disks(flavor: FlavorSnapshot) -> list[Disk]:
    """Nova's ephemeral and swap disks: empty, node-local, gone with the VM."""
    ephemeral, swap = FLAVOR_DISKS
    out = []
    if flavor.ephemeral:
        out.append(Disk({"name": ephemeral, "disk": {"bus": "virtio"}},
                        {"name": ephemeral, "emptyDisk": {"capacity": f"{flavor.ephemeral}Gi"}}))
    if flavor.swap:
        out.append(Disk({"name": swap, "disk": {"bus": "virtio"}},
                        {"name": swap, "emptyDisk": {"capacity": f"{flavor.swap}Mi"}}))
    return out


def _cloud_init(inputs: VMInputs) -> Disk:
    source: dict[str, Any]
    if inputs.cloud_init_secret:
        source = {"secretRef": {"name": inputs.cloud_init_secret}}
        if inputs.network_data:
            source["networkDataSecretRef"] = {"name": inputs.cloud_init_secret}
    else:
        source = {"userData": inputs.user_data}
        if inputs.network_data:
            source["networkData"] = inputs.network_data
    return Disk({"name": CLOUD_INIT_VOLUME, "disk": {"bus": "virtio"}},
                {"name": CLOUD_INIT_VOLUME, "cloudInitNoCloud": source})


def render_vm(inputs: VMInputs) -> dict:
    disks = [*inputs.disks, *_flavor_disks(inputs.flavor), _cloud_init(inputs)]
    ifaces, nets = zip(*(i.kubevirt() for i in inputs.interfaces)) if inputs.interfaces else ((), ())
    labels = {SERVER_LABEL: inputs.name, **inputs.labels}
    # security groups select the launcher pod by KubeVirt's vm.kubevirt.io/name label, which
    # needs no restart when a server's groups change
    template_labels = {SERVER_LABEL: inputs.name, "kubevirt.io/domain": inputs.name}
    addresses = {i.name: {"ips": list(i.ips), "mac": i.mac, "network": i.network}
                 for i in inputs.interfaces if i.ips}
    template_annotations = {INTERFACE_ADDRESSES_ANNOTATION: json.dumps(addresses, sort_keys=True)} \
        if addresses else {}
    flavor = inputs.flavor
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": inputs.name,
            "namespace": inputs.namespace,
            "labels": labels,
            "annotations": {FLAVOR_ANNOTATION: flavor.name or ""},
            "ownerReferences": [inputs.owner],
        },
        "spec": {
            "runStrategy": "Always" if inputs.running else "Halted",
            "template": {
                "metadata": {"labels": template_labels, "annotations": template_annotations},
                "spec": {
                    "hostname": inputs.hostname,
                    "nodeSelector": {HOSTNAME_LABEL: inputs.host},
                    "domain": {
                        "cpu": _cpu(flavor),
                        "memory": _memory(flavor),
                        "resources": {"requests": {"memory": f"{flavor.ram}Mi"}},
                        "devices": {
                            "disks": [d.disk for d in disks],
                            "interfaces": list(ifaces),
                            "rng": {},
                        },
                    },
                    "networks": list(nets),
                    "volumes": [d.volume for d in disks],
                    # Nova's default shutdown timeout for a clean ACPI power-off
                    "terminationGracePeriodSeconds": 60,
                },
            },
        },
    }


def interfaces_of(vm: Mapping[str, Any]) -> list[Interface]:
    """The interfaces a rendered VM carries (the VM is the record of its ports' addresses,
    so an existing server is re-rendered without asking the network service again)."""
    tpl = (vm.get("spec") or {}).get("template") or {}
    spec = tpl.get("spec") or {}
    addresses = json.loads(((tpl.get("metadata") or {}).get("annotations") or {}).get(
        INTERFACE_ADDRESSES_ANNOTATION) or "{}")
    nets = {n["name"]: n for n in spec.get("networks") or []}
    out = []
    for iface in ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []:
        net = nets.get(iface["name"]) or {}
        nad = (net.get("multus") or {}).get("networkName")
        known = addresses.get(iface["name"]) or {}
        out.append(Interface(name=iface["name"], nad=nad, mac=iface.get("macAddress"),
                             ips=tuple(known.get("ips") or ()), network=known.get("network")))
    return out


def is_hotplug(volume: Mapping[str, Any]) -> bool:
    return any((volume.get(kind) or {}).get("hotpluggable") for kind in ("persistentVolumeClaim", "dataVolume"))


def disks_of(vm: Mapping[str, Any]) -> list[Disk]:
    """The block devices a rendered VM carries, less what the renderer adds itself (the
    flavor's ephemeral/swap disks and the cloud-init disk)."""
    spec = (((vm.get("spec") or {}).get("template") or {}).get("spec") or {})
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    return [Disk(d, volumes[d["name"]])
            for d in ((spec.get("domain") or {}).get("devices") or {}).get("disks") or []
            if d["name"] in volumes and d["name"] not in (*FLAVOR_DISKS, CLOUD_INIT_VOLUME)]


def _cloud_init_source(vm: Mapping[str, Any]) -> Mapping[str, Any]:
    for volume in ((((vm.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []):
        if volume.get("name") == CLOUD_INIT_VOLUME:
            return volume.get("cloudInitNoCloud") or {}
    return {}


def network_data_of(vm: Mapping[str, Any]) -> str | None:
    """The VM's inline cloud-init network data (see network_data_secret_of for the other place)."""
    return _cloud_init_source(vm).get("networkData")


def network_data_secret_of(vm: Mapping[str, Any]) -> str | None:
    """The Secret holding the VM's cloud-init network data, when it is too big to inline."""
    return (_cloud_init_source(vm).get("networkDataSecretRef") or {}).get("name")

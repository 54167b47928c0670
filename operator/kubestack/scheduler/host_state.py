"""A compute host as the scheduler sees it, parsed from a Kubernetes Node dict.

Label / annotation scheme (the node side of the contract):

=====================================================  ====================================
``kubestack.io/compute-host=true`` (label)             the node is a compute host
``topology.kubernetes.io/zone`` (label)                availability zone (else the default)
``kubernetes.io/arch`` (label)                         architecture (amd64 -> x86_64 ...)
``aggregate.kubestack.io/<name>=true`` (label)         member of host aggregate <name>
``aggregate.kubestack.io/<key>=<v1>[,<v2>]`` (annot.)  aggregate metadata key -> values (the
                                                       union over the host's aggregates)
``kubestack.io/{cpu,ram,disk}-allocation-ratio``       per-host allocation ratio (wins over
(annotation)                                           aggregate metadata
                                                       ``{cpu,ram,disk}_allocation_ratio``,
                                                       which wins over the global config)
``kubestack.io/reserved-{cpus,memory-mb,disk-mb}``     per-host reserved amounts (override the
(annotation)                                           global ``reserved_host_*``)
``kubestack.io/cpu-dedicated=true`` (label)            host offers pinned CPUs
                                                       (``hw:cpu_policy=dedicated``)
``kubestack.io/numa-nodes=<n>`` (label)                host NUMA node count (``hw:numa_nodes``)
``kubestack.io/hypervisor-type`` (label)               overrides the derived hypervisor type
``kubestack.io/hypervisor-version`` (label)            e.g. ``8002000`` (libvirt style int)
``kubestack.io/isolated=true`` (label)                 IsolatedHostsFilter's isolated host
``cpu-feature.node.kubevirt.io/<flag>=true`` (label)   CPU flags (``capabilities:cpu_info:
                                                       features``), as KubeVirt labels them;
                                                       on x86 also traits (HW_CPU_X86_*)
``trait.kubestack.io/<TRAIT>=true`` (label)            a Placement trait of the host
                                                       (``trait:<TRAIT>`` extra specs)
=====================================================  ====================================

The hypervisor type is ``kvm`` when the node advertises KubeVirt's ``devices.kubevirt.io/kvm``
device plugin resource and ``qemu`` (software emulation) otherwise, like Nova's libvirt driver
with ``virt_type`` kvm / qemu.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .quantity import QuantityError, cpu_cores, to_gib, to_int, to_mib
from .traits import host_traits

__all__ = [
    "COMPUTE_HOST_LABEL", "ZONE_LABEL", "ARCH_LABEL", "HOSTNAME_LABEL", "AGGREGATE_PREFIX",
    "IDENTITY_CAPABILITIES", "HostState",
    "parse_node", "canonical_arch",
]

COMPUTE_HOST_LABEL = "kubestack.io/compute-host"
ZONE_LABEL = "topology.kubernetes.io/zone"
LEGACY_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone"
ARCH_LABEL = "kubernetes.io/arch"
HOSTNAME_LABEL = "kubernetes.io/hostname"
#: capabilities (ComputeCapabilitiesFilter) that are the host's identity
IDENTITY_CAPABILITIES = frozenset({"host", "hypervisor_hostname", HOSTNAME_LABEL})
AGGREGATE_PREFIX = "aggregate.kubestack.io/"
CPU_DEDICATED_LABEL = "kubestack.io/cpu-dedicated"
NUMA_NODES_LABEL = "kubestack.io/numa-nodes"
HYPERVISOR_TYPE_LABEL = "kubestack.io/hypervisor-type"
HYPERVISOR_VERSION_LABEL = "kubestack.io/hypervisor-version"
ISOLATED_LABEL = "kubestack.io/isolated"
CPU_FEATURE_PREFIX = "cpu-feature.node.kubevirt.io/"
KVM_RESOURCE = "devices.kubevirt.io/kvm"
RATIO_ANNOTATIONS = {
    "cpu": "kubestack.io/cpu-allocation-ratio",
    "ram": "kubestack.io/ram-allocation-ratio",
    "disk": "kubestack.io/disk-allocation-ratio",
}
RESERVED_ANNOTATIONS = {
    "cpus": "kubestack.io/reserved-cpus",
    "memory_mb": "kubestack.io/reserved-memory-mb",
    "disk_mb": "kubestack.io/reserved-disk-mb",
}
_OWN_ANNOTATIONS = (AGGREGATE_PREFIX, "kubestack.io/")  # every annotation parse_node reads
_STANDARD = {"cpu", "memory", "ephemeral-storage", "pods"}
_ARCH_ALIASES = {
    "amd64": "x86_64", "x86_64": "x86_64", "x64": "x86_64", "i386": "i686", "i686": "i686",
    "arm64": "aarch64", "aarch64": "aarch64", "armv7l": "armv7l", "arm": "armv7l",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}


def canonical_arch(name: str | None) -> str | None:
    """Nova's canonical architecture name for a Kubernetes/Glance spelling."""
    if name is None:
        return None
    low = name.strip().lower()
    return _ARCH_ALIASES.get(low, low)


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes", "on")


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except ValueError:
        return None
    return out if out > 0 else None


@dataclass(eq=False)
class HostState:
    """Static facts about one compute host (everything but usage, which the cache keeps)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    ready: bool = True
    unschedulable: bool = False
    taints: tuple[tuple[str, str, str], ...] = ()
    zone: str | None = None
    arch: str | None = None
    hypervisor_type: str = "qemu"
    hypervisor_version: int | None = None
    aggregates: frozenset[str] = frozenset()
    aggregate_metadata: dict[str, frozenset[str]] = field(default_factory=dict)
    vcpus: float = 0.0
    memory_mb: int = 0
    disk_gb: int = 0
    extended: dict[str, int] = field(default_factory=dict)
    cpu_features: frozenset[str] = frozenset()
    traits: frozenset[str] = frozenset()
    #: Per-host overrides (annotation, else aggregate metadata); None = use the config.
    ratio_overrides: dict[str, float] = field(default_factory=dict)
    reserved_overrides: dict[str, float] = field(default_factory=dict)

    def capability(self, path: list[str]) -> Any:
        """A ComputeCapabilitiesFilter capability: derived attributes or a node label."""
        key = ":".join(path)
        derived = {
            "hypervisor_type": self.hypervisor_type,
            "hypervisor_version": self.hypervisor_version,
            "cpu_arch": self.arch, "architecture": self.arch,
            "vcpus": self.vcpus, "memory_mb": self.memory_mb, "disk_gb": self.disk_gb,
            "host": self.name, "hypervisor_hostname": self.name,
            "availability_zone": self.zone,
            "cpu_info:features": sorted(self.cpu_features),
            "cpu_info:arch": self.arch,
        }
        if key in derived:
            return derived[key]
        return self.labels.get(key)

    def class_key(self) -> tuple:
        """Every fact a filter may read except the host's identity (its name and hostname
        label): hosts with equal keys pass or fail an identity-blind check alike, so such a
        check runs once per class of hosts, not once per host."""
        labels = tuple(sorted((k, v) for k, v in self.labels.items() if k != HOSTNAME_LABEL))
        # only our annotations are parsed; others (kubelet's, KubeVirt's heartbeat) differ per
        # node and would make every host a class of its own
        ours = tuple(sorted((k, v) for k, v in self.annotations.items() if k.startswith(_OWN_ANNOTATIONS)))
        return (labels, ours, self.ready, self.unschedulable,
                self.taints, self.vcpus, self.memory_mb, self.disk_gb,
                tuple(sorted(self.extended.items())))

    def static_fingerprint(self) -> tuple:
        """Everything filters may look at; two equal fingerprints filter identically."""
        return (self.name, tuple(sorted(self.labels.items())),
                tuple(sorted(self.annotations.items())), self.ready, self.unschedulable,
                self.taints, self.vcpus, self.memory_mb, self.disk_gb,
                tuple(sorted(self.extended.items())))


def parse_node(node: dict[str, Any]) -> HostState | None:
    """A HostState from a Node as the API returns it, or None if it is not a compute host."""
    meta = node.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    if not _truthy(labels.get(COMPUTE_HOST_LABEL)):
        return None
    annotations = dict(meta.get("annotations") or {})
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}

    def quantity(key: str, conv, default=0):
        try:
            return conv(alloc[key]) if key in alloc else default
        except QuantityError:
            return default

    ready = False
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            ready = str(cond.get("status")) == "True"
    taints = tuple(sorted(
        (str(t.get("key", "")), str(t.get("value", "") or ""), str(t.get("effect", "")))
        for t in spec.get("taints") or ()))
    extended = {}
    for key, value in alloc.items():
        if key in _STANDARD or key.startswith("hugepages-"):
            continue
        try:
            amount = to_int(value)
        except QuantityError:
            continue
        if amount > 0:
            extended[key] = amount
    aggregates = frozenset(
        k[len(AGGREGATE_PREFIX):] for k, v in labels.items()
        if k.startswith(AGGREGATE_PREFIX) and _truthy(v))
    metadata = {
        k[len(AGGREGATE_PREFIX):]: frozenset(p.strip() for p in str(v).split(",") if p.strip())
        for k, v in annotations.items() if k.startswith(AGGREGATE_PREFIX)}
    metadata = {k: v for k, v in metadata.items() if v}
    ratios = {}
    for kind, annotation in RATIO_ANNOTATIONS.items():
        value = _float(annotations.get(annotation))
        if value is None:
            # Like Nova's AggregateCoreFilter: the smallest ratio of the host's aggregates.
            candidates = [r for r in map(_float, metadata.get(f"{kind}_allocation_ratio", ()))
                          if r is not None]
            value = min(candidates) if candidates else None
        if value is not None:
            ratios[kind] = value
    reserved = {}
    for kind, annotation in RESERVED_ANNOTATIONS.items():
        raw = annotations.get(annotation)
        try:
            if raw is not None and float(raw) >= 0:
                reserved[kind] = float(raw)
        except ValueError:
            pass
    hv_type = labels.get(HYPERVISOR_TYPE_LABEL) or (
        "kvm" if extended.get(KVM_RESOURCE, 0) > 0 else "qemu")
    try:
        hv_version = int(labels[HYPERVISOR_VERSION_LABEL])
    except (KeyError, ValueError):
        hv_version = None
    arch = canonical_arch(labels.get(ARCH_LABEL))
    cpu_features = frozenset(
        k[len(CPU_FEATURE_PREFIX):] for k, v in labels.items()
        if k.startswith(CPU_FEATURE_PREFIX) and _truthy(v))
    return HostState(
        name=str(meta.get("name", "")),
        labels=labels,
        annotations=annotations,
        ready=ready,
        unschedulable=bool(spec.get("unschedulable", False)),
        taints=taints,
        zone=labels.get(ZONE_LABEL) or labels.get(LEGACY_ZONE_LABEL),
        arch=arch,
        hypervisor_type=hv_type.lower(),
        hypervisor_version=hv_version,
        aggregates=aggregates,
        aggregate_metadata=metadata,
        vcpus=quantity("cpu", cpu_cores, 0.0),
        memory_mb=quantity("memory", to_mib),
        disk_gb=quantity("ephemeral-storage", to_gib),
        extended=extended,
        cpu_features=cpu_features,
        traits=host_traits(labels, arch, cpu_features),
        ratio_overrides=ratios,
        reserved_overrides=reserved,
    )

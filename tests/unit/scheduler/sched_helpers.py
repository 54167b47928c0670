"""Node dicts and requests for the scheduler tests."""

from __future__ import annotations

from kubestack.scheduler import Flavor, HostCache, RequestSpec, SchedulerConfig


def make_node(name: str, *, cpu: str = "16", memory: str = "64Gi", disk: str = "500Gi",
              zone: str | None = "az1", arch: str = "amd64", ready: bool = True,
              unschedulable: bool = False, taints: list | None = None,
              labels: dict | None = None, annotations: dict | None = None,
              extra: dict | None = None, kvm: bool = True, compute: bool = True) -> dict:
    all_labels = {"kubernetes.io/arch": arch}
    if compute:
        all_labels["kubestack.io/compute-host"] = "true"
    if zone is not None:
        all_labels["topology.kubernetes.io/zone"] = zone
    all_labels.update(labels or {})
    alloc = {"cpu": cpu, "memory": memory, "ephemeral-storage": disk, "pods": "110"}
    if kvm:
        alloc["devices.kubevirt.io/kvm"] = "1k"
    alloc.update(extra or {})
    return {
        "metadata": {"name": name, "labels": all_labels, "annotations": dict(annotations or {})},
        "spec": {"unschedulable": unschedulable, "taints": list(taints or [])},
        "status": {"allocatable": alloc,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def flavor(vcpus: int = 1, ram_mb: int = 1024, disk_gb: int = 10, **kw) -> Flavor:
    return Flavor(name=kw.pop("name", f"f{vcpus}-{ram_mb}"), vcpus=vcpus, ram_mb=ram_mb,
                  disk_gb=disk_gb, **kw)


def request(vcpus: int = 1, ram_mb: int = 1024, disk_gb: int = 10, *, extra_specs=None,
            **kw) -> RequestSpec:
    return RequestSpec(flavor=flavor(vcpus, ram_mb, disk_gb, extra_specs=extra_specs or {}),
                       **kw)


def cache_with(*nodes: dict, config: SchedulerConfig | None = None) -> HostCache:
    cache = HostCache(config)
    for node in nodes:
        cache.upsert_node(node)
    return cache

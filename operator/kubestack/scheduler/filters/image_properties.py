"""ImagePropertiesFilter: the host supports the image's architecture, hypervisor type,
VM mode and requested hypervisor version (Nova semantics)."""

from __future__ import annotations

from ..context import SchedulingContext
from ..extra_specs_ops import match
from ..host_state import HostState, canonical_arch
from .base import StaticFilter

__all__ = ["ImagePropertiesFilter", "supported_instances"]


def _first(props, *names):
    for name in names:
        if props.get(name):
            return props[name]
    return None


def supported_instances(host: HostState) -> list[tuple[str | None, str, str]]:
    """(arch, hypervisor type, vm mode) triples, like Nova's libvirt driver reports: a KVM
    host runs both kvm and qemu guests, an emulation-only host only qemu."""
    types = ["kvm", "qemu"] if host.hypervisor_type == "kvm" else [host.hypervisor_type]
    return [(host.arch, hv, "hvm") for hv in types]


class ImagePropertiesFilter(StaticFilter):
    name = "ImagePropertiesFilter"
    description = "host does not support the image's architecture / hypervisor / vm mode"

    def key(self, ctx: SchedulingContext):
        props = ctx.spec.image_properties
        arch = canonical_arch(_first(props, "hw_architecture", "architecture"))
        hv_type = _first(props, "img_hv_type", "hypervisor_type")
        vm_mode = _first(props, "hw_vm_mode", "vm_mode")
        version = props.get("img_hv_requested_version")
        if not (arch or hv_type or vm_mode or version):
            return None
        return (arch, hv_type.lower() if hv_type else None,
                vm_mode.lower() if vm_mode else None, version)

    def check(self, host: HostState, key, config) -> bool:
        arch, hv_type, vm_mode, version = key
        if version and host.hypervisor_version is not None \
                and not match(host.hypervisor_version, version):
            return False
        if not (arch or hv_type or vm_mode):
            return True
        for h_arch, h_hv, h_mode in supported_instances(host):
            if (arch is None or arch == h_arch) and (hv_type is None or hv_type == h_hv) \
                    and (vm_mode is None or vm_mode == h_mode):
                return True
        return False

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        arch, hv_type, vm_mode, version = self.key(ctx) or (None,) * 4
        return (f"host supports {supported_instances(host)} (version "
                f"{host.hypervisor_version}); image wants arch={arch} hv_type={hv_type} "
                f"vm_mode={vm_mode} version={version}")

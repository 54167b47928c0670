"""Placement traits: what a host offers and what a flavor or image requires or forbids.

In Nova, Placement filters hosts by traits before any scheduler filter runs: a flavor's
``trait:<NAME>=required|forbidden`` extra specs and an image's ``trait:<NAME>=required``
properties. A host's traits here come from its Node:

* ``trait.kubestack.io/<NAME>=true`` labels, set by the cloud admin (standard os-traits names
  such as ``COMPUTE_NET_VIRTIO_PACKED`` or ``CUSTOM_*`` ones, as ``openstack resource provider
  trait set`` would);
* the CPU flags KubeVirt labels (``cpu-feature.node.kubevirt.io/<flag>``) on x86 hosts, named
  as Nova's libvirt driver reports them (``avx2`` -> ``HW_CPU_X86_AVX2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["TRAIT_LABEL_PREFIX", "TRAIT_SPEC_PREFIX", "host_traits", "requested_traits"]

TRAIT_LABEL_PREFIX = "trait.kubestack.io/"
TRAIT_SPEC_PREFIX = "trait:"
REQUIRED, FORBIDDEN = "required", "forbidden"

# libvirt's CPU flag names -> os-traits names, as Nova's libvirt driver maps them; flags
# not listed here are not reported as traits (they stay visible to ComputeCapabilitiesFilter)
_X86_FLAG_TRAITS: dict[str, tuple[str, ...]] = {
    "3dnow": ("HW_CPU_X86_3DNOW",), "abm": ("HW_CPU_X86_ABM",), "aes": ("HW_CPU_X86_AESNI",),
    "avx": ("HW_CPU_X86_AVX",), "avx2": ("HW_CPU_X86_AVX2",),
    "avx512bw": ("HW_CPU_X86_AVX512BW",), "avx512cd": ("HW_CPU_X86_AVX512CD",),
    "avx512dq": ("HW_CPU_X86_AVX512DQ",), "avx512er": ("HW_CPU_X86_AVX512ER",),
    "avx512f": ("HW_CPU_X86_AVX512F",), "avx512pf": ("HW_CPU_X86_AVX512PF",),
    "avx512vl": ("HW_CPU_X86_AVX512VL",), "avx512vnni": ("HW_CPU_X86_AVX512VNNI",),
    "avx512vbmi": ("HW_CPU_X86_AVX512VBMI",), "avx512ifma": ("HW_CPU_X86_AVX512IFMA",),
    "avx512vbmi2": ("HW_CPU_X86_AVX512VBMI2",), "avx512bitalg": ("HW_CPU_X86_AVX512BITALG",),
    "vaes": ("HW_CPU_X86_AVX512VAES",), "gfni": ("HW_CPU_X86_AVX512GFNI",),
    "vpclmulqdq": ("HW_CPU_X86_AVX512VPCLMULQDQ",), "avx512-vpopcntdq": ("HW_CPU_X86_AVX512VPOPCNTDQ",),
    "bmi1": ("HW_CPU_X86_BMI",), "bmi2": ("HW_CPU_X86_BMI2",), "pclmuldq": ("HW_CPU_X86_CLMUL",),
    "f16c": ("HW_CPU_X86_F16C",), "fma": ("HW_CPU_X86_FMA3",), "fma4": ("HW_CPU_X86_FMA4",),
    "mmx": ("HW_CPU_X86_MMX",), "mpx": ("HW_CPU_X86_MPX",), "sha-ni": ("HW_CPU_X86_SHA",),
    "sse": ("HW_CPU_X86_SSE",), "sse2": ("HW_CPU_X86_SSE2",), "sse3": ("HW_CPU_X86_SSE3",),
    "sse4.1": ("HW_CPU_X86_SSE41",), "sse4.2": ("HW_CPU_X86_SSE42",), "sse4a": ("HW_CPU_X86_SSE4A",),
    "ssse3": ("HW_CPU_X86_SSSE3",), "tbm": ("HW_CPU_X86_TBM",), "xop": ("HW_CPU_X86_XOP",),
    # the vendor-neutral trait is still reported beside the vendor one, as Nova does
    "svm": ("HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM"), "vmx": ("HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX"),
}


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes", "on")


def host_traits(labels: Mapping[str, str], arch: str | None, cpu_features: Iterable[str]) -> frozenset[str]:
    """The traits of a host with these Node labels, canonical architecture and CPU flags."""
    traits = {key[len(TRAIT_LABEL_PREFIX):] for key, value in labels.items()
              if key.startswith(TRAIT_LABEL_PREFIX) and _truthy(value)}
    if arch in ("x86_64", "i686"):
        for flag in cpu_features:
            traits.update(_X86_FLAG_TRAITS.get(flag, ()))
    return frozenset(traits)


def requested_traits(extra_specs: Mapping[str, str],
                     image_properties: Mapping[str, str]) -> tuple[frozenset[str], frozenset[str]]:
    """(required, forbidden) traits of a request: the flavor's ``trait:`` extra specs and the
    image's ``trait:`` properties (an image can only require). Other values are not requests
    (the Flavor and Image schemas reject them at admission)."""
    required: set[str] = set()
    forbidden: set[str] = set()
    for key, value in extra_specs.items():
        if key.startswith(TRAIT_SPEC_PREFIX):
            {REQUIRED: required, FORBIDDEN: forbidden}.get(str(value).strip().lower(), set()).add(
                key[len(TRAIT_SPEC_PREFIX):])
    for key, value in image_properties.items():
        if key.startswith(TRAIT_SPEC_PREFIX) and str(value).strip().lower() == REQUIRED:
            required.add(key[len(TRAIT_SPEC_PREFIX):])
    return frozenset(required), frozenset(forbidden)

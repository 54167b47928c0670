"""Resolving what a Server references (DESIGN §2 step 3), with Nova's error messages.

A bad reference is the user's error, not the operator's: it becomes a `ReferenceError`
whose message is what Nova's API would have answered ("Flavor m1.huge could not be found."),
and the reconciler turns it into ERROR with a fault. Nothing is created before every
reference resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubestack.api.server import FlavorSnapshot, Server
from kubestack.k8s.conditions import find_condition
from kubestack.scheduler import ServerGroup as SchedGroup


class ReferenceError(ValueError):
    def __init__(self, message: str, *, code: int = 400, reason: str = "InvalidReference"):
        super().__init__(message)
        self.code = code
        self.reason = reason


class ReferenceWaiting(ReferenceError):
    """A reference that exists and is on its way (an image still importing): a server not
    built yet waits for it in BUILD, as a Pod waits for its volume, rather than failing."""


# Glance states an image passes through on its way to active (None: no status written yet)
IMAGE_ON_ITS_WAY = frozenset({None, "queued", "saving", "importing", "uploading"})


@dataclass
class Resolved:
    flavor: FlavorSnapshot
    image_name: str | None = None
    image_properties: dict[str, str] = field(default_factory=dict)
    public_key: str | None = None  # the key pair's; None when it is gone (see the else below)
    user_data: str | None = None
    server_group: SchedGroup | None = None


def group_name(spec) -> str | None:
    """The server group, named by spec.serverGroup or by the scheduler hint `group`."""
    return spec.server_group or (spec.scheduler_hints.group if spec.scheduler_hints else None)


# a port the server needs cannot be made yet, for a reason something still to come cures (its
# network, subnet, security group or port applied later, an address given back: a waiting
# `network.faults.NetworkFault`)
PORT_NOT_READY = "PortNotReady"

# references that may still appear (GitOps applies a Server and its Flavor in any order):
# a Server in ERROR for one of these is looked at again when such an object changes
RETRYABLE = frozenset({"FlavorNotFound", "ImageNotFound", "ImageNotActive", "KeyPairNotFound",
                       "ServerGroupNotFound", "UserDataNotFound", "QuotaExceeded", PORT_NOT_READY})


def _processed(obj: Mapping[str, Any]) -> bool:
    """Its controller has answered (a Ready condition for the current generation): a key
    pair without one is still being imported or generated."""
    ready = find_condition((obj.get("status") or {}).get("conditions"), "Ready")
    return ready is not None and ready.get("observedGeneration", obj["metadata"].get("generation")) == \
        obj["metadata"].get("generation")


def split_ref(namespace: str, ref: str) -> tuple[str, str]:
    """`name` is in the server's own project; `project/name` in another one."""
    if "/" in ref:
        ns, name = ref.split("/", 1)
        return ns, name
    return namespace, ref


def flavor_visible(flavor: Mapping[str, Any], project: str) -> bool:
    spec = flavor.get("spec") or {}
    return spec.get("isPublic", True) or project in (spec.get("projects") or [])


def image_visible(image: Mapping[str, Any], project: str) -> bool:
    """Glance's visibility: public and community images are usable by all, shared ones by
    their members, private ones only by their own project."""
    if image["metadata"]["namespace"] == project:
        return True
    spec = image.get("spec") or {}
    visibility = spec.get("visibility", "private")
    if visibility in ("public", "community"):
        return True
    return visibility == "shared" and project in (spec.get("members") or [])


def flavor_snapshot(name: str, flavor: Mapping[str, Any]) -> FlavorSnapshot:
    spec = flavor.get("spec") or {}
    return FlavorSnapshot(name=name, vcpus=spec["vcpus"], ram=spec["ram"], disk=spec.get("disk", 0),
                          ephemeral=spec.get("ephemeral", 0), swap=spec.get("swap", 0),
                          extra_specs=dict(spec.get("extraSpecs") or {}))


def resolve(cluster, server: Mapping[str, Any], model: Server, *, for_boot: bool) -> Resolved:
    ns = model.metadata.namespace
    spec = model.spec
    status = server.get("status") or {}

    # flavor: once booted the server keeps the flavor it was built with (Nova embeds it),
    # so deleting a Flavor never breaks a running server
    flavor_obj = cluster.flavor(spec.flavor)
    if flavor_obj is not None and flavor_visible(flavor_obj, ns):
        flavor = flavor_snapshot(spec.flavor, flavor_obj)
    elif status.get("flavorName") == spec.flavor and status.get("flavor"):  # unshelve, too
        flavor = FlavorSnapshot.model_validate(status["flavor"])
    else:
        raise ReferenceError(f"Flavor {spec.flavor} could not be found.", reason="FlavorNotFound")

    resolved = Resolved(flavor=flavor, user_data=spec.user_data)

    if spec.image:  # else: boot from a volume, which the storage service checks
        _resolve_image(cluster, ns, spec.image, status, flavor, resolved, for_boot)

    if spec.key_name:
        keypair = cluster.keypair(ns, spec.key_name)
        key = ((keypair or {}).get("status") or {}).get("publicKey") or \
            ((keypair or {}).get("spec") or {}).get("publicKey")
        if key:
            resolved.public_key = key.strip()
        elif status.get("keyName") == spec.key_name and status.get("keyData"):
            # Nova copies the key into the instance at boot (key_data): deleting the key pair
            # later changes nothing for a server that got it, through rebuild and unshelve too
            resolved.public_key = status["keyData"]
        elif keypair is not None and not _processed(keypair):
            raise ReferenceWaiting(f"Key pair {spec.key_name} is not ready yet.", reason="KeyPairNotReady")
        else:
            raise ReferenceError("Invalid key_name provided.", reason="KeyPairNotFound")

    if spec.user_data_secret_ref:
        ref = spec.user_data_secret_ref
        data = cluster.secret_value(ns, ref.name, ref.key)
        if data is None:
            raise ReferenceError(f"user data Secret {ref.name} (key {ref.key}) could not be found.",
                                 reason="UserDataNotFound")
        resolved.user_data = data

    group = group_name(spec)
    if group and for_boot:  # only placement reads the group: deleting it later is harmless
        group_name_ = group
        group_obj = cluster.server_group(ns, group_name_)
        if group_obj is None:
            raise ReferenceError(f"Server group {group_name_} could not be found.", reason="ServerGroupNotFound")
        gspec = group_obj.get("spec") or {}
        resolved.server_group = SchedGroup(
            name=f"{ns}/{group_name_}", policy=gspec["policy"],
            max_server_per_host=(gspec.get("rules") or {}).get("maxServerPerHost"))
    return resolved


def _resolve_image(cluster, ns: str, ref: str, status: Mapping[str, Any], flavor: FlavorSnapshot,
                   resolved: Resolved, for_boot: bool) -> None:
    """What the scheduler and Nova's API checks need of the image (properties, min_disk,
    min_ram); the disk itself is the storage service's. Once built, the server keeps running
    whatever happens to the Image."""
    image_ns, image_name = split_ref(ns, ref)
    image = cluster.image(image_ns, image_name)
    resolved.image_name = ref
    if not for_boot and status.get("imageName") == ref:
        resolved.image_properties = dict(((image or {}).get("spec") or {}).get("properties") or {})
        return
    if image is None or not image_visible(image, ns):
        raise ReferenceError(f"Image {ref} could not be found.", reason="ImageNotFound")
    state = (image.get("status") or {}).get("status")
    if state in IMAGE_ON_ITS_WAY:
        raise ReferenceWaiting(f"Image {ref} is not active yet ({state or 'queued'}).", reason="ImageNotActive")
    if state != "active":
        raise ReferenceError(f"Image {ref} is not active.", reason="ImageNotActive")
    ispec = image.get("spec") or {}
    if flavor.disk and ispec.get("minDisk", 0) > flavor.disk:
        raise ReferenceError("Flavor's disk is too small for requested image. Flavor disk is "
                             f"{flavor.disk} GiB, minimum disk is {ispec['minDisk']} GiB.",
                             reason="FlavorDiskSmallerThanMinDisk")
    if ispec.get("minRam", 0) > flavor.ram:
        raise ReferenceError("Flavor's memory is too small for requested image.", reason="FlavorMemoryTooSmall")
    resolved.image_properties = dict(ispec.get("properties") or {})

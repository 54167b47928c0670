"""What a project uses, counted from the objects in its namespace.

The count is the truth the quota ledger is rebuilt from and the Project's status shows, so
it follows the same rules the controllers reserve by:

- a Server: instances 1, cores and ram from its flavor (the ``status.flavor`` snapshot the
  compute controller records, else the Flavor object; a resize in progress counts the new
  flavor, as Nova counts the larger of the two while a resize is unconfirmed);
- a Volume: volumes 1, gigabytes its size (the larger of spec and status, so an extend in
  progress counts);
- an Image: images 1; a Network: networks 1 and subnets per subnet; a SecurityGroup:
  securityGroups 1 and securityGroupRules per rule; Ports, Routers, FloatingIPs, KeyPairs,
  ServerGroups and (CSI) VolumeSnapshots: 1 each.

Servers and Volumes are the kinds a controller reserves quota for (the others are bounded
by the namespace's ResourceQuota at admission, and count as soon as they exist). One of
those holds quota once its controller admitted it, which its status shows: a Server its
``status.flavor`` (recorded with the claim), a Volume its ``status.pvc`` (recorded with its
DataVolume). Until then it is *undecided* (`undecided`), and so is one refused for quota (its
``status.fault.message`` or ``status.reason`` is Nova's "Quota exceeded for ..." message: in
Nova such a request never creates a row, here the object stays to carry the fault): an
undecided object counts for nothing, and a recount leaves its holding in the ledger as it is.
The ledger may know better than the listed status: a server just admitted (a new one, or a
refused one retried when room was freed) holds its room a moment before its status says so,
and a recount in between must neither give that room to the next one nor, seeing a new
object, count it as a holder before its controller has checked the quota (the controller's
reservation would then find it held and admit it over quota).

Nor does a Volume whose deletion has given its quota back count (status ``deleting``,
written before the release): it may still be listed for a moment, and a recount must not
take back what the delete released.

Holder keys are ``<kind in lower case>/<namespace>/<name>``, e.g. ``server/demo/web-1``: the
key every controller reserves under (see `holder_key`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubestack.identity import MANAGED_LABEL
from kubestack.identity.quota import PROJECT_RESOURCES, is_quota_message

# plural -> Kind for every namespaced kind that counts toward a quota, in display order
COUNTED_KINDS: dict[str, str] = {
    "servers": "Server",
    "volumes": "Volume",
    "images": "Image",
    "volumesnapshots": "VolumeSnapshot",
    "networks": "Network",
    "ports": "Port",
    "routers": "Router",
    "floatingips": "FloatingIP",
    "securitygroups": "SecurityGroup",
    "keypairs": "KeyPair",
    "servergroups": "ServerGroup",
}

# what a project must not hold when it is deleted without cascadeDelete: every tenant kind
# (Stacks too) and PersistentVolumeClaims (data: a retained root disk, for one)
BLOCKING_KINDS: tuple[str, ...] = (
    "servers", "volumes", "images", "volumesnapshots", "persistentvolumeclaims", "stacks",
    "networks", "ports", "routers", "floatingips", "securitygroups", "keypairs", "servergroups",
)


def holder_key(kind: str, namespace: str, name: str) -> str:
    """The ledger key of one object, e.g. ``holder_key("Server", "demo", "web")`` ->
    ``server/demo/web``."""
    return f"{kind.lower()}/{namespace}/{name}"


def refused_for_quota(obj: Mapping[str, Any]) -> bool:
    status = obj.get("status") or {}
    fault = status.get("fault") or {}
    return is_quota_message(fault.get("message")) or is_quota_message(status.get("reason"))


def admitted(plural: str, obj: Mapping[str, Any]) -> bool:
    """Its controller has reserved its quota (see the module docstring); kinds no controller
    reserves for are admitted by existing."""
    status = obj.get("status") or {}
    if plural == "servers":
        return bool(status.get("flavor"))
    if plural == "volumes":
        return bool(status.get("pvc"))
    return True


def decided(plural: str, obj: Mapping[str, Any]) -> bool:
    return admitted(plural, obj) and not refused_for_quota(obj)


def released(plural: str, obj: Mapping[str, Any]) -> bool:
    """A Volume being deleted that has given its quota back (see the module docstring)."""
    return plural == "volumes" and bool((obj.get("metadata") or {}).get("deletionTimestamp")) \
        and (obj.get("status") or {}).get("status") == "deleting"


def flavor_numbers(server: Mapping[str, Any], flavors: Mapping[str, Mapping[str, Any]]
                   ) -> tuple[int, int]:
    """(vcpus, ram MiB) a Server counts for."""
    status = server.get("status") or {}
    spec = server.get("spec") or {}
    snapshot = status.get("flavor") or {}
    resize = status.get("resize") or {}
    # while a resize is unconfirmed the new flavor counts (the larger claim)
    if resize.get("newFlavor") and resize.get("newFlavor") in flavors:
        new = flavors[resize["newFlavor"]]
        return int(new.get("vcpus", 0)), int(new.get("ram", 0))
    if snapshot.get("vcpus") is not None:
        return int(snapshot.get("vcpus", 0)), int(snapshot.get("ram", 0))
    flavor = flavors.get(spec.get("flavor") or "")
    if flavor is None:
        return 0, 0
    return int(flavor.get("vcpus", 0)), int(flavor.get("ram", 0))


def deltas_of(plural: str, obj: Mapping[str, Any], flavors: Mapping[str, Mapping[str, Any]]
              ) -> dict[str, int]:
    """What one object of `plural` uses."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if plural == "servers":
        vcpus, ram = flavor_numbers(obj, flavors)
        return {"instances": 1, "cores": vcpus, "ram": ram}
    if plural == "volumes":
        size = max(int(spec.get("size") or 0), int(status.get("size") or 0))
        return {"volumes": 1, "gigabytes": size}
    if plural == "images":
        return {"images": 1}
    if plural == "volumesnapshots":
        return {"snapshots": 1}
    if plural == "networks":
        return {"networks": 1, "subnets": len(spec.get("subnets") or [])}
    if plural == "ports":
        return {"ports": 1}
    if plural == "routers":
        return {"routers": 1}
    if plural == "floatingips":
        return {"floatingIps": 1}
    if plural == "securitygroups":
        return {"securityGroups": 1, "securityGroupRules": len(spec.get("rules") or [])}
    if plural == "keypairs":
        return {"keyPairs": 1}
    if plural == "servergroups":
        return {"serverGroups": 1}
    raise KeyError(plural)


def count(objects: Mapping[str, Iterable[Mapping[str, Any]]],
          flavors: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """(usage, holders) of the objects given per plural (the objects of one project).

    `flavors` maps a Flavor name to its spec. Usage lists every project resource (0 when
    unused)."""
    usage = {r: 0 for r in PROJECT_RESOURCES}
    holders: dict[str, dict[str, int]] = {}
    for plural, kind in COUNTED_KINDS.items():
        for obj in objects.get(plural) or ():
            if not decided(plural, obj) or released(plural, obj):
                continue
            meta = obj.get("metadata") or {}
            deltas = deltas_of(plural, obj, flavors)
            holders[holder_key(kind, meta.get("namespace") or "", meta["name"])] = deltas
            for r, v in deltas.items():
                usage[r] = usage.get(r, 0) + v
    return usage, holders


def undecided(objects: Mapping[str, Iterable[Mapping[str, Any]]]) -> set[str]:
    """Holder keys of the objects not admitted yet or refused for quota: a recount leaves
    their holdings as the ledger has them (see the module docstring)."""
    return {holder_key(kind, (obj.get("metadata") or {}).get("namespace") or "", obj["metadata"]["name"])
            for plural, kind in COUNTED_KINDS.items() for obj in objects.get(plural) or ()
            if not decided(plural, obj)}


def is_managed(obj: Mapping[str, Any]) -> bool:
    """Made by the operator itself, not by a user (the default SecurityGroup: the project
    controller makes it, or the network service when a server needs it first)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return MANAGED_LABEL in labels


def blockers(objects: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, int]:
    """What keeps a project from being deleted without cascade: plural -> count, for every
    blocking kind present (the project controller's own objects do not block)."""
    out: dict[str, int] = {}
    for plural in BLOCKING_KINDS:
        n = sum(1 for obj in objects.get(plural) or () if not is_managed(obj))
        if n:
            out[plural] = n
    return out


def describe_blockers(project: str, found: Mapping[str, int]) -> str:
    """e.g. ``Project demo still holds 2 servers, 1 volume; delete them first or set
    spec.cascadeDelete to delete them with the project``."""
    parts = []
    for plural, n in found.items():
        if plural == "persistentvolumeclaims":
            noun = "persistent volume claim" if n == 1 else "persistent volume claims"
        elif plural == "volumesnapshots":
            noun = "volume snapshot" if n == 1 else "volume snapshots"
        else:
            noun = COUNTED_KINDS.get(plural, "Stack" if plural == "stacks" else plural).lower()
            noun = {"floatingip": "floating IP", "securitygroup": "security group",
                    "keypair": "key pair", "servergroup": "server group"}.get(noun, noun)
            if n != 1:
                noun += "s"
        parts.append(f"{n} {noun}")
    return (f"Project {project} still holds {', '.join(parts)}; delete them first or set "
            f"spec.cascadeDelete to delete them with the project")


def usage_vs_quota(usage: Mapping[str, int], limits: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """(resource, in use, limit) per project resource, for `quota show --usage` tables."""
    return [(r, int(usage.get(r, 0) or 0), int(limits.get(r, -1))) for r in PROJECT_RESOURCES]

"""HOT resources as kubestack objects, and kubestack objects as Heat attributes (pure).

The Stack controller asks this module three things about each resource of a stack:

* :func:`realize` — what to write: a :class:`Child` (an object of one of our kinds, a
  Secret for OS::Heat::RandomString) or a :class:`Contribution` (a part of another object:
  a Subnet is an entry of its Network's ``spec.subnets``, a VolumeAttachment a
  ``blockDeviceMapping`` entry of its Server, a RouterInterface an entry of its Router's
  ``interfaces``, a FloatingIPAssociation the ``port``/``server`` of a FloatingIP). A
  contribution is keyed, so applying it twice changes nothing and removing it removes only
  that entry. A nested stack's child Stack is made by `kubestack.orchestration.nested`
  (with :func:`child`).
* :func:`readiness` — whether the object reached the state Heat waits for (Server ACTIVE,
  Volume available, Network ACTIVE, Image active...), is still on its way, or failed.
* :func:`attributes` — the resource's Heat attributes (``first_address``, ``networks``,
  ``floating_ip_address``...) read from the object's status, for ``get_attr``.

and, for an object that exists already, what to patch (:func:`update_patch`,
:meth:`Contribution.patch`).

Everything here is data in, data out: no API calls.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubestack.k8s.conditions import find_condition

from .errors import HeatError

if TYPE_CHECKING:
    from .stack import Stack

GROUP, VERSION = "kubestack.io", "v1alpha1"
STACK_LABEL = "kubestack.io/stack"
RESOURCE_LABEL = "kubestack.io/stack-resource"
STACK_NAMESPACE_LABEL = "kubestack.io/stack-namespace"
POLICY_ANNOTATION = "kubestack.io/deletion-policy"
FIELDS_ANNOTATION = "kubestack.io/stack-fields"
#: a group member's index among its group's members
MEMBER_LABEL = "kubestack.io/stack-member"
#: on a nested Stack: its parameters whose values derive from a secret of its parent (a
#: hidden parameter, a generated secret, an output the parent's own nested stack masks),
#: comma-separated; the nested stack masks them as if they were hidden
SECRET_PARAMETERS_ANNOTATION = "kubestack.io/secret-parameters"
MASK = "******"
#: the error of an output a stack's status masks
SECRET_OUTPUT = "secret: derived from a hidden parameter or a generated secret"

#: kind -> (API group/version, plural, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "Server": (f"{GROUP}/{VERSION}", "servers", True),
    "KeyPair": (f"{GROUP}/{VERSION}", "keypairs", True),
    "ServerGroup": (f"{GROUP}/{VERSION}", "servergroups", True),
    "Flavor": (f"{GROUP}/{VERSION}", "flavors", False),
    "Network": (f"{GROUP}/{VERSION}", "networks", True),
    "Port": (f"{GROUP}/{VERSION}", "ports", True),
    "SecurityGroup": (f"{GROUP}/{VERSION}", "securitygroups", True),
    "FloatingIP": (f"{GROUP}/{VERSION}", "floatingips", True),
    "Router": (f"{GROUP}/{VERSION}", "routers", True),
    "Volume": (f"{GROUP}/{VERSION}", "volumes", True),
    "Image": (f"{GROUP}/{VERSION}", "images", True),
    "Stack": (f"{GROUP}/{VERSION}", "stacks", True),       # a nested stack
    "Secret": ("v1", "secrets", True),
}

#: the order children are deleted in when no template says better: users of a thing first
DELETE_TIERS = ("FloatingIP", "Server", "Stack", "Port", "Volume", "Image", "SecurityGroup", "KeyPair",
                "ServerGroup", "Router", "Network", "Secret", "Flavor")
#: kinds whose spec holds whole documents (a nested Stack's template, parameters, files): an
#: update makes them exactly what the template gives, dropping what it no longer has
EXACT_KINDS = frozenset({"Stack"})

#: types realised as a part of another object: type -> (target kind, field)
CONTRIBUTIONS = {
    "OS::Neutron::Subnet": ("Network", "subnets"),
    "OS::Cinder::VolumeAttachment": ("Server", "blockDeviceMapping"),
    "OS::Neutron::RouterInterface": ("Router", "interfaces"),
    "OS::Neutron::FloatingIPAssociation": ("FloatingIP", "association"),
}


class RealizeError(HeatError):
    """A resource whose properties kubestack cannot express (the resource fails with it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass
class Context:
    """What a resource needs to know about its stack."""

    namespace: str
    stack: str                                # the Stack object's name
    owner: dict[str, Any] | None = None       # ownerReference to the Stack
    #: a stack Subnet's name -> its Network's name (for server networks given by subnet)
    subnet_networks: dict[str, str] = field(default_factory=dict)


@dataclass
class Child:
    kind: str
    namespace: str | None
    name: str
    body: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        return self.body.get("spec") or {}


@dataclass
class Contribution:
    """An entry one resource adds to another object (keyed: idempotent)."""

    kind: str
    namespace: str | None
    target: str
    field: str
    key: str
    entry: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "target": self.target,
                "field": self.field, "key": self.key, "entry": self.entry}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Contribution":
        return cls(d["kind"], d.get("namespace"), d["target"], d["field"], d["key"], d.get("entry") or {})

    def apply(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The target's spec with this entry in it (unchanged when it is there already)."""
        out = copy.deepcopy(spec or {})
        if self.field == "association":
            out.update(self.entry)
            return out
        items = [e for e in out.get(self.field) or [] if _entry_key(self.field, e) != self.key]
        items.append(copy.deepcopy(self.entry))
        current = out.get(self.field) or []
        if any(_entry_key(self.field, e) == self.key and e == self.entry for e in current):
            return out
        out[self.field] = items
        return out

    def remove(self, spec: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(spec or {})
        if self.field == "association":
            if all(out.get(k) == v for k, v in self.entry.items()):
                for k in self.entry:
                    out[k] = None
            return out
        if self.field in out:
            out[self.field] = [e for e in out.get(self.field) or [] if _entry_key(self.field, e) != self.key]
        return out

    def present(self, spec: dict[str, Any]) -> bool:
        if self.field == "association":
            return all((spec or {}).get(k) == v for k, v in self.entry.items())
        return any(_entry_key(self.field, e) == self.key and _subset(self.entry, e)
                   for e in (spec or {}).get(self.field) or [])

    def patch(self, target: dict[str, Any], remove: bool = False) -> dict[str, Any] | None:
        """The merge patch that puts this entry into the ``target`` object (``remove``: takes
        it out), guarded by the target's resourceVersion; None when it is so already."""
        spec = target.get("spec") or {}
        if self.present(spec) != remove:
            return None
        new = self.remove(spec) if remove else self.apply(spec)
        fields = ({k: new.get(k) for k in self.entry} if self.field == "association"
                  else {self.field: new.get(self.field)})
        return {"metadata": {"resourceVersion": target["metadata"]["resourceVersion"]}, "spec": fields}


def _subset(want: Any, have: Any) -> bool:
    """`want` is in `have` (the API server may add defaults to what we wrote)."""
    if isinstance(want, dict) and isinstance(have, dict):
        return all(k in have and _subset(v, have[k]) for k, v in want.items())
    return want == have


def _entry_key(fld: str, entry: dict[str, Any]) -> str:
    if fld == "subnets":
        return str(entry.get("name"))
    if fld == "blockDeviceMapping":
        return f"{entry.get('sourceType')}:{entry.get('name')}"
    if fld == "interfaces":
        return f"{entry.get('network')}/{entry.get('subnet')}"
    return ""


# ---- names ---------------------------------------------------------------------------------

def flavor_name(namespace: str, stack: str, resource: str) -> str:
    """Flavors are cluster-scoped: the stack's namespace is part of the name."""
    from .stack import dns_name

    return dns_name(namespace, stack, resource)


def labels(ctx: Context, resource: str) -> dict[str, str]:
    return {STACK_LABEL: ctx.stack, RESOURCE_LABEL: _label_value(resource),
            STACK_NAMESPACE_LABEL: ctx.namespace}


def belongs_to(obj: dict[str, Any], ctx: Context) -> bool:
    """The object is one of this stack's children: its labels name the stack and, when it is
    namespaced, the Stack object owns it (not an earlier Stack of the same name, nor nobody:
    a user's object that happens to have the name the stack would give its own)."""
    meta = obj.get("metadata") or {}
    lbl = meta.get("labels") or {}
    if lbl.get(STACK_LABEL) != ctx.stack or lbl.get(STACK_NAMESPACE_LABEL) != ctx.namespace:
        return False
    if meta.get("namespace") and ctx.owner is not None:
        return ctx.owner.get("uid") in {o.get("uid") for o in meta.get("ownerReferences") or []}
    return True


def _label_value(value: str) -> str:
    """Resource names may hold characters a label value may not ("group[3]")."""
    v = re.sub(r"[^A-Za-z0-9_.-]+", "_", value)[:63]
    return v.strip("_.-") or "x"


# ---- resources -> manifests ----------------------------------------------------------------

def realize(type_name: str, resource: str, physical_name: str, props: dict[str, Any],
            ctx: Context, deletion_policy: str = "Delete",
            secret_value: str | None = None) -> Child | Contribution | None:
    """The object (or the part of an object) a resource becomes; None for the types the
    Stack controller keeps to itself (software configs, wait conditions, scaling policies).
    ``secret_value`` is the generated value of an OS::Heat::RandomString."""
    if type_name in CONTRIBUTIONS:
        return _contribution(type_name, physical_name, props, ctx)
    if type_name not in _BUILDERS:
        return None
    builder = _BUILDERS[type_name]
    if builder is None:  # OS::Heat::RandomString
        return secret_child(resource, physical_name, {"value": secret_value or ""}, ctx, deletion_policy)
    kind, spec = builder(props, ctx)
    return child(kind, resource, physical_name, spec, ctx, deletion_policy)


def secret_child(resource: str, physical_name: str, data: dict[str, str], ctx: Context,
                 deletion_policy: str = "Delete") -> Child:
    """A Secret ``resource`` keeps values in (labelled and owned like the stack's other children)."""
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _metadata("Secret", resource, physical_name, ctx, deletion_policy), "stringData": data}
    return Child("Secret", ctx.namespace, physical_name, body)


def child(kind: str, resource: str, physical_name: str, spec: dict[str, Any], ctx: Context,
          deletion_policy: str = "Delete") -> Child:
    """The object of one of our kinds that ``resource`` becomes: labelled as the stack's,
    owned by it (when namespaced), annotated with its deletion policy and the spec fields
    the stack manages."""
    meta = _metadata(kind, resource, physical_name, ctx, deletion_policy)
    spec = _prune(spec)
    meta["annotations"][FIELDS_ANNOTATION] = ",".join(sorted(spec))
    body = {"apiVersion": KINDS[kind][0], "kind": kind, "metadata": meta, "spec": spec}
    return Child(kind, ctx.namespace if KINDS[kind][2] else None, physical_name, body)


def _metadata(kind: str, resource: str, physical_name: str, ctx: Context, deletion_policy: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": physical_name, "labels": labels(ctx, resource),
                            "annotations": {POLICY_ANNOTATION: deletion_policy}}
    if KINDS[kind][2]:
        meta["namespace"] = ctx.namespace
        if ctx.owner:
            meta["ownerReferences"] = [copy.deepcopy(ctx.owner)]
    return meta


def _prune(value: Any) -> Any:
    """Drop None values (the API server would store them as nulls the schema refuses)."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value if v is not None]
    return value


def _str_map(value: Any) -> dict[str, str] | None:
    if not value:
        return None
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _device(name: Any) -> str | None:
    if not name:
        return None
    return str(name)[len("/dev/"):] if str(name).startswith("/dev/") else str(name)


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _server(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    spec: dict[str, Any] = {"flavor": p.get("flavor"), "image": p.get("image") or None,
                            "resizeConfirmation": "Auto"}
    nets = []
    for n in p.get("networks") or []:
        entry = {"network": n.get("network"), "port": n.get("port"), "fixedIp": n.get("fixed_ip"),
                 "tag": n.get("tag")}
        if not entry["network"] and not entry["port"] and n.get("subnet"):
            entry["network"] = ctx.subnet_networks.get(n["subnet"])
            if entry["network"] is None:
                raise RealizeError(f"subnet {n['subnet']} of networks entry is not a subnet of this stack; "
                                   "give network instead")
        if entry["port"]:
            entry["fixedIp"] = None
        if entry["network"] or entry["port"]:
            nets.append(entry)
    if nets:
        spec["networks"] = nets
    if p.get("key_name"):
        spec["keyName"] = p["key_name"]
    if p.get("user_data"):
        spec["userData"] = p["user_data"]
    if p.get("metadata"):
        spec["metadata"] = _str_map(p["metadata"])
    if p.get("security_groups"):
        spec["securityGroups"] = [str(g) for g in p["security_groups"]]
    if p.get("availability_zone"):
        spec["availabilityZone"] = p["availability_zone"]
    if p.get("config_drive"):
        spec["configDrive"] = True
    name = p.get("name")
    if isinstance(name, str) and _DNS_LABEL.match(name):
        spec["hostname"] = name
    hints = p.get("scheduler_hints") or {}
    if hints:
        h: dict[str, Any] = {}
        for key, out in (("same_host", "sameHost"), ("different_host", "differentHost")):
            v = hints.get(key)
            if v:
                h[out] = [v] if isinstance(v, str) else list(v)
        for key, out in (("query", "query"), ("build_near_host_ip", "buildNearHostIp"), ("cidr", "cidr")):
            if hints.get(key):
                v = hints[key]
                h[out] = v if isinstance(v, str) else json.dumps(v)
        if hints.get("group"):
            h["group"] = hints["group"]
            spec["serverGroup"] = hints["group"]
        spec["schedulerHints"] = h
    bdms = []
    for b in p.get("block_device_mapping") or []:
        dev = _device(b.get("device_name"))
        if b.get("volume_id"):
            entry = {"sourceType": "volume", "destinationType": "volume", "name": b["volume_id"]}
        elif b.get("snapshot_id"):
            entry = {"sourceType": "snapshot", "destinationType": "volume", "name": b["snapshot_id"],
                     "volumeSize": b.get("volume_size")}
        else:
            raise RealizeError("block_device_mapping entries need volume_id or snapshot_id")
        if dev in ("vda", "sda") and not spec["image"]:
            entry["bootIndex"] = 0
        entry.update(deviceName=dev, deleteOnTermination=b.get("delete_on_termination"))
        bdms.append(entry)
    for b in p.get("block_device_mapping_v2") or []:
        if b.get("volume_id"):
            entry = {"sourceType": "volume", "destinationType": "volume", "name": b["volume_id"]}
        elif b.get("image") or b.get("image_id"):
            entry = {"sourceType": "image", "destinationType": "volume",
                     "name": b.get("image") or b.get("image_id"), "volumeSize": b.get("volume_size")}
        elif b.get("snapshot_id"):
            entry = {"sourceType": "snapshot", "destinationType": "volume", "name": b["snapshot_id"],
                     "volumeSize": b.get("volume_size")}
        elif b.get("swap_size"):
            entry = {"sourceType": "blank", "destinationType": "local",
                     "volumeSize": max(1, -(-int(b["swap_size"]) // 1024)), "guestFormat": "swap"}
        elif b.get("ephemeral_size"):
            entry = {"sourceType": "blank", "destinationType": "local", "volumeSize": b["ephemeral_size"],
                     "guestFormat": b.get("ephemeral_format")}
        elif b.get("volume_size"):
            entry = {"sourceType": "blank", "destinationType": "volume", "volumeSize": b["volume_size"]}
        else:
            raise RealizeError("block_device_mapping_v2 entries need volume_id, image, snapshot_id, "
                               "swap_size, ephemeral_size or volume_size")
        entry.update(bootIndex=b.get("boot_index"), deviceName=_device(b.get("device_name")),
                     deviceType=b.get("device_type"), diskBus=b.get("disk_bus"),
                     deleteOnTermination=b.get("delete_on_termination"))
        bdms.append(entry)
    if bdms:
        spec["blockDeviceMapping"] = bdms
    if not spec["image"] and not any(b.get("bootIndex") == 0 for b in bdms):
        raise RealizeError("a server needs image, or a block device mapping with boot_index 0 "
                           "(device vda for block_device_mapping)")
    return "Server", spec


def _keypair(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    return "KeyPair", {"publicKey": p.get("public_key") or None, "type": p.get("type") or None}


def _server_group(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    policies = p.get("policies") or ["anti-affinity"]
    if len(policies) != 1:
        raise RealizeError("policies: a server group has exactly one policy")
    spec: dict[str, Any] = {"policy": policies[0]}
    rules = p.get("rules") or {}
    if rules.get("max_server_per_host") is not None:
        spec["rules"] = {"maxServerPerHost": int(rules["max_server_per_host"])}
    return "ServerGroup", spec


def _flavor(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    public = p.get("is_public", True)
    spec = {"vcpus": p["vcpus"], "ram": p["ram"], "disk": p.get("disk") or 0,
            "swap": p.get("swap") or 0, "ephemeral": p.get("ephemeral") or 0,
            "rxtxFactor": float(p.get("rxtx_factor") or 1.0), "isPublic": bool(public),
            "extraSpecs": _str_map(p.get("extra_specs")),
            "projects": [str(t) for t in p.get("tenants") or []] or None}
    if public and spec["projects"]:
        raise RealizeError("tenants can only be given for a flavor with is_public false")
    if not public:
        spec["projects"] = sorted(set((spec["projects"] or []) + [ctx.namespace]))
    return "Flavor", spec


_PROVIDER_KEYS = {"provider:network_type": "networkType", "provider:physical_network": "physicalNetwork",
                  "provider:segmentation_id": "segmentationId"}


def _network(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    spec: dict[str, Any] = {"adminStateUp": p.get("admin_state_up", True)}
    if p.get("shared") is not None:
        spec["shared"] = bool(p["shared"])
    if p.get("port_security_enabled") is not None:
        spec["portSecurityEnabled"] = bool(p["port_security_enabled"])
    vs = p.get("value_specs") or {}
    provider = {out: vs[k] for k, out in _PROVIDER_KEYS.items() if vs.get(k) is not None}
    if provider:
        if "segmentationId" in provider:
            provider["segmentationId"] = int(provider["segmentationId"])
        spec["provider"] = provider
    if vs.get("router:external") is not None:
        spec["external"] = str(vs["router:external"]).lower() == "true"
    if vs.get("mtu") is not None:
        spec["mtu"] = int(vs["mtu"])
    if p.get("name"):
        spec["description"] = str(p["name"])[:255]
    return "Network", spec


def _port(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    spec: dict[str, Any] = {"network": p["network"]}
    fixed = [{"subnet": f.get("subnet"), "ipAddress": f.get("ip_address")} for f in p.get("fixed_ips") or []]
    if fixed:
        spec["fixedIps"] = fixed
    if p.get("security_groups") is not None:
        spec["securityGroups"] = [str(g) for g in p["security_groups"]]
    if p.get("port_security_enabled") is not None:
        spec["portSecurityEnabled"] = bool(p["port_security_enabled"])
        if not spec["portSecurityEnabled"]:
            spec["securityGroups"] = []
    if p.get("mac_address"):
        spec["macAddress"] = str(p["mac_address"]).lower()
    pairs = [{"ipAddress": a["ip_address"], "macAddress": a.get("mac_address")}
             for a in p.get("allowed_address_pairs") or []]
    if pairs:
        spec["allowedAddressPairs"] = pairs
    spec["adminStateUp"] = p.get("admin_state_up", True)
    for key, out in (("device_id", "deviceId"), ("device_owner", "deviceOwner")):
        if p.get(key):
            spec[out] = p[key]
    if p.get("name"):
        spec["description"] = str(p["name"])[:255]
    return "Port", spec


def _protocol(value: Any) -> Any:
    if value is None:
        return None
    s = str(value).lower()
    return int(s) if s.isdigit() else s


def _security_group(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    rules = []
    for r in p.get("rules") or []:
        proto = _protocol(r.get("protocol"))
        rule: dict[str, Any] = {"direction": r.get("direction") or "ingress",
                                "ethertype": r.get("ethertype") or "IPv4", "protocol": proto}
        lo, hi = r.get("port_range_min"), r.get("port_range_max")
        if proto in ("icmp", "icmpv6", 1, 58):
            rule["icmpType"], rule["icmpCode"] = lo, hi
        else:
            rule["portRangeMin"], rule["portRangeMax"] = lo, hi
        if r.get("remote_mode") == "remote_group_id" or (r.get("remote_group_id") and not r.get("remote_ip_prefix")):
            rule["remoteGroup"] = r.get("remote_group_id")
        elif r.get("remote_ip_prefix"):
            rule["remoteIpPrefix"] = str(ipaddress.ip_network(r["remote_ip_prefix"], strict=False))
        rule["description"] = r.get("description")
        rules.append(rule)
    return "SecurityGroup", {"description": p.get("description") or None, "rules": rules}


def _floating_ip(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    return "FloatingIP", {"floatingNetwork": p["floating_network"],
                          "floatingIpAddress": p.get("floating_ip_address"),
                          "port": p.get("port_id"),
                          "fixedIpAddress": p.get("fixed_ip_address") if p.get("port_id") else None}


def _router(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    spec: dict[str, Any] = {"adminStateUp": p.get("admin_state_up", True)}
    gw = p.get("external_gateway_info")
    if gw:
        spec["externalGateway"] = {
            "network": gw["network"],
            "enableSnat": gw.get("enable_snat") if gw.get("enable_snat") is not None else True,
            "externalFixedIps": [f["ip_address"] if isinstance(f, dict) else str(f)
                                 for f in gw.get("external_fixed_ips") or [] if f] or None}
    if p.get("distributed") is not None:
        spec["distributed"] = bool(p["distributed"])
    if p.get("name"):
        spec["description"] = str(p["name"])[:255]
    return "Router", spec


def _volume(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    sources = [(k, p.get(src)) for k, src in (("image", "image"), ("volume", "source_volid"),
                                               ("snapshot", "snapshot_id")) if p.get(src)]
    if len(sources) > 1:
        raise RealizeError("give at most one of image, source_volid or snapshot_id")
    if p.get("backup_id"):
        raise RealizeError("backup_id: volume backups are not supported")
    if not p.get("size"):
        raise RealizeError("size is required (the size of the volume in GiB)")
    spec: dict[str, Any] = {"size": p["size"], "volumeType": p.get("volume_type"),
                            "availabilityZone": p.get("availability_zone"),
                            "description": p.get("description") or p.get("name"),
                            "metadata": _str_map(p.get("metadata"))}
    if sources:
        spec["source"] = {sources[0][0]: sources[0][1]}
    if p.get("multiattach"):
        spec["multiattach"] = True
    return "Volume", spec


def _image(p: dict[str, Any], ctx: Context) -> tuple[str, dict]:
    props = {k: str(p[k]) for k in ("architecture", "os_distro", "os_version", "kernel_id", "ramdisk_id")
             if p.get(k)}
    props.update(_str_map(p.get("extra_properties")) or {})
    visibility = p.get("visibility") or "private"
    return "Image", {"source": {"url": p["location"]}, "diskFormat": p.get("disk_format"),
                     "containerFormat": p.get("container_format") or "bare",
                     "minDisk": p.get("min_disk") or 0, "minRam": p.get("min_ram") or 0,
                     "visibility": visibility, "protected": bool(p.get("protected")),
                     "tags": sorted({str(t) for t in p.get("tags") or []}) or None,
                     "properties": props or None, "description": p.get("name")}


_BUILDERS = {
    "OS::Nova::Server": _server, "OS::Nova::KeyPair": _keypair, "OS::Nova::ServerGroup": _server_group,
    "OS::Nova::Flavor": _flavor, "OS::Neutron::Net": _network, "OS::Neutron::Port": _port,
    "OS::Neutron::SecurityGroup": _security_group, "OS::Neutron::FloatingIP": _floating_ip,
    "OS::Neutron::Router": _router, "OS::Cinder::Volume": _volume, "OS::Glance::WebImage": _image,
    "OS::Heat::RandomString": None,
}


def _contribution(type_name: str, physical_name: str, p: dict[str, Any], ctx: Context) -> Contribution:
    kind, fld = CONTRIBUTIONS[type_name]
    if type_name == "OS::Neutron::Subnet":
        if not p.get("cidr"):
            raise RealizeError("cidr is required: subnet pools are not supported")
        gateway = p.get("gateway_ip")
        entry = _prune({
            "name": physical_name, "cidr": str(ipaddress.ip_network(p["cidr"], strict=False)),
            "ipVersion": int(p.get("ip_version") or 4),
            "gatewayIp": "none" if gateway == "" else gateway,
            "allocationPools": [{"start": a["start"], "end": a["end"]} for a in p.get("allocation_pools") or []] or None,
            "dnsNameservers": list(p.get("dns_nameservers") or []) or None,
            "hostRoutes": [{"destination": h["destination"], "nexthop": h["nexthop"]}
                           for h in p.get("host_routes") or []] or None,
            "enableDhcp": p.get("enable_dhcp", True),
        })
        return Contribution(kind, ctx.namespace, p["network"], fld, physical_name, entry)
    if type_name == "OS::Cinder::VolumeAttachment":
        entry = _prune({"sourceType": "volume", "destinationType": "volume", "name": p["volume_id"],
                        "deviceName": _device(p.get("mountpoint"))})
        return Contribution(kind, ctx.namespace, p["instance_uuid"], fld, _entry_key(fld, entry), entry)
    if type_name == "OS::Neutron::RouterInterface":
        if p.get("port") and not p.get("subnet"):
            raise RealizeError("port: router interfaces are made from a subnet; give subnet instead")
        subnet = p.get("subnet")
        network = ctx.subnet_networks.get(subnet)
        if network is None:
            raise RealizeError(f"subnet {subnet} is not a subnet of this stack")
        entry = {"network": network, "subnet": subnet}
        return Contribution(kind, ctx.namespace, p["router"], fld, _entry_key(fld, entry), entry)
    entry = {"port": p["port_id"]}
    if p.get("fixed_ip_address"):
        entry["fixedIpAddress"] = p["fixed_ip_address"]
    return Contribution(kind, ctx.namespace, p["floatingip_id"], fld, p["floatingip_id"], entry)


def merge_contributed(kind: str, desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The spec to write for a child: ``desired`` (from the template) with the entries other
    resources contributed to ``current`` kept (a Network's subnets, a Server's attached
    volumes, a Router's interfaces, a FloatingIP's association)."""
    out = copy.deepcopy(desired)
    for _type, (k, fld) in CONTRIBUTIONS.items():
        if k != kind:
            continue
        if fld == "association":
            for key in ("port", "fixedIpAddress", "server"):
                if out.get(key) is None and (current or {}).get(key) is not None:
                    out[key] = current[key]
            continue
        mine = {_entry_key(fld, e) for e in out.get(fld) or []}
        kept = [e for e in (current or {}).get(fld) or [] if _entry_key(fld, e) not in mine]
        if kept or fld in out:
            out[fld] = list(out.get(fld) or []) + kept
    return out


def spec_patch(current: dict[str, Any], desired: dict[str, Any], managed: set[str],
               exact: bool = False) -> dict[str, Any]:
    """A merge patch for the fields the stack manages: set what differs, clear what the
    template no longer gives. A field differs when ``desired`` is not in it (the API server
    may have added defaults) or, with ``exact``, when it is not equal (`EXACT_KINDS`)."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        have = (current or {}).get(key)
        if exact:
            if value != have:
                patch[key] = merge_diff(have, value)
        elif not _subset(value, have) or (isinstance(value, list) and len(value) != len(have or [])):
            patch[key] = value
    for key in managed - set(desired):
        if (current or {}).get(key) is not None:
            patch[key] = None
    return patch


def merge_diff(current: Any, desired: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``current`` into ``desired``: maps key by
    key, with null for a key ``desired`` does not have; anything else whole."""
    if not isinstance(current, dict) or not isinstance(desired, dict):
        return desired
    patch: dict[str, Any] = {k: None for k in current if k not in desired}
    patch.update({k: merge_diff(current.get(k), v) for k, v in desired.items() if current.get(k) != v})
    return patch


def update_patch(child: Child, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The patch that brings ``obj``, the existing object of ``child``, to what the template
    gives: the spec fields the stack manages (keeping what other resources contributed) and
    the annotations naming those fields, the deletion policy and (of a nested Stack) the
    parameters that carry secrets; None when it is there."""
    ann = obj["metadata"].get("annotations") or {}
    managed = set(filter(None, (ann.get(FIELDS_ANNOTATION) or "").split(",")))
    desired = merge_contributed(child.kind, child.spec, obj.get("spec") or {})
    patch = spec_patch(obj.get("spec") or {}, desired, managed, exact=child.kind in EXACT_KINDS)
    mine = child.body["metadata"]["annotations"]
    annotations = {k: mine.get(k) for k in (FIELDS_ANNOTATION, POLICY_ANNOTATION, SECRET_PARAMETERS_ANNOTATION)
                   if ann.get(k) != mine.get(k)}
    body: dict[str, Any] = {}
    if patch:
        body["spec"] = patch
    if annotations:
        body["metadata"] = {"annotations": annotations}
    return body or None


def subnet_networks(stack: Stack) -> dict[str, str]:
    """A stack's Subnets (their object names) -> the Networks they are part of, for servers
    that name a subnet instead of a network (see `Context.subnet_networks`)."""
    out: dict[str, str] = {}
    for name in stack.resources_in_order():
        if stack.defs[name].rtype.name == "OS::Neutron::Subnet":
            props = stack.resolve(name)
            if isinstance(props.get("network"), str):
                out[stack.physical_name(name)] = props["network"]
    return out


# ---- readiness -----------------------------------------------------------------------------

COMPLETE, IN_PROGRESS, FAILED = "complete", "in_progress", "failed"


@dataclass
class Readiness:
    state: str
    reason: str = ""


def _observed(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    gen = (obj.get("metadata") or {}).get("generation")
    return gen is None or st.get("observedGeneration") == gen


def _ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    return find_condition((obj.get("status") or {}).get("conditions"), "Ready")


def readiness(type_name: str, obj: dict[str, Any] | None, contribution: Contribution | None = None) -> Readiness:
    """Whether a child (or the target of a contribution) is where Heat would call the
    resource complete."""
    if obj is None:
        return Readiness(IN_PROGRESS, "waiting for the object to appear")
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Readiness(IN_PROGRESS, "the object is being deleted")
    if contribution is not None and not contribution.present(obj.get("spec") or {}):
        return Readiness(IN_PROGRESS, f"waiting for {contribution.kind} {contribution.target} to take the change")
    st = obj.get("status") or {}
    kind = obj.get("kind")
    if kind == "Secret":
        return Readiness(COMPLETE)
    if not _observed(obj):
        return Readiness(IN_PROGRESS, f"waiting for the {kind} controller")
    if type_name == "OS::Nova::Server" or (type_name == "OS::Cinder::VolumeAttachment" and kind == "Server"):
        status = st.get("status")
        if status == "ERROR":
            fault = st.get("fault") or {}
            return Readiness(FAILED, fault.get("message") or "the server is in ERROR")
        spec = obj.get("spec") or {}
        if status == "ACTIVE" and not st.get("taskState") and st.get("flavorName", spec.get("flavor")) == spec.get("flavor"):
            return Readiness(COMPLETE)
        if status == "SHUTOFF" and spec.get("powerState") == "Stopped":
            return Readiness(COMPLETE)
        return Readiness(IN_PROGRESS, f"server {status or 'BUILD'}" + (f" ({st['taskState']})" if st.get("taskState") else ""))
    if kind == "Volume":
        status = st.get("status")
        if status in ("error", "error_deleting"):
            return Readiness(FAILED, st.get("reason") or f"the volume is in {status}")
        if status in ("available", "in-use", "reserved", "attaching", "detaching"):
            return Readiness(COMPLETE)  # created; attachment states belong to VolumeAttachment
        return Readiness(IN_PROGRESS, f"volume {status or 'creating'}")
    if kind == "Stack":
        status = st.get("stackStatus") or ""
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            return Readiness(COMPLETE)
        # a nested stack does not roll back by itself: a rollback is someone else's doing
        if status.endswith("_FAILED") or status.startswith("ROLLBACK"):
            return Readiness(FAILED, st.get("stackStatusReason") or f"the nested stack is {status}")
        return Readiness(IN_PROGRESS, f"nested stack {status or 'CREATE_IN_PROGRESS'}")
    if kind == "Image":
        status = st.get("status")
        if status == "active":
            return Readiness(COMPLETE)
        if status in ("killed", "deleted", "deactivated"):
            return Readiness(FAILED, st.get("reason") or f"the image is {status}")
        return Readiness(IN_PROGRESS, f"image {status or 'queued'}")
    if kind in ("Network", "Port", "FloatingIP", "Router"):
        status = st.get("status")
        if status == "ERROR":
            return Readiness(FAILED, st.get("reason") or f"the {kind} is in ERROR")
        if status is None:
            return Readiness(IN_PROGRESS, f"waiting for the {kind} controller")
        if kind == "Network" and contribution is not None:
            names = {s.get("name") for s in st.get("subnets") or []}
            if contribution.key not in names:
                return Readiness(IN_PROGRESS, f"waiting for subnet {contribution.key}")
        if kind == "FloatingIP":
            if not st.get("floatingIpAddress"):
                return Readiness(IN_PROGRESS, "waiting for an address")
            if contribution is not None:
                # as in Neutron, the association is done when the floating IP took the port;
                # the address turns ACTIVE once the port is bound to a server
                return Readiness(COMPLETE, "" if status == "ACTIVE" else f"floating IP {status}")
        if kind == "Network" and status != "ACTIVE":
            return Readiness(IN_PROGRESS, f"network {status}")
        if kind == "Router" and status == "DOWN":
            return Readiness(COMPLETE, st.get("reason") or "")
        return Readiness(COMPLETE)
    cond = _ready_condition(obj)
    if cond is None:
        return Readiness(IN_PROGRESS, f"waiting for the {kind} controller")
    if cond.get("status") == "True":
        return Readiness(COMPLETE)
    if kind == "SecurityGroup" and st.get("ruleCount") is not None:
        return Readiness(FAILED, cond.get("message") or "invalid rules")
    return Readiness(FAILED, cond.get("message") or cond.get("reason") or f"the {kind} is not ready")


def attachment_readiness(volume: dict[str, Any] | None, server: str) -> Readiness:
    """A VolumeAttachment is complete when the volume is in-use by the server."""
    if volume is None:
        return Readiness(IN_PROGRESS, "waiting for the volume")
    st = volume.get("status") or {}
    status = st.get("status")
    if status in ("error", "error_deleting"):
        return Readiness(FAILED, st.get("reason") or f"the volume is in {status}")
    if status == "in-use" and any(a.get("server") == server for a in st.get("attachments") or []):
        return Readiness(COMPLETE)
    return Readiness(IN_PROGRESS, f"volume {status or 'creating'}" + (f": {st['reason']}" if st.get("reason") else ""))


# ---- attributes ----------------------------------------------------------------------------

def _heat_addresses(addresses: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {net: [{"addr": a.get("addr"), "version": a.get("version", 4),
                   "OS-EXT-IPS:type": a.get("type", "fixed"),
                   "OS-EXT-IPS-MAC:mac_addr": a.get("macAddr")} for a in entries]
            for net, entries in (addresses or {}).items()}


def attributes(type_name: str, obj: dict[str, Any] | None, physical_name: str,
               secret: dict[str, str] | None = None, target: dict[str, Any] | None = None) -> dict[str, Any]:
    """Heat attributes of a resource from its object (every attribute of the type is a key;
    None where the object does not know it yet). ``secret`` holds values read from a Secret
    (RandomString value, a generated key pair's private key); ``target`` is the object a
    contribution went into (a Subnet's Network)."""
    obj = obj or {}
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    show = {"name": physical_name, "spec": spec, "status": st} if obj else None
    if type_name == "OS::Nova::Server":
        addresses = st.get("addresses") or {}
        fixed = [a for entries in addresses.values() for a in entries if a.get("type", "fixed") == "fixed"]
        v4 = [a["addr"] for a in fixed if a.get("version", 4) == 4]
        v6 = [a["addr"] for a in fixed if a.get("version") == 6]
        floating = [a["addr"] for entries in addresses.values() for a in entries if a.get("type") == "floating"]
        return {"first_address": (v4 or [a["addr"] for a in fixed] or [""])[0] if obj else None,
                "networks": {net: [a["addr"] for a in entries] for net, entries in addresses.items()} if obj else None,
                "name": physical_name, "accessIPv4": (floating or v4 or [""])[0] if obj else None,
                "accessIPv6": (v6 or [""])[0] if obj else None,
                "addresses": _heat_addresses(addresses) if obj else None,
                "instance_name": st.get("virtualMachine"), "console_urls": {},
                "tags": [], "show": show}
    if type_name == "OS::Nova::KeyPair":
        return {"public_key": st.get("publicKey") or spec.get("publicKey"),
                "private_key": (secret or {}).get("private_key", ""), "show": show}
    if type_name == "OS::Nova::ServerGroup":
        return {"show": show}
    if type_name == "OS::Nova::Flavor":
        return {"is_public": spec.get("isPublic", True), "extra_specs": spec.get("extraSpecs") or {}, "show": show}
    if type_name == "OS::Neutron::Net":
        return {"name": physical_name, "status": st.get("status"),
                "subnets": [s.get("name") for s in spec.get("subnets") or []],
                "mtu": spec.get("mtu") or 1500, "admin_state_up": spec.get("adminStateUp", True),
                "tenant_id": (obj.get("metadata") or {}).get("namespace"),
                "port_security_enabled": spec.get("portSecurityEnabled", True), "show": show}
    if type_name == "OS::Neutron::Subnet":
        net = target or {}
        entry = next((s for s in (net.get("spec") or {}).get("subnets") or [] if s.get("name") == physical_name), {})
        seen = next((s for s in (net.get("status") or {}).get("subnets") or [] if s.get("name") == physical_name), {})
        return {"name": physical_name, "network_id": (net.get("metadata") or {}).get("name"),
                "tenant_id": (net.get("metadata") or {}).get("namespace"),
                "allocation_pools": [{"start": a.get("start"), "end": a.get("end")}
                                     for a in entry.get("allocationPools") or []],
                "gateway_ip": seen.get("gatewayIp"), "host_routes": [
                    {"destination": h.get("destination"), "nexthop": h.get("nexthop")}
                    for h in entry.get("hostRoutes") or []],
                "ip_version": entry.get("ipVersion", 4), "cidr": seen.get("cidr") or entry.get("cidr"),
                "dns_nameservers": entry.get("dnsNameservers") or [],
                "enable_dhcp": entry.get("enableDhcp", True),
                "show": {"name": physical_name, "spec": entry, "status": seen} if entry else None}
    if type_name == "OS::Neutron::Port":
        return {"fixed_ips": [{"subnet_id": f.get("subnet"), "ip_address": f.get("ipAddress")}
                              for f in st.get("fixedIps") or []],
                "mac_address": st.get("macAddress"), "name": physical_name,
                "network_id": spec.get("network"), "security_groups": spec.get("securityGroups") or [],
                "status": st.get("status"), "subnets": sorted({f.get("subnet") for f in st.get("fixedIps") or []}),
                "device_id": spec.get("deviceId") or st.get("server") or "",
                "device_owner": spec.get("deviceOwner") or "", "admin_state_up": spec.get("adminStateUp", True),
                "show": show}
    if type_name == "OS::Neutron::SecurityGroup":
        return {"show": show}
    if type_name == "OS::Neutron::FloatingIP":
        return {"floating_ip_address": st.get("floatingIpAddress"), "fixed_ip_address": st.get("fixedIpAddress"),
                "floating_network_id": spec.get("floatingNetwork"), "port_id": st.get("port") or spec.get("port"),
                "router_id": None, "show": show}
    if type_name == "OS::Neutron::Router":
        gw = spec.get("externalGateway")
        return {"status": st.get("status"), "name": physical_name, "admin_state_up": spec.get("adminStateUp", True),
                "tenant_id": (obj.get("metadata") or {}).get("namespace"),
                "external_gateway_info": {"network_id": gw.get("network"), "enable_snat": gw.get("enableSnat", True),
                                          "external_fixed_ips": [{"ip_address": ip} for ip in st.get("externalGatewayIps") or []]}
                if gw else None, "show": show}
    if type_name == "OS::Cinder::Volume":
        attachments = [{"server_id": a.get("server"), "device": a.get("device"),
                        "attached_at": a.get("attachedAt")} for a in st.get("attachments") or []]
        return {"size": st.get("size") or spec.get("size"), "status": st.get("status"),
                "attachments": json.dumps(attachments), "attachments_list": attachments,
                "volume_type": st.get("volumeType") or spec.get("volumeType"),
                "display_name": physical_name, "display_description": spec.get("description") or "",
                "metadata": json.dumps(spec.get("metadata") or {}),
                "bootable": st.get("bootable") if st.get("bootable") is not None else bool(spec.get("bootable")),
                "created_at": (obj.get("metadata") or {}).get("creationTimestamp"),
                "availability_zone": spec.get("availabilityZone"), "encrypted": False,
                "source_volid": (spec.get("source") or {}).get("volume"),
                "snapshot_id": (spec.get("source") or {}).get("snapshot"),
                "multiattach": spec.get("multiattach", False), "show": show}
    if type_name == "OS::Glance::WebImage":
        return {"status": st.get("status"), "show": show}
    if type_name == "OS::Heat::RandomString":
        return {"value": (secret or {}).get("value")}
    return {}


#: attributes whose value comes from a Secret (never shown in plain status)
SECRET_ATTRIBUTES = {"OS::Heat::RandomString": ("value",), "OS::Nova::KeyPair": ("private_key",)}


__all__ = ["Child", "Contribution", "Context", "Readiness", "RealizeError", "realize", "child", "readiness",
           "belongs_to", "attributes", "attachment_readiness", "merge_contributed", "spec_patch", "merge_diff",
           "update_patch", "subnet_networks", "flavor_name", "labels", "KINDS", "CONTRIBUTIONS", "DELETE_TIERS",
           "EXACT_KINDS", "STACK_LABEL", "RESOURCE_LABEL",
           "STACK_NAMESPACE_LABEL", "POLICY_ANNOTATION", "FIELDS_ANNOTATION", "MEMBER_LABEL", "SECRET_ATTRIBUTES",
           "MASK", "SECRET_OUTPUT", "SECRET_PARAMETERS_ANNOTATION",
           "COMPLETE", "IN_PROGRESS", "FAILED"]

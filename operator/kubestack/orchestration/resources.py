"""The resource types kubestack supports: for each its properties schema (required, types,
allowed values, whether a change can be applied in place), its attributes, and the
Kubernetes kind it becomes.

``kind`` is the kind of the child object the Stack controller creates (``Server``,
``Network``, ...); ``None`` marks a type the Stack controller realises itself without a child
object of its own (software configs become user data, wait conditions and scaling policies
are stack-level bookkeeping). Groups (ResourceGroup, AutoScalingGroup) expand into members
of their member type's kind.
"""

from __future__ import annotations

import email.mime.multipart
import email.mime.text
import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import PropertyError, PropertyNotAssigned, ResourceTypeNotFound, UnknownProperty
from .functions import Unresolved, has_unresolved

_MISSING = object()


@dataclass(frozen=True)
class Prop:
    type: str                       # string integer number boolean list map any
    required: bool = False
    update: bool = False            # can change in place (otherwise: replacement)
    default: Any = _MISSING
    allowed: tuple | None = None
    constraint: str | None = None   # custom constraint, checked with the exists callback
    schema: dict[str, "Prop"] | None = None  # keys of a map, or of each map in a list

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING


def P(type: str, required: bool = False, update: bool = False, default: Any = _MISSING,
      allowed: tuple | None = None, constraint: str | None = None,
      schema: dict[str, Prop] | None = None) -> Prop:
    return Prop(type, required, update, default, allowed, constraint, schema)


@dataclass(frozen=True)
class ResourceType:
    name: str
    kind: str | None
    properties: dict[str, Prop]
    attributes: frozenset[str]
    admin_only: bool = False
    ref_attribute: str | None = None     # get_resource returns this attribute (else the object name)
    virtual: bool = False                # fully computed by the engine from its properties
    group: bool = False                  # expands into members
    passthrough_attributes: bool = False  # group: any member attribute can be asked for
    description: str = ""
    #: the keys its update_policy may have (None: not checked)
    update_policy: dict[str, Prop] | None = None

    def updatable(self, prop: str) -> bool:
        p = self.properties.get(prop)
        return bool(p and p.update)


_NETWORK_ITEM = {
    "network": P("string", constraint="neutron.network"),
    "port": P("string", constraint="neutron.port"),
    "fixed_ip": P("string"),
    "subnet": P("string", constraint="neutron.subnet"),
    "floating_ip": P("string"),
    "tag": P("string"),
    "allocate_network": P("string", allowed=("none", "auto")),
    "port_extra_properties": P("map"),
}
_BDM_ITEM = {
    "device_name": P("string"), "volume_id": P("string", constraint="cinder.volume"),
    "snapshot_id": P("string"), "volume_size": P("integer"), "delete_on_termination": P("boolean"),
}
_BDM2_ITEM = {
    "device_name": P("string"), "volume_id": P("string", constraint="cinder.volume"),
    "image": P("string", constraint="glance.image"), "image_id": P("string"),
    "snapshot_id": P("string"), "swap_size": P("integer"), "ephemeral_size": P("integer"),
    "ephemeral_format": P("string"), "device_type": P("string", allowed=("cdrom", "disk")),
    "disk_bus": P("string"), "boot_index": P("integer"), "volume_size": P("integer"),
    "delete_on_termination": P("boolean"),
}
_SG_RULE = {
    "direction": P("string", default="ingress", allowed=("ingress", "egress")),
    "ethertype": P("string", default="IPv4", allowed=("IPv4", "IPv6")),
    "port_range_min": P("integer"), "port_range_max": P("integer"),
    "protocol": P("string"), "remote_mode": P("string", allowed=("remote_ip_prefix", "remote_group_id")),
    "remote_group_id": P("string"), "remote_ip_prefix": P("string"), "description": P("string"),
}

#: Heat's rolling update policy: a ResourceGroup's update_policy rolling_update, an
#: AutoScalingGroup's rolling_updates property (ranges: `rolling.check`)
_ROLLING_UPDATE = {"min_in_service": P("integer", default=0), "max_batch_size": P("integer", default=1),
                   "pause_time": P("number", default=0)}
_BATCH_CREATE = {"max_batch_size": P("integer", default=1), "pause_time": P("number", default=0)}

_TYPES: list[ResourceType] = [
    ResourceType(
        "OS::Nova::Server", "Server",
        {
            "name": P("string", update=True),
            "image": P("string", update=True, constraint="glance.image"),
            "flavor": P("string", required=True, update=True, constraint="nova.flavor"),
            "key_name": P("string", constraint="nova.keypair"),
            "networks": P("list", update=True, schema=_NETWORK_ITEM),
            "user_data": P("string", default=""),
            "user_data_format": P("string", update=True, default="HEAT_CFNTOOLS",
                                  allowed=("HEAT_CFNTOOLS", "RAW", "SOFTWARE_CONFIG")),
            "user_data_update_policy": P("string", update=True, default="REPLACE",
                                         allowed=("REPLACE", "IGNORE")),
            "metadata": P("map", update=True),
            "block_device_mapping": P("list", schema=_BDM_ITEM),
            "block_device_mapping_v2": P("list", schema=_BDM2_ITEM),
            "scheduler_hints": P("map"),
            "security_groups": P("list", update=True),
            "availability_zone": P("string"),
            "config_drive": P("boolean"),
            "admin_pass": P("string", update=True),
            "flavor_update_policy": P("string", update=True, default="RESIZE",
                                      allowed=("RESIZE", "REPLACE")),
            "image_update_policy": P("string", update=True, default="REBUILD",
                                     allowed=("REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL")),
            "software_config_transport": P("string", update=True),
            "personality": P("map"),
            "tags": P("list", update=True),
            "diskConfig": P("string", allowed=("AUTO", "MANUAL")),
        },
        frozenset({"first_address", "networks", "name", "accessIPv4", "accessIPv6", "addresses",
                   "instance_name", "console_urls", "tags", "show"}),
    ),
    ResourceType("OS::Nova::KeyPair", "KeyPair", {
        "name": P("string", required=True), "public_key": P("string"),
        "save_private_key": P("boolean", default=False), "type": P("string", allowed=("ssh", "x509")),
        "user": P("string"),
    }, frozenset({"public_key", "private_key", "show"})),
    ResourceType("OS::Nova::ServerGroup", "ServerGroup", {
        "name": P("string"),
        "policies": P("list", default=["anti-affinity"]),
        "rules": P("map"),
    }, frozenset({"show"})),
    ResourceType("OS::Nova::Flavor", "Flavor", {
        "name": P("string"), "ram": P("integer", required=True), "vcpus": P("integer", required=True),
        "disk": P("integer", default=0), "swap": P("integer", default=0),
        "ephemeral": P("integer", default=0), "rxtx_factor": P("number", default=1.0),
        "is_public": P("boolean", default=True), "extra_specs": P("map", update=True),
        "tenants": P("list", update=True), "flavorid": P("string"),
    }, frozenset({"is_public", "extra_specs", "show"}), admin_only=True),
    ResourceType("OS::Neutron::Net", "Network", {
        "name": P("string", update=True), "admin_state_up": P("boolean", update=True, default=True),
        "shared": P("boolean", update=True), "port_security_enabled": P("boolean", update=True),
        "dns_domain": P("string", update=True), "value_specs": P("map", update=True),
        "tenant_id": P("string"), "qos_policy": P("string", update=True), "tags": P("list", update=True),
    }, frozenset({"name", "status", "subnets", "mtu", "admin_state_up", "tenant_id", "port_security_enabled", "show"})),
    ResourceType("OS::Neutron::Subnet", "Subnet", {
        "network": P("string", required=True, constraint="neutron.network"),
        "cidr": P("string"), "ip_version": P("integer", default=4, allowed=(4, 6)),
        "name": P("string", update=True), "dns_nameservers": P("list", update=True),
        "gateway_ip": P("string", update=True), "enable_dhcp": P("boolean", update=True, default=True),
        "allocation_pools": P("list", update=True, schema={"start": P("string", required=True), "end": P("string", required=True)}),
        "host_routes": P("list", update=True, schema={"destination": P("string", required=True), "nexthop": P("string", required=True)}),
        "subnetpool": P("string"), "prefixlen": P("integer"),
        "ipv6_address_mode": P("string", allowed=("dhcpv6-stateful", "dhcpv6-stateless", "slaac")),
        "ipv6_ra_mode": P("string", allowed=("dhcpv6-stateful", "dhcpv6-stateless", "slaac")),
        "tags": P("list", update=True), "value_specs": P("map", update=True), "tenant_id": P("string"),
    }, frozenset({"name", "network_id", "tenant_id", "allocation_pools", "gateway_ip", "host_routes",
                  "ip_version", "cidr", "dns_nameservers", "enable_dhcp", "show"})),
    ResourceType("OS::Neutron::Port", "Port", {
        "network": P("string", required=True, constraint="neutron.network"),
        "name": P("string", update=True),
        "fixed_ips": P("list", update=True, schema={"subnet": P("string", constraint="neutron.subnet"), "ip_address": P("string")}),
        "security_groups": P("list", update=True), "admin_state_up": P("boolean", update=True, default=True),
        "mac_address": P("string"), "device_id": P("string", update=True), "device_owner": P("string", update=True),
        "allowed_address_pairs": P("list", update=True, schema={"ip_address": P("string", required=True), "mac_address": P("string")}),
        "port_security_enabled": P("boolean", update=True), "binding:vnic_type": P("string", update=True),
        "value_specs": P("map", update=True), "tags": P("list", update=True), "qos_policy": P("string", update=True),
        "dns_name": P("string", update=True),
    }, frozenset({"fixed_ips", "mac_address", "name", "network_id", "security_groups", "status",
                  "subnets", "device_id", "device_owner", "admin_state_up", "show"})),
    ResourceType("OS::Neutron::SecurityGroup", "SecurityGroup", {
        "name": P("string", update=True), "description": P("string", update=True),
        "rules": P("list", update=True, schema=_SG_RULE),
    }, frozenset({"show"})),
    ResourceType("OS::Neutron::FloatingIP", "FloatingIP", {
        "floating_network": P("string", required=True, constraint="neutron.network"),
        "port_id": P("string", update=True), "fixed_ip_address": P("string", update=True),
        "floating_ip_address": P("string"), "floating_subnet": P("string"),
        "value_specs": P("map"), "dns_name": P("string"), "dns_domain": P("string"),
    }, frozenset({"floating_ip_address", "fixed_ip_address", "floating_network_id", "port_id", "router_id", "show"})),
    ResourceType("OS::Neutron::FloatingIPAssociation", "FloatingIPAssociation", {
        "floatingip_id": P("string", required=True, update=True),
        "port_id": P("string", required=True, update=True),
        "fixed_ip_address": P("string", update=True),
    }, frozenset({"show"})),
    ResourceType("OS::Neutron::Router", "Router", {
        "name": P("string", update=True),
        "external_gateway_info": P("map", update=True, schema={
            "network": P("string", required=True, constraint="neutron.network"),
            "enable_snat": P("boolean"), "external_fixed_ips": P("list")}),
        "admin_state_up": P("boolean", update=True, default=True), "distributed": P("boolean"),
        "ha": P("boolean"), "value_specs": P("map", update=True), "tags": P("list", update=True),
    }, frozenset({"status", "external_gateway_info", "name", "admin_state_up", "tenant_id", "show"})),
    ResourceType("OS::Neutron::RouterInterface", "RouterInterface", {
        "router": P("string", required=True, constraint="neutron.router"),
        "subnet": P("string", constraint="neutron.subnet"), "port": P("string", constraint="neutron.port"),
    }, frozenset({"show"})),
    ResourceType("OS::Cinder::Volume", "Volume", {
        "size": P("integer", update=True), "name": P("string", update=True),
        "description": P("string", update=True), "image": P("string", constraint="glance.image"),
        "source_volid": P("string", constraint="cinder.volume"), "snapshot_id": P("string"),
        "backup_id": P("string", update=True), "volume_type": P("string", update=True),
        "availability_zone": P("string"), "metadata": P("map", update=True),
        "read_only": P("boolean", update=True), "multiattach": P("boolean"),
        "scheduler_hints": P("map"),
    }, frozenset({"size", "status", "attachments", "attachments_list", "volume_type", "display_name",
                  "display_description", "metadata", "bootable", "created_at", "availability_zone",
                  "encrypted", "source_volid", "snapshot_id", "multiattach", "show"})),
    ResourceType("OS::Cinder::VolumeAttachment", "VolumeAttachment", {
        "instance_uuid": P("string", required=True, update=True),
        "volume_id": P("string", required=True, update=True, constraint="cinder.volume"),
        "mountpoint": P("string", update=True),
    }, frozenset({"show"})),
    ResourceType("OS::Glance::WebImage", "Image", {
        "location": P("string", required=True), "name": P("string", update=True),
        "id": P("string"),
        "container_format": P("string", default="bare", allowed=("ami", "ari", "aki", "bare", "ova", "ovf", "docker")),
        "disk_format": P("string", required=True, allowed=("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")),
        "min_disk": P("integer", default=0), "min_ram": P("integer", default=0),
        "protected": P("boolean", update=True, default=False),
        "visibility": P("string", update=True, default="private", allowed=("public", "private", "community", "shared")),
        "architecture": P("string", update=True), "os_distro": P("string", update=True),
        "os_version": P("string", update=True), "owner": P("string", update=True),
        "kernel_id": P("string", update=True), "ramdisk_id": P("string", update=True),
        "tags": P("list", update=True), "extra_properties": P("map", update=True),
    }, frozenset({"status", "show"})),
    ResourceType("OS::Heat::RandomString", "Secret", {
        "length": P("integer", default=32),
        "sequence": P("string", allowed=("lettersdigits", "letters", "lowercase", "uppercase", "digits", "hexdigits", "octdigits")),
        "character_classes": P("list", schema={
            "class": P("string", default="lettersdigits", allowed=("lettersdigits", "letters", "lowercase", "uppercase", "digits", "hexdigits", "octdigits")),
            "min": P("integer", default=1)}),
        "character_sequences": P("list", schema={"sequence": P("string", required=True), "min": P("integer", default=1)}),
        "salt": P("string", update=True),
    }, frozenset({"value"}), ref_attribute="value",
        description="the value lives in a Secret named after the resource (key 'value')"),
    ResourceType("OS::Heat::ResourceGroup", None, {
        "count": P("integer", update=True, default=1),
        "index_var": P("string", update=True, default="%index%"),
        "resource_def": P("map", required=True, update=True, schema={
            "type": P("string", required=True), "properties": P("map"), "metadata": P("map")}),
        "removal_policies": P("list", update=True, default=[], schema={"resource_list": P("list", default=[])}),
        "removal_policies_mode": P("string", update=True, default="append", allowed=("append", "update")),
    }, frozenset({"refs", "refs_map", "attributes", "removed_rsrc_list", "show"}), group=True,
        passthrough_attributes=True,
        update_policy={"rolling_update": P("map", schema=_ROLLING_UPDATE),
                       "batch_create": P("map", schema=_BATCH_CREATE)}),
    ResourceType("OS::Heat::AutoScalingGroup", None, {
        "resource": P("map", required=True, update=True, schema={
            "type": P("string", required=True), "properties": P("map"), "metadata": P("map")}),
        "max_size": P("integer", required=True, update=True),
        "min_size": P("integer", required=True, update=True),
        "desired_capacity": P("integer", update=True),
        "cooldown": P("integer", update=True),
        "rolling_updates": P("map", update=True, schema=_ROLLING_UPDATE,
                             default={"min_in_service": 0, "max_batch_size": 1, "pause_time": 0}),
    }, frozenset({"outputs", "outputs_list", "current_size", "refs", "refs_map"}), group=True,
        # Heat's HOT AutoScalingGroup takes its policy as a property, and no update_policy
        update_policy={}),
    ResourceType("OS::Heat::ScalingPolicy", None, {
        "adjustment_type": P("string", required=True, update=True,
                             allowed=("change_in_capacity", "exact_capacity", "percent_change_in_capacity")),
        "auto_scaling_group_id": P("string", required=True),
        "scaling_adjustment": P("number", required=True, update=True),
        "cooldown": P("integer", update=True), "min_adjustment_step": P("integer", update=True),
    }, frozenset({"alarm_url", "signal_url"})),
    ResourceType("OS::Heat::Stack", "Stack", {
        "context": P("map", schema={"region_name": P("string", required=True)}),
        # text, as in Heat: a map would be evaluated as this template's own functions
        "template": P("string", required=True, update=True),
        "timeout": P("integer", update=True),
        "parameters": P("map", default={}, update=True),
    }, frozenset({"stack_name", "outputs"}),
        description="a child Stack (kubestack has one region: context is accepted and ignored)"),
    ResourceType("OS::Heat::CloudConfig", None, {"cloud_config": P("map", default={})},
                 frozenset({"config"}), ref_attribute="config", virtual=True),
    ResourceType("OS::Heat::SoftwareConfig", None, {
        "group": P("string", default="Heat::Ungrouped"), "config": P("string", default=""),
        "inputs": P("list"), "outputs": P("list"), "options": P("map"),
    }, frozenset({"config"}), ref_attribute="config", virtual=True),
    ResourceType("OS::Heat::MultipartMime", None, {
        "parts": P("list", default=[], schema={
            "config": P("string", required=True), "filename": P("string"),
            "type": P("string", default="text", allowed=("text", "multipart")), "subtype": P("string")}),
        "group": P("string", default="Heat::Ungrouped"),
    }, frozenset({"config"}), ref_attribute="config", virtual=True),
    ResourceType("OS::Heat::WaitConditionHandle", None, {
        "signal_transport": P("string", default="TOKEN_SIGNAL"),
    }, frozenset({"endpoint", "curl_cli", "token"})),
    ResourceType("OS::Heat::WaitCondition", None, {
        "handle": P("string", required=True),
        "timeout": P("number", default=3600),
        "count": P("integer", update=True, default=1),
    }, frozenset({"data"})),
]

REGISTRY: dict[str, ResourceType] = {t.name: t for t in _TYPES}


def get_type(name: Any, path: list[str]) -> ResourceType:
    if not isinstance(name, str) or name not in REGISTRY:
        raise ResourceTypeNotFound(str(name), path)
    return REGISTRY[name]


# ---- property validation -------------------------------------------------------------------

def _check_type(prop: Prop, value: Any, path: list[str]) -> Any:
    """Value converted to the property's type, or a Property error."""
    if value is None or isinstance(value, Unresolved):
        return value
    t = prop.type
    if t == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if not isinstance(value, str):
            raise PropertyError(f"Value must be a string; got {json.dumps(value, default=str)}", path)
    elif t == "integer":
        if isinstance(value, bool):
            raise PropertyError(f"Value '{value}' is not an integer", path)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise PropertyError(f"Value '{value}' is not an integer", path) from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise PropertyError(f"Value '{value}' is not an integer", path)
    elif t == "number":
        if isinstance(value, bool):
            raise PropertyError(f"Value '{value}' is not a number", path)
        if isinstance(value, str):
            try:
                return float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise PropertyError(f"Value '{value}' is not a number", path) from None
        if not isinstance(value, (int, float)):
            raise PropertyError(f"Value '{value}' is not a number", path)
    elif t == "boolean":
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "false"):
                return low == "true"
        if not isinstance(value, bool):
            raise PropertyError(f'"{value}" is not a valid boolean', path)
    elif t == "list":
        if isinstance(value, str):
            return [v.strip() for v in value.split(",")] if value else []
        if not isinstance(value, list):
            raise PropertyError(f'"{value}" is not a list', path)
    elif t == "map":
        if not isinstance(value, dict):
            raise PropertyError(f'"{value}" is not a map', path)
    return value


def validate_properties(schema: dict[str, Prop], values: Any, path: list[str],
                        defaults: bool = True) -> dict[str, Any]:
    """Check resolved properties against a schema; returns them with type conversions (and,
    unless ``defaults`` is false, defaults) applied. Unresolved values are accepted as they are."""
    if values is None:
        values = {}
    if isinstance(values, Unresolved):
        return values
    if not isinstance(values, dict):
        raise PropertyError("Properties must be a map", path)
    for key in values:
        if key not in schema:
            raise UnknownProperty(str(key), path)
    out: dict[str, Any] = {}
    # the template's order first, then what the schema adds
    for key in list(values) + [k for k in schema if k not in values]:
        prop = schema[key]
        ppath = path + [key]
        value = values.get(key)
        if value is None:
            if prop.required:
                raise PropertyNotAssigned(key, path[:-1] if path and path[-1] == "properties" else path)
            if prop.has_default and defaults:
                out[key] = json.loads(json.dumps(prop.default))
            continue
        value = _check_type(prop, value, ppath)
        if prop.allowed is not None and not isinstance(value, Unresolved) and value not in prop.allowed:
            raise PropertyError(f'"{value}" is not an allowed value '
                                f'[{", ".join(str(a) for a in prop.allowed)}]', ppath)
        if prop.schema is not None and not isinstance(value, Unresolved):
            if prop.type == "list":
                items = []
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        item = validate_properties(prop.schema, item, ppath + [str(i)], defaults)
                    elif not isinstance(item, Unresolved):
                        raise PropertyError(f'"{item}" is not a map', ppath + [str(i)])
                    items.append(item)
                value = items
            elif prop.type == "map":
                value = validate_properties(prop.schema, value, ppath, defaults)
        out[key] = value
    return out


def constraint_checks(schema: dict[str, Prop], raw: Any, resolved: Any,
                      path: list[str]) -> list[tuple[str, str, list[str]]]:
    """(constraint, value, path) for each property with a custom constraint whose value comes
    straight from the template or a parameter (not from another resource of the stack)."""
    out: list[tuple[str, str, list[str]]] = []
    if not isinstance(raw, dict) or not isinstance(resolved, dict):
        return out
    for key, prop in schema.items():
        r, v = raw.get(key), resolved.get(key)
        if v is None or has_unresolved(v):
            continue
        if prop.constraint and isinstance(v, str) and v and _literal(r):
            out.append((prop.constraint, v, path + [key]))
        elif prop.schema and isinstance(r, list) and isinstance(v, list) and len(r) == len(v):
            for i, (ri, vi) in enumerate(zip(r, v)):
                out.extend(constraint_checks(prop.schema, ri, vi, path + [key, str(i)]))
        elif prop.schema and isinstance(r, dict) and isinstance(v, dict):
            out.extend(constraint_checks(prop.schema, r, v, path + [key]))
    return out


def _literal(raw: Any) -> bool:
    """A value written in the template or taken from a parameter."""
    if isinstance(raw, (str, int, float)):
        return True
    if isinstance(raw, dict) and len(raw) == 1:
        key = next(iter(raw))
        return key in ("get_param", "Ref")
    return False


# ---- values the engine computes itself -----------------------------------------------------

def render_cloud_config(props: dict[str, Any]) -> str:
    body = yaml.safe_dump(props.get("cloud_config") or {}, default_flow_style=False, sort_keys=False)
    return "#cloud-config\n" + body


def _mime_subtype(content: str) -> str:
    if content.startswith("#cloud-config"):
        return "cloud-config"
    if content.startswith("#!"):
        return "x-shellscript"
    if content.startswith("#include"):
        return "x-include-url"
    if content.startswith("#cloud-boothook"):
        return "cloud-boothook"
    return "plain"


def render_multipart(props: dict[str, Any]) -> str:
    parts = props.get("parts") or []
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    msg = email.mime.multipart.MIMEMultipart(boundary=f"===============kubestack-{digest}==")
    for i, part in enumerate(parts):
        content = part.get("config") or ""
        if part.get("type") == "multipart":
            sub = email.message_from_string(content)
        else:
            charset = "us-ascii" if content.isascii() else "utf-8"
            sub = email.mime.text.MIMEText(content, part.get("subtype") or _mime_subtype(content), charset)
        sub.add_header("Content-Disposition", "attachment", filename=part.get("filename") or f"part-{i:03d}")
        msg.attach(sub)
    return msg.as_string()


def virtual_attributes(rtype: ResourceType, props: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a type the engine computes (software configs)."""
    if rtype.name == "OS::Heat::CloudConfig":
        return {"config": render_cloud_config(props)}
    if rtype.name == "OS::Heat::SoftwareConfig":
        return {"config": props.get("config") or ""}
    if rtype.name == "OS::Heat::MultipartMime":
        return {"config": render_multipart(props)}
    return {}


_CLASSES = {
    "lettersdigits": string.ascii_letters + string.digits,
    "letters": string.ascii_letters,
    "lowercase": string.ascii_lowercase,
    "uppercase": string.ascii_uppercase,
    "digits": string.digits,
    "hexdigits": string.digits + "ABCDEF",
    "octdigits": string.octdigits,
}


def generate_random_string(props: dict[str, Any], rng: Any = None) -> str:
    """The value of an OS::Heat::RandomString (the controller stores it in a Secret)."""
    rng = rng or secrets.SystemRandom()
    length = int(props.get("length") or 32)
    pools: list[tuple[str, int]] = []
    if props.get("sequence"):
        pools.append((_CLASSES[props["sequence"]], 0))
    for c in props.get("character_classes") or []:
        pools.append((_CLASSES[c.get("class") or "lettersdigits"], int(c.get("min", 1))))
    for s in props.get("character_sequences") or []:
        pools.append((s["sequence"], int(s.get("min", 1))))
    if not pools:
        pools.append((_CLASSES["lettersdigits"], 0))
    required = sum(m for _, m in pools)
    if required > length:
        raise PropertyError(f"Length property cannot be smaller than combined character class "
                            f"and character sequence minimums ({required} > {length})", ["length"])
    chars = [rng.choice(pool) for pool, m in pools for _ in range(m)]
    alphabet = "".join(sorted(set("".join(p for p, _ in pools))))
    chars += [rng.choice(alphabet) for _ in range(length - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)


__all__ = ["REGISTRY", "ResourceType", "Prop", "get_type", "validate_properties",
           "constraint_checks", "virtual_attributes", "generate_random_string",
           "render_cloud_config", "render_multipart"]

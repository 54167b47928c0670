"""NetworkAttachmentDefinition CNI configs for each provider network type (pure).

The operator does IPAM (Neutron-style ports) and cloud-init configures the guest, so no
config asks a CNI IPAM plugin for addresses: ``"ipam": {}`` for the bridge plugin, and no
``subnets`` for OVN-Kubernetes (with ``subnets`` OVN-Kubernetes would allocate its own pod
addresses and its port security would drop the guest's operator-assigned ones).

=============  ===============================================================================
networkType    CNI config
=============  ===============================================================================
bridge         the ``bridge`` plugin on a Linux bridge private to this network: ``provider.bridge``
               or a name derived from the network (``ksb-`` + 11 hex digits, <= 15 chars)
flat           the ``bridge`` plugin on the host bridge named by ``provider.physicalNetwork``
               (the cluster admin connects it to the physical network, e.g. with nmstate)
vlan           the ``bridge`` plugin on the ``physicalNetwork`` bridge with ``"vlan": <id>``:
               one trunk bridge per physical network carries every VLAN (the plugin tags the
               VM's port, as Neutron's agents tag a port on ``br-int``), and KubeVirt's bridge
               binding needs nothing else. The ``vlan`` plugin (a sub-interface moved into the
               pod) was not chosen: it takes the parent interface away from every other network
               and cannot be shared by two VMs' ports on one node.
layer2         OVN-Kubernetes ``ovn-k8s-cni-overlay`` with ``"topology": "layer2"`` and
               ``netAttachDefName``; the CNI ``name`` is the same in every namespace's NAD so
               that they are one logical switch
=============  ===============================================================================

Every config carries the network's MTU when set.
"""

from __future__ import annotations

import json
from typing import Any

from . import naming

CNI_VERSION = "0.3.1"
NAD_API_VERSION = "k8s.cni.cncf.io/v1"
NAD_KIND = "NetworkAttachmentDefinition"


def default_bridge(network_ns: str, network: str) -> str:
    """A Linux bridge name (IFNAMSIZ: at most 15 characters) private to the network."""
    return "ksb-" + naming.short_hash(f"{network_ns}/{network}", 11)


def config(network_ns: str, network: str, spec, nad_namespace: str) -> dict[str, Any]:
    """The CNI config (as a dict) for Network `network_ns/network` with spec `spec`
    (``kubestack.api.network.NetworkSpec``), for its NAD in `nad_namespace`."""
    provider = spec.provider
    net_type = str(provider.network_type) if provider else "bridge"
    out: dict[str, Any] = {"cniVersion": CNI_VERSION,
                           "name": naming.cni_network_name(network_ns, network)}
    if net_type == "layer2":
        out.update({
            "type": "ovn-k8s-cni-overlay",
            "topology": "layer2",
            "netAttachDefName": f"{nad_namespace}/{naming.nad_name(network_ns, network, nad_namespace)}",
        })
    else:
        if net_type == "bridge":
            bridge = (provider.bridge if provider and provider.bridge
                      else default_bridge(network_ns, network))
        else:  # flat, vlan: the bridge attached to the physical network
            bridge = provider.physical_network
        out.update({"type": "bridge", "bridge": bridge, "isGateway": False, "ipMasq": False,
                    "hairpinMode": False, "promiscMode": False})
        if net_type == "vlan":
            out["vlan"] = int(provider.segmentation_id)
        out["ipam"] = {}
    if spec.mtu:
        out["mtu"] = int(spec.mtu)
    return out


def nad(network_ns: str, network: str, spec, nad_namespace: str,
        labels: dict[str, str] | None = None,
        owner_references: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The NetworkAttachmentDefinition object for the network in `nad_namespace`."""
    meta: dict[str, Any] = {
        "name": naming.nad_name(network_ns, network, nad_namespace),
        "namespace": nad_namespace,
        "labels": {naming.LABEL_MANAGED: naming.MANAGED_BY, naming.LABEL_NETWORK: network,
                   naming.LABEL_NETWORK_NS: network_ns, **(labels or {})},
        "annotations": {"kubestack.io/network-ref": f"{network_ns}/{network}"},
    }
    if owner_references:
        meta["ownerReferences"] = owner_references
    body = config(network_ns, network, spec, nad_namespace)
    return {"apiVersion": NAD_API_VERSION, "kind": NAD_KIND, "metadata": meta,
            "spec": {"config": json.dumps(body, sort_keys=True)}}


def check_config(text: str) -> list[str]:
    """Problems of a rendered CNI config string (what the CNI plugin would refuse)."""
    try:
        conf = json.loads(text)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    errors = []
    if not isinstance(conf, dict):
        return ["a CNI config must be a JSON object"]
    for key in ("cniVersion", "name", "type"):
        if not isinstance(conf.get(key), str) or not conf.get(key):
            errors.append(f"{key} must be a non-empty string")
    kind = conf.get("type")
    if kind == "bridge":
        bridge = conf.get("bridge")
        if not isinstance(bridge, str) or not 1 <= len(bridge) <= 15:
            errors.append("bridge must be an interface name of 1-15 characters")
        if "vlan" in conf and not (isinstance(conf["vlan"], int) and 0 <= conf["vlan"] <= 4094):
            errors.append("vlan must be an integer 0-4094")
        if not isinstance(conf.get("ipam"), dict):
            errors.append("ipam must be an object")
    elif kind == "ovn-k8s-cni-overlay":
        if conf.get("topology") not in ("layer2", "layer3", "localnet"):
            errors.append("topology must be layer2, layer3 or localnet")
        ref = conf.get("netAttachDefName")
        if not isinstance(ref, str) or ref.count("/") != 1:
            errors.append("netAttachDefName must be <namespace>/<name>")
    if "mtu" in conf and not (isinstance(conf["mtu"], int) and conf["mtu"] >= 68):
        errors.append("mtu must be an integer >= 68")
    return errors

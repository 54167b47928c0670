"""Deterministic names and labels of everything the network code creates (pure).

* Port of a Server's ``spec.networks[i]``: ``<server>-<i>`` in the Server's namespace.
* IP claim (the allocation lock): a ConfigMap in the *network's* namespace named
  ``ip-<address with '.'/':' as '-'>.<network>`` — the API server refuses a second object
  of that name, so two ports can never hold one address, whatever the concurrency.
* NetworkAttachmentDefinition of network ``ns/name``: ``name`` in ``ns`` itself, and
  ``ns.name`` in any other namespace that uses the network (shared / external networks).
"""

from __future__ import annotations

import hashlib
import ipaddress

PREFIX = "kubestack.io/"
LABEL_MANAGED = PREFIX + "managed-by"
MANAGED_BY = "kubestack"
LABEL_IP_CLAIM = PREFIX + "ip-claim"
LABEL_NETWORK = PREFIX + "network"
LABEL_NETWORK_NS = PREFIX + "network-namespace"
LABEL_SUBNET = PREFIX + "subnet"
LABEL_PORT_KEY = PREFIX + "port-key"
LABEL_HOLDER_KIND = PREFIX + "holder-kind"
LABEL_SERVER = PREFIX + "server"
LABEL_REMOTE_CLAIMS = PREFIX + "remote-claims"
LABEL_SECURITY_GROUP = PREFIX + "security-group"
LABEL_NAD = PREFIX + "nad"
LABEL_FLOATING_IP = PREFIX + "floating-ip"
LABEL_PROJECT = PREFIX + "project"
ANN_INTERFACE_ADDRESSES = PREFIX + "interface-addresses"
POLICY_FOR = "k8s.v1.cni.cncf.io/policy-for"
VM_NAME_LABEL = "vm.kubevirt.io/name"  # set by KubeVirt on every virt-launcher pod

MAX_NAME = 253


def _fit(name: str, limit: int = MAX_NAME) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:limit - 11]}-{digest}"


def label_value(text: str) -> str:
    """`text` as a label value (at most 63 characters; longer ones become a hash)."""
    return text if len(text) <= 63 else short_hash(text, 40)


def short_hash(text: str, n: int = 20) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def port_name(server: str, index: int) -> str:
    return _fit(f"{server}-{index}")


def interface_name(index: int) -> str:
    """KubeVirt interface/network name of the i-th tenant interface."""
    return f"net{index}"


def dashed(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return str(ip).replace(".", "-").replace(":", "-")


def claim_name(network: str, address: str) -> str:
    name = f"ip-{dashed(address)}.{network}"
    if len(name) <= MAX_NAME:
        return name
    return f"ip-{dashed(address)}.{short_hash(network, 16)}"


def port_key(namespace: str, name: str) -> str:
    """Label value naming a port (or a floating IP) in any namespace (label values <= 63)."""
    return short_hash(f"{namespace}/{name}")


def nad_name(network_ns: str, network: str, target_ns: str) -> str:
    if target_ns == network_ns:
        return network
    return _fit(f"{network_ns}.{network}")


def cni_network_name(network_ns: str, network: str) -> str:
    """The CNI ``name``: one per logical network, the same in every namespace's NAD (what
    OVN-Kubernetes requires of NADs sharing one network)."""
    return f"kubestack.{network_ns}.{network}"


def floating_service_name(fip: str) -> str:
    return _fit(f"fip-{fip}", 63)


def policy_name(group: str) -> str:
    return _fit(f"sg-{group}")


def mnp_name(group: str, nad: str) -> str:
    return _fit(f"sg-{group}.{nad}")


def split_ref(ref: str, default_ns: str) -> tuple[str, str]:
    """``name`` or ``namespace/name`` -> (namespace, name)."""
    if "/" in ref:
        ns, name = ref.split("/", 1)
        return ns, name
    return default_ns, ref

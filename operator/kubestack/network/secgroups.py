"""Policy sync of one namespace (effects): render every SecurityGroup of the namespace with
its current members and apply the difference to the NetworkPolicies and MultiNetworkPolicies
we own there. Idempotent and write-free when nothing changed; called on any change of a
SecurityGroup, a Port, a Server's groups or a NAD in the namespace."""

from __future__ import annotations

from kubernetes.client.rest import ApiException

from kubestack.api.securitygroup import SecurityGroup

from . import naming, policy
from .kube import Kube, owner_ref

MNP = ("k8s.cni.cncf.io", "v1beta1", "multi-networkpolicies")
NAD = ("k8s.cni.cncf.io", "v1", "network-attachment-definitions")
SELECTOR = f"{naming.LABEL_MANAGED}={naming.MANAGED_BY},{naming.LABEL_SECURITY_GROUP}"


def memberships(kube: Kube, ns: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(group -> member servers, group -> member fixed IPs) from Servers and Ports."""
    members: dict[str, set[str]] = {}
    ips: dict[str, set[str]] = {}
    for srv in kube.list_ours("servers", ns):
        name = srv["metadata"]["name"]
        if srv["metadata"].get("deletionTimestamp"):
            continue
        for g in (srv.get("spec") or {}).get("securityGroups", ["default"]):
            members.setdefault(g, set()).add(name)
    for port in kube.list_ours("ports", ns):
        spec = port.get("spec") or {}
        if not spec.get("portSecurityEnabled", True):
            continue
        device = spec.get("deviceId")
        for g in spec.get("securityGroups", ["default"]):
            if device:
                members.setdefault(g, set()).add(device)
            for f in spec.get("fixedIps") or []:
                if f.get("ipAddress"):
                    ips.setdefault(g, set()).add(f["ipAddress"])
    return ({g: sorted(v) for g, v in members.items()}, {g: sorted(v) for g, v in ips.items()})


def sync_namespace(api, ns: str) -> dict[str, list[str]]:
    """Apply the policies of every group in `ns`; returns group -> unsupported rule texts."""
    kube = Kube(api)
    groups = kube.list_ours("securitygroups", ns)
    members, ips = memberships(kube, ns)
    nads = [f"{ns}/{n['metadata']['name']}" for n in kube.list(*NAD, ns, f"{naming.LABEL_MANAGED}={naming.MANAGED_BY}")]
    want_np, want_mnp, unsupported = {}, {}, {}
    for body in groups:
        if body["metadata"].get("deletionTimestamp"):
            continue
        sg = SecurityGroup.from_k8s(body)
        name = body["metadata"]["name"]
        out = policy.render(ns, name, sg.spec.rules, members.get(name, []), members, ips, nads,
                            [owner_ref(body, controller=True)])
        unsupported[name] = out.unsupported
        if out.network_policy:
            want_np[out.network_policy["metadata"]["name"]] = out.network_policy
        for m in out.multi_network_policies:
            want_mnp[m["metadata"]["name"]] = m
    have_np = {p.metadata.name: kube.api.sanitize_for_serialization(p)
               for p in kube.net.list_namespaced_network_policy(ns, label_selector=SELECTOR).items}
    for name, body in want_np.items():
        cur = have_np.get(name)
        if cur is None:
            try:
                kube.net.create_namespaced_network_policy(ns, body, field_validation="Strict")
            except ApiException as exc:
                if exc.status != 409:
                    raise
        elif cur.get("spec") != body["spec"] or (cur["metadata"].get("labels") or {}) != body["metadata"]["labels"]:
            kube.net.patch_namespaced_network_policy(name, ns, {"metadata": {"labels": body["metadata"]["labels"]},
                                                                "spec": body["spec"]})
    for name in set(have_np) - set(want_np):
        _ignore_404(lambda: kube.net.delete_namespaced_network_policy(name, ns))
    have_mnp = {m["metadata"]["name"]: m for m in kube.list(*MNP, ns, SELECTOR)}
    for name, body in want_mnp.items():
        cur = have_mnp.get(name)
        if cur is None:
            kube.create(*MNP, ns, body)
        elif cur.get("spec") != body["spec"] or \
                (cur["metadata"].get("annotations") or {}).get(naming.POLICY_FOR) != \
                body["metadata"]["annotations"][naming.POLICY_FOR]:
            body = {**body, "metadata": {**body["metadata"],
                                         "resourceVersion": cur["metadata"]["resourceVersion"]}}
            kube.replace(*MNP, ns, name, body)
    for name in set(have_mnp) - set(want_mnp):
        kube.delete(*MNP, ns, name)
    return unsupported


def _ignore_404(fn) -> None:
    try:
        fn()
    except ApiException as exc:
        if exc.status != 404:
            raise

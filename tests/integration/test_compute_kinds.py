"""Flavor, KeyPair and ServerGroup controllers against the real API server, with the session's
operator and simulator."""

from __future__ import annotations

import base64
import hashlib
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kubernetes import client

from support.compute import (
    G, V, create_flavor, create_image, create_server, custom, events_for, events_with, get, server, wait_for, wait_status,
)


def md5_colons(blob: bytes) -> str:
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())


def create_keypair(cluster, namespace, name, **spec) -> dict:
    return custom(cluster).create_namespaced_custom_object(G, V, namespace, "keypairs", {
        "apiVersion": f"{G}/{V}", "kind": "KeyPair", "metadata": {"name": name}, "spec": spec})


def ready(obj) -> dict | None:
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"), None)


def settled_keypair(cluster, namespace, name) -> dict:
    def check():
        kp = get(cluster, namespace, "keypairs", name)
        cond = ready(kp)
        return kp if cond and cond.get("observedGeneration") == kp["metadata"]["generation"] else None
    return wait_for(check, what=f"key pair {name} settled")


def test_generated_keypair_secret_matches_status(cluster, kubestack, namespace):
    create_keypair(cluster, namespace, "gen")
    kp = settled_keypair(cluster, namespace, "gen")
    st = kp["status"]
    assert ready(kp)["status"] == "True"
    assert st["privateKeySecret"] == "gen-private-key"
    secret = client.CoreV1Api(cluster.api).read_namespaced_secret("gen-private-key", namespace)
    assert secret.type == "Opaque"
    owner = secret.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("KeyPair", "gen", kp["metadata"]["uid"])
    private = serialization.load_pem_private_key(base64.b64decode(secret.data["private_key"]), password=None)
    line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()
    assert st["publicKey"].split()[:2] == line.split()
    assert st["fingerprint"] == md5_colons(base64.b64decode(line.split()[1]))
    events_with(cluster, namespace, "gen", "Generated")


def test_imported_keypair_fingerprint(cluster, kubestack, namespace):
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    create_keypair(cluster, namespace, "imported", publicKey=f"{line} alice@laptop")
    kp = settled_keypair(cluster, namespace, "imported")
    assert ready(kp)["status"] == "True" and ready(kp)["reason"] == "Imported"
    assert kp["status"]["fingerprint"] == md5_colons(base64.b64decode(line.split()[1]))
    assert kp["status"]["publicKey"] == f"{line} alice@laptop"
    assert "privateKeySecret" not in kp["status"]


def test_invalid_keypair_has_a_clear_condition(cluster, kubestack, namespace):
    # well-formed enough for admission (the CRD's pattern), but the blob is an ed25519 key
    # announced as ssh-rsa
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(32)).decode()
    create_keypair(cluster, namespace, "bad", publicKey=f"ssh-rsa {blob} mallory")
    create_keypair(cluster, namespace, "badcert", type="x509",
                   publicKey="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    for name in ("bad", "badcert"):
        kp = settled_keypair(cluster, namespace, name)
        cond = ready(kp)
        assert cond["status"] == "False" and cond["reason"] == "InvalidKeypair"
        assert cond["message"].startswith("Keypair data is invalid: ")
        assert "fingerprint" not in kp["status"]
        warnings = [e for e in events_with(cluster, namespace, name, "InvalidKeypair") if e.type == "Warning"]
        assert warnings[0].reason == "InvalidKeypair"
    assert "line says 'ssh-rsa'" in ready(get(cluster, namespace, "keypairs", "bad"))["message"]


def test_flavor_ready_and_access_events(cluster, kubestack):
    name = create_flavor(cluster, vcpus=1, ram=512, isPublic=False, projects=["alpha"])

    def settled():
        f = custom(cluster).get_cluster_custom_object(G, V, "flavors", name)
        cond = ready(f)
        return f if cond and cond.get("observedGeneration") == f["metadata"]["generation"] else None

    f = wait_for(settled, what="flavor ready")
    assert f["status"]["observedGeneration"] == f["metadata"]["generation"]
    assert ready(f)["message"] == "Flavor is private; projects with access: alpha"
    custom(cluster).patch_cluster_custom_object(G, V, "flavors", name, {"spec": {"projects": ["beta", "alpha"]}})
    wait_for(lambda: (lambda f: f if f["status"]["observedGeneration"] == f["metadata"]["generation"] else None)(
        custom(cluster).get_cluster_custom_object(G, V, "flavors", name)), what="flavor re-observed")
    msgs = wait_for(lambda: [e.message for e in events_for(cluster, "default", name)
                             if e.reason == "FlavorAccessChanged"], what="access event")
    assert msgs == ["Flavor access list changed: added beta"]
    custom(cluster).delete_cluster_custom_object(G, V, "flavors", name)


def group_members(cluster, namespace, name, count):
    def check():
        g = get(cluster, namespace, "servergroups", name)
        st = (g or {}).get("status") or {}
        members = st.get("members") or []
        return g if st.get("memberCount") == count and all(m.get("host") for m in members) \
            and len(members) == count else None
    return wait_for(check, what=f"group {name} with {count} members")


def test_server_group_members_follow_servers(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, vcpus=1, ram=512)
    create_image(cluster, namespace)
    custom(cluster).create_namespaced_custom_object(G, V, namespace, "servergroups", {
        "apiVersion": f"{G}/{V}", "kind": "ServerGroup", "metadata": {"name": "spread"},
        "spec": {"policy": "anti-affinity"}})
    create_server(cluster, namespace, "a-1", flavor, serverGroup="spread")
    create_server(cluster, namespace, "a-2", flavor, schedulerHints={"group": "spread"})
    create_server(cluster, namespace, "loner", flavor)
    hosts = {n: wait_status(cluster, namespace, n, "ACTIVE")["status"]["host"] for n in ("a-1", "a-2")}
    group = group_members(cluster, namespace, "spread", 2)
    assert group["status"]["members"] == [{"name": "a-1", "host": hosts["a-1"]},
                                          {"name": "a-2", "host": hosts["a-2"]}]
    assert ready(group)["status"] == "True"
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "a-2")
    group = group_members(cluster, namespace, "spread", 1)
    assert [m["name"] for m in group["status"]["members"]] == ["a-1"]
    events_with(cluster, namespace, "spread", "MembersChanged")
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servergroups", "spread")
    warning = wait_for(lambda: [e for e in events_for(cluster, namespace, "spread")
                                if e.reason == "DeletedWithMembers"], what="delete warning")
    assert warning[0].type == "Warning" and "a-1" in warning[0].message
    assert server(cluster, namespace, "a-1") is not None


def test_unique_names_do_not_collide(cluster, kubestack, namespace):
    """A user's own Secret named like the generated one is never overwritten."""
    name = f"k{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(cluster.api).create_namespaced_secret(namespace, {
        "metadata": {"name": f"{name}-private-key"}, "stringData": {"private_key": "mine"}})
    create_keypair(cluster, namespace, name)
    kp = settled_keypair(cluster, namespace, name)
    assert ready(kp)["reason"] == "SecretConflict" and ready(kp)["status"] == "False"
    secret = client.CoreV1Api(cluster.api).read_namespaced_secret(f"{name}-private-key", namespace)
    assert base64.b64decode(secret.data["private_key"]) == b"mine"


def test_flavor_traits_place_servers_like_placement(cluster, kubestack, namespace):
    """`trait:<NAME>=required|forbidden` extra specs against `trait.kubestack.io/<NAME>` node
    labels: required lands on the labelled host, forbidden never does, and a trait no host has
    is a no-valid-host fault naming TraitsFilter."""
    core = client.CoreV1Api(cluster.api)
    trait = f"CUSTOM_T{uuid.uuid4().hex[:8].upper()}"
    label = f"trait.kubestack.io/{trait}"
    hosts = sorted(n.metadata.name for n in core.list_node(label_selector="kubestack.io/compute-host=true").items)
    gold = hosts[0]
    core.patch_node(gold, {"metadata": {"labels": {label: "true"}}})
    try:
        create_image(cluster, namespace)
        required = create_flavor(cluster, extraSpecs={f"trait:{trait}": "required"})
        forbidden = create_flavor(cluster, extraSpecs={f"trait:{trait}": "forbidden"})
        nowhere = create_flavor(cluster, extraSpecs={f"trait:{trait}X": "required"})
        create_server(cluster, namespace, "gold", required)
        for i in range(3):
            create_server(cluster, namespace, f"plain-{i}", forbidden)
        create_server(cluster, namespace, "nowhere", nowhere)
        assert wait_status(cluster, namespace, "gold", "ACTIVE")["status"]["host"] == gold
        for i in range(3):
            assert wait_status(cluster, namespace, f"plain-{i}", "ACTIVE")["status"]["host"] != gold
        fault = wait_status(cluster, namespace, "nowhere", "ERROR")["status"]["fault"]
        assert "Filter TraitsFilter returned 0 hosts" in fault["details"]
    finally:
        core.patch_node(gold, {"metadata": {"labels": {label: None}}})

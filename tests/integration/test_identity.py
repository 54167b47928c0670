"""Identity against the real API server: Projects realised as namespaces and RBAC, real
isolation between projects (impersonated users, never system:masters), usage in status that
survives an operator restart, and safe project deletion."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
import signal
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from support.access import forbidden


G, V = "kubestack.io", "v1alpha1"
WAIT = 60.0


def wait_for(what: str, check, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def operator(cluster, kubestack):
    """The session's operator (one per session: two would both act). The project ClusterRoles
    its RoleBindings point at are the chart's, installed with the session's cluster as
    `kubestack dev up` installs them (kubestack.devcluster.rbac)."""
    return kubestack


def uid() -> str:
    return uuid.uuid4().hex[:6]


def custom(api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def make_project(cluster, name: str, members=(), quotas=None, **spec) -> None:
    body = {"apiVersion": f"{G}/{V}", "kind": "Project", "metadata": {"name": name},
            "spec": {"members": list(members), **({"quotas": quotas} if quotas else {}), **spec}}
    custom(cluster.api).create_cluster_custom_object(G, V, "projects", body)


def project(cluster, name: str) -> dict | None:
    try:
        return custom(cluster.api).get_cluster_custom_object(G, V, "projects", name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def wait_active(cluster, name: str) -> dict:
    def ready():
        p = project(cluster, name) or {}
        status = p.get("status") or {}
        return p if status.get("phase") == "Active" and status.get("usage") is not None else None
    return wait_for(f"project {name} Active", ready)


def keypair(name: str) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "KeyPair", "metadata": {"name": name}, "spec": {}}


def volume(name: str, size: int) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "Volume", "metadata": {"name": name}, "spec": {"size": size}}


def test_project_is_realised_as_namespace_bindings_quota_and_default_group(cluster, operator):
    a, parent = f"proj-{uid()}", f"org-{uid()}"
    make_project(cluster, parent)
    make_project(cluster, a, parent=parent, members=[
        {"user": "alice", "role": "admin"}, {"group": "devs", "role": "member"}],
        quotas={"volumes": 4, "instances": 2, "images": 1, "snapshots": 3})
    p = wait_active(cluster, a)
    assert p["status"]["namespace"] == a
    assert p["status"]["usage"]["securityGroups"] == 1  # the default group counts, as in Neutron
    core = client.CoreV1Api(cluster.api)
    ns = core.read_namespace(a)
    assert ns.metadata.labels["kubestack.io/project"] == a
    assert ns.metadata.labels["kubestack.io/parent"] == parent
    assert not ns.metadata.owner_references  # deleting the Project never GCs its data
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    admin = rbac.read_namespaced_role_binding("kubestack-project-admin", a)
    assert admin.role_ref.name == "kubestack-project-admin"
    assert [(s.kind, s.name) for s in admin.subjects] == [("User", "alice")]
    member = rbac.read_namespaced_role_binding("kubestack-project-member", a)
    assert [(s.kind, s.name) for s in member.subjects] == [("Group", "devs")]
    quota = core.read_namespaced_resource_quota("kubestack-quota", a)
    assert quota.spec.hard["persistentvolumeclaims"] == "7"
    assert quota.spec.hard["count/volumesnapshots.snapshot.storage.k8s.io"] == "3"
    assert quota.spec.hard["count/images.kubestack.io"] == "1"
    assert quota.status.hard == quota.spec.hard  # ACTIVE only once Kubernetes counts it
    sg = custom(cluster.api).get_namespaced_custom_object(G, V, a, "securitygroups", "default")
    assert len(sg["spec"]["rules"]) == 4

    # a role change is reflected in the bindings; a disabled project binds nobody
    body = project(cluster, a)
    body["spec"]["members"] = [{"user": "alice", "role": "admin"}, {"user": "carol", "role": "reader"}]
    custom(cluster.api).replace_cluster_custom_object(G, V, "projects", a, body)
    wait_for("member binding removed", lambda: _binding_gone(rbac, a, "member"))
    reader = wait_for("reader binding", lambda: _binding(rbac, a, "reader"))
    assert [s.name for s in reader.subjects] == ["carol"]
    custom(cluster.api).patch_cluster_custom_object(G, V, "projects", a, {"spec": {"enabled": False}})
    wait_for("disabled", lambda: (project(cluster, a)["status"] or {}).get("phase") == "Disabled")
    assert _binding_gone(rbac, a, "admin") and _binding_gone(rbac, a, "reader")


def _binding(rbac, ns, role):
    try:
        return rbac.read_namespaced_role_binding(f"kubestack-project-{role}", ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _binding_gone(rbac, ns, role) -> bool:
    return _binding(rbac, ns, role) is None


def test_per_object_quotas_are_enforced_at_admission(cluster, operator):
    """Key pairs, networks, security groups ... (Nova's and Neutron's per-object quotas) are
    counted by Kubernetes' quota admission: the create over the limit is refused, race-free."""
    name = f"q-{uid()}"
    make_project(cluster, name, members=[{"user": "quinn", "role": "member"}],
                 quotas={"keyPairs": 2, "securityGroups": 1})  # the default group takes the one
    wait_active(cluster, name)
    quinn = custom(cluster.impersonate("quinn"))

    def create(i):
        try:
            quinn.create_namespaced_custom_object(G, V, name, "keypairs", keypair(f"k{i}"))
            return None
        except ApiException as exc:
            return exc

    with ThreadPoolExecutor(6) as pool:  # six racing for two slots
        results = list(pool.map(create, range(6)))
    refused = [r for r in results if r is not None]
    assert len(refused) == 4 and all(r.status == 403 and "exceeded quota" in r.body for r in refused)
    assert len(quinn.list_namespaced_custom_object(G, V, name, "keypairs")["items"]) == 2
    with pytest.raises(ApiException) as exc:
        quinn.create_namespaced_custom_object(G, V, name, "securitygroups", {
            "apiVersion": f"{G}/{V}", "kind": "SecurityGroup", "metadata": {"name": "web"}, "spec": {}})
    assert exc.value.status == 403 and "count/securitygroups.kubestack.io" in exc.value.body
    # a higher quota admits it
    custom(cluster.api).patch_cluster_custom_object(G, V, "projects", name,
                                                    {"spec": {"quotas": {"securityGroups": 2}}})
    wait_for("quota raised", lambda: forbidden_not(lambda: quinn.create_namespaced_custom_object(
        G, V, name, "securitygroups", {"apiVersion": f"{G}/{V}", "kind": "SecurityGroup",
                                       "metadata": {"name": "web"}, "spec": {}})))


def forbidden_not(call) -> bool:
    """True once `call` goes through (it is refused while the quota is not raised yet)."""
    return not forbidden(call)


def test_tenant_isolation_with_real_rbac(cluster, operator):
    a, b = f"a-{uid()}", f"b-{uid()}"
    make_project(cluster, a, members=[{"user": "alice", "role": "member"}, {"user": "rita", "role": "reader"},
                                      {"user": "adam", "role": "admin"}])
    make_project(cluster, b, members=[{"user": "bob", "role": "member"}])
    wait_active(cluster, a)
    wait_active(cluster, b)
    custom(cluster.api).create_namespaced_custom_object(G, V, b, "keypairs", keypair("bobs-key"))

    alice = custom(cluster.impersonate("alice"))
    rita = custom(cluster.impersonate("rita"))
    adam = custom(cluster.impersonate("adam"))
    # the operator writes phase Active only after the bindings exist, so alice can act at once
    alice.create_namespaced_custom_object(G, V, a, "keypairs", keypair("alices-key"))
    assert alice.list_namespaced_custom_object(G, V, a, "keypairs")["items"]

    for who in (alice, adam, rita):
        assert forbidden(lambda: who.get_namespaced_custom_object(G, V, b, "keypairs", "bobs-key"))
        assert forbidden(lambda: who.list_namespaced_custom_object(G, V, b, "keypairs"))
        assert forbidden(lambda: who.list_namespaced_custom_object(G, V, b, "keypairs", watch=True,
                                                                   timeout_seconds=1))
        assert forbidden(lambda: who.patch_namespaced_custom_object(
            G, V, b, "keypairs", "bobs-key", {"metadata": {"labels": {"x": "y"}}}))
        assert forbidden(lambda: who.delete_namespaced_custom_object(G, V, b, "keypairs", "bobs-key"))
        assert forbidden(lambda: who.create_namespaced_custom_object(G, V, b, "keypairs", keypair("intruder")))
        assert forbidden(lambda: who.list_cluster_custom_object(G, V, "keypairs"))
        assert forbidden(lambda: who.get_cluster_custom_object(G, V, "projects", b))
        assert forbidden(lambda: who.patch_cluster_custom_object(
            G, V, "projects", b, {"spec": {"quotas": {"cores": 1000}}}))

    # a reader reads but cannot create, change or delete
    assert rita.get_namespaced_custom_object(G, V, a, "keypairs", "alices-key")
    assert forbidden(lambda: rita.create_namespaced_custom_object(G, V, a, "keypairs", keypair("r")))
    assert forbidden(lambda: rita.delete_namespaced_custom_object(G, V, a, "keypairs", "alices-key"))
    # a member cannot change the project's quotas or members; its admin can, for A only
    assert alice.get_cluster_custom_object(G, V, "projects", a)["metadata"]["name"] == a
    assert forbidden(lambda: alice.patch_cluster_custom_object(
        G, V, "projects", a, {"spec": {"quotas": {"cores": 1000}}}))
    adam.patch_cluster_custom_object(G, V, "projects", a, {"spec": {"quotas": {"cores": 40}}})
    assert project(cluster, a)["spec"]["quotas"]["cores"] == 40
    # nobody of a project writes status (usage) or PVCs, nor creates role bindings directly
    assert forbidden(lambda: adam.patch_cluster_custom_object_status(
        G, V, "projects", a, {"status": {"usage": {"cores": 0}}}))
    assert forbidden(lambda: client.RbacAuthorizationV1Api(cluster.impersonate("adam")).create_namespaced_role_binding(
        a, {"metadata": {"name": "sneaky"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                        "kind": "ClusterRole", "name": "kubestack-project-admin"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory"}]}))
    assert forbidden(lambda: client.CoreV1Api(cluster.impersonate("alice")).create_namespaced_persistent_volume_claim(
        a, {"metadata": {"name": "p"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                 "resources": {"requests": {"storage": "1Gi"}}}}))
    # cluster-wide kinds are the platform team's
    assert forbidden(lambda: adam.create_cluster_custom_object(G, V, "flavors", {
        "apiVersion": f"{G}/{V}", "kind": "Flavor", "metadata": {"name": "huge"}, "spec": {"vcpus": 64, "ram": 1024}}))
    assert forbidden(lambda: adam.create_cluster_custom_object(G, V, "projects", {
        "apiVersion": f"{G}/{V}", "kind": "Project", "metadata": {"name": f"x-{uid()}"}}))


def test_usage_in_status_is_true_after_restarts(cluster, operator):
    name = f"use-{uid()}"
    make_project(cluster, name, quotas={"volumes": 5, "gigabytes": 50})
    wait_active(cluster, name)
    api = custom(cluster.api)
    for i, size in enumerate((10, 20, 5)):
        api.create_namespaced_custom_object(G, V, name, "volumes", volume(f"v{i}", size))
    api.create_namespaced_custom_object(G, V, name, "keypairs", keypair("k"))

    def usage_is(volumes, gigabytes, keypairs):
        def check():
            u = (project(cluster, name).get("status") or {}).get("usage") or {}
            return (u.get("volumes"), u.get("gigabytes"), u.get("keyPairs")) == (volumes, gigabytes, keypairs)
        return check

    wait_for("usage counted", usage_is(3, 35, 1))
    operator.restart_operator(signal.SIGTERM)
    operator.operator.wait_for_log(r"quota ledger rebuilt for \d+ projects")
    # changed while the operator was down: usage follows the cluster after the restart
    assert operator.stop_operator() == 0
    api.delete_namespaced_custom_object(G, V, name, "keypairs", "k")
    api.create_namespaced_custom_object(G, V, name, "volumes", volume("v3", 7))
    operator.start_operator()
    wait_for("usage recounted after restart", usage_is(4, 42, 0))


def test_deletion_is_refused_while_non_empty_and_cascade_leaves_nothing(cluster, operator):
    name = f"del-{uid()}"
    make_project(cluster, name, members=[{"user": "dora", "role": "admin"}])
    wait_active(cluster, name)
    api = custom(cluster.api)
    api.create_namespaced_custom_object(G, V, name, "keypairs", keypair("k1"))
    api.create_namespaced_custom_object(G, V, name, "keypairs", keypair("k2"))
    api.delete_cluster_custom_object(G, V, "projects", name)

    blocked = wait_for("deletion blocked", lambda: (project(cluster, name).get("status") or {}).get("reason"))
    assert blocked.startswith(f"Project {name} still holds 2 key pairs")
    assert project(cluster, name)["status"]["phase"] == "Terminating"
    core = client.CoreV1Api(cluster.api)
    assert core.read_namespace(name).status.phase == "Active"
    assert len(api.list_namespaced_custom_object(G, V, name, "keypairs")["items"]) == 2
    # Events are posted asynchronously: the Warning may land a moment after the status
    wait_for("DeletionBlocked Event", lambda: any(
        e.reason == "DeletionBlocked" and e.type == "Warning"
        for e in core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items))

    api.patch_cluster_custom_object(G, V, "projects", name, {"spec": {"cascadeDelete": True}})
    wait_for("project gone", lambda: project(cluster, name) is None, timeout=120)
    wait_for("namespace gone", lambda: _namespace_gone(core, name), timeout=120)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    names = {r.metadata.name for r in rbac.list_cluster_role().items} | \
        {r.metadata.name for r in rbac.list_cluster_role_binding().items}
    assert not [n for n in names if f":{name}:" in n]


def test_deleting_an_empty_project_removes_its_namespace(cluster, operator):
    name = f"empty-{uid()}"
    make_project(cluster, name)
    wait_active(cluster, name)
    custom(cluster.api).delete_cluster_custom_object(G, V, "projects", name)
    core = client.CoreV1Api(cluster.api)
    wait_for("project gone", lambda: project(cluster, name) is None, timeout=120)
    wait_for("namespace gone", lambda: _namespace_gone(core, name), timeout=120)


def _namespace_gone(core, name) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as exc:
        return exc.status == 404
    return False


def test_cli_project_quota_role(cluster, operator, capsys):
    from kubestack.cli import main

    name = f"cli-{uid()}"
    kc = str(cluster.kubeconfig)
    assert main(["project", "create", name, "--description", "From the CLI", "--kubeconfig", kc]) == 0
    assert "From the CLI" in capsys.readouterr().out
    wait_active(cluster, name)
    assert main(["role", "add", "--user", "erin", "--project", name, "member", "--kubeconfig", kc]) == 0
    assert main(["quota", "set", "--cores", "8", "--instances", "3", name, "--kubeconfig", kc]) == 0
    capsys.readouterr()
    assert main(["project", "list", "--kubeconfig", kc]) == 0
    assert name in capsys.readouterr().out
    assert main(["project", "show", name, "--kubeconfig", kc]) == 0
    out = capsys.readouterr().out
    assert "erin=member" in out and "| enabled" in out
    assert main(["quota", "show", "--project", name, "--kubeconfig", kc]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| cores\s+\| 8\s+\| 0\s+\|", out)
    assert re.search(r"\| instances\s+\| 3\s+\|", out)
    assert main(["role", "assignment", "list", "--project", name, "--kubeconfig", kc]) == 0
    assert re.search(r"\| member\s+\| erin\s+\|", capsys.readouterr().out)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    wait_for("erin bound", lambda: (_binding(rbac, name, "member") or None))
    assert main(["role", "remove", "--user", "erin", "--project", name, "member", "--kubeconfig", kc]) == 0
    wait_for("erin unbound", lambda: _binding_gone(rbac, name, "member"))
    assert main(["project", "delete", name, "--kubeconfig", kc]) == 0
    wait_for("project gone", lambda: project(cluster, name) is None, timeout=120)

"""Usage counting, deletion blockers, and the objects a Project is realised as."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kubestack.api.project import Project
from kubestack.identity import rbac
from kubestack.identity.usage import blockers, count, describe_blockers, flavor_numbers, holder_key, undecided

REPO_ROOT = Path(__file__).resolve().parents[3]


def obj(name, ns="a", spec=None, status=None, labels=None):
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": spec or {}, "status": status or {}}


FLAVORS = {"m1.small": {"vcpus": 1, "ram": 2048}, "m1.large": {"vcpus": 4, "ram": 8192}}


def test_count_servers_volumes_and_the_rest():
    objects = {
        "servers": [
            obj("snap", spec={"flavor": "m1.small"}, status={"flavor": {"vcpus": 2, "ram": 4096}}),
            obj("resizing", spec={"flavor": "m1.large"},
                status={"flavor": {"vcpus": 1, "ram": 2048}, "resize": {"newFlavor": "m1.large"}}),
            # not admitted yet (no claim recorded): holds nothing, whatever its flavor
            obj("noflavor", spec={"flavor": "m1.large"}, status={"status": "BUILD"}),
            obj("refused", spec={"flavor": "m1.large"}, status={"status": "ERROR", "fault": {
                "code": 403, "message": "Quota exceeded for cores: Requested 4, but already used 10 of 12 cores"}}),
            obj("missing", spec={"flavor": "gone"}),
        ],
        "volumes": [obj("v1", spec={"size": 10}, status={"pvc": "v1-volume"}),
                    obj("v2", spec={"size": 5}, status={"size": 8, "pvc": "v2-volume"}),
                    obj("new", spec={"size": 100})],  # its controller has not reserved it yet
        "networks": [obj("n", spec={"subnets": [{"name": "s1"}, {"name": "s2"}]})],
        "securitygroups": [obj("default", spec={"rules": [{}, {}, {}, {}]})],
        "keypairs": [obj("k")], "floatingips": [obj("f")], "ports": [obj("p1"), obj("p2")],
        "images": [obj("i")], "servergroups": [obj("g")], "routers": [obj("r")],
        "volumesnapshots": [obj("snap1")],
    }
    usage, holders = count(objects, FLAVORS)
    assert usage["instances"] == 2 and usage["cores"] == 6 and usage["ram"] == 12288
    assert usage["volumes"] == 2 and usage["gigabytes"] == 18
    assert (usage["networks"], usage["subnets"], usage["securityGroups"], usage["securityGroupRules"]) == (1, 2, 1, 4)
    assert (usage["keyPairs"], usage["floatingIps"], usage["ports"], usage["images"]) == (1, 1, 2, 1)
    assert (usage["serverGroups"], usage["routers"], usage["snapshots"]) == (1, 1, 1)
    assert holders[holder_key("Server", "a", "snap")] == {"instances": 1, "cores": 2, "ram": 4096}
    assert "server/a/refused" not in holders and "server/a/noflavor" not in holders
    assert "volume/a/new" not in holders
    assert undecided(objects) == {"server/a/noflavor", "server/a/refused", "server/a/missing", "volume/a/new"}
    assert holders["volume/a/v2"] == {"volumes": 1, "gigabytes": 8}
    assert usage.keys() >= {"instances", "cores", "ram", "volumes", "gigabytes", "floatingIps"}


def test_a_volume_whose_delete_released_its_quota_is_not_counted_again():
    """A recount may list a volume between its delete handler's release and its disappearance:
    status deleting (written before the release) says the quota is back."""
    going = obj("going", spec={"size": 4}, status={"status": "deleting"})
    going["metadata"]["deletionTimestamp"] = "2026-11-28T14:13:19Z"
    refused_delete = obj("attached", spec={"size": 2}, status={"status": "in-use", "pvc": "attached-volume"})
    refused_delete["metadata"]["deletionTimestamp"] = "2026-11-28T14:13:19Z"  # held: still uses quota
    usage, holders = count({"volumes": [going, refused_delete]}, FLAVORS)
    assert (usage["volumes"], usage["gigabytes"]) == (1, 2) and "volume/a/going" not in holders


def test_unconfirmed_resize_counts_the_new_flavor():
    server = obj("s", spec={"flavor": "m1.large"},
                 status={"flavor": {"vcpus": 1, "ram": 2048}, "resize": {"newFlavor": "m1.large"}})
    assert flavor_numbers(server, FLAVORS) == (4, 8192)


def test_blockers_ignore_the_projects_own_objects():
    managed = {"kubestack.io/managed-by": "project-controller"}
    found = blockers({"securitygroups": [obj("default", labels=managed)],
                      "servers": [obj("a"), obj("b")], "volumes": [obj("v")],
                      "persistentvolumeclaims": [obj("root")], "floatingips": [obj("f")]})
    assert found == {"servers": 2, "volumes": 1, "persistentvolumeclaims": 1, "floatingips": 1}
    assert describe_blockers("demo", found) == (
        "Project demo still holds 2 servers, 1 volume, 1 persistent volume claim, 1 floating IP; "
        "delete them first or set spec.cascadeDelete to delete them with the project")
    assert blockers({"securitygroups": [obj("default", labels=managed)]}) == {}


def test_role_bindings_per_role_and_none_when_disabled():
    members = [{"user": "alice", "role": "admin"}, {"user": "bob", "role": "member"},
               {"group": "auditors", "role": "reader"}, {"user": "bob", "role": "member"}]
    out = rbac.role_bindings("demo", members, enabled=True)
    assert set(out) == {"kubestack-project-admin", "kubestack-project-member", "kubestack-project-reader"}
    member = out["kubestack-project-member"]
    assert member["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": "kubestack-project-member"}
    assert member["subjects"] == [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]
    assert out["kubestack-project-reader"]["subjects"][0]["kind"] == "Group"
    assert all(v is None for v in rbac.role_bindings("demo", members, enabled=False).values())
    assert rbac.role_bindings("demo", [{"user": "x", "role": "admin"}], True)["kubestack-project-member"] is None


def test_per_project_cluster_roles():
    owner = {"apiVersion": "kubestack.io/v1alpha1", "kind": "Project", "name": "demo", "uid": "u"}
    members = [{"user": "alice", "role": "admin"}, {"user": "bob", "role": "reader"}]
    (viewer, vb), (admin, ab) = rbac.project_cluster_roles("demo", members, True, owner)
    assert viewer["metadata"]["name"] == "kubestack:project:demo:viewer"
    assert viewer["rules"][0]["resourceNames"] == ["demo"]
    assert "update" not in viewer["rules"][0]["verbs"]
    assert [s["name"] for s in vb["subjects"]] == ["alice", "bob"]
    assert admin["rules"][0]["verbs"] == ["get", "watch", "update", "patch"]
    assert [s["name"] for s in ab["subjects"]] == ["alice"]
    (_, vb), (_, ab) = rbac.project_cluster_roles("demo", [{"user": "bob", "role": "member"}], True, owner)
    assert ab is None and vb is not None


def test_resource_quota_backstop():
    quotas = Project.from_k8s({"spec": {"quotas": {"volumes": 5, "instances": 3, "images": 2,
                                                   "snapshots": 4}}}).spec.quotas.to_k8s()
    hard = rbac.quota_hard(quotas)
    assert hard["persistentvolumeclaims"] == "10"
    assert hard["count/volumesnapshots.snapshot.storage.k8s.io"] == "4"
    # per-object quotas Kubernetes counts at admission (OpenStack's defaults where not set)
    assert {k: v for k, v in hard.items() if k.endswith(".kubestack.io")} == {
        "count/networks.kubestack.io": "100", "count/ports.kubestack.io": "500",
        "count/routers.kubestack.io": "10", "count/floatingips.kubestack.io": "50",
        "count/securitygroups.kubestack.io": "10", "count/keypairs.kubestack.io": "100",
        "count/servergroups.kubestack.io": "10", "count/images.kubestack.io": "2"}
    defaults = Project.from_k8s({"spec": {}}).spec.quotas.to_k8s()
    assert "persistentvolumeclaims" not in rbac.quota_hard(defaults)  # images unlimited by default
    assert "count/images.kubestack.io" not in rbac.quota_hard(defaults)
    assert "requests.storage" not in rbac.quota_hard(quotas)


def test_namespace_and_labels_patch():
    ns = rbac.namespace("child", "parent")
    assert ns["metadata"]["labels"] == {"kubestack.io/project": "child", "kubestack.io/parent": "parent"}
    assert rbac.namespace_labels_patch("child", "parent", ns["metadata"]["labels"]) is None
    assert rbac.namespace_labels_patch("child", None, ns["metadata"]["labels"]) == {
        "metadata": {"labels": {"kubestack.io/parent": None}}}
    assert rbac.namespace_labels_patch("p", None, {}) == {"metadata": {"labels": {"kubestack.io/project": "p"}}}


def test_default_security_group_is_a_valid_securitygroup():
    from kubestack.api.securitygroup import SecurityGroup

    sg = SecurityGroup.from_k8s(rbac.default_security_group("demo"))
    directions = [(r.direction.value, r.ethertype.value, r.remote_group) for r in sg.spec.rules]
    assert directions == [("egress", "IPv4", None), ("egress", "IPv6", None),
                          ("ingress", "IPv4", "default"), ("ingress", "IPv6", "default")]


def render_project_roles() -> list[dict]:
    """The chart's project ClusterRoles, rendered for the constructs that file uses."""
    text = (REPO_ROOT / "charts/kubestack/templates/rbac-project-roles.yaml").read_text()
    kinds = re.search(r'\$tenantKinds := list ((?:"[a-z]+" ?)+)', text).group(1)
    kinds_json = "[" + ", ".join(re.findall(r'"[a-z]+"', kinds)) + "]"
    text = re.sub(r"\{\{- \$tenantKinds.*\}\}\n", "", text)
    text = text.replace("{{ toJson $tenantKinds }}", kinds_json)
    text = re.sub(r'\{\{- include "kubestack.labels" \. \| nindent 4 \}\}', "{}", text)
    assert "{{" not in text
    return [d for d in yaml.safe_load_all(text) if d]


def test_chart_roles_cover_the_tenant_kinds():
    roles = {r["metadata"]["name"]: r for r in render_project_roles()}
    assert set(roles) == {rbac.cluster_role_name(r) for r in rbac.ROLES}
    for name, role in roles.items():
        kubestack_rule = next(r for r in role["rules"] if r["apiGroups"] == ["kubestack.io"])
        assert set(kubestack_rule["resources"]) == set(rbac.TENANT_KINDS)
        writes = {"create", "update", "patch", "delete"} & set(kubestack_rule["verbs"])
        assert bool(writes) == (name != "kubestack-project-reader")
        # no role writes status, PVCs or role bindings: those are the operator's
        for rule in role["rules"]:
            assert not any(res.endswith("/status") for res in rule["resources"])
            if rule["apiGroups"] in ([""], ["rbac.authorization.k8s.io"]):
                assert set(rule["verbs"]) <= {"get", "list", "watch"}

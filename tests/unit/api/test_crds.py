"""The CRDs in crds/ are exactly what the models generate, and every one is structural."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubestack.api import crdgen
from kubestack.api.registry import ALL_KINDS
from kubestack.api.schema import structural_problems, walk

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"


def load(info):
    """The kind's CRD (its file may go on with the kind's deletion policy)."""
    return next(yaml.safe_load_all((CRDS / crdgen.file_name(info)).read_text()))


def test_deletion_rules_become_a_denying_policy_on_delete_only():
    image = next(i for i in ALL_KINDS if i.kind == "Image")
    policy, binding = list(yaml.safe_load_all((CRDS / crdgen.file_name(image)).read_text()))[1:]
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [{"apiGroups": ["kubestack.io"], "apiVersions": ["v1alpha1"],
                      "operations": ["DELETE"], "resources": ["images"]}]
    assert "oldObject.spec.protected" in policy["spec"]["validations"][0]["expression"]
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert all(len(list(yaml.safe_load_all((CRDS / crdgen.file_name(i)).read_text()))) == 1
               for i in ALL_KINDS if not i.deletion_rules)


def test_committed_crds_match_the_models():
    problems = crdgen.differences(CRDS)
    assert not problems, (
        "crds/ drifted from operator/kubestack/api (run `python -m kubestack.api.crdgen`):\n"
        + "\n".join(problems))


def test_check_mode_reports_drift(tmp_path, capsys):
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 0
    victim = tmp_path / crdgen.file_name(ALL_KINDS[0])
    victim.write_text(victim.read_text().replace("kubestack", "openstack", 1))
    (tmp_path / "leftovers.kubestack.io.yaml").write_text("{}\n")
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert victim.name in out and "stale" in out


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_crd_is_structural(info):
    crd = load(info)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert structural_problems(schema) == []
    text = (CRDS / crdgen.file_name(info)).read_text()
    assert "$ref" not in text and "anyOf" not in text and "nullable" not in text


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_crd_names_and_subresources(info):
    crd = load(info)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{info.plural}.kubestack.io"
    assert spec["group"] == "kubestack.io"
    assert spec["scope"] == info.scope.value
    assert "kubestack" in spec["names"]["categories"]
    assert spec["names"]["shortNames"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"conditions", "observedGeneration"} <= set(status)


def test_names_are_unique_including_third_party():
    seen: dict[str, str] = {}
    third_party = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "hack" / "crds").glob("*.yaml"))]
    names = [(i.kind, [i.plural, i.singular, *i.short_names]) for i in ALL_KINDS]
    names += [(c["spec"]["names"]["kind"], [c["spec"]["names"]["plural"],
                                            *c["spec"]["names"].get("shortNames", [])])
              for c in third_party if c and c.get("kind") == "CustomResourceDefinition"]
    for kind, words in names:
        for w in words:
            assert seen.setdefault(w, kind) == kind, f"{w!r} used by {seen[w]} and {kind}"


def _schema_at(schema: dict, json_path: str) -> dict | None:
    node = schema
    for part in json_path.lstrip(".").split("."):
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
    return node


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_printer_columns_point_at_fields(info):
    crd = load(info)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for col in version["additionalPrinterColumns"]:
        if col["jsonPath"] == ".metadata.creationTimestamp":
            continue
        node = _schema_at(schema, col["jsonPath"])
        assert node is not None, f"{col['name']}: {col['jsonPath']} is not in the schema"
        expected = {"string": "string", "integer": "integer", "boolean": "boolean",
                    "date": "string", "number": "number"}[col["type"]]
        assert node.get("type") == expected, col


def test_server_columns_read_like_openstack_server_list():
    info = next(i for i in ALL_KINDS if i.kind == "Server")
    names = [c.name for c in info.printer_columns if c.priority == 0]
    assert names == ["Status", "Networks", "Image", "Flavor", "Host", "Age"]


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_cel_rules_have_messages_and_bounded_inputs(info):
    schema = load(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        for r in node.get("x-kubernetes-validations", []):
            assert r.get("message"), f"{path}: rule {r['rule']} has no message"
        if node.get("type") == "array" and path.startswith(".spec"):
            assert "maxItems" in node, f"{path}: spec lists need maxItems (CEL cost)"
        if node.get("type") == "object" and "additionalProperties" in node \
                and path.startswith(".spec"):
            assert "maxProperties" in node, f"{path}: spec maps need maxProperties"

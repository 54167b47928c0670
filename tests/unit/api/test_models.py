"""Every example in examples/ parses into its model, round-trips, and validates against
the generated CRD schema (everything but CEL); model helpers behave."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kubestack.api import crdgen
from kubestack.api.common import ConditionStatus
from kubestack.api.flavor import FlavorSpec
from kubestack.api.network import Subnet
from kubestack.api.project import ProjectSpec
from kubestack.api.registry import ALL_KINDS, BY_KIND
from kubestack.api.server import Server, ServerSpec, ServerState, ServerStatus
from kubestack.api.stack import StackSpec

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"


def example(info):
    return yaml.safe_load((EXAMPLES / f"{info.kind.lower()}.yaml").read_text())


def test_every_kind_has_exactly_one_example():
    files = {p.stem for p in EXAMPLES.glob("*.yaml")}
    assert files == {i.kind.lower() for i in ALL_KINDS}


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_example_round_trips(info):
    raw = example(info)
    assert raw["apiVersion"] == "kubestack.io/v1alpha1" and raw["kind"] == info.kind
    model = info.resource_model.from_k8s(raw)
    assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == raw
    again = info.resource_model.from_k8s(model.to_k8s())
    assert again == model
    spec = info.spec_model.model_validate(raw.get("spec", {}))
    assert spec == model.spec


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_example_matches_crd_schema(info):
    schema = crdgen.crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.Draft4Validator(schema).validate(example(info))
    # and the fully defaulted form the operator writes back is valid too
    jsonschema.Draft4Validator(schema).validate(info.resource_model.from_k8s(example(info)).to_k8s())


def test_from_k8s_tolerates_unknown_and_missing_status():
    raw = example(BY_KIND["Server"])
    raw["metadata"].update({"uid": "u1", "resourceVersion": "7", "managedFields": [{}]})
    raw["status"] = {"status": "ACTIVE", "host": "node-1", "someFutureField": {"x": 1},
                     "conditions": [{"type": "Ready", "status": "True", "extra": 1,
                                     "lastTransitionTime": "2025-01-02T03:04:05Z"}]}
    server = Server.from_k8s(raw)
    assert server.status.status == ServerState.ACTIVE
    assert server.status.is_ready()
    assert server.metadata.uid == "u1"
    raw["status"] = None
    assert Server.from_k8s(raw).status.status is None


def test_status_patch_is_camel_case_without_nones():
    status = ServerStatus(status=ServerState.BUILD, task_state="scheduling",
                          last_reboot_request_id="r1", observed_generation=3)
    assert status.to_k8s() == {"status": "BUILD", "taskState": "scheduling",
                               "lastRebootRequestId": "r1", "observedGeneration": 3,
                               "conditions": [], "addresses": {}}
    assert ServerStatus.model_validate(status.to_k8s()) == status


def test_snake_case_and_camel_case_both_parse():
    a = ServerSpec.model_validate({"flavor": "m1", "image": "cirros", "keyName": "k"})
    b = ServerSpec(flavor="m1", image="cirros", key_name="k")
    assert a == b
    assert a.security_groups == ["default"]
    assert ServerSpec(flavor="m1", image="x").security_groups is not a.security_groups


@pytest.mark.parametrize("bad", [
    {"flavor": "m1", "image": "cirros", "networks": [{"network": "n", "fixedIp": "10.0.0.300"}]},
    {"flavor": "m1", "image": "cirros", "powerState": "Off"},
    {"flavor": "M1 Large", "image": "cirros"},
    {"flavor": "m1", "image": "cirros", "minCount": 0},
    {"flavor": "m1", "image": "cirros", "userData": "x" * 70000},
])
def test_python_side_rejects_what_the_schema_rejects(bad):
    with pytest.raises(ValidationError):
        ServerSpec.model_validate(bad)


def test_subnet_gateway():
    assert Subnet(name="a", cidr="10.0.0.0/24").gateway() == "10.0.0.1"
    assert Subnet(name="a", cidr="10.0.0.0/24", gateway_ip="auto").gateway() == "10.0.0.1"
    assert Subnet(name="a", cidr="10.0.0.0/24", gateway_ip="none").gateway() is None
    assert Subnet(name="a", cidr="10.0.0.0/24", gateway_ip="10.0.0.254").gateway() == "10.0.0.254"
    assert Subnet(name="b", cidr="fd00::/64", ip_version=6).gateway() == "fd00::1"
    with pytest.raises(ValidationError):
        Subnet(name="a", cidr="10.0.0.0/33")


def test_project_quota_defaults_are_openstacks():
    q = ProjectSpec().quotas
    assert (q.instances, q.cores, q.ram, q.volumes, q.gigabytes) == (10, 20, 51200, 10, 1000)
    assert (q.floating_ips, q.security_groups, q.key_pairs) == (50, 10, 100)


def test_stack_template_is_free_form():
    spec = StackSpec.model_validate({"template": {"heat_template_version": "wallaby",
                                                  "resources": {"r": {"type": "OS::Heat::None"}}},
                                     "parameters": {"n": "3"}})
    assert spec.template["resources"]["r"]["type"] == "OS::Heat::None"
    assert spec.to_k8s()["template"]["heat_template_version"] == "wallaby"


def test_condition_status_values():
    assert [c.value for c in ConditionStatus] == ["True", "False", "Unknown"]


@settings(max_examples=60, deadline=None)
@given(vcpus=st.integers(1, 4096), ram=st.integers(1, 2**31 - 1), disk=st.integers(0, 10**6),
       public=st.booleans(),
       specs=st.dictionaries(st.from_regex(r"[a-z_:]{1,20}", fullmatch=True),
                             st.text(max_size=20), max_size=5))
def test_flavor_round_trip_and_schema(vcpus, ram, disk, public, specs):
    spec = FlavorSpec(vcpus=vcpus, ram=ram, disk=disk, is_public=public, extra_specs=specs,
                      projects=[] if public else ["demo"])
    wire = spec.to_k8s()
    assert FlavorSpec.model_validate(wire) == spec
    schema = crdgen.crd(BY_KIND["Flavor"])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.Draft4Validator(schema["properties"]["spec"]).validate(wire)


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_status_models_parse_their_own_dump(info):
    status = info.status_model()
    assert info.status_model.model_validate(copy.deepcopy(status.to_k8s())) == status


def test_from_k8s_accepts_mapping_views():
    from collections.abc import Mapping

    class View(Mapping):  # what kopf hands handlers: read-only Mapping views, not dicts
        def __init__(self, d):
            self._d = d

        def __getitem__(self, k):
            v = self._d[k]
            return View(v) if isinstance(v, dict) else v

        def __iter__(self):
            return iter(self._d)

        def __len__(self):
            return len(self._d)

    raw = example(BY_KIND["Network"])
    assert BY_KIND["Network"].resource_model.from_k8s(View(raw)).spec.subnets[0].name == "private-v4"

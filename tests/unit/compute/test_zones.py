"""The availability zone summary the operator publishes: kept one host change at a time, equal
to the summary counted from scratch, and readable by exactly what the chart grants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.compute import zones
from kubestack.scheduler import HostState

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]


def host(name: str, zone: str | None = "az1", ready: bool = True, cordoned: bool = False) -> HostState:
    return HostState(name=name, zone=zone, ready=ready, unschedulable=cordoned)


def test_a_zone_is_available_while_one_of_its_hosts_takes_servers():
    hosts = [host("c0"), host("c1", zone="az2", ready=False), host("c2", zone="az2", cordoned=True),
             host("c3", zone=None)]
    assert zones.summary(hosts, "nova") == {"az1": "available", "az2": "not available", "nova": "available"}
    assert zones.summary([], "nova") == {}


def test_the_tally_says_when_the_summary_changes():
    tally = zones.ZoneTally("nova")
    assert tally.set("c0", host("c0")) is True  # a new zone
    assert tally.set("c1", host("c1")) is False  # one more host in an available zone
    assert tally.set("c0", host("c0", cordoned=True)) is False  # c1 still takes servers
    assert tally.set("c1", host("c1", ready=False)) is True  # the zone's last one goes
    assert tally.summary() == {"az1": "not available"}
    assert tally.set("c1", host("c1", ready=False)) is False  # a heartbeat: nothing moved
    assert tally.set("c1", host("c1", zone="az2")) is True  # moved: az2 appears
    assert tally.set("c0", None) is True  # deleted: az1 is empty, so gone
    assert tally.summary() == {"az2": "available"}
    assert tally.set("nope", None) is False


names = st.sampled_from([f"c{i}" for i in range(6)])
# a host's (zone, ready, cordoned), or None: deleted / not a compute host
states = st.one_of(st.none(), st.tuples(st.sampled_from(["az1", "az2", None]), st.booleans(), st.booleans()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, states), max_size=40))
def test_the_tally_matches_a_count_from_scratch(changes):
    tally = zones.ZoneTally("nova")
    current: dict[str, HostState] = {}
    for name, state in changes:
        before = tally.summary()
        now = None if state is None else host(name, *state)
        if now is None:
            current.pop(name, None)
        else:
            current[name] = now
        changed = tally.set(name, now)
        assert tally.summary() == zones.summary(current.values(), "nova")
        assert changed == (tally.summary() != before)


def test_published_configmap_round_trips():
    body = zones.configmap("kubestack-system", {"az1": "available", "az2": "not available"})
    assert body["metadata"] == {"name": "kubestack-availability-zones", "namespace": "kubestack-system"}
    assert zones.published(body) == {"az1": "available", "az2": "not available"}
    assert zones.published({"metadata": body["metadata"]}) == {}  # an empty ConfigMap has no data


def test_the_namespace_is_the_operators():
    assert zones.operator_namespace({}) == "kubestack-system"
    assert zones.operator_namespace({"KUBESTACK_NAMESPACE": "cloud"}) == "cloud"


def test_the_chart_lets_every_authenticated_user_get_that_configmap_only():
    text = (REPO_ROOT / "charts/kubestack/templates/rbac-availability-zones.yaml").read_text()
    text = text.replace("{{ .Release.Namespace }}", "ns")
    text = re.sub(r'\{\{- include "kubestack.labels" \. \| nindent 4 \}\}', "{}", text)
    assert "{{" not in text
    role, binding = (d for d in yaml.safe_load_all(text) if d)
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "ns"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": [zones.CONFIGMAP], "verbs": ["get"]}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:authenticated"}]

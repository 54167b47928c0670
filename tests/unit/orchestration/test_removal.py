"""What a stack removes and in which order: one kind after the other, users of a thing first;
contributions no longer made; retained objects released; what a waiting resource keeps."""

from kubestack.orchestration import load_stack
from kubestack.orchestration import realize as rz
from kubestack.orchestration.removal import (kept_while_waiting, next_removals, release_patch, retained,
                                             stale_contributions, tier)

from .helpers import server, tmpl

STACK = {"name": "shop", "namespace": "demo", "uid": "u1"}
CTX = rz.Context(namespace="demo", stack="shop", owner={"uid": "u1"})


def _obj(name: str, resource: str = "x", **annotations) -> dict:
    return {"metadata": {"name": name, "labels": {**rz.labels(CTX, resource), rz.MEMBER_LABEL: "0"},
                         "annotations": annotations, "ownerReferences": [{"uid": "u1"}, {"uid": "other"}]}}


def test_tiers_follow_the_delete_order():
    assert [tier(k) for k in ("FloatingIP", "Server", "Stack", "Network", "Flavor")] == [0, 1, 2, 10, 12]
    assert tier("Unknown") == len(rz.DELETE_TIERS)


def test_next_removals_are_the_first_kind_that_has_any():
    children = {("Network", "n"): _obj("n"), ("Server", "a"): _obj("a"), ("Server", "b"): _obj("b"),
                ("FloatingIP", "f"): _obj("f"), ("Flavor", "fl"): _obj("fl")}
    assert [k for k, _ in next_removals(children, {("FloatingIP", "f")})] == [("Server", "a"), ("Server", "b")]
    assert [k for k, _ in next_removals(children, {("FloatingIP", "f"), ("Server", "a"), ("Server", "b")})] == [
        ("Network", "n")]
    assert next_removals(children, set(children)) == []


def test_stale_contributions_are_those_not_made_again_as_they_were():
    subnet = rz.Contribution("Network", "demo", "shop-net", "subnets", "s1", {"name": "s1", "cidr": "10.0.0.0/24"})
    other = rz.Contribution("Network", "demo", "shop-net", "subnets", "s2", {"name": "s2", "cidr": "10.0.1.0/24"})
    changed = rz.Contribution("Network", "demo", "shop-net", "subnets", "s2", {"name": "s2", "cidr": "10.0.2.0/24"})
    recorded = {"sub2": other.to_dict(), "sub1": subnet.to_dict(), "gone": subnet.to_dict()}
    stale = stale_contributions(recorded, {"sub1": subnet.to_dict(), "sub2": changed.to_dict()})
    assert stale == [("gone", subnet), ("sub2", other)]
    assert stale_contributions({}, {"sub1": subnet.to_dict()}) == []


def test_retained_objects_are_released_from_the_stack():
    obj = _obj("shop-db", **{rz.POLICY_ANNOTATION: "Retain"})
    assert retained(obj) and not retained(_obj("shop-web", **{rz.POLICY_ANNOTATION: "Delete"}))
    assert release_patch(obj, STACK) == {"metadata": {
        "ownerReferences": [{"uid": "other"}],
        "labels": {rz.STACK_LABEL: None, rz.RESOURCE_LABEL: None, rz.STACK_NAMESPACE_LABEL: None,
                   rz.MEMBER_LABEL: None},
        "annotations": {"kubestack.io/retained-from-stack": "demo/shop"}}}
    only_ours = {"metadata": {"ownerReferences": [{"uid": "u1"}]}}
    assert release_patch(only_ours, STACK)["metadata"]["ownerReferences"] is None


def test_a_waiting_resource_keeps_the_objects_it_has():
    stack = load_stack(tmpl(resources={
        "web": server(), "rg": {"type": "OS::Heat::ResourceGroup", "properties": {"count": 1, "resource_def": server()}}}),
        stack_name="shop")
    web = stack.physical_name("web")
    children = {("Server", web): _obj(web, "web"), ("Server", "shop-web-old"): _obj("shop-web-old", "web"),
                ("Server", "shop-rg-0"): _obj("shop-rg-0", "rg"), ("Server", "shop-rg-1"): _obj("shop-rg-1", "rg")}
    # a plain resource keeps its own object (not an old copy), a group every member
    assert kept_while_waiting(stack, CTX, "web", children) == {("Server", web)}
    assert kept_while_waiting(stack, CTX, "rg", children) == {("Server", "shop-rg-0"), ("Server", "shop-rg-1")}

"""Cross-project references: Glance visibility and Neutron sharing."""

from __future__ import annotations

from kubestack.identity.access import may_reference, reference_fault, split_ref


def test_same_project_always():
    assert may_reference("a", "a", visibility="private")
    assert may_reference("a", "a")


def test_images_follow_glance_visibility():
    assert not may_reference("a", "b", visibility="private")
    assert may_reference("a", "b", visibility="public")
    assert may_reference("a", "b", visibility="community")
    assert may_reference("a", "b", visibility="shared", members=["a", "c"])
    assert not may_reference("d", "b", visibility="shared", members=["a", "c"])


def test_networks_need_shared_and_other_kinds_never_cross():
    assert may_reference("a", "b", shared=True)
    assert not may_reference("a", "b", shared=False)
    assert not may_reference("a", "b")  # a Volume, a KeyPair, a ServerGroup


def test_fault_messages():
    assert reference_fault("Image", "cirros", "b", visibility="private") == \
        "Image cirros in project b is private to that project"
    assert reference_fault("Network", "private", "b") == \
        "Network private in project b is not shared: only that project may use it"
    assert reference_fault("Image", "x", "b", visibility="shared", requester_namespace="a") == \
        "Image x in project b is shared only with its member projects and not shared with project a"
    assert reference_fault("Volume", "data", "b") == \
        "Volume data in project b belongs to that project: a Volume cannot be used from another project"
    assert split_ref("b/cirros", "a") == ("b", "cirros")
    assert split_ref("cirros", "a") == ("a", "cirros")

"""Whose root disk a DataVolume under a server's name is, and how its owner reference follows
`retainRootDisk`: a new server never takes over (or later deletes) what a deleted server of the
same name kept, and a disk the user asks to keep is no longer deleted with its server."""

from __future__ import annotations

import pytest

from kubestack.storage import disks, names, rendering

pytestmark = pytest.mark.unit


def server(uid="uid-new", **spec):
    spec.setdefault("flavor", "m1.small")
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
            "metadata": {"name": "web", "namespace": "b", "uid": uid}, "spec": spec}


def image():
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Image",
            "metadata": {"name": "cirros", "namespace": "a", "uid": "uid-img"},
            "spec": {"source": {"url": "https://example.com/c.img"}}, "status": {"status": "active"}}


def stored(dv, rv="7", **meta):
    """`dv` as the API server returns it."""
    return {**dv, "metadata": {**dv["metadata"], "resourceVersion": rv, **meta}}


def test_a_disk_made_for_this_server_is_ours_owned_or_retained():
    for retain in (False, True):
        s = server(retainRootDisk=retain)
        dv = stored(rendering.root_disk_data_volume(s, image(), owned=not retain))
        assert dv["metadata"]["annotations"][names.ANN_SERVER_UID] == "uid-new"
        assert disks.root_disk_holder(s, dv) == "ours"


def test_a_namesake_s_disk_is_waited_for_while_it_is_deleted_and_never_taken_when_kept():
    old = server(uid="uid-old")
    owned = stored(rendering.root_disk_data_volume(old, image()))
    assert disks.root_disk_holder(server(), owned) == "deleting"  # the garbage collector's
    going = stored(rendering.root_disk_data_volume(old, image(), owned=False),
                   deletionTimestamp="2026-11-28T12:00:00Z")
    assert disks.root_disk_holder(server(), going) == "deleting"
    kept = stored(rendering.root_disk_data_volume(old, image(), owned=False))
    assert disks.root_disk_holder(server(), kept) == "kept"
    # no record of whom it was made for and no owner: nobody's to take
    anonymous = stored({"metadata": {"name": "web-root", "namespace": "b"}})
    assert disks.root_disk_holder(server(), anonymous) == "kept"


def test_the_owner_reference_follows_retain_root_disk():
    s = server()
    owned = stored(rendering.root_disk_data_volume(s, image()))
    assert disks.root_disk_owner_patch(s, owned) is None
    patch = disks.root_disk_owner_patch(server(retainRootDisk=True), owned)
    # null removes the field in a merge patch; the resourceVersion guards the list it replaces
    assert patch == {"metadata": {"resourceVersion": "7", "ownerReferences": None}}

    retained = stored(rendering.root_disk_data_volume(s, image(), owned=False))
    assert disks.root_disk_owner_patch(server(retainRootDisk=True), retained) is None
    patch = disks.root_disk_owner_patch(s, retained)
    assert [o["uid"] for o in patch["metadata"]["ownerReferences"]] == ["uid-new"]
    assert patch["metadata"]["ownerReferences"][0]["kind"] == "Server"


def test_other_owners_are_left_alone():
    s = server(retainRootDisk=True)
    dv = stored(rendering.root_disk_data_volume(server(), image()))
    backup = {"apiVersion": "example.com/v1", "kind": "Backup", "name": "b1", "uid": "uid-backup"}
    dv["metadata"]["ownerReferences"] = [*dv["metadata"]["ownerReferences"], backup]
    assert disks.root_disk_owner_patch(s, dv)["metadata"]["ownerReferences"] == [backup]


def test_a_server_not_stored_yet_owns_what_it_finds_and_patches_nothing():
    unstored = server()
    del unstored["metadata"]["uid"]
    dv = stored(rendering.root_disk_data_volume(unstored, image()))
    assert "ownerReferences" not in dv["metadata"] and disks.root_disk_holder(unstored, dv) == "ours"
    assert disks.root_disk_owner_patch(unstored, dv) is None

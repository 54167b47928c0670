"""The Project usage timer and its dirty marks: a change in the project marked while the create
handler finishes (after its count, before the Project shows Active) is counted on the first
tick that sees the Project Active, not RESYNC_SECONDS later. The timer used to take the mark
before checking the phase, and drop it on the tick that still saw the Project Pending."""

from __future__ import annotations

import time

import pytest

from kubestack.controllers import project as project_ctl

pytestmark = pytest.mark.unit

NAME = "demo-usage-timer"


def project(phase: str) -> dict:
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Project",
            "metadata": {"name": NAME, "generation": 1}, "spec": {},
            "status": {"phase": phase, "usage": {"servers": 0}}}


@pytest.fixture
def counts(monkeypatch):
    counted: list[str] = []

    def count(name):
        counted.append(name)
        project_ctl._last_count[name] = time.monotonic()
        return {"servers": 1}, {}

    monkeypatch.setattr(project_ctl, "_count", count)
    monkeypatch.setattr(project_ctl, "_write_status", lambda body, desired: desired)
    yield counted
    project_ctl._last_count.pop(NAME, None)
    with project_ctl._dirty_lock:
        project_ctl._dirty.discard(NAME)


def tick(body: dict) -> None:
    project_ctl.project_usage(body=body, meta=body["metadata"])


def test_a_change_marked_before_the_project_shows_active_is_counted_on_the_next_tick(counts):
    project_ctl._count(NAME)  # the create handler's count
    project_ctl._mark_dirty(NAME)  # a server applied meanwhile
    tick(project("Pending"))  # the tick still holds the Project as it was before the handler wrote
    assert counts == [NAME]
    tick(project("Active"))
    assert counts == [NAME, NAME]
    tick(project("Active"))  # nothing new, and the resync not due
    assert counts == [NAME, NAME]

"""What the stack engine needs from the API server: the `Cluster` port (implemented with the
kubernetes client by `kubestack.stacks.kube.KubeCluster`), and the two answers of the API
server the engine acts on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kubestack.orchestration.realize import Child
from kubestack.orchestration.removal import Key


class Conflict(Exception):
    """Someone else wrote the object we read-modify-wrote: do it again."""


class Refused(Exception):
    """The API server refused a write or read of a child (400, 403, 422: invalid, forbidden,
    over quota); the message is the API server's."""


class Cluster(Protocol):
    """Children are objects of the kinds in `kubestack.orchestration.realize.KINDS` (ours and
    Secrets), named by kind; the namespace is ignored for cluster-scoped kinds. Reading or
    writing one may raise `Refused`; a patch may raise `Conflict`."""

    # the Stack object
    def stack(self, namespace: str, name: str) -> dict | None: ...
    def patch_stack(self, namespace: str, name: str, patch: dict) -> dict | None:
        """Merge-patch the Stack (None: it is gone; `Conflict` on a stale resourceVersion)."""
    def patch_status(self, namespace: str, name: str, patch: dict) -> dict | None:
        """Merge-patch the Stack's status (None: it is gone)."""
    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...

    # its children
    def children(self, namespace: str, stack: str) -> dict[Key, dict]:
        """Every object labelled as the stack's (kubestack.io/stack, and for cluster-scoped
        kinds kubestack.io/stack-namespace), by (kind, name)."""
    def get(self, kind: str, namespace: str | None, name: str) -> dict | None: ...
    def create(self, child: Child) -> tuple[dict, bool]:
        """Create the child; one that exists already is returned as it is. (object, created)"""
    def patch(self, kind: str, namespace: str | None, name: str, body: dict) -> dict: ...
    def delete(self, kind: str, namespace: str | None, name: str) -> None: ...

    # what the spec names, and the state Secret
    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data (None: there is no such ConfigMap)."""
    def write_secret(self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str],
                     owner: dict) -> None:
        """Set a Secret's data; create it, with these labels and owner reference, when it
        does not exist."""

"""What a Stack's spec asks for: its template (inline or from a ConfigMap), parameters (with
a parameters Secret's), files and environment; and the lookups of what custom constraints
name."""

from __future__ import annotations

import base64
from collections.abc import Callable

from kubestack.orchestration import HeatError
from kubestack.orchestration.template import parse_document

from .cluster import Cluster

#: the namespaced kinds a custom constraint may name that the engine looks up (besides
#: Flavors); the others (Node, StorageClass, Subnet...) pass
LOOKED_UP = frozenset({"Image", "Network", "KeyPair", "Server", "Volume", "Port", "Router", "SecurityGroup",
                       "FloatingIP"})


class InputError(Exception):
    """The spec's inputs cannot be read. ``missing``: an object they name does not exist (yet)."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read(cluster: Cluster, body: dict) -> dict:
    """(template, parameters, files, environment) the Stack's spec asks for.

    With ``templateRef`` the template is read from the ConfigMap now, when the spec changed:
    like ``openstack stack update``, a stack changes when its spec does, not when the
    ConfigMap is edited. The ConfigMap's other keys are files for ``get_file`` (as the files
    next to a template are for the openstack client), unless ``spec.files`` gives the same."""
    spec, ns = body.get("spec") or {}, body["metadata"]["namespace"]
    template = spec.get("template")
    files: dict[str, str] = {}
    if template is None:
        ref = spec.get("templateRef") or {}
        name, key = ref.get("configMap"), ref.get("key") or "template.yaml"
        data = cluster.config_map(ns, name)
        if data is None:
            raise InputError(f"ConfigMap {name} (templateRef) could not be found.", missing=True)
        if key not in data:
            raise InputError(f"ConfigMap {name} (templateRef) has no key {key}.", missing=True)
        try:
            template = parse_document(data.pop(key), "template")
        except HeatError as exc:
            raise InputError(f"ConfigMap {name} key {key}: {exc}") from None
        files = data
    params = dict(spec.get("parameters") or {})
    sref = spec.get("parametersSecretRef")
    if sref:
        secret = cluster.get("Secret", ns, sref["name"])
        if secret is None:
            raise InputError(f"Secret {sref['name']} (parametersSecretRef) could not be found.", missing=True)
        for k, v in (secret.get("data") or {}).items():
            params[k] = base64.b64decode(v).decode()
    env = {k: v for k, v in (spec.get("environment") or {}).items() if v is not None}
    return {"template": template, "parameters": params, "files": {**files, **(spec.get("files") or {})},
            "environment": env, "overrides": {}}


def lookup(cluster: Cluster, namespace: str) -> Callable[[str, str], bool]:
    """``exists(kind, value)`` for custom constraints: a namespaced value may be
    ``<namespace>/<name>``, else it is in the stack's namespace."""
    def exists(kind: str, value: str) -> bool:
        if kind == "Flavor":  # cluster-scoped: the value is its name
            return cluster.get(kind, None, value) is not None
        if kind not in LOOKED_UP:
            return True
        ns, _, name = value.rpartition("/")
        return cluster.get(kind, ns or namespace, name) is not None
    return exists

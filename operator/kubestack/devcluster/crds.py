"""Install CustomResourceDefinitions from YAML files and wait until they are Established, with
the ValidatingAdmissionPolicies (and bindings) the same files carry."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
# ours (generated from the pydantic models) and the third-party ones the simulator plays
CRD_DIRS = (REPO_ROOT / "crds", REPO_ROOT / "hack" / "crds")


def _manifests(dirs: tuple[Path, ...]) -> list[dict]:
    docs = []
    for d in dirs:
        for path in sorted(d.glob("*.yaml")):
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def crd_manifests(dirs: tuple[Path, ...] = CRD_DIRS) -> list[dict]:
    return [doc for doc in _manifests(dirs) if doc.get("kind") == "CustomResourceDefinition"]


def _install_policies(api, dirs: tuple[Path, ...]) -> None:
    """Create or replace the admission policies and bindings in `dirs`."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    admission = client.AdmissionregistrationV1Api(api)
    methods = {"ValidatingAdmissionPolicy": "validating_admission_policy",
               "ValidatingAdmissionPolicyBinding": "validating_admission_policy_binding"}
    for doc in _manifests(dirs):
        kind = methods.get(doc.get("kind"))
        if kind is None:
            continue
        name = doc["metadata"]["name"]
        try:
            getattr(admission, f"create_{kind}")(doc)
        except ApiException as exc:
            if exc.status != 409:
                raise RuntimeError(f"{doc['kind']} {name} was refused: {exc.body}") from exc
            current = getattr(admission, f"read_{kind}")(name)
            doc = {**doc, "metadata": {**doc["metadata"], "resourceVersion": current.metadata.resource_version}}
            getattr(admission, f"replace_{kind}")(name, doc)


def install_crds(kubeconfig: Path, dirs: tuple[Path, ...] = CRD_DIRS, timeout: float = 60.0) -> list[str]:
    """Create or replace every CRD in `dirs`; returns their names once all are Established."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from kubestack.devcluster.clients import api_client

    api = api_client(kubeconfig)
    ext = client.ApiextensionsV1Api(api)
    names = []
    for crd in crd_manifests(dirs):
        name = crd["metadata"]["name"]
        names.append(name)
        try:
            ext.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise RuntimeError(f"CRD {name} was refused: {exc.body}") from exc
            current = ext.read_custom_resource_definition(name)
            crd = {**crd, "metadata": {**crd["metadata"], "resourceVersion": current.metadata.resource_version}}
            ext.replace_custom_resource_definition(name, crd)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conds):
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    if pending:
        raise RuntimeError(f"CRDs not Established after {timeout:.0f}s: {sorted(pending)}")
    _install_policies(api, dirs)
    return names

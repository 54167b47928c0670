"""Install CustomResourceDefinitions from YAML files and wait until they are Established."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
# ours (generated from the pydantic models) and the third-party ones the simulator plays
CRD_DIRS = (REPO_ROOT / "crds", REPO_ROOT / "hack" / "crds")


def crd_manifests(dirs: tuple[Path, ...] = CRD_DIRS) -> list[dict]:
    docs = []
    for d in dirs:
        for path in sorted(d.glob("*.yaml")):
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return [doc for doc in docs if doc.get("kind") == "CustomResourceDefinition"]


def install_crds(kubeconfig: Path, dirs: tuple[Path, ...] = CRD_DIRS, timeout: float = 60.0) -> list[str]:
    """Create or replace every CRD in `dirs`; returns their names once all are Established."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from kubestack.devcluster.clients import api_client

    ext = client.ApiextensionsV1Api(api_client(kubeconfig))
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
    return names

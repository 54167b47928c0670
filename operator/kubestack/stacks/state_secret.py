"""Where a stack's record (`kubestack.orchestration.record`) is kept: the Secret
``<stack>-stack-state``, owned by the Stack, labelled with its name. A Secret because hidden
parameters and the parameters Secret's values are part of the record. A record left by a
deleted Stack of the same name is discarded, and a Secret of that name that is not a stack
record is never touched."""

from __future__ import annotations

import base64
import json

from kubestack.k8s.objects import owner_reference
from kubestack.orchestration.status import state_secret_name
from kubestack.runtime.workqueue import Requeue

from .cluster import Cluster

STATE_KEY = "state.json"
STATE_LABEL = "kubestack.io/stack-state"


class ForeignStateSecret(Exception):
    """The Secret the stack keeps its record in exists and is not the stack's."""


def read(cluster: Cluster, body: dict) -> dict | None:
    """The record of the Stack ``body``; None when it has none yet."""
    meta = body["metadata"]
    ns, name = meta["namespace"], state_secret_name(meta["name"])
    secret = cluster.get("Secret", ns, name)
    if secret is None:
        return None
    smeta = secret["metadata"]
    if meta["uid"] not in {o.get("uid") for o in smeta.get("ownerReferences") or []}:
        if (smeta.get("labels") or {}).get(STATE_LABEL) == meta["name"]:
            # the record of a deleted Stack of the same name the garbage collector has not
            # removed yet: reading it would resume that stack
            cluster.delete("Secret", ns, name)
            raise Requeue(0.5)
        raise ForeignStateSecret(f"Secret {name} exists and is not this stack's record: the stack keeps its "
                                 "state under that name; rename or delete that Secret")
    raw = (secret.get("data") or {}).get(STATE_KEY)
    return json.loads(base64.b64decode(raw).decode()) if raw else None


def peek(cluster: Cluster, body: dict) -> dict | None:
    """The record of the Stack ``body`` as it is, read by another stack (a parent reading its
    nested stack's): None when there is none or the Secret is not that stack's. Never writes."""
    meta = body["metadata"]
    secret = cluster.get("Secret", meta["namespace"], state_secret_name(meta["name"]))
    if secret is None or meta.get("uid") not in {o.get("uid") for o in secret["metadata"].get("ownerReferences") or []}:
        return None
    raw = (secret.get("data") or {}).get(STATE_KEY)
    return json.loads(base64.b64decode(raw).decode()) if raw else None


def write(cluster: Cluster, body: dict, record: dict) -> None:
    meta = body["metadata"]
    data = {STATE_KEY: base64.b64encode(json.dumps(record, sort_keys=True).encode()).decode()}
    cluster.write_secret(meta["namespace"], state_secret_name(meta["name"]), data, {STATE_LABEL: meta["name"]},
                         owner_reference(body))

"""Events on our objects, so `kubectl describe` tells a person what happened and why."""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from kubernetes.client.rest import ApiException

from kubestack.k8s.client import core

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
COMPONENT = "kubestack-operator"


def post(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about `obj`. Failing to post is logged, never raised: an Event is
    a report, and losing one must not fail the reconcile that caused it."""
    meta = obj["metadata"]
    now = datetime.datetime.now(datetime.timezone.utc)
    namespace = meta.get("namespace") or "default"
    event = {
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
            "namespace": meta.get("namespace"), "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now.isoformat(),
        "lastTimestamp": now.isoformat(),
        "count": 1,
    }
    try:
        core().create_namespaced_event(namespace, event)
    except ApiException as exc:
        log.warning("could not post event %s on %s/%s: %s", reason, namespace, meta["name"], exc.reason)

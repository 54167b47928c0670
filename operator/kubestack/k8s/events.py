"""Events on our objects, so `kubectl describe` tells a person what happened and why.

Posting is asynchronous, as client-go's event recorder is: `post` queues the Event and returns,
and a few sender threads write them. An Event is a report: a reconcile must neither wait for
one (two per boot would sit on the boot path) nor fail because one could not be written.
`flush` drains the queue at shutdown.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from kubestack.k8s.client import api
from kubestack.k8s.rest import ApiError, api_request

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
COMPONENT = "kubestack-operator"


SENDERS = 4
_queue: queue.Queue = queue.Queue()
_senders: list[threading.Thread] = []
_senders_lock = threading.Lock()


def post(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Queue a core/v1 Event about `obj` (see the module docstring)."""
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
    _ensure_senders()
    _queue.put(event)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every queued Event has been sent (or given up on); False on timeout."""
    done = threading.Event()

    def wait() -> None:
        _queue.join()
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    return done.wait(timeout)


def _ensure_senders() -> None:
    with _senders_lock:
        while len(_senders) < SENDERS:
            t = threading.Thread(target=_send_forever, name=f"events-{len(_senders)}", daemon=True)
            t.start()
            _senders.append(t)


def _send_forever() -> None:
    while True:
        event = _queue.get()
        try:
            ns = event["metadata"]["namespace"]
            api_request(api(), "POST", f"/api/v1/namespaces/{ns}/events", body=event, timeout=30)
        except ApiError as exc:
            involved = event["involvedObject"]
            log.warning("could not post event %s on %s/%s: %s", event["reason"], ns, involved["name"], exc)
        except Exception:  # noqa: BLE001 - a sender thread must survive anything a request raises
            log.exception("could not post event %s", event.get("reason"))
        finally:
            _queue.task_done()

"""In-memory copies of watched objects (an informer cache), fed by informers or kopf handlers.

Controllers read references (flavors, images, the VM of a server, ...) from here instead of
asking the API server on every reconcile. A miss is not proof of absence — the watch may
lag a create by a moment — so callers confirm a miss with a GET before reporting an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Key = tuple[str, str]  # (namespace or "", name)


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    def __init__(self, kind: str):
        self.kind = kind
        self._lock = threading.Lock()
        self._objects: dict[Key, dict] = {}

    def apply_event(self, event_type: str | None, obj: Mapping[str, Any], *, owned: bool = False) -> dict | None:
        """Record a watch event; returns the previous copy (None if new). `owned`: `obj` is a
        plain dict nobody else holds (freshly parsed), kept as is instead of copied."""
        key = key_of(obj)
        with self._lock:
            old = self._objects.get(key)
            if event_type == "DELETED":
                self._objects.pop(key, None)
            else:
                # a stale event (lower resourceVersion) must not overwrite a newer copy
                if old is not None and _rv(old) > _rv(obj):
                    return old
                self._objects[key] = obj if owned else _plain(obj)
            return old

    def replace_all(self, objects: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            self._objects = {key_of(o): _plain(o) for o in objects}

    def get(self, namespace: str | None, name: str) -> dict | None:
        with self._lock:
            return self._objects.get((namespace or "", name))

    def list(self, predicate: Callable[[dict], bool] | None = None) -> list[dict]:
        with self._lock:
            values = list(self._objects.values())
        return [o for o in values if predicate is None or predicate(o)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

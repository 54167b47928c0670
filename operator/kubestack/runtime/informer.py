"""Informers: list + watch one resource on a plain thread, keep a Store, call handlers.

What client-go's shared informers do, for the resources the operator sees most often (Servers
and the VirtualMachines/VMIs that follow them: several events per server in a boot storm).
kopf would route each event through its asyncio reactor, its causes and diff-base detection and
a hop to an executor thread for every sync handler: most of the operator's CPU in a boot storm,
for handlers that only update a cache and queue a key. Here one thread per resource parses
the stream and calls the handlers directly; they must be quick and must not block (queue work,
don't do it).

Semantics kept from client-go: one shared informer per resource in the process (`shared`), so
every controller interested in Servers reads the same stream; a handler added late is first
told about every object already listed (as ADDED); `wait_synced` returns once the first list
is in the Store; a watch resumes from the last resourceVersion seen (bookmarks included) and
relists after 410 Gone or a broken stream, and a relist reports what disappeared meanwhile as
DELETED. A handler's `previous` is the copy the handlers were last given for that object (None:
they were never told of it, and the event is ADDED), not the Store's: writers fold their
responses into the Store (`ApiCluster.patch_status`), and the watch event carrying that same
resourceVersion must still show the handlers what changed.

An `optional` informer is for a resource that may not be served: a CRD installed after the
process started (or removed while it runs). Until API discovery lists the resource, the informer
counts as synced with an empty Store (there is nothing to list) and asks discovery again every
`recheck` seconds; once the resource is served it lists and watches as usual, and if the resource
goes away (a 404) it waits for it again, keeping its Store (a CRD's objects are deleted, and
reported, before the CRD stops being served). `served` and `subresources` say what discovery
last said, for callers that write to the resource (`"status" in subresources`: whether status
is written through /status). A required informer (the default) never counts as synced before
its first list, and retries a 404 like any other error.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

from kubestack.k8s.objects import GVR
from kubestack.k8s.rest import ApiError, api_request
from kubestack.runtime.store import Store, key_of

log = logging.getLogger(__name__)

# handler(event type, object, previous copy or None)
Handler = Callable[[str, dict, "dict | None"], None]

PAGE = 500


class Informer:
    def __init__(self, api: Any, api_version: str, plural: str, kind: str, store: Store | None = None,
                 namespace: str | None = None, *, optional: bool = False, recheck: float = 5.0):
        """Watch every `plural` of `api_version` ("v1", "kubevirt.io/v1"), in all namespaces
        or in `namespace`; `optional`: the resource may not be served yet (see the module's
        docstring), looked for again every `recheck` seconds until it is."""
        self.api = api
        root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        self.path = f"{root}/namespaces/{namespace}/{plural}" if namespace else f"{root}/{plural}"
        self.discovery_path = root
        self.api_version = api_version
        self.plural = plural
        self.kind = kind
        self.optional = optional
        self.recheck = recheck
        # what the API server said last: None until known (a required informer learns only that
        # its list worked); subresources ("status", "scale", ...) are known from discovery
        self.served: bool | None = None
        self.subresources: frozenset[str] = frozenset()
        self.store = store if store is not None else Store(kind)
        self._handlers: list[Handler] = []
        # per object, the copy last passed to the handlers: what a handler's `previous` is. The
        # Store cannot say it: a write folded into it is the very copy its watch event carries
        self._dispatched: dict[tuple[str, str], dict] = {}
        self._dispatching = threading.Lock()  # handlers see events one at a time, in order
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None

    def add_handler(self, handler: Handler) -> None:
        with self._dispatching:
            self._handlers.append(handler)
            if self._synced.is_set():
                # what the other handlers were told: an object only folded into the Store so far
                # comes to every handler with its watch event
                for obj in list(self._dispatched.values()):
                    self._call(handler, "ADDED", obj, None)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start listing and watching (once; later calls do nothing)."""
        with self._dispatching:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"informer-{self.kind}", daemon=True)
        self._thread.start()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()  # unblocks the thread's read (urllib3 >= 2.3)
            except Exception:  # noqa: BLE001 - racing the reader; any failure here is moot
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                if self.optional and not self.served and not self._discover():
                    self._mark_synced()  # nothing is served, so nothing to list: an empty Store
                    self._stop.wait(self.recheck)
                    continue
                if not rv:
                    rv = self._relist()
                rv = self._watch(rv)
            except ApiError as exc:
                rv = ""
                if exc.status == 410:  # our resourceVersion is compacted away: start over
                    continue
                if exc.status == 404 and self.optional:
                    if self.served:
                        log.info("informer %s: %s is no longer served; waiting for it", self.kind, self.path)
                    self.served = False
                else:
                    log.warning("informer %s: %s; relisting", self.kind, exc)
                self._stop.wait(1.0)
            except Exception as exc:  # noqa: BLE001 - a dropped connection: resume the watch
                if self._stop.is_set():
                    return
                log.debug("informer %s: watch ended (%s); resuming", self.kind, exc)
                self._stop.wait(0.5)

    def _discover(self) -> bool:
        """Ask API discovery whether the resource is served (and with which subresources)."""
        try:
            doc = api_request(self.api, "GET", self.discovery_path, timeout=30) or {}
        except ApiError as exc:
            if exc.status != 404:  # 404: the whole group-version is not served
                raise
            doc = {}
        names = [r.get("name", "") for r in doc.get("resources") or []]
        served = self.plural in names
        prefix = self.plural + "/"
        self.subresources = frozenset(n[len(prefix):] for n in names if n.startswith(prefix))
        if served and self.served is False:
            log.info("informer %s: %s is now served", self.kind, self.path)
        elif not served and self.served is None:
            log.info("informer %s: %s is not served (yet); looking again every %gs",
                     self.kind, self.path, self.recheck)
        self.served = served
        return served

    def _mark_synced(self) -> None:
        with self._dispatching:
            self._synced.set()

    def _relist(self) -> str:
        items: list[dict] = []
        token = ""
        while True:
            query = [("limit", str(PAGE))] + ([("continue", token)] if token else [])
            page = api_request(self.api, "GET", self.path, query=query, timeout=60)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
        rv = page["metadata"].get("resourceVersion", "")
        fresh = {key_of(o) for o in items}
        gone = [o for o in self.store.list() if key_of(o) not in fresh]
        for obj in gone:
            self._dispatch("DELETED", obj)
        for obj in items:  # a list's items carry no kind; watch events and handlers do
            obj.setdefault("kind", self.kind)
            obj.setdefault("apiVersion", self.api_version)
            self._dispatch("ADDED", obj)
        self.served = True
        self._mark_synced()
        return rv

    def _watch(self, rv: str) -> str:
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", "300"),
                 ("resourceVersion", rv)]
        response = api_request(self.api, "GET", self.path, query=query, stream=True, timeout=(10, 330))
        self._response = response
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    break
                if not line:
                    continue
                event = json.loads(line)
                etype, obj = event.get("type"), event.get("object") or {}
                if etype == "ERROR":
                    raise ApiError(obj.get("code", 500), obj.get("message", ""), obj.get("reason", ""))
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if etype != "BOOKMARK":
                    self._dispatch(etype, obj)
        finally:
            self._response = None
            response.release_conn()
        return rv

    def _dispatch(self, etype: str, obj: dict) -> None:
        with self._dispatching:
            stored = self.store.apply_event(etype, obj, owned=True)
            if etype != "DELETED" and stored is not None and _rv(stored) > _rv(obj):
                return  # stale: the Store kept the newer copy a write folded in
            key = key_of(obj)
            # not `stored`: after a write folded its response in, that is this event's own copy
            # (previous == obj), and a handler comparing them (a FloatingIP waiting for its
            # server's pod address) would never see the change
            if etype == "DELETED":
                previous = self._dispatched.pop(key, None)
                if previous is None:
                    previous = stored
            else:
                previous = self._dispatched.get(key)
                self._dispatched[key] = obj
                etype = "ADDED" if previous is None else "MODIFIED"
            for handler in self._handlers:
                self._call(handler, etype, obj, previous)

    def _call(self, handler: Handler, etype: str, obj: dict, previous: dict | None) -> None:
        try:
            handler(etype, obj, previous)
        except Exception:  # noqa: BLE001 - one handler's bug must not stop the stream
            log.exception("informer %s: handler %s failed", self.kind, getattr(handler, "__name__", handler))


_shared: dict[GVR, Informer] = {}
_shared_lock = threading.Lock()


def shared(gvr: GVR) -> Informer:
    """The process's one informer for `gvr` (made on first use with the operator's client; the
    caller adds its handlers and calls `start`)."""
    from kubestack.k8s.client import api

    with _shared_lock:
        informer = _shared.get(gvr)
        if informer is None:
            informer = _shared[gvr] = Informer(api(), gvr.api_version, gvr.plural, gvr.kind)
        return informer


def stop_all() -> None:
    with _shared_lock:
        informers = list(_shared.values())
    for informer in informers:
        informer.stop()


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0

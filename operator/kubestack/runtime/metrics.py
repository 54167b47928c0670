"""Prometheus metrics for the operator, and the probe/metrics HTTP endpoint.

Every kopf handler is wrapped by `instrumented(kind)`, so handler counts, latencies and
errors per kind exist from the first controller on, without each controller repeating it.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

HANDLER_CALLS = Counter(
    "kubestack_handler_calls_total", "Handler invocations", ["kind", "handler"]
)
HANDLER_ERRORS = Counter(
    "kubestack_handler_errors_total", "Handler invocations that raised", ["kind", "handler", "error"]
)
HANDLER_LATENCY = Histogram(
    "kubestack_handler_duration_seconds", "Handler run time", ["kind", "handler"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LEADER = Gauge("kubestack_leader", "1 while this replica holds the leader Lease")


def instrumented(kind: str) -> Callable:
    """Decorator: count, time and error-count a (sync or async) handler under `kind`."""

    def wrap(fn: Callable) -> Callable:
        name = fn.__name__

        def done(start: float, error: BaseException | None) -> None:
            HANDLER_CALLS.labels(kind, name).inc()
            HANDLER_LATENCY.labels(kind, name).observe(time.perf_counter() - start)
            if error is not None:
                HANDLER_ERRORS.labels(kind, name, type(error).__name__).inc()

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    done(start, exc)
                    raise
                done(start, None)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                done(start, exc)
                raise
            done(start, None)
            return result

        return wrapper

    return wrap


class ProbeServer:
    """Serves /metrics, /healthz (process alive and not wedged) and /readyz (leading)."""

    def __init__(self, host: str, port: int, healthy: Callable[[], bool], ready: Callable[[], bool]):
        probes = {"/healthz": healthy, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split("?")[0]
                if path == "/metrics":
                    body, status, ctype = generate_latest(REGISTRY), 200, CONTENT_TYPE_LATEST
                elif path in probes:
                    ok = probes[path]()
                    body, status, ctype = (b"ok" if ok else b"not ok"), (200 if ok else 503), "text/plain"
                else:
                    body, status, ctype = b"not found", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # probes every few seconds would flood the log
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="probes", daemon=True)

    def start(self) -> "ProbeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""`kubestack operator`: leader election, probes and metrics, then kopf with every controller.

Order of events: serve /healthz and /metrics at once (so a standby replica is alive for its
liveness probe), wait for the leader Lease, then run kopf until SIGTERM/SIGINT or until the
Lease is lost — a replica that lost its lease exits non-zero, as client-go controllers do,
and Kubernetes restarts it as a standby.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import kopf

from kubestack.runtime.leader import LeaderElector
from kubestack.runtime.metrics import LEADER, ProbeServer

log = logging.getLogger("kubestack.operator")

ANNOTATION_PREFIX = "kopf.kubestack.io"


@dataclass
class OperatorOptions:
    kubeconfig: Path | None = None  # None: in-cluster service account
    namespace: str = "kubestack-system"  # where the leader Lease lives
    lease_name: str = "kubestack-operator"
    probe_host: str = "0.0.0.0"
    probe_port: int = 8080
    identity: str | None = None
    log_level: str = "INFO"
    controllers: list[str] | None = None  # None: every controller module


def configure_settings(settings: kopf.OperatorSettings) -> None:
    """kopf settings shared by every controller."""
    # Our CRD schemas prune unknown status fields, so kopf's default status-based progress
    # storage would be silently dropped: keep handler progress in annotations instead.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = "kubestack.io/finalizer"
    # Events are posted by the controllers on real transitions; one Event per kopf log line
    # would cost an API write each and bury the useful ones.
    settings.posting.enabled = False
    settings.execution.max_workers = 32
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


def _api_client(options: OperatorOptions):
    from kubernetes import client, config

    if options.kubeconfig:
        config.load_kube_config(config_file=str(options.kubeconfig))
    else:
        config.load_incluster_config()
    return client.ApiClient()


def _ensure_namespace(api, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status not in (409, 403):  # exists, or we may not create namespaces (chart made it)
            raise


def run(options: OperatorOptions) -> int:
    logging.basicConfig(level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from kubestack.controllers import load_all

    api = _api_client(options)
    _ensure_namespace(api, options.namespace)
    elector = LeaderElector(api, options.namespace, options.lease_name, options.identity)
    kopf_ready = threading.Event()
    probes = ProbeServer(
        options.probe_host, options.probe_port,
        healthy=lambda: not elector.lost.is_set(),
        ready=lambda: elector.is_leader.is_set() and kopf_ready.is_set(),
    ).start()
    log.info("probes and metrics on %s:%d", options.probe_host, probes.port)

    stopping = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s", signal.Signals(signum).name)
        stopping.set()
        elector._stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        elector.wait_for_leadership()
        if stopping.is_set():
            return 0
        LEADER.set(1)
        loaded = load_all(options.controllers)
        log.info("controllers: %s", ", ".join(loaded) or "(none)")
        return asyncio.run(_run_kopf(options, elector, stopping, kopf_ready))
    finally:
        from kubestack.k8s import events
        from kubestack.runtime import informer

        informer.stop_all()
        events.flush(5.0)  # Events the last reconciles queued still reach the API server
        for s, handler in previous.items():
            signal.signal(s, handler)
        LEADER.set(0)
        elector.release()
        probes.stop()


async def _run_kopf(options: OperatorOptions, elector: LeaderElector, stopping: threading.Event,
                    kopf_ready: threading.Event) -> int:
    stop_flag: asyncio.Event = asyncio.Event()
    ready_flag = threading.Event()

    async def watch_stop() -> None:
        while not (stopping.is_set() or elector.lost.is_set()):
            if ready_flag.is_set():
                kopf_ready.set()
            await asyncio.sleep(0.2)
        stop_flag.set()

    watcher = asyncio.create_task(watch_stop())
    await kopf.operator(
        clusterwide=True,
        standalone=True,  # leadership is ours (the Lease), not kopf's peering
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
    watcher.cancel()
    return 1 if elector.lost.is_set() else 0


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, **_) -> None:
    configure_settings(settings)


@kopf.on.login()
def _login(**_) -> kopf.ConnectionInfo:
    """kopf connects with what the kubernetes client loaded in _api_client (kubeconfig or
    in-cluster); kopf's own login_via_client would reload only the default kubeconfig path."""
    from kubernetes import client

    cfg = client.Configuration.get_default_copy()
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if token and token.lower().startswith("bearer "):
        token = token[7:]
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        scheme="Bearer" if token else None,
        token=token,
    )

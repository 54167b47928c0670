"""`kubestack operator`: run the controllers (leader-elected, with probes and metrics)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("operator", help="run the kubestack operator")
    p.add_argument("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG") or None,
                   help="kubeconfig (default $KUBECONFIG; in-cluster service account when unset)")
    p.add_argument("--namespace", default=os.environ.get("KUBESTACK_NAMESPACE", "kubestack-system"),
                   help="the operator's namespace: its leader-election Lease and the published availability zones")
    p.add_argument("--probe-port", type=int, default=int(os.environ.get("KUBESTACK_PROBE_PORT", "8080")),
                   help="port for /healthz, /readyz and /metrics (0 = any free port)")
    p.add_argument("--probe-host", default="0.0.0.0")
    p.add_argument("--identity", default=None, help="leader-election identity (default host-pid)")
    p.add_argument("--vm-actions", choices=("subresource", "simulator"),
                   default=os.environ.get("KUBESTACK_VM_ACTIONS", "subresource"),
                   help="how pause/reboot reach a VM: KubeVirt's subresource API (real clusters) or "
                        "requests the simulator executes (the local control plane)")
    p.add_argument("--controllers", default=None,
                   help="comma-separated controllers to run (default: all; '' for none)")
    p.add_argument("--log-level", default=os.environ.get("KUBESTACK_LOG_LEVEL", "INFO"))
    p.set_defaults(func=_run)


def _run(args) -> int:
    from kubestack.runtime.operator import OperatorOptions, run

    # read by the controllers at start-up (they run in this process)
    os.environ["KUBESTACK_VM_ACTIONS"] = args.vm_actions
    os.environ["KUBESTACK_NAMESPACE"] = args.namespace  # where the zones are published too

    return run(OperatorOptions(
        kubeconfig=args.kubeconfig, namespace=args.namespace, probe_host=args.probe_host,
        probe_port=args.probe_port, identity=args.identity, log_level=args.log_level.upper(),
        controllers=None if args.controllers is None else [c for c in args.controllers.split(",") if c],
    ))

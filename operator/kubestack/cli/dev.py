"""`kubestack dev up|down|status|kubeconfig|nodes`: the local control plane for development."""

from __future__ import annotations

import argparse
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("dev", help="local control plane (real kube-apiserver + etcd + controller-manager)")
    dev.add_argument("--name", default="default", help="cluster name (state dir under the cache)")
    verbs = dev.add_subparsers(dest="dev_command", metavar="VERB")
    verbs.required = True

    up = verbs.add_parser("up", help="build (once) and start the control plane, register compute nodes")
    up.add_argument("--nodes", type=int, default=4, help="compute hosts to register (default 4)")
    up.add_argument("--zones", default="az1,az2", help="availability zones, round-robin (default az1,az2)")
    up.add_argument("--cpu", default="32", help="allocatable cpu per host")
    up.add_argument("--memory", default="128Gi", help="allocatable memory per host")
    up.add_argument("--disk", default="1Ti", help="allocatable ephemeral-storage per host")
    up.add_argument("--no-crds", action="store_true", help="do not install the CRDs")
    up.add_argument("--no-operator", action="store_true",
                    help="do not start the operator and the simulator in the background")
    up.add_argument("--probe-port", type=int, default=8080, help="the operator's /metrics and probe port")
    up.set_defaults(func=_up)

    down = verbs.add_parser("down", help="stop the control plane (data is kept)")
    down.add_argument("--purge", action="store_true", help="also delete the state dir (etcd data, certs)")
    down.set_defaults(func=_down)

    verbs.add_parser("status", help="which processes run").set_defaults(func=_status)
    verbs.add_parser("kubeconfig", help="print the admin kubeconfig path").set_defaults(func=_kubeconfig)


def _cluster(args):
    from kubestack.devcluster.cluster import DevCluster, default_state_dir, find_bin_dir

    return DevCluster(default_state_dir(args.name), find_bin_dir())


def _up(args) -> int:
    from kubestack.compute.zones import operator_namespace
    from kubestack.devcluster import rbac, services
    from kubestack.devcluster.cluster import ControlPlaneError, node_specs
    from kubestack.devcluster.crds import install_crds

    start = time.monotonic()
    try:
        cluster = _cluster(args)
        rbac.helm_binary(cluster.bin)  # missing: say so before starting anything
        zones = [z for z in args.zones.split(",") if z]
        cluster.up(node_specs(args.nodes, zones, cpu=args.cpu, memory=args.memory,
                              ephemeral_storage=args.disk))
        if not args.no_crds:
            install_crds(cluster.kubeconfig)
        # the namespace the operator started below runs in (--namespace's default)
        rbac.install(cluster, operator_namespace())
        if not args.no_operator:
            services.start(cluster, args.probe_port)
            services.wait_ready(cluster, args.probe_port)
    except (ControlPlaneError, RuntimeError) as exc:
        print(f"kubestack dev up: {exc}", file=sys.stderr)
        return 1
    print(f"control plane up in {time.monotonic() - start:.1f}s at {cluster.server}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def _down(args) -> int:
    import shutil

    from kubestack.devcluster import services

    cluster = _cluster(args)
    stopped = services.stop(cluster) + cluster.down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    if args.purge:
        shutil.rmtree(cluster.state, ignore_errors=True)
        print(f"removed {cluster.state}")
    return 0


def _status(args) -> int:
    from kubestack.devcluster import services

    cluster = _cluster(args)
    status = {**cluster.status(), **{name: services.running(cluster, name) for name in services.SERVICES}}
    for proc, alive in status.items():
        print(f"{proc:26} {'running' if alive else 'stopped'}")
    return 0 if all(status.values()) else 1


def _kubeconfig(args) -> int:
    print(_cluster(args).kubeconfig)
    return 0

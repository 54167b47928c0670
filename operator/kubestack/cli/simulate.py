"""`kubestack simulate`: play KubeVirt + CDI + a CSI provisioner on a control plane without
kubelets (the local one). Never run it against a real cluster: it would fight KubeVirt and CDI.

    kubestack simulate [--kubeconfig PATH] [--boot-delay S] [--import-delay S]
                       [--migration-delay S] [--fail-rate F] [--seed N] [--restart-backoff S]
                       [--workers N]
"""

from __future__ import annotations

import argparse


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="play KubeVirt + CDI + a volume provisioner on the local control plane (never on a real cluster)",
        description="Make VirtualMachines, DataVolumes, PVCs and VolumeSnapshots behave with KubeVirt's, "
                    "CDI's and a CSI driver's status semantics on a control plane that has no kubelets.",
    )
    p.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--boot-delay", type=_non_negative, default=0.0, metavar="S",
                   help="seconds from VMI creation to Running (default 0)")
    p.add_argument("--import-delay", type=_non_negative, default=0.0, metavar="S",
                   help="seconds a DataVolume import/clone/restore takes once its PVC is bound (default 0)")
    p.add_argument("--migration-delay", type=_non_negative, default=0.0, metavar="S",
                   help="seconds a live migration takes (default 0)")
    p.add_argument("--fail-rate", type=_rate, default=0.0, metavar="F",
                   help="share of VMIs that fail during boot (default 0); see --seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the injected failures (default 0)")
    p.add_argument("--restart-backoff", type=_non_negative, default=10.0, metavar="S",
                   help="first crash-loop back-off after a failed boot, doubled per failure up to 300s "
                        "(default 10, as KubeVirt)")
    p.add_argument("--workers", type=_positive_int, default=8, metavar="N",
                   help="objects reconciled in parallel (default 8; never one object, nor a VM and its "
                        "VMI, twice at once)")
    p.add_argument("--field-validation", choices=("Strict", "Warn", "Ignore"), default="Strict",
                   help="fieldValidation of the simulator's writes (default Strict)")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import logging

    from kubestack.simulator.common import SimConfig
    from kubestack.simulator.main import run

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(message)s")
    config = SimConfig(boot_delay=args.boot_delay, import_delay=args.import_delay,
                       migration_delay=args.migration_delay, fail_rate=args.fail_rate, seed=args.seed,
                       restart_backoff=args.restart_backoff)
    return run(args.kubeconfig, config, field_validation=args.field_validation, workers=args.workers)

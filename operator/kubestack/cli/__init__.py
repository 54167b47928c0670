"""The `kubestack` command: a dev cluster, the operator, the simulator, and openstack-like verbs.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
args, returning an exit code). A module keeps its heavy imports inside its functions so
that `kubestack --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module name (in this package) for each top-level verb
COMMAND_MODULES = [
    "dev",
    "operator",
    "project",
    "quota",
    "role",
    "simulate",
    "stack",
    "image",
    "volume",
    "server",
    "servergroup",
    "flavor",
    "keypair",
    "network",  # network, subnet, port, security group, floating ip, router
    "hypervisor",
    "console",  # console log show (= server console log)
    "catalog",  # endpoint list, availability zone list
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubestack",
        description="OpenStack's IaaS model on Kubernetes: servers, images, volumes, networks, stacks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""`kubestack quota show|set`: a project's limits and usage, like `openstack quota show --usage`.

    kubestack quota show [--project P]        # limits and in-use per resource
    kubestack quota set --cores 40 --ram 102400 --instances 20 P
"""

from __future__ import annotations

import argparse

from kubestack.cli.project import add_kubeconfig, api_error, custom_api, fail, get_project, table, update_project

# (CLI flag, quota field on the wire), in the order `quota show` prints them
FIELDS = (
    ("instances", "instances"), ("cores", "cores"), ("ram", "ram"), ("key-pairs", "keyPairs"),
    ("server-groups", "serverGroups"), ("server-group-members", "serverGroupMembers"),
    ("metadata-items", "metadataItems"), ("volumes", "volumes"), ("gigabytes", "gigabytes"),
    ("snapshots", "snapshots"), ("networks", "networks"), ("subnets", "subnets"),
    ("ports", "ports"), ("routers", "routers"), ("floating-ips", "floatingIps"),
    ("secgroups", "securityGroups"), ("secgroup-rules", "securityGroupRules"),
    ("images", "images"),
)


def register(sub: argparse._SubParsersAction) -> None:
    quota = sub.add_parser("quota", help="project quotas: show (with usage), set")
    verbs = quota.add_subparsers(dest="quota_command", metavar="VERB")
    verbs.required = True

    show = verbs.add_parser("show", help="limits and in-use of a project")
    show.add_argument("project_name", nargs="?", metavar="PROJECT")
    show.add_argument("--project", help="project (default: the kubeconfig context's namespace)")
    show.add_argument("--usage", action="store_true", help="accepted for openstack compatibility; "
                                                           "usage is always shown")
    add_kubeconfig(show)
    show.set_defaults(func=_show)

    set_ = verbs.add_parser("set", help="change a project's limits (-1: unlimited)")
    set_.add_argument("project", metavar="PROJECT")
    for flag, field in FIELDS:
        set_.add_argument(f"--{flag}", dest=field, type=int, metavar="N")
    add_kubeconfig(set_)
    set_.set_defaults(func=_set)


def _context_namespace(args) -> str | None:
    from kubernetes import config

    try:
        _, current = config.list_kube_config_contexts(config_file=args.kubeconfig)
    except Exception:  # noqa: BLE001 (no kubeconfig: the caller reports a missing project)
        return None
    return (current or {}).get("context", {}).get("namespace")


def _show(args) -> int:
    from kubernetes.client.rest import ApiException

    name = args.project or args.project_name or _context_namespace(args)
    if not name:
        return fail("No project given: use --project P (or a kubeconfig context with a namespace)")
    try:
        obj = get_project(custom_api(args), name)
    except ApiException as exc:
        return api_error(exc, f"project with a name or ID of '{name}'")
    limits = (obj.get("spec") or {}).get("quotas") or {}
    usage = (obj.get("status") or {}).get("usage") or {}
    rows = []
    for flag, field in FIELDS:
        in_use = usage.get(field)
        rows.append((flag, limits.get(field, -1), "" if in_use is None else in_use))
    print(table(("Resource", "Limit", "In Use"), rows))
    return 0


def _set(args) -> int:
    from kubernetes.client.rest import ApiException

    changes = {field: getattr(args, field) for _, field in FIELDS if getattr(args, field) is not None}
    bad = [f for f, v in changes.items() if v < -1]
    if bad:
        return fail(f"Quota values must be -1 (unlimited) or more: {', '.join(bad)}")
    if not changes:
        return fail("Nothing to set: give at least one of --instances, --cores, --ram, ...")
    try:
        update_project(custom_api(args), args.project,
                       lambda obj: obj.setdefault("spec", {}).setdefault("quotas", {}).update(changes))
    except ApiException as exc:
        return api_error(exc, f"project {args.project}")
    return 0

"""`kubestack server group ...`: Nova's server group verbs on ServerGroup objects.

    kubestack server group create NAME --policy affinity|anti-affinity|soft-affinity|soft-anti-affinity
                                   [--rule max_server_per_host=N]
    kubestack server group list [--long]
    kubestack server group show NAME
    kubestack server group delete NAME [NAME ...]

Servers join a group at boot: `kubestack server create ... --hint group=NAME` (spec.serverGroup).
Members and their hosts are what the operator reports in the group's status.
"""

from __future__ import annotations

import argparse
from typing import Any

from kubestack.cli.output import (
    GROUP, VERSION, CliError, connection_args, custom_api, get_or_none, list_args, manifest,
    namespace_of, print_list, print_show, run, show_args,
)

PLURAL = "servergroups"
POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def register(sub: argparse._SubParsersAction) -> None:
    server = sub.choices.get("server")
    if server is None or not hasattr(server, "verbs"):
        raise RuntimeError("kubestack.cli.servergroup registers under `server`: list 'server' before it")
    group = server.verbs.add_parser("group", help="server groups: create, list, show, delete")
    verbs = group.add_subparsers(dest="group_command", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="create a server group (openstack server group create)")
    create.add_argument("name")
    create.add_argument("--policy", choices=POLICIES, default="affinity")
    create.add_argument("--rule", action="append", default=[], metavar="max_server_per_host=N")
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_create))

    lst = verbs.add_parser("list", help="list server groups")
    lst.add_argument("--long", action="store_true")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_list))

    show = verbs.add_parser("show", help="show a server group")
    show.add_argument("name")
    connection_args(show)
    show_args(show)
    show.set_defaults(func=run(_show))

    delete = verbs.add_parser("delete", help="delete server groups")
    delete.add_argument("names", nargs="+")
    connection_args(delete)
    delete.set_defaults(func=run(_delete))


def parse_rules(items: list[str], policy: str) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--rule {item!r} must be KEY=VALUE")
        if key != "max_server_per_host":
            raise CliError(f"unknown rule {key!r}: the only rule is max_server_per_host")
        if policy != "anti-affinity":
            raise CliError("max_server_per_host is only allowed with policy anti-affinity")
        try:
            n = int(value)
        except ValueError:
            raise CliError(f"max_server_per_host must be a positive integer, not {value!r}") from None
        if n < 1:
            raise CliError("max_server_per_host must be at least 1")
        rules["maxServerPerHost"] = n
    return rules


def group_manifest(name: str, namespace: str, policy: str, rules: list[str]) -> dict:
    spec: dict[str, Any] = {"policy": policy}
    parsed = parse_rules(rules, policy)
    if parsed:
        spec["rules"] = parsed
    return manifest("ServerGroup", name, spec, namespace)


def group_fields(g: dict) -> dict[str, Any]:
    meta, spec, status = g["metadata"], g.get("spec") or {}, g.get("status") or {}
    rules = spec.get("rules") or {}
    return {
        "id": meta.get("uid"),
        "members": [m["name"] for m in status.get("members") or []],
        "member_hosts": {m["name"]: m.get("host") or "" for m in status.get("members") or []},
        "name": meta["name"],
        "policy": spec.get("policy"),
        "project_id": meta.get("namespace"),
        "rules": {"max_server_per_host": rules["maxServerPerHost"]} if "maxServerPerHost" in rules else {},
    }


def list_rows(groups: list[dict], long: bool = False) -> tuple[list[str], list[list[Any]]]:
    headers = ["ID", "Name", "Policy"]
    if long:
        headers += ["Members", "Project Id", "Rules"]
    rows = []
    for g in sorted(groups, key=lambda g: g["metadata"]["name"]):
        f = group_fields(g)
        row: list[Any] = [f["id"], f["name"], f["policy"]]
        if long:
            row += [f["members"], f["project_id"], f["rules"]]
        rows.append(row)
    return headers, rows


def get_group(custom, ns: str, name: str) -> dict:
    found = get_or_none(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name))
    if found is None:
        for g in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
            if g["metadata"].get("uid") == name:
                return g
        raise CliError(f"No server group with a name or ID of '{name}' exists.")
    return found


def _create(args: argparse.Namespace) -> int:
    custom = custom_api(args)
    ns = namespace_of(args)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL,
                                                     group_manifest(args.name, ns, args.policy, args.rule),
                                                     field_validation="Strict")
    print_show(args, group_fields(created))
    return 0


def _list(args: argparse.Namespace) -> int:
    custom = custom_api(args)
    items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace_of(args), PLURAL)["items"]
    headers, rows = list_rows(items, args.long)
    print_list(args, headers, rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    print_show(args, group_fields(get_group(custom_api(args), namespace_of(args), args.name)))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from kubernetes.client.rest import ApiException

    custom = custom_api(args)
    ns = namespace_of(args)
    failed = 0
    for name in args.names:
        try:
            g = get_group(custom, ns, name)
            custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, g["metadata"]["name"])
            members = (g.get("status") or {}).get("memberCount") or 0
            if members:
                print(f"Deleted server group {g['metadata']['name']}; its {members} member(s) keep their hosts.")
        except (CliError, ApiException) as exc:
            failed += 1
            print(f"Failed to delete server group with name or ID '{name}': {exc}")
    if failed:
        raise CliError(f"{failed} of {len(args.names)} server groups failed to delete.")
    return 0

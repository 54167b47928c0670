"""`kubestack flavor ...`: Nova's flavor verbs on (cluster-scoped) Flavor objects.

    kubestack flavor create NAME --vcpus N --ram MIB [--disk GIB] [--ephemeral GIB] [--swap MIB]
                            [--public | --private] [--project P ...] [--property k=v ...]
                            [--rxtx-factor F] [--description D]
    kubestack flavor list [--public | --private | --all] [--long]
    kubestack flavor show NAME
    kubestack flavor set NAME [--property k=v ...] [--project P ...] [--description D]
    kubestack flavor unset NAME [--property k ...] [--project P ...]
    kubestack flavor delete NAME [NAME ...]

`flavor list` shows, by default, the flavors the current project (`-n`) may use: public ones
and private ones whose access list has the project; `--all` every flavor. A flavor's size is
immutable (as in Nova); `set --project` grants a project access to a private flavor.
"""

from __future__ import annotations

import argparse
from typing import Any

from kubestack.cli.output import (
    GROUP, VERSION, CliError, connection_args, custom_api, get_or_none, key_values, list_args,
    manifest, namespace_of, print_list, print_show, run, show_args,
)

PLURAL = "flavors"


def register(sub: argparse._SubParsersAction) -> None:
    flavor = sub.add_parser("flavor", help="Nova flavors: create, list, show, set, unset, delete")
    verbs = flavor.add_subparsers(dest="flavor_command", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="create a flavor (openstack flavor create)")
    create.add_argument("name")
    create.add_argument("--vcpus", type=int, required=True)
    create.add_argument("--ram", type=int, required=True, metavar="MIB")
    create.add_argument("--disk", type=int, default=0, metavar="GIB")
    create.add_argument("--ephemeral", type=int, default=0, metavar="GIB")
    create.add_argument("--swap", type=int, default=0, metavar="MIB")
    create.add_argument("--rxtx-factor", type=float, default=None)
    vis = create.add_mutually_exclusive_group()
    vis.add_argument("--public", dest="public", action="store_true", default=None)
    vis.add_argument("--private", dest="public", action="store_false")
    create.add_argument("--project", dest="access", action="append", default=[],
                        help="project allowed to use a private flavor (repeatable)")
    create.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    create.add_argument("--description")
    connection_args(create, namespaced=False)
    show_args(create)
    create.set_defaults(func=run(_create))

    lst = verbs.add_parser("list", help="list flavors")
    which = lst.add_mutually_exclusive_group()
    which.add_argument("--public", dest="which", action="store_const", const="public")
    which.add_argument("--private", dest="which", action="store_const", const="private")
    which.add_argument("--all", dest="which", action="store_const", const="all")
    lst.add_argument("--long", action="store_true")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_list))

    show = verbs.add_parser("show", help="show a flavor")
    show.add_argument("name")
    connection_args(show, namespaced=False)
    show_args(show)
    show.set_defaults(func=run(_show))

    set_ = verbs.add_parser("set", help="set properties, grant access, describe")
    set_.add_argument("name")
    set_.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    set_.add_argument("--project", dest="access", action="append", default=[],
                      help="grant this project access to the private flavor (repeatable)")
    set_.add_argument("--description")
    connection_args(set_, namespaced=False)
    set_.set_defaults(func=run(_set))

    unset = verbs.add_parser("unset", help="remove properties or project access")
    unset.add_argument("name")
    unset.add_argument("--property", action="append", default=[], metavar="KEY")
    unset.add_argument("--project", dest="access", action="append", default=[])
    connection_args(unset, namespaced=False)
    unset.set_defaults(func=run(_unset))

    delete = verbs.add_parser("delete", help="delete flavors")
    delete.add_argument("names", nargs="+")
    connection_args(delete, namespaced=False)
    delete.set_defaults(func=run(_delete))


def flavor_manifest(args: argparse.Namespace) -> dict:
    private = args.public is False
    if args.access and not private:
        raise CliError("--project grants access to a private flavor: add --private")
    spec: dict[str, Any] = {"vcpus": args.vcpus, "ram": args.ram, "disk": args.disk}
    if args.ephemeral:
        spec["ephemeral"] = args.ephemeral
    if args.swap:
        spec["swap"] = args.swap
    if args.rxtx_factor is not None:
        spec["rxtxFactor"] = args.rxtx_factor
    if private:
        spec["isPublic"] = False
    if args.access:
        spec["projects"] = sorted(set(args.access))
    if args.property:
        spec["extraSpecs"] = key_values(args.property)
    if args.description:
        spec["description"] = args.description
    return manifest("Flavor", args.name, spec)


def flavor_fields(f: dict) -> dict[str, Any]:
    """`openstack flavor show`'s fields."""
    meta, spec = f["metadata"], f.get("spec") or {}
    public = spec.get("isPublic", True)
    return {
        "OS-FLV-DISABLED:disabled": False,
        "OS-FLV-EXT-DATA:ephemeral": spec.get("ephemeral", 0),
        "access_project_ids": None if public else sorted(spec.get("projects") or []),
        "description": spec.get("description"),
        "disk": spec.get("disk", 0),
        "id": meta.get("uid"),
        "name": meta["name"],
        "os-flavor-access:is_public": public,
        "properties": dict(spec.get("extraSpecs") or {}),
        "ram": spec["ram"],
        "rxtx_factor": spec.get("rxtxFactor", 1.0),
        "swap": spec.get("swap", 0),
        "vcpus": spec["vcpus"],
    }


def visible(flavor: dict, project: str) -> bool:
    spec = flavor.get("spec") or {}
    return spec.get("isPublic", True) or project in (spec.get("projects") or [])


def list_rows(flavors: list[dict], long: bool = False) -> tuple[list[str], list[list[Any]]]:
    headers = ["ID", "Name", "RAM", "Disk", "Ephemeral", "VCPUs", "Is Public"]
    if long:
        headers += ["Swap", "RXTX Factor", "Properties"]
    rows = []
    for f in sorted(flavors, key=lambda f: (f["spec"]["ram"], f["spec"]["vcpus"], f["metadata"]["name"])):
        d = flavor_fields(f)
        row: list[Any] = [d["id"], d["name"], d["ram"], d["disk"], d["OS-FLV-EXT-DATA:ephemeral"], d["vcpus"],
                          d["os-flavor-access:is_public"]]
        if long:
            row += [d["swap"] or "", d["rxtx_factor"], d["properties"]]
        rows.append(row)
    return headers, rows


def get_flavor(custom, name: str) -> dict:
    found = get_or_none(lambda: custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name))
    if found is None:
        raise CliError(f"No flavor with a name or ID of '{name}' exists.")
    return found


def _create(args: argparse.Namespace) -> int:
    custom = custom_api(args)
    created = custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, flavor_manifest(args),
                                                  field_validation="Strict")
    print_show(args, flavor_fields(created))
    return 0


def _list(args: argparse.Namespace) -> int:
    custom = custom_api(args)
    items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    which = args.which
    if which == "public":
        items = [f for f in items if (f.get("spec") or {}).get("isPublic", True)]
    elif which == "private":
        items = [f for f in items if not (f.get("spec") or {}).get("isPublic", True)]
    elif which != "all":
        project = namespace_of(args)
        items = [f for f in items if visible(f, project)]
    headers, rows = list_rows(items, args.long)
    print_list(args, headers, rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    print_show(args, flavor_fields(get_flavor(custom_api(args), args.name)))
    return 0


def _patch(custom, name: str, spec: dict) -> None:
    custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {"spec": spec}, field_validation="Strict")


def _set(args: argparse.Namespace) -> int:
    custom = custom_api(args)
    current = get_flavor(custom, args.name)
    spec: dict[str, Any] = {}
    if args.property:
        spec["extraSpecs"] = key_values(args.property)
    if args.access:
        if (current.get("spec") or {}).get("isPublic", True):
            raise CliError("Cannot set access for a public flavor")
        spec["projects"] = sorted(set((current["spec"].get("projects") or [])) | set(args.access))
    if args.description is not None:
        spec["description"] = args.description
    if not spec:
        raise CliError("nothing to set: give --property, --project or --description")
    _patch(custom, args.name, spec)
    return 0


def _unset(args: argparse.Namespace) -> int:
    custom = custom_api(args)
    current = get_flavor(custom, args.name)
    spec: dict[str, Any] = {}
    if args.property:
        spec["extraSpecs"] = {k: None for k in args.property}
    if args.access:
        spec["projects"] = sorted(set(current["spec"].get("projects") or []) - set(args.access))
    if not spec:
        raise CliError("nothing to unset: give --property or --project")
    _patch(custom, args.name, spec)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from kubernetes.client.rest import ApiException

    custom = custom_api(args)
    failed = 0
    for name in args.names:
        try:
            custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        except ApiException as exc:
            failed += 1
            reason = f"No flavor with a name or ID of '{name}' exists." if exc.status == 404 else exc.reason
            print(f"Failed to delete flavor with name or ID '{name}': {reason}")
    if failed:
        raise CliError(f"{failed} of {len(args.names)} flavors failed to delete.")
    return 0

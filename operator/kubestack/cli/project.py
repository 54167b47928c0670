"""`kubestack project create|list|show|set|delete`: Keystone projects, openstack-style.

    kubestack project create demo --description "Demo" [--parent org] [--disable]
    kubestack project list
    kubestack project show demo
    kubestack project set demo [--description D] [--enable|--disable] [--cascade-delete]
    kubestack project delete demo [--cascade]

The kubeconfig is `--kubeconfig` or $KUBECONFIG; requests are made as that identity, so
RBAC decides (a project admin may show and set their own project, not list all projects).
The helpers here (client, tables, read-modify-write of a Project) are shared by
`kubestack quota` and `kubestack role`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from kubestack.cli.output import custom_api
from kubestack.cli.output import render_table as table

GROUP, VERSION, PLURAL = "kubestack.io", "v1alpha1", "projects"


# ---- shared helpers ------------------------------------------------------------------------


def add_kubeconfig(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG") or None,
                   help="kubeconfig (default $KUBECONFIG, else ~/.kube/config)")





def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def api_error(exc, what: str) -> int:
    import json

    try:
        message = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = exc.reason
    if exc.status == 404:
        return fail(f"No {what} found ({message})")
    if exc.status == 403:
        return fail(f"Forbidden: {message}")
    return fail(f"{what}: {message}")


def get_project(api, name: str) -> dict:
    return api.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)


def update_project(api, name: str, change: Callable[[dict], None], attempts: int = 5) -> dict:
    """Read the Project, apply `change` to it, write it back with its resourceVersion;
    retried on a conflict, so two concurrent `role add` never lose one another."""
    from kubernetes.client.rest import ApiException

    for attempt in range(attempts):
        obj = get_project(api, name)
        change(obj)
        obj.pop("status", None)
        try:
            return api.replace_cluster_custom_object(GROUP, VERSION, PLURAL, name, obj,
                                                     field_validation="Strict")
        except ApiException as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# ---- project verbs ---------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    project = sub.add_parser("project", help="Keystone projects: create, list, show, set, delete")
    verbs = project.add_subparsers(dest="project_command", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="create a project (its namespace, roles and quotas)")
    create.add_argument("name")
    create.add_argument("--description")
    create.add_argument("--parent", help="parent project (hierarchy; quotas stay per project)")
    create.add_argument("--domain")
    enabled = create.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_true", default=True)
    enabled.add_argument("--disable", dest="enabled", action="store_false")
    create.add_argument("--cascade-delete", action="store_true",
                        help="deleting the project later deletes everything in it")
    add_kubeconfig(create)
    create.set_defaults(func=_create)

    lst = verbs.add_parser("list", help="list projects")
    lst.add_argument("--parent", help="only the children of this project")
    add_kubeconfig(lst)
    lst.set_defaults(func=_list)

    show = verbs.add_parser("show", help="show a project")
    show.add_argument("name")
    add_kubeconfig(show)
    show.set_defaults(func=_show)

    set_ = verbs.add_parser("set", help="change a project's description, enabled flag or deletion policy")
    set_.add_argument("name")
    set_.add_argument("--description")
    flag = set_.add_mutually_exclusive_group()
    flag.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None)
    flag.add_argument("--disable", dest="enabled", action="store_const", const=False)
    cascade = set_.add_mutually_exclusive_group()
    cascade.add_argument("--cascade-delete", dest="cascade", action="store_const", const=True, default=None)
    cascade.add_argument("--no-cascade-delete", dest="cascade", action="store_const", const=False)
    add_kubeconfig(set_)
    set_.set_defaults(func=_set)

    delete = verbs.add_parser("delete", help="delete a project (refused while it holds anything, "
                                             "unless --cascade)")
    delete.add_argument("name")
    delete.add_argument("--cascade", action="store_true",
                        help="set cascadeDelete first: servers, volumes, images... go with it")
    add_kubeconfig(delete)
    delete.set_defaults(func=_delete)


def _show_rows(obj: dict, children: list[str] | None = None) -> list[tuple[str, Any]]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    members = spec.get("members") or []
    rows = [
        ("name", obj["metadata"]["name"]),
        ("description", spec.get("description") or ""),
        ("enabled", spec.get("enabled", True)),
        ("parent", spec.get("parent") or ""),
        ("domain", spec.get("domain") or ""),
        ("namespace", status.get("namespace") or ""),
        ("phase", status.get("phase") or ""),
        ("members", ", ".join(f"{m.get('user') or 'group:' + str(m.get('group'))}={m.get('role', 'member')}"
                              for m in members)),
        ("cascade_delete", spec.get("cascadeDelete", False)),
    ]
    if children is not None:
        rows.append(("children", ", ".join(children)))
    if status.get("reason"):
        rows.append(("reason", status["reason"]))
    return rows


def _create(args) -> int:
    from kubernetes.client.rest import ApiException

    spec: dict[str, Any] = {"enabled": args.enabled}
    for key, value in (("description", args.description), ("parent", args.parent), ("domain", args.domain)):
        if value:
            spec[key] = value
    if args.cascade_delete:
        spec["cascadeDelete"] = True
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Project",
            "metadata": {"name": args.name}, "spec": spec}
    api = custom_api(args)
    try:
        obj = api.create_cluster_custom_object(GROUP, VERSION, PLURAL, body, field_validation="Strict")
    except ApiException as exc:
        if exc.status == 409:
            return fail(f"Conflict: project {args.name} already exists")
        return api_error(exc, f"project {args.name}")
    print(table(("Field", "Value"), _show_rows(obj)))
    return 0


def _list(args) -> int:
    from kubernetes.client.rest import ApiException

    try:
        items = custom_api(args).list_cluster_custom_object(GROUP, VERSION, PLURAL).get("items") or []
    except ApiException as exc:
        return api_error(exc, "projects")
    if args.parent:
        items = [p for p in items if (p.get("spec") or {}).get("parent") == args.parent]
    rows = [(p["metadata"]["name"], (p.get("spec") or {}).get("enabled", True),
             (p.get("status") or {}).get("phase") or "", (p.get("spec") or {}).get("parent") or "",
             (p.get("spec") or {}).get("description") or "")
            for p in sorted(items, key=lambda p: p["metadata"]["name"])]
    print(table(("Name", "Enabled", "Phase", "Parent", "Description"), rows))
    return 0


def _show(args) -> int:
    from kubernetes.client.rest import ApiException

    api = custom_api(args)
    try:
        obj = get_project(api, args.name)
    except ApiException as exc:
        return api_error(exc, f"project with a name or ID of '{args.name}'")
    try:  # children need list on projects, which a project admin does not hold
        children = sorted(p["metadata"]["name"] for p in
                          api.list_cluster_custom_object(GROUP, VERSION, PLURAL).get("items") or []
                          if (p.get("spec") or {}).get("parent") == args.name)
    except ApiException:
        children = None
    print(table(("Field", "Value"), _show_rows(obj, children)))
    return 0


def _set(args) -> int:
    from kubernetes.client.rest import ApiException

    def change(obj: dict) -> None:
        spec = obj.setdefault("spec", {})
        if args.description is not None:
            spec["description"] = args.description
        if args.enabled is not None:
            spec["enabled"] = args.enabled
        if args.cascade is not None:
            spec["cascadeDelete"] = args.cascade

    try:
        update_project(custom_api(args), args.name, change)
    except ApiException as exc:
        return api_error(exc, f"project {args.name}")
    return 0


def _delete(args) -> int:
    from kubernetes.client.rest import ApiException

    api = custom_api(args)
    try:
        if args.cascade:
            update_project(api, args.name, lambda obj: obj.setdefault("spec", {}).update(cascadeDelete=True))
        api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, args.name)
    except ApiException as exc:
        return api_error(exc, f"project {args.name}")
    print(f"Project {args.name} is being deleted"
          + ("" if args.cascade else "; it waits while it holds servers, volumes, images... "
                                     "(see `kubestack project show`)"))
    return 0

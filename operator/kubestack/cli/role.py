"""`kubestack role add|remove|assignment list`: Keystone role assignments on a project.

    kubestack role add --user alice --project demo member
    kubestack role add --group auditors --project demo reader
    kubestack role remove --user alice --project demo member
    kubestack role assignment list --project demo

Assignments live in the Project's ``spec.members``; the operator turns them into
RoleBindings. A project admin may run these for their own project.
"""

from __future__ import annotations

import argparse

from kubestack.cli.project import add_kubeconfig, api_error, custom_api, fail, get_project, table, update_project

ROLES = ("admin", "member", "reader")


def register(sub: argparse._SubParsersAction) -> None:
    role = sub.add_parser("role", help="role assignments: add, remove, assignment list")
    verbs = role.add_subparsers(dest="role_command", metavar="VERB")
    verbs.required = True
    for verb, func, text in (("add", _add, "give a user or group a role in a project"),
                             ("remove", _remove, "take a role away")):
        p = verbs.add_parser(verb, help=text)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--user")
        who.add_argument("--group")
        p.add_argument("--project", required=True)
        p.add_argument("role", choices=ROLES)
        add_kubeconfig(p)
        p.set_defaults(func=func)

    assignment = verbs.add_parser("assignment", help="role assignments")
    averbs = assignment.add_subparsers(dest="assignment_command", metavar="VERB")
    averbs.required = True
    lst = averbs.add_parser("list", help="list a project's role assignments")
    lst.add_argument("--project", required=True)
    lst.add_argument("--user")
    lst.add_argument("--group")
    add_kubeconfig(lst)
    lst.set_defaults(func=_list)


def _member(args) -> dict:
    out = {"user": args.user} if args.user else {"group": args.group}
    out["role"] = args.role
    return out


def _add(args) -> int:
    from kubernetes.client.rest import ApiException

    wanted = _member(args)

    def change(obj: dict) -> None:
        members = obj.setdefault("spec", {}).setdefault("members", [])
        if not any(_same(m, wanted) for m in members):
            members.append(wanted)

    try:
        update_project(custom_api(args), args.project, change)
    except ApiException as exc:
        return api_error(exc, f"project {args.project}")
    return 0


def _remove(args) -> int:
    from kubernetes.client.rest import ApiException

    unwanted = _member(args)
    found = []

    def change(obj: dict) -> None:
        members = obj.setdefault("spec", {}).get("members") or []
        found[:] = [m for m in members if _same(m, unwanted)]
        obj["spec"]["members"] = [m for m in members if not _same(m, unwanted)]

    try:
        update_project(custom_api(args), args.project, change)
    except ApiException as exc:
        return api_error(exc, f"project {args.project}")
    if not found:
        who = f"user {args.user}" if args.user else f"group {args.group}"
        return fail(f"No role assignment of {args.role} to {who} on project {args.project}")
    return 0


def _same(a: dict, b: dict) -> bool:
    return (a.get("user"), a.get("group"), a.get("role", "member")) == (b.get("user"), b.get("group"), b["role"])


def _list(args) -> int:
    from kubernetes.client.rest import ApiException

    try:
        obj = get_project(custom_api(args), args.project)
    except ApiException as exc:
        return api_error(exc, f"project with a name or ID of '{args.project}'")
    rows = [(m.get("role", "member"), m.get("user") or "", m.get("group") or "", args.project)
            for m in (obj.get("spec") or {}).get("members") or []
            if (not args.user or m.get("user") == args.user) and (not args.group or m.get("group") == args.group)]
    print(table(("Role", "User", "Group", "Project"), sorted(rows)))
    return 0

"""`kubestack keypair ...`: Nova's key pair verbs on KeyPair objects.

    kubestack keypair create NAME [--public-key FILE] [--private-key FILE] [--type ssh|x509]
                             [--keep-secret]
    kubestack keypair list
    kubestack keypair show NAME [--public-key]
    kubestack keypair delete NAME [NAME ...]

`create --public-key FILE` imports a public key; the operator validates it and reports the
fingerprint (Nova's MD5 colon-hex; SHA1 for x509). Without `--public-key` the operator
generates the key pair and hands the private key out once through the Secret
`<name>-private-key`: `create` waits for it, writes it to `--private-key FILE` (mode 0600) or
prints it, then deletes the Secret (Nova shows a private key only once) unless
`--keep-secret`.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from typing import Any

from kubestack.cli.output import (
    GROUP, VERSION, CliError, api_client, connection_args, get_or_none, list_args, manifest,
    namespace_of, poll, print_list, print_show, run, show_args,
)
from kubestack.k8s.conditions import find_condition

PLURAL = "keypairs"


def register(sub: argparse._SubParsersAction) -> None:
    kp = sub.add_parser("keypair", help="Nova key pairs: create (import or generate), list, show, delete")
    verbs = kp.add_subparsers(dest="keypair_command", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="import or generate a key pair (openstack keypair create)")
    create.add_argument("name")
    create.add_argument("--public-key", metavar="FILE", help="import this public key (e.g. ~/.ssh/id_ed25519.pub)")
    create.add_argument("--private-key", metavar="FILE", help="save the generated private key here (mode 0600)")
    create.add_argument("--type", choices=("ssh", "x509"), default="ssh")
    create.add_argument("--keep-secret", action="store_true",
                        help="keep the Secret with the generated private key (default: delete it once saved)")
    create.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the operator")
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_create))

    lst = verbs.add_parser("list", help="list key pairs")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_list))

    show = verbs.add_parser("show", help="show a key pair")
    show.add_argument("name")
    show.add_argument("--public-key", action="store_true", help="print only the public key")
    connection_args(show)
    show_args(show)
    show.set_defaults(func=run(_show))

    delete = verbs.add_parser("delete", help="delete key pairs")
    delete.add_argument("names", nargs="+")
    connection_args(delete)
    delete.set_defaults(func=run(_delete))


def keypair_manifest(name: str, namespace: str, public_key: str | None, key_type: str) -> dict:
    spec: dict[str, Any] = {"type": key_type}
    if public_key is not None:
        spec["publicKey"] = public_key.strip() + ("\n" if key_type == "x509" else "")
    return manifest("KeyPair", name, spec, namespace)


def keypair_fields(kp: dict) -> dict[str, Any]:
    meta, spec, status = kp["metadata"], kp.get("spec") or {}, kp.get("status") or {}
    ready = _ready(kp) or {}
    return {
        "created_at": meta.get("creationTimestamp"),
        "fingerprint": status.get("fingerprint"),
        "id": meta["name"],
        "is_deleted": bool(meta.get("deletionTimestamp")),
        "name": meta["name"],
        "private_key_secret": status.get("privateKeySecret"),
        "project_id": meta.get("namespace"),
        "status": ready.get("message"),
        "type": spec.get("type", "ssh"),
    }


def _ready(kp: dict) -> dict | None:
    return find_condition((kp.get("status") or {}).get("conditions"), "Ready")


def _custom(args):
    from kubernetes import client

    return client.CustomObjectsApi(api_client(args))


def get_keypair(custom, ns: str, name: str) -> dict:
    found = get_or_none(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name))
    if found is None:
        raise CliError(f"No keypair with a name or ID of '{name}' exists.")
    return found


def _settled(custom, ns: str, name: str, generated: bool):
    def check():
        kp = get_keypair(custom, ns, name)
        ready = _ready(kp)
        if ready and ready.get("status") == "False" and \
                ready.get("observedGeneration") == kp["metadata"].get("generation"):
            raise CliError(f"{ready.get('message')} (the KeyPair stays, not Ready: "
                           f"`kubestack keypair delete {name}` removes it)")
        status = kp.get("status") or {}
        if status.get("fingerprint") and (status.get("privateKeySecret") or not generated):
            return kp
        return None
    return check


def _create(args: argparse.Namespace) -> int:
    from kubernetes import client

    api = api_client(args)
    custom = client.CustomObjectsApi(api)
    ns = namespace_of(args)
    public = None
    if args.public_key:
        try:
            with open(os.path.expanduser(args.public_key)) as fh:
                public = fh.read()
        except OSError as exc:
            raise CliError(f"cannot read {args.public_key}: {exc.strerror}") from None
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL,
                                           keypair_manifest(args.name, ns, public, args.type),
                                           field_validation="Strict")
    kp = poll(_settled(custom, ns, args.name, public is None), args.timeout,
              f"key pair {args.name} to be ready")
    if public is None:
        secret_name = kp["status"]["privateKeySecret"]
        core = client.CoreV1Api(api)
        secret = core.read_namespaced_secret(secret_name, ns)
        private = base64.b64decode((secret.data or {})["private_key"]).decode()
        if args.private_key:
            path = os.path.expanduser(args.private_key)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(private)
        else:
            sys.stdout.write(private if private.endswith("\n") else private + "\n")
        if not args.keep_secret:
            core.delete_namespaced_secret(secret_name, ns)
        if not args.private_key:
            return 0
    print_show(args, keypair_fields(kp))
    return 0


def _list(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    items = sorted(custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"],
                   key=lambda k: k["metadata"]["name"])
    rows = [[k["metadata"]["name"], (k.get("status") or {}).get("fingerprint"), (k.get("spec") or {}).get("type", "ssh")]
            for k in items]
    print_list(args, ["Name", "Fingerprint", "Type"], rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    kp = get_keypair(_custom(args), namespace_of(args), args.name)
    if args.public_key:
        key = (kp.get("status") or {}).get("publicKey") or (kp.get("spec") or {}).get("publicKey")
        if not key:
            raise CliError(f"key pair {args.name} has no public key yet")
        sys.stdout.write(key if key.endswith("\n") else key + "\n")
        return 0
    print_show(args, keypair_fields(kp))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from kubernetes.client.rest import ApiException

    custom = _custom(args)
    ns = namespace_of(args)
    failed = 0
    for name in args.names:
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        except ApiException as exc:
            failed += 1
            reason = f"No keypair with a name or ID of '{name}' exists." if exc.status == 404 else exc.reason
            print(f"Failed to delete key with name '{name}': {reason}")
    if failed:
        raise CliError(f"{failed} of {len(args.names)} keys failed to delete.")
    return 0

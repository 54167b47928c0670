"""`kubestack volume ...`: Cinder's verbs on Volume objects, like `openstack volume ...`.

    kubestack volume create NAME --size GIB [--type T] [--image I | --snapshot S | --source V]
                            [--bootable] [--multiattach] [--description D] [--property k=v]
                            [--wait]
    kubestack volume list [--long]                 -f table|json|yaml|value|csv, -c COLUMN,
                                                   --no-headers (the shared list output)
    kubestack volume show NAME
    kubestack volume set NAME [--size GIB] [--property k=v] [--description D] [--bootable|--non-bootable]
    kubestack volume delete NAME [NAME ...]      refused while attached
    kubestack volume type list [--long] [--default]   StorageClasses (--default: only the one
                                                   a volume without a type gets)
    kubestack volume snapshot create NAME --volume V
    kubestack volume snapshot list [--long]
    kubestack volume snapshot delete NAME [NAME ...]

The three lists take the shared list output (-f table|json|yaml|value|csv, -c COLUMN,
--no-headers; json keyed by the column headers) with openstackclient's columns.
`volume set --size` extends (the PVC is expanded; sizes never shrink). Snapshots are CSI
VolumeSnapshots of the volume's PVC, labelled `kubestack.io/volume=<volume>`; `volume create
--snapshot S` restores one into a new volume.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubestack.cli.image import (
    CliError, GROUP, VERSION, api_client, common_args, get_object, key_values, namespace_of,
    print_fields, run, wait_for, _refusal,
)
from kubestack.cli.output import connection_args, list_args, print_list

SNAP_GROUP, SNAP_VERSION = "snapshot.storage.k8s.io", "v1"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
MULTIATTACH_ANNOTATION = "kubestack.io/multiattach"
VOLUME_LABEL = "kubestack.io/volume"
DESCRIPTION_ANNOTATION = "kubestack.io/description"


def register(sub: argparse._SubParsersAction) -> None:
    volume = sub.add_parser("volume", help="Cinder volumes: create, list, show, set (extend), delete; types; snapshots")
    verbs = volume.add_subparsers(dest="volume_command", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="create a volume (openstack volume create)")
    create.add_argument("name")
    create.add_argument("--size", type=int, required=True, metavar="GIB")
    create.add_argument("--type", help="volume type (StorageClass); default: the default class")
    src = create.add_mutually_exclusive_group()
    src.add_argument("--image", help="copy an image (NAME or PROJECT/NAME): a bootable volume")
    src.add_argument("--snapshot", help="restore a volume snapshot")
    src.add_argument("--source", help="clone a volume")
    create.add_argument("--bootable", action="store_true", default=None)
    create.add_argument("--multiattach", action="store_true")
    create.add_argument("--availability-zone")
    create.add_argument("--description")
    create.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    create.add_argument("--wait", action="store_true", help="wait until available (or error)")
    create.add_argument("--timeout", type=float, default=600.0)
    common_args(create)
    create.set_defaults(func=run(_create))

    lst = verbs.add_parser("list", help="list volumes")
    lst.add_argument("--long", action="store_true")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_list))

    show = verbs.add_parser("show", help="show a volume")
    show.add_argument("name")
    common_args(show)
    show.set_defaults(func=run(_show))

    set_ = verbs.add_parser("set", help="extend a volume or change its properties")
    set_.add_argument("name")
    set_.add_argument("--size", type=int, metavar="GIB", help="extend to this size")
    set_.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    set_.add_argument("--description")
    boot = set_.add_mutually_exclusive_group()
    boot.add_argument("--bootable", dest="bootable", action="store_true", default=None)
    boot.add_argument("--non-bootable", dest="bootable", action="store_false")
    common_args(set_)
    set_.set_defaults(func=run(_set))

    delete = verbs.add_parser("delete", help="delete volumes (refused while attached)")
    delete.add_argument("names", nargs="+")
    common_args(delete)
    delete.set_defaults(func=run(_delete))

    vtype = verbs.add_parser("type", help="volume types (StorageClasses)")
    tverbs = vtype.add_subparsers(dest="type_command", metavar="VERB")
    tverbs.required = True
    tlist = tverbs.add_parser("list", help="list volume types")
    tlist.add_argument("--long", action="store_true")
    tlist.add_argument("--default", action="store_true",
                       help="only the default volume type (what a volume without --type gets)")
    connection_args(tlist)
    list_args(tlist)
    tlist.set_defaults(func=run(_type_list))

    snap = verbs.add_parser("snapshot", help="volume snapshots (CSI VolumeSnapshots)")
    sverbs = snap.add_subparsers(dest="snapshot_command", metavar="VERB")
    sverbs.required = True
    screate = sverbs.add_parser("create", help="snapshot a volume")
    screate.add_argument("name")
    screate.add_argument("--volume", required=True)
    screate.add_argument("--description")
    common_args(screate)
    screate.set_defaults(func=run(_snapshot_create))
    slist = sverbs.add_parser("list", help="list volume snapshots")
    slist.add_argument("--long", action="store_true")
    connection_args(slist)
    list_args(slist)
    slist.set_defaults(func=run(_snapshot_list))
    sdelete = sverbs.add_parser("delete", help="delete volume snapshots")
    sdelete.add_argument("names", nargs="+")
    common_args(sdelete)
    sdelete.set_defaults(func=run(_snapshot_delete))


def volume_manifest(args: argparse.Namespace, namespace: str) -> dict:
    spec: dict[str, Any] = {"size": args.size}
    if args.type:
        spec["volumeType"] = args.type
    if args.image:
        spec["source"] = {"image": args.image}
    elif args.snapshot:
        spec["source"] = {"snapshot": args.snapshot}
    elif args.source:
        spec["source"] = {"volume": args.source}
    if args.bootable is not None:
        spec["bootable"] = args.bootable
    if args.multiattach:
        spec["multiattach"] = True
    if args.availability_zone:
        spec["availabilityZone"] = args.availability_zone
    if args.description:
        spec["description"] = args.description
    if args.property:
        spec["metadata"] = key_values(args.property)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Volume",
            "metadata": {"name": args.name, "namespace": namespace}, "spec": spec}


def volume_fields(vol: dict) -> dict[str, Any]:
    meta, spec, status = vol["metadata"], vol.get("spec") or {}, vol.get("status") or {}
    source = spec.get("source") or {}
    return {
        "id": meta.get("uid"), "name": meta["name"], "status": status.get("status") or "creating",
        "size": spec.get("size"), "type": status.get("volumeType") or spec.get("volumeType"),
        "bootable": bool(status.get("bootable") if status.get("bootable") is not None else source.get("image")),
        "multiattach": bool(spec.get("multiattach")), "attachments": status.get("attachments") or [],
        "attached_to": status.get("attachedTo") or "", "source_image": source.get("image"),
        "snapshot_id": source.get("snapshot"), "source_volid": source.get("volume"),
        "availability_zone": spec.get("availabilityZone"), "description": spec.get("description"),
        "properties": spec.get("metadata") or {}, "created_at": meta.get("creationTimestamp"),
        "reason": status.get("reason"),
    }


def _custom(args):
    from kubernetes import client

    return client.CustomObjectsApi(api_client(args))


def _create(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    vol = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "volumes", volume_manifest(args, ns),
                                                 field_validation="Strict")
    if args.wait:
        def settled():
            v = get_object(custom, ns, "volumes", args.name, "volume")
            return v if (v.get("status") or {}).get("status") in ("available", "in-use", "error") else None
        vol = wait_for(settled, args.timeout, f"volume {args.name} to become available")
    print_fields(volume_fields(vol), args.format)
    return 1 if (vol.get("status") or {}).get("status") == "error" else 0


def list_rows(volumes: list[dict], long: bool = False) -> tuple[list[str], list[list[Any]]]:
    """`openstack volume list [--long]`'s columns and rows, by name. Properties stay a dict:
    the shared output prints k='v' in a table and keeps the object in json / yaml."""
    headers = ["ID", "Name", "Status", "Size", "Attached to"]
    if long:
        headers = ["ID", "Name", "Status", "Size", "Type", "Bootable", "Attached to", "Properties"]
    rows = []
    for v in sorted(volumes, key=lambda v: v["metadata"]["name"]):
        f = volume_fields(v)
        if long:
            rows.append([f["id"], f["name"], f["status"], f["size"], f["type"], f["bootable"],
                         f["attached_to"], f["properties"]])
        else:
            rows.append([f["id"], f["name"], f["status"], f["size"], f["attached_to"]])
    return headers, rows


def _list(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    print_list(args, *list_rows(custom.list_namespaced_custom_object(GROUP, VERSION, ns, "volumes")["items"],
                                args.long))
    return 0


def _show(args: argparse.Namespace) -> int:
    custom = _custom(args)
    print_fields(volume_fields(get_object(custom, namespace_of(args), "volumes", args.name, "volume")),
                 args.format)
    return 0


def _set(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    vol = get_object(custom, ns, "volumes", args.name, "volume")
    spec: dict[str, Any] = {}
    if args.size is not None:
        if args.size < vol["spec"]["size"]:
            raise CliError(f"New size for extend must be greater than current size. "
                           f"(current: {vol['spec']['size']}, extended: {args.size})")
        spec["size"] = args.size
    if args.property:
        spec["metadata"] = key_values(args.property)
    if args.description is not None:
        spec["description"] = args.description
    if args.bootable is not None:
        spec["bootable"] = args.bootable
    if not spec:
        raise CliError("nothing to set")
    custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "volumes", args.name, {"spec": spec},
                                          field_validation="Strict")
    return 0


def _delete(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    failed = 0
    for name in args.names:
        get_object(custom, ns, "volumes", name, "volume")
        custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "volumes", name)
        reason = _refusal(custom, ns, "volumes", name)
        if reason is not None:
            print(f"Failed to delete volume {name}: {reason}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"Failed to delete {failed} of {len(args.names)} volumes.", file=sys.stderr)
        return 1
    return 0


def storage_class_rows(classes: list[dict]) -> list[dict[str, Any]]:
    out = []
    for sc in sorted(classes, key=lambda c: c["metadata"]["name"]):
        ann = sc["metadata"].get("annotations") or {}
        out.append({
            "id": sc["metadata"].get("uid"), "name": sc["metadata"]["name"],
            "is_default": ann.get(DEFAULT_CLASS_ANNOTATION) == "true",
            "provisioner": sc.get("provisioner"),
            "allow_extend": bool(sc.get("allowVolumeExpansion")),
            "multiattach": ann.get(MULTIATTACH_ANNOTATION) == "true",
            "properties": sc.get("parameters") or {},
            "description": ann.get(DESCRIPTION_ANNOTATION),
        })
    return out


def type_list_rows(classes: list[dict], long: bool = False, default: bool = False
                   ) -> tuple[list[str], list[list[Any]]]:
    """`openstack volume type list [--long] [--default]`'s columns and rows, by name.

    Every StorageClass is usable by every project: Is Public is True. Properties are the
    type's extra specs as Cinder names them: the class's parameters, `volume_backend_name`
    (the provisioner, the backend that serves the type) and `multiattach='<is> True'` for a
    multiattach type. `default` keeps only the default type, the one the operator gives a
    volume without a type (the first class marked default, by name); none is Cinder's error."""
    rows = storage_class_rows(classes)
    if default:
        rows = [r for r in rows if r["is_default"]][:1]
        if not rows:
            raise CliError("Default volume type can not be found.")
    headers = ["ID", "Name", "Is Public"]
    if long:
        headers += ["Description", "Properties"]
    out = []
    for r in rows:
        row = [r["id"], r["name"], True]
        if long:
            props = dict(r["properties"])
            if r["provisioner"]:
                props["volume_backend_name"] = r["provisioner"]
            if r["multiattach"]:
                props["multiattach"] = "<is> True"
            row += [r["description"], dict(sorted(props.items()))]
        out.append(row)
    return headers, out


def _type_list(args: argparse.Namespace) -> int:
    from kubernetes import client

    api = api_client(args)
    classes = [api.sanitize_for_serialization(c) for c in client.StorageV1Api(api).list_storage_class().items]
    print_list(args, *type_list_rows(classes, args.long, args.default))
    return 0


def snapshot_manifest(name: str, namespace: str, volume: str, description: str | None = None) -> dict:
    from kubestack.storage import names

    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {VOLUME_LABEL: volume}}
    if description:
        meta["annotations"] = {DESCRIPTION_ANNOTATION: description}
    return {"apiVersion": f"{SNAP_GROUP}/{SNAP_VERSION}", "kind": "VolumeSnapshot", "metadata": meta,
            "spec": {"source": {"persistentVolumeClaimName": names.volume_pvc(volume)}}}


def snapshot_fields(snap: dict) -> dict[str, Any]:
    from kubestack.storage.state import quantity_bytes

    meta, status = snap["metadata"], snap.get("status") or {}
    size = quantity_bytes(status.get("restoreSize"))
    state = "error" if status.get("error") else ("available" if status.get("readyToUse") else "creating")
    return {"id": meta.get("uid"), "name": meta["name"],
            "description": (meta.get("annotations") or {}).get(DESCRIPTION_ANNOTATION),
            "status": state, "size": -(-size // 1024**3) if size else None,
            "volume": (meta.get("labels") or {}).get(VOLUME_LABEL),
            "created_at": status.get("creationTime") or meta.get("creationTimestamp")}


def _snapshot_create(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    get_object(custom, ns, "volumes", args.volume, "volume")
    snap = custom.create_namespaced_custom_object(SNAP_GROUP, SNAP_VERSION, ns, "volumesnapshots",
                                                  snapshot_manifest(args.name, ns, args.volume, args.description),
                                                  field_validation="Strict")
    print_fields(snapshot_fields(snap), args.format)
    return 0


def snapshot_list_rows(snaps: list[dict], long: bool = False) -> tuple[list[str], list[list[Any]]]:
    """`openstack volume snapshot list [--long]`'s columns and rows, by name (Volume: the
    volume's name; Properties: a snapshot has none but its description)."""
    headers = ["ID", "Name", "Description", "Status", "Size"]
    if long:
        headers += ["Created At", "Volume", "Properties"]
    rows = []
    for s in sorted(snaps, key=lambda s: s["metadata"]["name"]):
        f = snapshot_fields(s)
        row = [f["id"], f["name"], f["description"], f["status"], f["size"]]
        if long:
            row += [f["created_at"], f["volume"], {}]
        rows.append(row)
    return headers, rows


def _snapshot_list(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    snaps = custom.list_namespaced_custom_object(SNAP_GROUP, SNAP_VERSION, ns, "volumesnapshots")["items"]
    print_list(args, *snapshot_list_rows(snaps, args.long))
    return 0


def _snapshot_delete(args: argparse.Namespace) -> int:
    custom = _custom(args)
    ns = namespace_of(args)
    for name in args.names:
        custom.delete_namespaced_custom_object(SNAP_GROUP, SNAP_VERSION, ns, "volumesnapshots", name)
    return 0

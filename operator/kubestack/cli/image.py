"""`kubestack image ...`: Glance's verbs on Image objects, like `openstack image ...`.

    kubestack image create NAME (--url U | --file F | --registry R | --volume V | --server S)
                           [--disk-format F] [--container-format F] [--min-disk G] [--min-ram M]
                           [--public | --private | --shared | --community] [--member P ...]
                           [--property k=v ...] [--tag T ...] [--protected] [--container-disk]
                           [--wait]
    kubestack image list [--long]          images this project may use (its own, public,
                                           community, shared with it); the shared list
                                           output (cli.output): -f table|json|yaml|value|csv,
                                           -c COLUMN, --no-headers
    kubestack image show NAME
    kubestack image set NAME [--public|...] [--protected|--unprotected] [--property k=v]
                             [--remove-property k] [--tag T] [--min-disk G] [--min-ram M]
    kubestack image delete NAME [NAME ...]

`--file` uploads a local file. The Image is created with `source.upload`; once CDI reports
the DataVolume `<name>-image` UploadReady the file is sent:

* on a real cluster, the CDI way: an `UploadTokenRequest` (upload.cdi.kubevirt.io/v1beta1)
  for the PVC yields a token, and the file is streamed with `PUT <proxy>/v1beta1/upload`
  (`Authorization: Bearer <token>`) to CDI's upload proxy — `--uploadproxy-url`, else the
  `uploadProxyURL` CDI publishes in CDIConfig `config` status;
* on the local control plane (the PVC's StorageClass is served by `kubestack simulate`, which
  has no upload proxy), the file is read through and the simulator is told the upload is
  complete with the DataVolume annotation `simulator.kubestack.io/uploaded: "true"`.

Options shared with `kubestack volume`: `--kubeconfig`, `-n/--project` (default: the
kubeconfig context's namespace), `-f/--format table|json|yaml` (the lists: the shared list
options above).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

# the one CLI support layer: errors, connections, waiting (shared with every verb)
from kubestack.cli.output import (
    CliError, api_client, connection_args, key_values, list_args, namespace_of, print_list, render_table, run,
)
from kubestack.cli.output import poll as wait_for

GROUP, VERSION = "kubestack.io", "v1alpha1"
CDI_GROUP, CDI_VERSION = "cdi.kubevirt.io", "v1beta1"
UPLOAD_GROUP, UPLOAD_VERSION = "upload.cdi.kubevirt.io", "v1beta1"
SIMULATED_PROVISIONER = "kubestack.io/simulated"
UPLOADED_ANNOTATION = "simulator.kubestack.io/uploaded"
CHUNK = 1024 * 1024


# ---------------------------------------------------------------------------- shared helpers


def common_args(p: argparse.ArgumentParser) -> None:
    connection_args(p)
    p.add_argument("-f", "--format", choices=("table", "json", "yaml"), default="table",
                   help="output format (default table)")


def print_table(headers: list[str], rows: list[list[Any]], fmt: str = "table",
                records: list[dict] | None = None) -> None:
    if fmt != "table":
        data = records if records is not None else [dict(zip(headers, r)) for r in rows]
        print_data(data, fmt)
        return
    print(render_table(headers, rows))


def print_fields(fields: dict[str, Any], fmt: str = "table") -> None:
    if fmt != "table":
        print_data(fields, fmt)
        return
    rows = []
    for k, v in fields.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v, sort_keys=True) if v else ""
        rows.append([k, v])
    print_table(["Field", "Value"], rows)


def print_data(data: Any, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=True, default_flow_style=False), end="")


def get_object(custom, namespace: str, plural: str, name: str, kind: str) -> dict:
    from kubernetes.client.rest import ApiException

    try:
        return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            raise CliError(f"No {kind} found for {name}") from None
        raise


# ---------------------------------------------------------------------------- verbs


def register(sub: argparse._SubParsersAction) -> None:
    image = sub.add_parser("image", help="Glance images: create (import/upload/snapshot), list, show, set, delete")
    verbs = image.add_subparsers(dest="image_command", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="create an image (openstack image create)")
    create.add_argument("name")
    src = create.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="import from an http(s) URL")
    src.add_argument("--file", help="upload a local file")
    src.add_argument("--registry", help="import a container disk, e.g. docker://quay.io/containerdisks/fedora:40")
    src.add_argument("--volume", help="create from a Volume (openstack image create --volume)")
    src.add_argument("--server", help="snapshot a Server's root disk (openstack server image create)")
    create.add_argument("--disk-format", default="qcow2")
    create.add_argument("--container-format", default="bare")
    create.add_argument("--min-disk", type=int, default=None, metavar="GIB")
    create.add_argument("--min-ram", type=int, default=None, metavar="MIB")
    _visibility_args(create)
    create.add_argument("--member", action="append", default=[], help="project to share with (repeatable)")
    create.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    create.add_argument("--tag", action="append", default=[])
    create.add_argument("--protected", action="store_true", default=None)
    create.add_argument("--container-disk", action="store_true",
                        help="boot a --registry image directly as a containerDisk (no PVC)")
    create.add_argument("--description")
    create.add_argument("--wait", action="store_true", help="wait until active (or killed)")
    create.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
    create.add_argument("--uploadproxy-url", help="CDI upload proxy URL (default: from CDIConfig)")
    create.add_argument("--insecure", action="store_true", help="do not verify the upload proxy's certificate")
    common_args(create)
    create.set_defaults(func=run(_create))

    lst = verbs.add_parser("list", help="list images this project may use")
    lst.add_argument("--long", action="store_true")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_list))

    show = verbs.add_parser("show", help="show an image")
    show.add_argument("name", help="NAME or PROJECT/NAME")
    common_args(show)
    show.set_defaults(func=run(_show))

    set_ = verbs.add_parser("set", help="change an image's properties")
    set_.add_argument("name")
    _visibility_args(set_)
    set_.add_argument("--member", action="append", default=None)
    prot = set_.add_mutually_exclusive_group()
    prot.add_argument("--protected", dest="protected", action="store_true", default=None)
    prot.add_argument("--unprotected", dest="protected", action="store_false")
    set_.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    set_.add_argument("--remove-property", action="append", default=[], metavar="KEY")
    set_.add_argument("--tag", action="append", default=[])
    set_.add_argument("--min-disk", type=int, default=None)
    set_.add_argument("--min-ram", type=int, default=None)
    set_.add_argument("--description")
    common_args(set_)
    set_.set_defaults(func=run(_set))

    delete = verbs.add_parser("delete", help="delete images (refused while protected or in use)")
    delete.add_argument("names", nargs="+")
    common_args(delete)
    delete.set_defaults(func=run(_delete))


def _visibility_args(p: argparse.ArgumentParser) -> None:
    vis = p.add_mutually_exclusive_group()
    for v in ("public", "private", "shared", "community"):
        vis.add_argument(f"--{v}", dest="visibility", action="store_const", const=v)


def image_manifest(args: argparse.Namespace, namespace: str) -> dict:
    """The Image object `image create` submits (without talking to the cluster)."""
    if args.url:
        source: dict[str, Any] = {"url": args.url}
    elif args.registry:
        source = {"registry": args.registry if "://" in args.registry else f"docker://{args.registry}"}
    elif args.volume:
        source = {"volume": {"name": args.volume}}
    elif args.server:
        source = {"serverSnapshot": {"server": args.server}}
    else:
        try:
            size = os.path.getsize(args.file)
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
        source = {"upload": {"expectedSize": size} if size else {}}
    spec: dict[str, Any] = {"source": source, "diskFormat": args.disk_format,
                            "containerFormat": args.container_format}
    if args.min_disk is not None:
        spec["minDisk"] = args.min_disk
    if args.min_ram is not None:
        spec["minRam"] = args.min_ram
    visibility = args.visibility or ("shared" if args.member else None)
    if visibility:
        spec["visibility"] = visibility
    if args.member:
        spec["members"] = sorted(set(args.member))
    if args.property:
        spec["properties"] = key_values(args.property)
    if args.tag:
        spec["tags"] = sorted(set(args.tag))
    if args.protected:
        spec["protected"] = True
    if args.container_disk:
        spec["containerDisk"] = True
    if args.description:
        spec["description"] = args.description
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Image",
            "metadata": {"name": args.name, "namespace": namespace}, "spec": spec}


def image_fields(img: dict) -> dict[str, Any]:
    """`openstack image show`'s fields."""
    meta, spec, status = img["metadata"], img.get("spec") or {}, img.get("status") or {}
    return {
        "id": meta.get("uid"), "name": meta["name"], "owner": meta["namespace"],
        "status": status.get("status") or "queued", "visibility": spec.get("visibility", "private"),
        "protected": bool(spec.get("protected")), "disk_format": spec.get("diskFormat", "qcow2"),
        "container_format": spec.get("containerFormat", "bare"), "min_disk": spec.get("minDisk", 0),
        "min_ram": spec.get("minRam", 0), "size": status.get("size"),
        "virtual_size": status.get("virtualSize"), "checksum": status.get("checksum"),
        "progress": status.get("progress"), "properties": spec.get("properties") or {},
        "tags": spec.get("tags") or [], "members": spec.get("members") or [],
        "created_at": meta.get("creationTimestamp"), "reason": status.get("reason"),
        "file": status.get("pvc"),
    }


def _create(args: argparse.Namespace) -> int:
    from kubernetes import client

    api = api_client(args)
    custom = client.CustomObjectsApi(api)
    ns = namespace_of(args)
    body = image_manifest(args, ns)
    img = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "images", body,
                                                 field_validation="Strict")
    if args.file:
        upload_file(api, ns, args.name, args.file, timeout=args.timeout,
                    proxy_url=args.uploadproxy_url, insecure=args.insecure)
    if args.wait or args.file:
        img = wait_for(lambda: _final_image(custom, ns, args.name), args.timeout,
                       f"image {args.name} to become active")
    print_fields(image_fields(img), args.format)
    return 1 if (img.get("status") or {}).get("status") == "killed" else 0


def _final_image(custom, ns: str, name: str) -> dict | None:
    img = get_object(custom, ns, "images", name, "image")
    return img if (img.get("status") or {}).get("status") in ("active", "killed") else None


def upload_file(api, namespace: str, image: str, path: str, *, timeout: float,
                proxy_url: str | None = None, insecure: bool = False) -> None:
    """Send `path` into the Image's upload DataVolume (see the module docstring)."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    dv_name = _image_pvc(image)

    def upload_ready():
        img = get_object(custom, namespace, "images", image, "image")
        if (img.get("status") or {}).get("status") == "killed":
            raise CliError(f"image {image} was killed: {(img.get('status') or {}).get('reason')}")
        try:
            dv = custom.get_namespaced_custom_object(CDI_GROUP, CDI_VERSION, namespace, "datavolumes", dv_name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dv if (dv.get("status") or {}).get("phase") == "UploadReady" else None

    dv = wait_for(upload_ready, timeout, f"DataVolume {dv_name} to be UploadReady")
    claim = (dv.get("status") or {}).get("claimName") or dv_name
    if _simulated_claim(api, namespace, claim):
        with open(path, "rb") as fh:  # read through: the simulator keeps no data
            while fh.read(CHUNK):
                pass
        custom.patch_namespaced_custom_object(
            CDI_GROUP, CDI_VERSION, namespace, "datavolumes", dv_name,
            {"metadata": {"annotations": {UPLOADED_ANNOTATION: "true"}}})
        return
    token = _upload_token(custom, namespace, claim)
    url = (proxy_url or _upload_proxy_url(custom)).rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    _put_file(f"{url}/v1beta1/upload", token, path, insecure)


def _image_pvc(image: str) -> str:
    from kubestack.storage import names

    return names.image_pvc(image)


def _simulated_claim(api, namespace: str, claim: str) -> bool:
    from kubernetes import client

    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
    sc_name = pvc.spec.storage_class_name
    if not sc_name:
        return False
    try:
        return storage.read_storage_class(sc_name).provisioner == SIMULATED_PROVISIONER
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _upload_token(custom, namespace: str, claim: str) -> str:
    body = {"apiVersion": f"{UPLOAD_GROUP}/{UPLOAD_VERSION}", "kind": "UploadTokenRequest",
            "metadata": {"name": claim, "namespace": namespace}, "spec": {"pvcName": claim}}
    answer = custom.create_namespaced_custom_object(UPLOAD_GROUP, UPLOAD_VERSION, namespace,
                                                    "uploadtokenrequests", body)
    token = (answer.get("status") or {}).get("token")
    if not token:
        raise CliError("CDI's upload API returned no token")
    return token


def _upload_proxy_url(custom) -> str:
    from kubernetes import client

    try:
        cdi_config = custom.get_cluster_custom_object(CDI_GROUP, CDI_VERSION, "cdiconfigs", "config")
    except client.ApiException as exc:
        raise CliError("no --uploadproxy-url given and CDIConfig 'config' is not readable "
                       f"({exc.status} {exc.reason})") from None
    url = (cdi_config.get("status") or {}).get("uploadProxyURL") or \
        (cdi_config.get("spec") or {}).get("uploadProxyURLOverride")
    if not url:
        raise CliError("CDI publishes no uploadProxyURL: pass --uploadproxy-url")
    return url


def _put_file(url: str, token: str, path: str, insecure: bool) -> None:
    import ssl
    import urllib.error
    import urllib.request

    size = os.path.getsize(path)
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with open(path, "rb") as fh:
        request = urllib.request.Request(url, data=fh, method="PUT", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
            "Content-Length": str(size)})
        try:
            with urllib.request.urlopen(request, context=context) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise CliError(f"upload proxy answered {exc.code}: {exc.read().decode(errors='replace')[:500]}") from None
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach the upload proxy {url}: {exc.reason}") from None


def visible_images(custom, namespace: str) -> list[dict]:
    """This project's images plus those other projects share with it (public, community,
    shared with it); only this project's when the caller may not list across projects."""
    from kubernetes import client

    from kubestack.storage.refs import image_visible_to

    try:
        items = custom.list_cluster_custom_object(GROUP, VERSION, "images")["items"]
    except client.ApiException as exc:
        if exc.status != 403:
            raise
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "images")["items"]
    return [i for i in items if image_visible_to(i, namespace)]


def _display_name(img: dict, namespace: str) -> str:
    meta = img["metadata"]
    return meta["name"] if meta["namespace"] == namespace else f"{meta['namespace']}/{meta['name']}"


def list_rows(images: list[dict], namespace: str, long: bool = False) -> tuple[list[str], list[list[Any]]]:
    """`openstack image list [--long]`'s columns and rows for `images` as seen from project
    `namespace` (another project's image is named PROJECT/NAME), by name."""
    headers = ["ID", "Name", "Status"]
    if long:
        headers = ["ID", "Name", "Disk Format", "Container Format", "Size", "Checksum", "Status",
                   "Visibility", "Protected", "Project", "Tags"]
    rows = []
    for img in sorted(images, key=lambda i: _display_name(i, namespace)):
        f = image_fields(img)
        if long:
            rows.append([f["id"], _display_name(img, namespace), f["disk_format"], f["container_format"],
                         f["size"], f["checksum"], f["status"], f["visibility"], f["protected"], f["owner"],
                         f["tags"]])
        else:
            rows.append([f["id"], _display_name(img, namespace), f["status"]])
    return headers, rows


def _list(args: argparse.Namespace) -> int:
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client(args))
    ns = namespace_of(args)
    print_list(args, *list_rows(visible_images(custom, ns), ns, args.long))
    return 0


def _show(args: argparse.Namespace) -> int:
    from kubernetes import client

    from kubestack.storage.refs import image_visible_to, parse_ref

    custom = client.CustomObjectsApi(api_client(args))
    ns = namespace_of(args)
    ins, name = parse_ref(args.name, ns)
    img = get_object(custom, ins, "images", name, "image")
    if not image_visible_to(img, ns):
        raise CliError(f"No image found for {args.name}")
    print_fields(image_fields(img), args.format)
    return 0


def _set(args: argparse.Namespace) -> int:
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client(args))
    ns = namespace_of(args)
    img = get_object(custom, ns, "images", args.name, "image")
    spec: dict[str, Any] = {}
    if args.visibility:
        spec["visibility"] = args.visibility
        if args.visibility != "shared" and (img.get("spec") or {}).get("members"):
            spec["members"] = None
    if args.member is not None:
        spec["members"] = sorted(set(args.member))
    if args.protected is not None:
        spec["protected"] = args.protected
    props: dict[str, Any] = key_values(args.property)
    for k in args.remove_property:
        props[k] = None
    if props:
        spec["properties"] = props
    if args.tag:
        spec["tags"] = sorted(set((img.get("spec") or {}).get("tags") or []) | set(args.tag))
    if args.min_disk is not None:
        spec["minDisk"] = args.min_disk
    if args.min_ram is not None:
        spec["minRam"] = args.min_ram
    if args.description is not None:
        spec["description"] = args.description
    if not spec:
        raise CliError("nothing to set")
    custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "images", args.name, {"spec": spec},
                                          field_validation="Strict")
    return 0


def _delete(args: argparse.Namespace) -> int:
    """Delete, then report a refusal (protected / in use) the operator records in status."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client(args))
    ns = namespace_of(args)
    failed = 0
    for name in args.names:
        get_object(custom, ns, "images", name, "image")
        custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "images", name)
        img = _refusal(custom, ns, "images", name)
        if img is not None:
            print(f"Failed to delete image {name}: {img}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"Failed to delete {failed} of {len(args.names)} images.", file=sys.stderr)
        return 1
    return 0


def _refusal(custom, ns: str, plural: str, name: str, timeout: float = 10.0) -> str | None:
    """The reason the operator keeps `name` after a delete, or None once it is gone."""
    from kubernetes import client

    deadline = time.monotonic() + timeout
    while True:
        try:
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        reason = (obj.get("status") or {}).get("reason") or ""
        if "cannot be deleted" in reason:
            return reason
        if time.monotonic() > deadline:
            return None  # still finishing (finalizer); the operator's Events tell the rest
        time.sleep(0.3)

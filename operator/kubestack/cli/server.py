"""`kubestack server ...`: Nova's server verbs on Server objects, like `openstack server ...`.

    kubestack server create NAME --flavor F (--image I | --volume V) [--key-name K]
                            [--user-data FILE] [--network N ...] [--nic net-id=N,v4-fixed-ip=IP ...]
                            [--port P ...] [--security-group G ...] [--availability-zone Z]
                            [--hint group=G|same_host=S|different_host=S|query=J ...]
                            [--property k=v ...] [--config-drive] [--hostname H] [--description D]
                            [--min N] [--max N] [--wait]
    kubestack server list [--long] [--status S] [--host H] [--name REGEX]
    kubestack server show NAME
    kubestack server delete NAME... [--wait]
    kubestack server start|stop|pause|unpause|suspend|resume|shelve|unshelve NAME... [--wait]
    kubestack server reboot [--hard|--soft] NAME... [--wait]
    kubestack server rebuild NAME [--image I] [--wait]
    kubestack server resize NAME --flavor F [--wait]
    kubestack server resize confirm NAME [--wait]
    kubestack server resize revert NAME [--wait]
    kubestack server migrate NAME [--live|--live-migration] [--host H] [--wait]
    kubestack server console log NAME [--lines N]
    kubestack server event list NAME
    kubestack server group create|list|show|delete ...   (kubestack.cli.servergroup)

Every verb writes the Server's spec (the declarative field the operator acts on) and, with
`--wait`, polls the Server until the operator reports the expected state: start/unpause/
resume/unshelve/reboot/rebuild/confirm/revert/migrate -> ACTIVE, stop -> SHUTOFF,
pause -> PAUSED, suspend -> SUSPENDED, shelve -> SHELVED_OFFLOADED, resize -> VERIFY_RESIZE,
delete -> gone. ERROR (or a fault recorded for the request) ends the wait with exit code 1.
Imperative requests (reboot, rebuild, migrate) carry a new request id, so repeating a verb
asks again.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from kubestack.cli.output import (
    GROUP, VERSION, CliError, api_client, connection_args, get_or_none, key_values, list_args,
    manifest, namespace_of, poll, print_list, run, show_args, updated_at, format_show,
)

PLURAL = "servers"
USER_DATA_MAX = 65536
POWER_STATE_NAMES = {"NOSTATE": "NOSTATE", "RUNNING": "Running", "PAUSED": "Paused", "SHUTDOWN": "Shutdown",
                     "CRASHED": "Crashed", "SUSPENDED": "Suspended"}

# verb -> (spec.powerState, the Nova status --wait expects)
POWER_VERBS = {
    "start": ("Running", "ACTIVE", "Start server(s)"),
    "stop": ("Stopped", "SHUTOFF", "Stop server(s)"),
    "pause": ("Paused", "PAUSED", "Pause server(s)"),
    "unpause": ("Running", "ACTIVE", "Unpause server(s)"),
    "suspend": ("Suspended", "SUSPENDED", "Suspend server(s)"),
    "resume": ("Running", "ACTIVE", "Resume server(s)"),
    "shelve": ("Shelved", "SHELVED_OFFLOADED", "Shelve server(s): VM removed, disks and addresses kept"),
    "unshelve": ("Running", "ACTIVE", "Unshelve server(s): scheduled and booted again"),
}
HINT_LISTS = ("same_host", "different_host")
HINT_VALUES = {"query": "query", "build_near_host_ip": "buildNearHostIp", "cidr": "cidr"}


# ---------------------------------------------------------------------------- parser


def _wait_args(p: argparse.ArgumentParser, default_timeout: float = 600.0) -> None:
    p.add_argument("--wait", action="store_true", help="wait until the operator reports the expected state")
    p.add_argument("--timeout", type=float, default=default_timeout, help="seconds to wait (default %(default)s)")


def register(sub: argparse._SubParsersAction) -> None:
    server = sub.add_parser("server", help="Nova servers: create, list, show, delete and every server action")
    verbs = server.add_subparsers(dest="server_command", metavar="VERB")
    verbs.required = True
    server.verbs = verbs  # `server group` (kubestack.cli.servergroup) adds itself here

    create = verbs.add_parser("create", help="boot a server (openstack server create)")
    create.add_argument("name")
    create.add_argument("--flavor", required=True)
    boot = create.add_mutually_exclusive_group(required=True)
    boot.add_argument("--image", help="image NAME or PROJECT/NAME")
    boot.add_argument("--volume", help="boot from this existing volume")
    create.add_argument("--key-name")
    create.add_argument("--user-data", metavar="FILE", help="cloud-config or script (at most 64 KiB)")
    create.add_argument("--network", action="append", default=[], help="network to plug (repeatable)")
    create.add_argument("--port", action="append", default=[], help="existing port to plug (repeatable)")
    create.add_argument("--nic", action="append", default=[],
                        metavar="net-id=NET[,v4-fixed-ip=IP][,v6-fixed-ip=IP][,port-id=PORT][,tag=TAG]|none|auto")
    create.add_argument("--security-group", action="append", default=[], help="repeatable; default: default")
    create.add_argument("--availability-zone", metavar="ZONE[:HOST[:NODE]]")
    create.add_argument("--hint", action="append", default=[], metavar="KEY=VALUE",
                        help="scheduler hint: group=G, same_host=S, different_host=S, query=JSON, "
                             "build_near_host_ip=IP, cidr=/N (repeatable)")
    create.add_argument("--server-group", help="join this server group (same as --hint group=G)")
    create.add_argument("--property", action="append", default=[], metavar="KEY=VALUE", help="server metadata")
    create.add_argument("--config-drive", action="store_true")
    create.add_argument("--hostname")
    create.add_argument("--description")
    create.add_argument("--min", type=int, default=None, dest="min_count")
    create.add_argument("--max", type=int, default=None, dest="max_count")
    _wait_args(create)
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_create))

    lst = verbs.add_parser("list", help="list servers")
    lst.add_argument("--long", action="store_true")
    lst.add_argument("--status", help="only servers in this status (e.g. ACTIVE)")
    lst.add_argument("--host", help="only servers on this host")
    lst.add_argument("--name", help="only servers whose name matches this regular expression")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_list))

    show = verbs.add_parser("show", help="show a server")
    show.add_argument("name")
    connection_args(show)
    show_args(show)
    show.set_defaults(func=run(_show))

    delete = verbs.add_parser("delete", help="delete servers")
    delete.add_argument("names", nargs="+")
    _wait_args(delete)
    connection_args(delete)
    delete.set_defaults(func=run(_delete))

    for verb, (_, _, help_) in POWER_VERBS.items():
        p = verbs.add_parser(verb, help=help_)
        p.add_argument("names", nargs="+")
        _wait_args(p)
        connection_args(p)
        p.set_defaults(func=run(_power), power_verb=verb)

    reboot = verbs.add_parser("reboot", help="reboot servers (soft by default)")
    kind = reboot.add_mutually_exclusive_group()
    kind.add_argument("--hard", dest="hard", action="store_true", default=False)
    kind.add_argument("--soft", dest="hard", action="store_false")
    reboot.add_argument("names", nargs="+")
    _wait_args(reboot)
    connection_args(reboot)
    reboot.set_defaults(func=run(_reboot))

    rebuild = verbs.add_parser("rebuild", help="rebuild a server (a new root disk), optionally from another image")
    rebuild.add_argument("name")
    rebuild.add_argument("--image")
    _wait_args(rebuild)
    connection_args(rebuild)
    rebuild.set_defaults(func=run(_rebuild))

    resize = verbs.add_parser("resize", help="resize a server: `resize NAME --flavor F`, `resize confirm NAME`, "
                                             "`resize revert NAME`")
    resize.add_argument("words", nargs="+", metavar="NAME | confirm NAME | revert NAME")
    resize.add_argument("--flavor")
    _wait_args(resize)
    connection_args(resize)
    resize.set_defaults(func=run(_resize))

    migrate = verbs.add_parser("migrate", help="migrate a server to another host")
    migrate.add_argument("name")
    migrate.add_argument("--live", "--live-migration", dest="live", action="store_true", default=False,
                         help="live-migrate (the guest keeps running)")
    migrate.add_argument("--host", help="target host (default: the scheduler picks)")
    _wait_args(migrate)
    connection_args(migrate)
    migrate.set_defaults(func=run(_migrate))

    console = verbs.add_parser("console", help="console log")
    cverbs = console.add_subparsers(dest="console_command", metavar="VERB")
    cverbs.required = True
    log = cverbs.add_parser("log", help="show the server's console log (or what is known when there is none)")
    log.add_argument("name")
    log.add_argument("--lines", type=int, default=None, help="only the last N lines")
    connection_args(log)
    log.set_defaults(func=run(console_log))

    event = verbs.add_parser("event", help="server events (actions)")
    everbs = event.add_subparsers(dest="event_command", metavar="VERB")
    everbs.required = True
    elist = everbs.add_parser("list", help="list a server's events")
    elist.add_argument("name")
    elist.add_argument("--long", action="store_true")
    connection_args(elist)
    list_args(elist)
    elist.set_defaults(func=run(_event_list))


# ---------------------------------------------------------------------------- pure parts


def parse_nic(text: str) -> dict[str, Any] | None:
    """`--nic` as openstackclient takes it; None for `none` / `auto` (the pod network only)."""
    if text in ("none", "auto"):
        return None
    out: dict[str, Any] = {}
    for part in text.split(","):
        if "=" not in part:
            raise CliError(f"--nic {text!r}: expected KEY=VALUE pairs (net-id, v4-fixed-ip, v6-fixed-ip, "
                           f"port-id, tag), or none / auto")
        k, v = part.split("=", 1)
        if k == "net-id":
            out["network"] = v
        elif k in ("v4-fixed-ip", "v6-fixed-ip"):
            if "fixedIp" in out:
                raise CliError(f"--nic {text!r}: give one fixed IP per interface")
            out["fixedIp"] = v
        elif k == "port-id":
            out["port"] = v
        elif k == "tag":
            out["tag"] = v
        else:
            raise CliError(f"--nic {text!r}: unknown key {k!r}")
    if "network" not in out and "port" not in out:
        raise CliError(f"--nic {text!r}: net-id or port-id is required")
    if "network" in out and "port" in out:
        raise CliError(f"--nic {text!r}: give net-id or port-id, not both")
    return out


def parse_hints(items: list[str]) -> tuple[str | None, dict[str, Any]]:
    """(server group, schedulerHints) from `--hint KEY=VALUE` options."""
    group = None
    hints: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CliError(f"--hint {item!r} must be KEY=VALUE")
        k, v = item.split("=", 1)
        if k == "group":
            group = v
        elif k in HINT_LISTS:
            key = "sameHost" if k == "same_host" else "differentHost"
            hints.setdefault(key, []).append(v)
        elif k in HINT_VALUES:
            hints[HINT_VALUES[k]] = v
        else:
            raise CliError(f"--hint {k!r} is not a known scheduler hint (group, same_host, different_host, "
                           f"query, build_near_host_ip, cidr)")
    return group, hints


def server_manifest(args: argparse.Namespace, namespace: str, user_data: str | None = None) -> dict:
    """The Server object `server create` submits (pure)."""
    spec: dict[str, Any] = {"flavor": args.flavor}
    if args.image:
        spec["image"] = args.image
    else:
        spec["bootVolume"] = {"volume": args.volume}
    networks: list[dict[str, Any]] = [{"network": n} for n in args.network]
    networks += [{"port": p} for p in args.port]
    for nic in args.nic:
        parsed = parse_nic(nic)
        if parsed is not None:
            networks.append(parsed)
    if networks:
        spec["networks"] = networks
    if args.security_group:
        spec["securityGroups"] = sorted(set(args.security_group))
    if args.key_name:
        spec["keyName"] = args.key_name
    if user_data is not None:
        spec["userData"] = user_data
    if args.availability_zone:
        spec["availabilityZone"] = args.availability_zone
    group, hints = parse_hints(args.hint)
    if args.server_group and group and args.server_group != group:
        raise CliError(f"--server-group {args.server_group} and --hint group={group} disagree")
    if args.server_group or group:
        spec["serverGroup"] = args.server_group or group
    if hints:
        spec["schedulerHints"] = hints
    if args.property:
        spec["metadata"] = key_values(args.property)
    if args.config_drive:
        spec["configDrive"] = True
    if args.hostname:
        spec["hostname"] = args.hostname
    if args.description:
        spec["description"] = args.description
    if args.min_count is not None or args.max_count is not None:
        low = args.min_count or 1
        high = args.max_count if args.max_count is not None else low
        if high < low:
            raise CliError("min instances should be <= max instances")
        spec["minCount"], spec["maxCount"] = low, high
    return manifest("Server", args.name, spec, namespace)


def read_user_data(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(os.path.expanduser(path), "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CliError(f"Can't open '{path}': {exc.strerror}") from None
    if len(data) > USER_DATA_MAX:
        raise CliError(f"user data is {len(data)} bytes; Nova takes at most {USER_DATA_MAX}")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise CliError("user data must be text (cloud-config or a script)") from None


def power_state_name(value: str | None) -> str:
    return POWER_STATE_NAMES.get(value or "NOSTATE", value or "NOSTATE")


def host_id(namespace: str, host: str | None) -> str:
    """Nova's hostId: an opaque per-project id of the host (sha224 of project + host)."""
    return hashlib.sha224((namespace + host).encode()).hexdigest() if host else ""


def image_of(server: dict) -> str:
    st, spec = server.get("status") or {}, server.get("spec") or {}
    name = st.get("imageName") or spec.get("image")
    return name or "N/A (booted from volume)"


def addresses_text(addresses: dict[str, list[dict]]) -> str:
    return "; ".join(f"{net}=" + ", ".join(a["addr"] for a in addrs) for net, addrs in sorted(addresses.items()))


def server_fields(server: dict) -> tuple[dict[str, Any], dict[str, str]]:
    """`openstack server show`'s fields (Nova's names), and their table renderings where
    they differ from the generic one."""
    meta, spec, st = server["metadata"], server.get("spec") or {}, server.get("status") or {}
    ns = meta.get("namespace") or ""
    addresses = {net: [{"addr": a.get("addr"), "version": a.get("version", 4),
                        "OS-EXT-IPS:type": a.get("type", "fixed"),
                        **({"OS-EXT-IPS-MAC:mac_addr": a["macAddr"]} if a.get("macAddr") else {})}
                       for a in addrs]
                 for net, addrs in (st.get("addresses") or {}).items()}
    flavor = st.get("flavor") or {}
    flavor_field = {
        "original_name": st.get("flavorName") or spec.get("flavor"),
        "vcpus": flavor.get("vcpus"), "ram": flavor.get("ram"), "disk": flavor.get("disk"),
        "ephemeral": flavor.get("ephemeral"), "swap": flavor.get("swap"),
        "extra_specs": flavor.get("extraSpecs") or {},
    } if flavor else {"original_name": spec.get("flavor")}
    volumes = []
    if (spec.get("bootVolume") or {}).get("volume"):
        volumes.append({"id": spec["bootVolume"]["volume"], "delete_on_termination": bool(
            spec["bootVolume"].get("deleteOnTermination"))})
    for bdm in spec.get("blockDeviceMapping") or []:
        if bdm.get("sourceType") == "volume" and bdm.get("name"):
            volumes.append({"id": bdm["name"], "delete_on_termination": bool(bdm.get("deleteOnTermination"))})
    group = spec.get("serverGroup") or (spec.get("schedulerHints") or {}).get("group")
    fields: dict[str, Any] = {
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": st.get("availabilityZone") or "",
        "OS-EXT-SRV-ATTR:host": st.get("host"),
        "OS-EXT-SRV-ATTR:hypervisor_hostname": st.get("hypervisorHostname"),
        "OS-EXT-SRV-ATTR:instance_name": st.get("virtualMachine"),
        "OS-EXT-STS:power_state": power_state_name(st.get("powerState")),
        "OS-EXT-STS:task_state": st.get("taskState"),
        "OS-EXT-STS:vm_state": st.get("vmState"),
        "OS-SRV-USG:launched_at": st.get("launchedAt"),
        "OS-SRV-USG:terminated_at": st.get("terminatedAt"),
        "accessIPv4": "",
        "accessIPv6": "",
        "addresses": addresses,
        "config_drive": "True" if spec.get("configDrive") else "",
        "created": meta.get("creationTimestamp"),
        "description": spec.get("description"),
        "flavor": flavor_field,
        "hostId": host_id(ns, st.get("host")),
        "id": meta.get("uid"),
        "image": image_of(server),
        "key_name": spec.get("keyName"),
        "name": meta["name"],
        "progress": 0,
        "project_id": ns,
        "properties": dict(spec.get("metadata") or {}),
        "security_groups": [{"name": g} for g in spec.get("securityGroups", ["default"])],
        "server_groups": [group] if group else [],
        "status": st.get("status") or "BUILD",
        "updated": updated_at(server),
        "volumes_attached": volumes,
    }
    if st.get("fault"):
        fields["fault"] = {k: v for k, v in st["fault"].items() if v is not None}
        fields = dict(sorted(fields.items()))
    human = {"addresses": addresses_text(st.get("addresses") or {})}
    if st.get("fault"):
        f = st["fault"]
        human["fault"] = f"code={f.get('code')}, message={f.get('message')}" + (
            f", created={f['created']}" if f.get("created") else "") + (
            f"\ndetails:\n{f['details']}" if f.get("details") else "")
    return fields, human


def list_rows(servers: list[dict], long: bool = False) -> tuple[list[str], list[list[Any]]]:
    """`openstack server list` (newest first), or its `--long` form."""
    headers = ["ID", "Name", "Status", "Networks", "Image", "Flavor"]
    if long:
        headers = ["ID", "Name", "Status", "Task State", "Power State", "Networks", "Image", "Flavor",
                   "Availability Zone", "Host", "Properties"]
    ordered = sorted(servers, key=lambda s: s["metadata"]["name"])
    ordered.sort(key=lambda s: s["metadata"].get("creationTimestamp") or "", reverse=True)
    rows = []
    for s in ordered:
        st, spec = s.get("status") or {}, s.get("spec") or {}
        networks = addresses_text(st.get("addresses") or {}) or st.get("networks") or ""
        flavor = st.get("flavorName") or spec.get("flavor")
        if long:
            rows.append([s["metadata"].get("uid"), s["metadata"]["name"], st.get("status") or "BUILD",
                         st.get("taskState") or "None", power_state_name(st.get("powerState")), networks,
                         image_of(s), flavor, st.get("availabilityZone") or "", st.get("host") or "",
                         dict(spec.get("metadata") or {})])
        else:
            rows.append([s["metadata"].get("uid"), s["metadata"]["name"], st.get("status") or "BUILD", networks,
                         image_of(s), flavor])
    return headers, rows


def filter_servers(servers: list[dict], status: str | None = None, host: str | None = None,
                   name: str | None = None) -> list[dict]:
    pattern = re.compile(name) if name else None
    out = []
    for s in servers:
        st = s.get("status") or {}
        if status and (st.get("status") or "BUILD").upper() != status.upper():
            continue
        if host and st.get("host") != host:
            continue
        if pattern and not pattern.search(s["metadata"]["name"]):
            continue
        out.append(s)
    return out


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Expect:
    """What `--wait` waits for after a spec change at `generation`."""

    states: tuple[str, ...]
    generation: int
    what: str
    request_field: str | None = None  # status field that records the request id (lastRebootRequestId ...)
    request_id: str | None = None
    flavor: str | None = None  # the flavor the server must end up with
    image: str | None = None


def reached(server: dict, exp: Expect) -> bool:
    """True once the operator reports `exp`; CliError when it reports a failure."""
    meta, st = server["metadata"], server.get("status") or {}
    refusal = _refusal(st, exp)
    if refusal:  # the server was left as it was (Nova's 400/403): nothing more will happen
        raise CliError(f"{exp.what} of server {meta['name']} refused: {refusal}")
    observed = st.get("observedGeneration") or 0
    if observed < exp.generation:
        return False
    status = st.get("status")
    fault = st.get("fault") or {}
    name = meta["name"]
    if status == "ERROR":
        raise CliError(f"server {name} is in ERROR: {fault.get('message') or 'no fault recorded'}"
                       + (f"\n{fault['details']}" if fault.get("details") else ""))
    if exp.request_field:
        if st.get(exp.request_field) != exp.request_id:
            return False
        if status not in exp.states and not st.get("taskState"):
            raise CliError(f"{exp.what} of server {name} failed: "
                           f"{fault.get('message') or f'the server is {status}'}")
    if exp.flavor and st.get("flavorName") != exp.flavor:
        if status in ("ACTIVE", "SHUTOFF") and not st.get("taskState") and fault:
            raise CliError(f"{exp.what} of server {name} failed: {fault.get('message')}")
        return False
    if exp.image and st.get("imageName") != exp.image:
        return False
    return status in exp.states and not st.get("taskState")


def _refusal(st: dict, exp: Expect) -> str | None:
    """The message of the operator's refusal of this request: a `RequestRefused` condition for
    this generation or later (a missing image or flavor, a resize over quota, a rebuild of a
    volume-backed server)."""
    for cond in st.get("conditions") or []:
        at_least_ours = (cond.get("observedGeneration") or 0) >= exp.generation
        if cond.get("type") == "RequestRefused" and cond.get("status") == "True" and at_least_ours:
            return cond.get("message") or cond.get("reason")
    return None


# ---------------------------------------------------------------------------- API verbs


def _apis(args):
    from kubernetes import client

    api = api_client(args)
    return client.CustomObjectsApi(api), client.CoreV1Api(api)


def find_server(custom, ns: str, name_or_id: str) -> dict:
    found = get_or_none(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name_or_id))
    if found is not None:
        return found
    for s in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
        if s["metadata"].get("uid") == name_or_id:
            return s
    raise CliError(f"No server with a name or ID of '{name_or_id}' exists.")


def _patch_spec(custom, ns: str, name: str, spec: dict) -> dict:
    return custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, {"spec": spec},
                                                 field_validation="Strict")


def _wait(custom, ns: str, name: str, exp: Expect, timeout: float) -> dict:
    return poll(lambda: (lambda s: s if reached(s, exp) else None)(find_server(custom, ns, name)),
                timeout, f"server {name} to be {'/'.join(exp.states)} ({exp.what})")


def _print_server(args, server: dict) -> None:
    fields, human = server_fields(server)
    fmt = getattr(args, "format", "table")
    if fmt == "table":
        fields = {k: (human[k] if k in human else v) for k, v in fields.items()}
    sys.stdout.write(format_show(fields, fmt, getattr(args, "columns", ())))


def _create(args: argparse.Namespace) -> int:
    custom, _ = _apis(args)
    ns = namespace_of(args)
    body = server_manifest(args, ns, read_user_data(args.user_data))
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body, field_validation="Strict")
    if args.wait:
        created = _wait(custom, ns, args.name, Expect(("ACTIVE",), created["metadata"].get("generation", 1),
                                                      "boot"), args.timeout)
    _print_server(args, created)
    return 0


def _list(args: argparse.Namespace) -> int:
    custom, _ = _apis(args)
    ns = namespace_of(args)
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    headers, rows = list_rows(filter_servers(items, args.status, args.host, args.name), args.long)
    print_list(args, headers, rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    custom, _ = _apis(args)
    _print_server(args, find_server(custom, namespace_of(args), args.name))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from kubernetes.client.rest import ApiException

    custom, _ = _apis(args)
    ns = namespace_of(args)
    names = []
    failed = 0
    for name_or_id in args.names:
        try:
            name = find_server(custom, ns, name_or_id)["metadata"]["name"]
            custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name,
                                                   propagation_policy="Background")
            names.append(name)
        except (CliError, ApiException) as exc:
            failed += 1
            print(f"Failed to delete server with name or ID '{name_or_id}': {exc}", file=sys.stderr)
    if args.wait:
        for name in names:
            poll(lambda: get_or_none(lambda: custom.get_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, name)) is None, args.timeout, f"server {name} to be deleted")
    if failed:
        raise CliError(f"{failed} of {len(args.names)} servers failed to delete.")
    return 0


def _each(args, action) -> int:
    """Apply `action(custom, ns, server) -> Expect` to every named server, then wait."""
    custom, _ = _apis(args)
    ns = namespace_of(args)
    pending = []
    for name_or_id in args.names:
        server = find_server(custom, ns, name_or_id)
        pending.append((server["metadata"]["name"], action(custom, ns, server)))
    if args.wait:
        for name, exp in pending:
            _wait(custom, ns, name, exp, args.timeout)
    return 0


def _power(args: argparse.Namespace) -> int:
    desired, state, _ = POWER_VERBS[args.power_verb]

    def act(custom, ns, server):
        updated = _patch_spec(custom, ns, server["metadata"]["name"], {"powerState": desired})
        return Expect((state,), updated["metadata"]["generation"], args.power_verb)
    return _each(args, act)


def _reboot(args: argparse.Namespace) -> int:
    kind = "HARD" if args.hard else "SOFT"

    def act(custom, ns, server):
        rid = new_request_id()
        updated = _patch_spec(custom, ns, server["metadata"]["name"], {"reboot": {"type": kind, "requestId": rid}})
        return Expect(("ACTIVE",), updated["metadata"]["generation"], f"{kind.lower()} reboot",
                      request_field="lastRebootRequestId", request_id=rid)
    return _each(args, act)


def _rebuild(args: argparse.Namespace) -> int:
    custom, _ = _apis(args)
    ns = namespace_of(args)
    server = find_server(custom, ns, args.name)
    name = server["metadata"]["name"]
    if args.image and args.image != (server.get("spec") or {}).get("image"):
        updated = _patch_spec(custom, ns, name, {"image": args.image})
        exp = Expect(("ACTIVE",), updated["metadata"]["generation"], "rebuild", image=args.image)
    else:
        rid = new_request_id()
        updated = _patch_spec(custom, ns, name, {"rebuild": {"requestId": rid}})
        exp = Expect(("ACTIVE",), updated["metadata"]["generation"], "rebuild",
                     request_field="lastRebuildRequestId", request_id=rid)
    if args.wait:
        _wait(custom, ns, name, exp, args.timeout)
    return 0


def _resize(args: argparse.Namespace) -> int:
    words = args.words
    if len(words) == 2 and words[0] in ("confirm", "revert"):
        action, target = words
    elif len(words) == 1:
        action, target = "resize", words[0]
    else:
        raise CliError("usage: server resize NAME --flavor F | server resize confirm NAME | "
                       "server resize revert NAME")
    custom, _ = _apis(args)
    ns = namespace_of(args)
    server = find_server(custom, ns, target)
    name, spec, st = server["metadata"]["name"], server.get("spec") or {}, server.get("status") or {}
    if action == "resize":
        if not args.flavor:
            raise CliError("server resize NAME needs --flavor")
        updated = _patch_spec(custom, ns, name, {"flavor": args.flavor})
        states = ("ACTIVE",) if spec.get("resizeConfirmation") == "Auto" else ("VERIFY_RESIZE",)
        exp = Expect(states, updated["metadata"]["generation"], "resize", flavor=args.flavor)
    else:
        if args.flavor:
            raise CliError(f"server resize {action} takes no --flavor")
        if st.get("status") != "VERIFY_RESIZE":
            raise CliError(f"Cannot '{action}Resize' instance {name} while it is in vm_state "
                           f"{st.get('vmState') or 'unknown'} (status {st.get('status')})")
        if action == "confirm":
            updated = _patch_spec(custom, ns, name, {"confirmedFlavor": spec["flavor"]})
            exp = Expect(("ACTIVE",), updated["metadata"]["generation"], "resize confirm", flavor=spec["flavor"])
        else:
            old = (st.get("resize") or {}).get("oldFlavor")
            if not old:
                raise CliError(f"server {name} records no flavor to revert to")
            updated = _patch_spec(custom, ns, name, {"flavor": old, "confirmedFlavor": old})
            exp = Expect(("ACTIVE",), updated["metadata"]["generation"], "resize revert", flavor=old)
    if args.wait:
        _wait(custom, ns, name, exp, args.timeout)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    custom, _ = _apis(args)
    ns = namespace_of(args)
    server = find_server(custom, ns, args.name)
    name = server["metadata"]["name"]
    before = (server.get("status") or {}).get("host")
    rid = new_request_id()
    request: dict[str, Any] = {"requestId": rid, "live": bool(args.live)}
    if args.host:
        request["host"] = args.host
    updated = _patch_spec(custom, ns, name, {"migrate": request})
    if args.wait:
        done = _wait(custom, ns, name, Expect(("ACTIVE",), updated["metadata"]["generation"], "migration",
                                              request_field="lastMigrateRequestId", request_id=rid), args.timeout)
        after = (done.get("status") or {}).get("host")
        if after == before or (args.host and after != args.host):
            raise CliError(f"migration of server {name} did not move it (host {after}); "
                           f"see `kubestack server event list {name}`")
        print(f"server {name} migrated from {before} to {after}")
    return 0


# ---------------------------------------------------------------------------- events, console


def event_time(ev: dict) -> str:
    return (ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp")
            or (ev.get("metadata") or {}).get("creationTimestamp") or "")


def server_events(core, ns: str, server: dict) -> list[dict]:
    selector = f"involvedObject.name={server['metadata']['name']},involvedObject.kind=Server"
    items = core.api_client.sanitize_for_serialization(
        core.list_namespaced_event(ns, field_selector=selector)).get("items") or []
    uid = server["metadata"].get("uid")
    items = [e for e in items if not uid or (e.get("involvedObject") or {}).get("uid") in (None, uid)]
    return sorted(items, key=event_time)


def event_rows(server: dict, evs: list[dict], long: bool = False) -> tuple[list[str], list[list[Any]]]:
    headers = ["Request ID", "Server ID", "Action", "Start Time", "Message"]
    if long:
        headers = ["Request ID", "Server ID", "Action", "Start Time", "Type", "Count", "Source", "Message"]
    rows = []
    for e in evs:
        base = [(e.get("metadata") or {}).get("uid"), server["metadata"].get("uid"), e.get("reason"), event_time(e)]
        if long:
            base += [e.get("type"), e.get("count") or 1,
                     e.get("reportingComponent") or (e.get("source") or {}).get("component")]
        rows.append(base + [e.get("message")])
    return headers, rows


def _event_list(args: argparse.Namespace) -> int:
    custom, core = _apis(args)
    ns = namespace_of(args)
    server = find_server(custom, ns, args.name)
    headers, rows = event_rows(server, server_events(core, ns, server), args.long)
    print_list(args, headers, rows)
    return 0


GUEST_CONSOLE_CONTAINER = "guest-console-log"


def console_fallback(server: dict, evs: list[dict], reason: str) -> str:
    """What `console log` prints when there is no guest console to read (pure)."""
    meta, st = server["metadata"], server.get("status") or {}
    name, ns = meta["name"], meta.get("namespace") or "default"
    lines = [f"No console log for server {name}: {reason}", ""]
    lines.append(f"Interactive console on a cluster running KubeVirt: virtctl console {st.get('virtualMachine') or name}"
                 f" -n {ns}  (serial), or virtctl vnc ... (graphical).")
    lines.append("")
    lines.append("What the operator recorded instead:")
    lines.append(f"  status={st.get('status') or 'BUILD'} task_state={st.get('taskState') or 'None'} "
                 f"power_state={power_state_name(st.get('powerState'))} vm_state={st.get('vmState') or ''} "
                 f"host={st.get('host') or ''}")
    if st.get("fault"):
        lines.append(f"  fault: {st['fault'].get('code')} {st['fault'].get('message')}")
    for c in st.get("conditions") or []:
        lines.append(f"  condition {c.get('type')}={c.get('status')} ({c.get('reason')}): {c.get('message')}"
                     f" since {c.get('lastTransitionTime')}")
    lines.append("")
    lines.append("State history (Events):" if evs else "State history: no Events recorded (they expire after an hour).")
    for e in evs:
        lines.append(f"  {event_time(e)}  {e.get('type', ''):<7} {e.get('reason', '')}: {e.get('message', '')}")
    return "\n".join(lines) + "\n"


def console_log(args: argparse.Namespace) -> int:
    from kubernetes.client.rest import ApiException

    custom, core = _apis(args)
    ns = namespace_of(args)
    server = find_server(custom, ns, args.name)
    name = (server.get("status") or {}).get("virtualMachine") or server["metadata"]["name"]
    vmi = get_or_none(lambda: custom.get_namespaced_custom_object("kubevirt.io", "v1", ns,
                                                                  "virtualmachineinstances", name))
    if vmi is None:
        reason = (f"it has no running VirtualMachineInstance (status "
                  f"{(server.get('status') or {}).get('status') or 'BUILD'}).")
    else:
        pods = core.list_namespaced_pod(ns, label_selector=f"kubevirt.io/created-by={vmi['metadata']['uid']}").items
        launcher = next((p for p in pods if any(c.name == GUEST_CONSOLE_CONTAINER for c in p.spec.containers)), None)
        if launcher is not None:
            try:
                text = core.read_namespaced_pod_log(launcher.metadata.name, ns, container=GUEST_CONSOLE_CONTAINER,
                                                    tail_lines=args.lines)
            except ApiException as exc:
                raise CliError(f"cannot read the guest console log of {name}: {exc.reason}") from None
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
            return 0
        if not pods:
            reason = ("its VirtualMachineInstance has no virt-launcher pod: this control plane has no "
                      "kubelets and KubeVirt is played by `kubestack simulate`, so there is no guest and no "
                      "serial console to read.")
        else:
            reason = (f"KubeVirt keeps no serial console log for it (the virt-launcher pod has no "
                      f"{GUEST_CONSOLE_CONTAINER} container): enable KubeVirt's serial console log "
                      f"(spec.template.spec.domain.devices.logSerialConsole: true, KubeVirt 1.1+) to have one.")
    text = console_fallback(server, server_events(core, ns, server), reason)
    if args.lines:
        text = "\n".join(text.splitlines()[-args.lines:]) + "\n"
    sys.stdout.write(text)
    return 0

"""Output and plumbing shared by the compute verbs (`server`, `flavor`, `keypair`,
`server group`), shaped like openstackclient's:

* lists: ``-f table|json|yaml|value|csv``; json/yaml are a list of objects keyed by the
  column headers (``[{"ID": ..., "Name": ...}]``), value prints the cells space-separated,
  one row a line;
* one object: ``-f table|json|yaml|value|shell``; a two-column Field/Value table, json/yaml
  an object keyed by the field names, value one value a line, shell ``field="value"``;
* ``-c COLUMN`` (repeatable) keeps those columns / fields, in the command's own order; none
  of them known is an error, as in openstackclient;
* ``--no-headers`` (lists) leaves out the header row of table and csv output (the other
  formats are unchanged: value has none, json/yaml need the keys).

Structured values (dicts, lists) stay structured in json and yaml and are flattened for
table / value / csv (``k='v', k2='v2'``; lists joined with ', ').

Also here: the kubeconfig / project options, the API client, error handling for a verb, and
polling for `--wait`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

GROUP, VERSION = "kubestack.io", "v1alpha1"
LIST_FORMATS = ("table", "json", "yaml", "value", "csv")
SHOW_FORMATS = ("table", "json", "yaml", "value", "shell")


class CliError(Exception):
    """A user-facing error: printed as `error: ...`, exit code 1."""


# ---------------------------------------------------------------------------- arguments


def connection_args(p: argparse.ArgumentParser, namespaced: bool = True) -> None:
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG") or None,
                   help="kubeconfig file (default $KUBECONFIG, else ~/.kube/config)")
    if namespaced:
        p.add_argument("-n", "--project", "--namespace", dest="namespace", default=None,
                       help="project (namespace); default: the kubeconfig context's namespace")


def list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=LIST_FORMATS, default="table", help="output format")
    p.add_argument("-c", "--column", action="append", default=[], dest="columns",
                   help="show only this column (repeatable)")
    p.add_argument("--no-headers", action="store_true", dest="no_headers",
                   help="no header row in table and csv output")


def show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=SHOW_FORMATS, default="table", help="output format")
    p.add_argument("-c", "--column", action="append", default=[], dest="columns",
                   help="show only this field (repeatable)")


def key_values(items: Sequence[str] | None, what: str = "property") -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise CliError(f"{what} {item!r} must be KEY=VALUE")
        k, v = item.split("=", 1)
        if not k:
            raise CliError(f"{what} {item!r} has an empty key")
        out[k] = v
    return out


# ---------------------------------------------------------------------------- formatting


def flatten(value: Any) -> str:
    """A cell for table / value / csv output."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}='{flatten(v)}'" for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return ", ".join(flatten(v) if not isinstance(v, dict) else "{" + flatten(v) + "}" for v in value)
    return str(value)


def select(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Indexes of the kept columns (all when `wanted` is empty), in `names` order."""
    if not wanted:
        return list(range(len(names)))
    keep = [i for i, n in enumerate(names) if n in set(wanted)]
    if not keep:
        raise CliError(f"No recognized column names in {list(wanted)}. "
                       f"Recognized columns are {tuple(names)}.")
    return keep


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], show_headers: bool = True) -> str:
    """An openstackclient-style table; multi-line cells stay multi-line. Without headers, only
    the rows, framed (nothing at all when there are none)."""
    cells = [[str(h) for h in headers]] if show_headers else []
    cells += [[flatten(v) if not isinstance(v, str) else v for v in r] for r in rows]
    if not cells:
        return ""
    widths = [max(len(line) for r in cells for line in (r[i].splitlines() or [""]))
              for i in range(len(headers))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [rule]
    for n, row in enumerate(cells):
        split = [c.splitlines() or [""] for c in row]
        for k in range(max(len(s) for s in split)):
            out.append("| " + " | ".join((s[k] if k < len(s) else "").ljust(w)
                                        for s, w in zip(split, widths)) + " |")
        if n == 0 and show_headers:
            out.append(rule)
    if len(cells) > 1 or not show_headers:
        out.append(rule)
    return "\n".join(out) + "\n"


def format_list(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table",
                columns: Sequence[str] = (), no_headers: bool = False) -> str:
    keep = select(headers, columns)
    heads = [headers[i] for i in keep]
    body = [[r[i] for i in keep] for r in rows]
    if fmt == "table":
        return render_table(heads, body, show_headers=not no_headers)
    if fmt in ("json", "yaml"):
        return dump([dict(zip(heads, r)) for r in body], fmt)
    if fmt == "value":
        return "".join(" ".join(flatten(v) for v in r) + "\n" for r in body)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        if not no_headers:
            writer.writerow(heads)
        for r in body:
            writer.writerow([v if isinstance(v, (int, float)) and not isinstance(v, bool) else flatten(v)
                             for v in r])
        return buf.getvalue()
    raise CliError(f"unknown format {fmt!r}")


def format_show(fields: dict[str, Any], fmt: str = "table", columns: Sequence[str] = ()) -> str:
    names = list(fields)
    keep = [names[i] for i in select(names, columns)]
    data = {k: fields[k] for k in keep}
    if fmt == "table":
        return render_table(["Field", "Value"], [[k, _show_cell(v)] for k, v in data.items()])
    if fmt in ("json", "yaml"):
        return dump(data, fmt)
    if fmt == "value":
        return "".join(flatten(v) + "\n" for v in data.values())
    if fmt == "shell":
        return "".join(f'{_shell_name(k)}="{flatten(v)}"'.replace("\n", "\\n") + "\n"
                       for k, v in data.items())
    raise CliError(f"unknown format {fmt!r}")


def _show_cell(value: Any) -> str:
    # a list of dicts (security groups, members) reads best one entry a line
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "\n".join(flatten(v) for v in value)
    return flatten(value)


def _shell_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, default=str) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def print_list(args: argparse.Namespace, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    sys.stdout.write(format_list(headers, rows, getattr(args, "format", "table"), getattr(args, "columns", ()),
                                 getattr(args, "no_headers", False)))


def print_show(args: argparse.Namespace, fields: dict[str, Any]) -> None:
    sys.stdout.write(format_show(fields, getattr(args, "format", "table"), getattr(args, "columns", ())))


# ---------------------------------------------------------------------------- API plumbing


def api_client(args: argparse.Namespace):
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    except (config.ConfigException, OSError) as exc:
        raise CliError(f"cannot load the kubeconfig ({args.kubeconfig or '~/.kube/config'}): {exc}") from None
    return client.ApiClient(configuration)


def custom_api(args: argparse.Namespace):
    from kubernetes import client

    return client.CustomObjectsApi(api_client(args))


def namespace_of(args: argparse.Namespace) -> str:
    if getattr(args, "namespace", None):
        return args.namespace
    from kubernetes import config

    try:
        _, current = config.list_kube_config_contexts(config_file=args.kubeconfig)
        return (current.get("context") or {}).get("namespace") or "default"
    except (config.ConfigException, OSError, TypeError):
        return "default"


def api_message(exc) -> str:
    try:
        message = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = getattr(exc, "reason", None) or str(exc)
    return f"{getattr(exc, 'status', '')} {message}".strip()


def run(fn: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], int]:
    """Wrap a verb: bad input and API errors become `error: ...` on stderr and exit 1."""

    def wrapper(args: argparse.Namespace) -> int:
        from kubernetes.client.rest import ApiException

        try:
            return int(fn(args) or 0)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except ApiException as exc:
            print(f"error: {api_message(exc)}", file=sys.stderr)
            return 1

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def get_or_none(fetch: Callable[[], dict]) -> dict | None:
    from kubernetes.client.rest import ApiException

    try:
        return fetch()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Call `check` until it returns something truthy (`--wait`); CliError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise CliError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def manifest(kind: str, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": meta, "spec": spec}


def updated_at(obj: dict) -> str | None:
    """The last time the object was written (its newest managedFields entry)."""
    meta = obj.get("metadata") or {}
    times = [m.get("time") for m in meta.get("managedFields") or [] if m.get("time")]
    return max(times) if times else meta.get("creationTimestamp")

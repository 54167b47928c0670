"""`kubestack stack ...`: Heat stacks, like `openstack stack ...` and `openstack orchestration
template validate`.

Offline (no cluster):
    kubestack stack validate -t T.yaml [--parameter k=v ...] [-e env.yaml]
    kubestack stack create NAME -t T.yaml [...] --dry-run [-f json|yaml]
        prints the resources (properties resolved where resolvable, dependencies) and outputs
    kubestack stack create NAME -t T.yaml [...] -o yaml|json
        prints the Stack custom resource manifest (for `kubectl apply -f -` or a GitOps repo)

Against the cluster (the Stack controller does the work):
    kubestack stack create NAME -t T.yaml [--parameter k=v ...] [-e env.yaml] [--wait]
    kubestack stack update NAME -t T.yaml [--parameter k=v ...] [-e env.yaml] [--wait]
    kubestack stack list [--nested] | show NAME | delete NAME [--wait]
    kubestack stack output show NAME [OUTPUT | --all]
    kubestack stack resource list NAME
    kubestack stack signal NAME RESOURCE [--data JSON]   (WaitConditionHandle, ScalingPolicy)

`stack create` without --dry-run and without -o creates the Stack in the cluster; when no
cluster is configured at all (no --kubeconfig, no $KUBECONFIG, no ~/.kube/config) it prints
the manifest instead and says so on stderr.

T.yaml and env.yaml may be http(s):// or file:// URLs, as for the openstack client: the
files they refer to are read relative to them, here, into the Stack's files
(`kubestack.cli.template_files`); the operator never fetches a URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _run_later(fn):
    """`kubestack.cli.output.run` (error handling), imported when the verb runs."""

    def wrapper(args: argparse.Namespace) -> int:
        from kubestack.cli.output import run

        return run(fn)(args)

    wrapper.__name__ = fn.__name__
    return wrapper


def register(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser("stack", help="Heat stacks: validate, create, update, list, show, outputs, "
                                         "resources, signal, delete")
    verbs = stack.add_subparsers(dest="stack_command", metavar="VERB")
    verbs.required = True

    validate = verbs.add_parser("validate", help="validate a template (openstack orchestration template validate)")
    _template_args(validate)
    validate.add_argument("-f", "--format", choices=("yaml", "json"), default="yaml",
                          help="output format (default yaml)")
    validate.set_defaults(func=_validate)

    create = verbs.add_parser("create", help="create a stack (or print what it would create: --dry-run, "
                                             "or its Stack manifest: -o yaml)")
    create.add_argument("name", help="stack name")
    _template_args(create, required=False)
    create.add_argument("--dry-run", action="store_true",
                        help="resolve the template offline and print resources and outputs")
    create.add_argument("-f", "--format", "-o", "--output", dest="format", default=None,
                        help="output format json or yaml (dry-run default json, manifest default "
                             "yaml); `-f TEMPLATE.yaml` without -t names the template, as in the "
                             "lecture's `openstack stack create my_stack -f boot.yaml`")
    create.add_argument("-n", "--namespace", "--project", dest="namespace",
                        help="namespace (project) of the Stack")
    _cluster_args(create, namespace=False)
    _wait_args(create)
    create.add_argument("--timeout", type=int, default=None, metavar="MINUTES",
                        help="stack creation timeout in minutes (spec.timeoutMinutes)")
    create.add_argument("--disable-rollback", action="store_true", help="do not roll back on failure")
    create.set_defaults(func=_create)

    update = verbs.add_parser("update", help="update a stack with a new template or parameters")
    update.add_argument("name", help="stack name")
    _template_args(update, required=False)
    update.add_argument("--existing", action="store_true",
                        help="keep the current template (and parameters not given) of the stack")
    _cluster_args(update)
    _wait_args(update)
    update.add_argument("--timeout", type=int, default=None, metavar="MINUTES", help="update timeout in minutes")
    update.set_defaults(func=_update)

    lst = verbs.add_parser("list", help="list stacks")
    lst.add_argument("--nested", action="store_true", help="include nested stacks")
    _cluster_args(lst)
    _list_args(lst)
    lst.set_defaults(func=_list)

    show = verbs.add_parser("show", help="show a stack")
    show.add_argument("name")
    _cluster_args(show)
    _show_args(show)
    show.set_defaults(func=_show)

    delete = verbs.add_parser("delete", help="delete stacks (resources in reverse dependency order)")
    delete.add_argument("names", nargs="+", metavar="NAME")
    _cluster_args(delete)
    _wait_args(delete)
    delete.add_argument("-y", "--yes", action="store_true", help="(accepted for openstack compatibility)")
    delete.set_defaults(func=_delete)

    output = verbs.add_parser("output", help="stack outputs")
    overbs = output.add_subparsers(dest="output_command", metavar="VERB")
    overbs.required = True
    oshow = overbs.add_parser("show", help="show one output (or all of them)")
    oshow.add_argument("name")
    oshow.add_argument("output", nargs="?")
    oshow.add_argument("--all", action="store_true", help="every output")
    _cluster_args(oshow)
    _show_args(oshow)
    oshow.set_defaults(func=_output_show)
    olist = overbs.add_parser("list", help="list output keys")
    olist.add_argument("name")
    _cluster_args(olist)
    _list_args(olist)
    olist.set_defaults(func=_output_list)

    resource = verbs.add_parser("resource", help="stack resources")
    rverbs = resource.add_subparsers(dest="resource_command", metavar="VERB")
    rverbs.required = True
    rlist = rverbs.add_parser("list", help="list a stack's resources")
    rlist.add_argument("name")
    _cluster_args(rlist)
    _list_args(rlist)
    rlist.set_defaults(func=_resource_list)

    signal = verbs.add_parser("signal", help="signal a resource (WaitConditionHandle, ScalingPolicy)")
    signal.add_argument("name")
    signal.add_argument("resource")
    signal.add_argument("--data", default=None,
                        help='JSON signal data, e.g. \'{"status": "SUCCESS", "reason": "ok", "data": "x"}\'')
    _cluster_args(signal)
    signal.set_defaults(func=_signal)


def _cluster_args(p: argparse.ArgumentParser, namespace: bool = True) -> None:
    from kubestack.cli.output import connection_args

    connection_args(p, namespaced=namespace)


def _wait_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true", help="wait until the stack reaches a final state")
    p.add_argument("--wait-timeout", type=float, default=1800.0, help="seconds to wait (default %(default)s)")


def _list_args(p: argparse.ArgumentParser) -> None:
    from kubestack.cli.output import list_args

    list_args(p)


def _show_args(p: argparse.ArgumentParser) -> None:
    from kubestack.cli.output import show_args

    show_args(p)


def _template_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-t", "--template", required=required,
                   help="HOT template: a file, or an http(s):// or file:// URL (what it refers to is read "
                        "relative to it)")
    p.add_argument("-e", "--environment", action="append", default=[],
                   help="environment file or URL (repeatable; later ones override earlier ones)")
    p.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter value (repeatable; several may be joined with ';')")
    p.add_argument("--parameter-file", action="append", default=[], metavar="KEY=FILE",
                   help="parameter value read from a file or URL (repeatable)")


class _InputError(Exception):
    pass


def _read(path: str, reader=None) -> str:
    """A parameter file's text (a path, or an http(s):// or file:// URL)."""
    from kubestack.cli.template_files import FetchError, TemplateFiles

    try:
        return (reader or TemplateFiles()).read(path)
    except FetchError as e:
        raise _InputError(str(e)) from None


def _parameters(args: argparse.Namespace, reader=None) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in args.parameter:
        for part in item.split(";") if ";" in item else [item]:
            if not part:
                continue
            if "=" not in part:
                raise _InputError(f"Malformed parameter({part}). Use the key=value format.")
            k, v = part.split("=", 1)
            params[k.strip()] = v
    for item in args.parameter_file:
        if "=" not in item:
            raise _InputError(f"Malformed parameter file({item}). Use the key=file format.")
        k, path = item.split("=", 1)
        params[k.strip()] = _read(path, reader)
    return params


def _merge_env(envs: list[dict[str, Any]]) -> dict[str, Any]:
    """Environments in order, later sections' keys over earlier ones'."""
    env: dict[str, Any] = {}
    for doc in envs:
        for section, value in doc.items():
            if isinstance(value, dict) and isinstance(env.get(section), dict):
                env[section] = {**env[section], **value}
            else:
                env[section] = value
    return env


def _inputs(args: argparse.Namespace) -> tuple[dict, dict, dict, dict]:
    """(template map, parameters, files, environment) from the command line. The template and
    environments may be paths or http(s):// / file:// URLs; what they refer to (get_file,
    template resources, resource_registry templates) is read relative to them into the files,
    as the openstack client does (:mod:`kubestack.cli.template_files`): the Stack carries it
    all, the operator fetches nothing."""
    from kubestack.cli.template_files import FetchError, TemplateFiles

    reader = TemplateFiles()
    try:
        template = reader.template(args.template)
        env = _merge_env([reader.environment(e) for e in args.environment])
    except FetchError as e:
        raise _InputError(str(e)) from None
    return template, _parameters(args, reader), reader.files, env


def _load(args: argparse.Namespace, name: str):
    from kubestack.orchestration import load_stack

    template, params, files, env = _inputs(args)
    stack = load_stack(template, params, files, env, stack_name=name)
    return stack, (template, params, files, env)


def _note_unchecked(stack) -> None:
    if stack.unchecked_constraints:
        print("note: custom constraints not checked (no cluster): "
              + "; ".join(stack.unchecked_constraints), file=sys.stderr)


def _dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=False)
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(doc, Dumper=_Dumper, default_flow_style=False, sort_keys=False)


def _validate(args: argparse.Namespace) -> int:
    from kubestack.orchestration import HeatError

    try:
        stack, _ = _load(args, "validate")
    except (HeatError, _InputError) as e:
        print(f"ERROR: Failed to validate: {e}", file=sys.stderr)
        return 1
    tmpl = stack.template
    params = {}
    for name, schema in tmpl.parameters.items():
        entry: dict[str, Any] = {
            "Type": {"string": "String", "number": "Number", "json": "Json",
                     "comma_delimited_list": "CommaDelimitedList", "boolean": "Boolean"}[schema.type],
            "Description": schema.description or "",
            "Label": schema.label or name,
            "NoEcho": "true" if schema.hidden else "false",
        }
        if schema.has_default:
            entry["Default"] = "******" if schema.hidden else schema.default
        entry["Value"] = "******" if schema.hidden else stack.params[name]
        if schema.constraints:
            entry["Constraints"] = [{c.kind: c.arg, **({"description": c.description} if c.description else {})}
                                    for c in schema.constraints]
        params[name] = entry
    out: dict[str, Any] = {"Description": tmpl.description or "No description", "Parameters": params}
    if tmpl.parameter_groups:
        out["ParameterGroups"] = tmpl.parameter_groups
    print(_dump(out, args.format), end="" if args.format == "yaml" else "\n")
    _note_unchecked(stack)
    return 0


def _create(args: argparse.Namespace) -> int:
    from kubestack.orchestration import DryRunResult, HeatError

    if args.format not in (None, "json", "yaml"):
        if args.template is None:
            args.template, args.format = args.format, None
        else:
            print(f"ERROR: invalid format {args.format!r} (choose json or yaml)", file=sys.stderr)
            return 2
    if args.template is None:
        print("ERROR: a template is required (-t TEMPLATE)", file=sys.stderr)
        return 2

    if args.dry_run:
        fmt = args.format or "json"
        try:
            stack, _ = _load(args, args.name)
            plan = stack.plan(defaults=False)
            result = DryRunResult(
                valid=True, error=None,
                resources=[{"name": r.name, "type": r.type, "properties": r.properties,
                            "depends_on": r.depends_on} for r in plan.resources],
                outputs=plan.outputs)
            code = 0
        except (HeatError, _InputError) as e:
            result = DryRunResult(valid=False, error=str(e), resources=[], outputs={})
            stack, code = None, 1
        print(_dump(result.model_dump(), fmt), end="" if fmt == "yaml" else "\n")
        if stack is not None:
            _note_unchecked(stack)
        return code

    try:
        stack, (template, params, files, env) = _load(args, args.name)
    except (HeatError, _InputError) as e:
        print(f"ERROR: Failed to validate: {e}", file=sys.stderr)
        return 1
    manifest = stack_manifest(args.name, template, params, files, env, args.namespace)
    if args.disable_rollback:
        manifest["spec"]["rollback"] = False
    if args.timeout:
        manifest["spec"]["timeoutMinutes"] = args.timeout
    offline = args.format is None and not (getattr(args, "kubeconfig", None) or _kubeconfig_present())
    if args.format is not None or offline:
        fmt = args.format or "yaml"
        if offline:
            print("note: no cluster configured (no --kubeconfig, $KUBECONFIG or ~/.kube/config): "
                  "printing the Stack manifest", file=sys.stderr)
        print(_dump(manifest, fmt), end="" if fmt == "yaml" else "\n")
        _note_unchecked(stack)
        return 0
    return _create_in_cluster(args, manifest)


def _kubeconfig_present() -> bool:
    return bool(os.environ.get("KUBECONFIG")) or os.path.exists(os.path.expanduser("~/.kube/config"))


# ---------------------------------------------------------------------------- cluster verbs

_FINAL = ("CREATE_COMPLETE", "CREATE_FAILED", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
          "ROLLBACK_FAILED", "DELETE_FAILED")


def _api(args):
    from kubestack.cli.output import custom_api

    return custom_api(args)


def _ns(args) -> str:
    from kubestack.cli.output import namespace_of

    return namespace_of(args)


def _get_stack(args, name: str) -> dict:
    from kubestack.cli.output import GROUP, VERSION, CliError, get_or_none

    from kubestack.orchestration import dns_name

    api, ns = _api(args), _ns(args)
    obj = get_or_none(lambda: api.get_namespaced_custom_object(GROUP, VERSION, ns, "stacks", dns_name(name)))
    if obj is None:
        raise CliError(f"Stack not found: {name}")
    return obj


def _wait_final(args, name: str, generation: int | None) -> int:
    from kubestack.cli.output import poll

    def check():
        obj = _get_stack(args, name)
        st = obj.get("status") or {}
        if generation is not None and st.get("observedGeneration") != generation:
            return None
        return obj if st.get("stackStatus") in _FINAL else None

    obj = poll(check, args.wait_timeout, f"stack {name}", interval=1.0)
    st = obj["status"]
    print(f"{name} {st['stackStatus']}: {st.get('stackStatusReason') or ''}".rstrip(": "), file=sys.stderr)
    return 0 if st["stackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE") else 1


def _stack_fields(obj: dict) -> dict:
    meta, st, spec = obj["metadata"], obj.get("status") or {}, obj.get("spec") or {}
    return {
        "id": meta.get("uid"),
        "stack_name": (meta.get("annotations") or {}).get("kubestack.io/stack-name") or meta["name"],
        "description": (spec.get("template") or {}).get("description") or "No description",
        "creation_time": st.get("creationTime") or meta.get("creationTimestamp"),
        "updated_time": st.get("updatedTime"),
        "stack_status": st.get("stackStatus"),
        "stack_status_reason": st.get("stackStatusReason"),
        "parameters": st.get("parameters") or {},
        "outputs": [{"output_key": o["key"], "output_value": o.get("value"),
                     "description": o.get("description") or "No description given"}
                    for o in st.get("outputs") or []],
        "disable_rollback": not spec.get("rollback", True),
        "timeout_mins": spec.get("timeoutMinutes", 60),
        "project": meta.get("namespace"),
        "parent": _parent(obj),
    }


def _parent(obj: dict) -> str | None:
    """The stack a nested stack is a resource of (None: a top-level stack)."""
    from kubestack.orchestration.realize import STACK_LABEL

    return (obj["metadata"].get("labels") or {}).get(STACK_LABEL)


def _create_in_cluster(args, manifest: dict) -> int:
    from kubernetes.client.rest import ApiException

    from kubestack.cli.output import GROUP, VERSION, CliError, print_show, run

    @run
    def go(args) -> int:
        ns = _ns(args)
        manifest["metadata"]["namespace"] = ns
        try:
            obj = _api(args).create_namespaced_custom_object(GROUP, VERSION, ns, "stacks", manifest)
        except ApiException as exc:
            if exc.status == 409:
                raise CliError(f"The Stack ({args.name}) already exists.") from None
            raise
        code = _wait_final(args, args.name, obj["metadata"].get("generation")) if args.wait else 0
        args.format, args.columns = "table", []
        print_show(args, _stack_fields(_get_stack(args, args.name)))
        return code

    return go(args)


@_run_later
def _update(args) -> int:
    from kubestack.cli.output import GROUP, VERSION, CliError, print_show

    from kubestack.orchestration import HeatError

    current = _get_stack(args, args.name)
    spec = dict(current.get("spec") or {})
    if args.template:
        try:
            _, (template, params, files, env) = _load(args, _stack_label(current))
        except (HeatError, _InputError) as e:
            raise CliError(f"Failed to validate: {e}") from None
        spec.pop("templateRef", None)
        spec["template"] = template
        spec["files"] = files
        spec["parameters"] = {**(spec.get("parameters") or {}), **params} if args.existing else params
        if env or not args.existing:
            spec["environment"] = env or None
    elif args.existing:
        spec["parameters"] = {**(spec.get("parameters") or {}), **_parameters(args)}
    else:
        raise CliError("a template is required (-t TEMPLATE), or --existing to keep the current one")
    if args.timeout:
        spec["timeoutMinutes"] = args.timeout
    spec = {k: v for k, v in spec.items() if v is not None}
    current["spec"] = spec
    obj = _api(args).replace_namespaced_custom_object(GROUP, VERSION, current["metadata"]["namespace"],
                                                      "stacks", current["metadata"]["name"], current)
    code = _wait_final(args, args.name, obj["metadata"].get("generation")) if args.wait else 0
    args.format, args.columns = "table", []
    print_show(args, _stack_fields(_get_stack(args, args.name)))
    return code


def _stack_label(obj: dict) -> str:
    return (obj["metadata"].get("annotations") or {}).get("kubestack.io/stack-name") or obj["metadata"]["name"]


@_run_later
def _list(args) -> int:
    from kubestack.cli.output import GROUP, VERSION, print_list

    items = _api(args).list_namespaced_custom_object(GROUP, VERSION, _ns(args), "stacks")["items"]
    if not args.nested:  # as openstack stack list: nested stacks with --nested
        items = [o for o in items if _parent(o) is None]
    rows = []
    for obj in sorted(items, key=lambda o: o["metadata"]["name"]):
        f = _stack_fields(obj)
        rows.append([f["id"], f["stack_name"], f["project"], f["stack_status"], f["creation_time"], f["updated_time"]])
    print_list(args, ["ID", "Stack Name", "Project", "Stack Status", "Creation Time", "Updated Time"], rows)
    return 0


@_run_later
def _show(args) -> int:
    from kubestack.cli.output import print_show

    print_show(args, _stack_fields(_get_stack(args, args.name)))
    return 0


@_run_later
def _delete(args) -> int:
    from kubestack.cli.output import GROUP, VERSION, CliError, get_or_none, poll

    from kubestack.orchestration import dns_name

    api, ns = _api(args), _ns(args)
    for name in args.names:
        if get_or_none(lambda: api.delete_namespaced_custom_object(GROUP, VERSION, ns, "stacks", dns_name(name))) is None:
            raise CliError(f"Stack not found: {name}")
    if args.wait:
        for name in args.names:
            def gone(name=name):
                obj = get_or_none(lambda: api.get_namespaced_custom_object(GROUP, VERSION, ns, "stacks", dns_name(name)))
                if obj is not None and ((obj.get("status") or {}).get("stackStatus") == "DELETE_FAILED"):
                    raise CliError(f"{name}: DELETE_FAILED: {obj['status'].get('stackStatusReason')}")
                return obj is None
            poll(gone, args.wait_timeout, f"stack {name} to be deleted", interval=1.0)
    return 0


@_run_later
def _output_show(args) -> int:
    from kubestack.cli.output import CliError, print_show

    outputs = {o["key"]: o for o in (_get_stack(args, args.name).get("status") or {}).get("outputs") or []}
    if args.all:
        print_show(args, {k: {"output_key": k, "output_value": o.get("value"),
                              "description": o.get("description") or "No description given"}
                          for k, o in outputs.items()})
        return 0
    if not args.output:
        raise CliError("either an output name or --all is required")
    if args.output not in outputs:
        raise CliError(f"The Referenced Attribute ({args.name} {args.output}) is incorrect.")
    o = outputs[args.output]
    fields = {"output_key": o["key"], "output_value": o.get("value"),
              "description": o.get("description") or "No description given"}
    if o.get("error"):
        fields["output_error"] = o["error"]
    print_show(args, fields)
    return 0


@_run_later
def _output_list(args) -> int:
    from kubestack.cli.output import print_list

    outputs = (_get_stack(args, args.name).get("status") or {}).get("outputs") or []
    print_list(args, ["output_key", "description"],
               [[o["key"], o.get("description") or "No description given"] for o in outputs])
    return 0


@_run_later
def _resource_list(args) -> int:
    from kubestack.cli.output import print_list

    obj = _get_stack(args, args.name)
    st = obj.get("status") or {}
    rows = [[r["name"], r.get("objectName") or "", r["type"], r.get("status") or "",
             st.get("updatedTime") or st.get("creationTime")] for r in st.get("resources") or []]
    print_list(args, ["resource_name", "physical_resource_id", "resource_type", "resource_status", "updated_time"], rows)
    return 0


@_run_later
def _signal(args) -> int:
    from kubestack.cli.output import GROUP, VERSION, CliError

    obj = _get_stack(args, args.name)
    if args.data is None:
        data: Any = {"status": "SUCCESS"}
    else:
        try:
            data = json.loads(args.data)
        except ValueError:
            data = {"data": args.data}
        if not isinstance(data, dict):
            data = {"data": data}
    key = f"kubestack.io/signal-{args.resource}"
    raw = (obj["metadata"].get("annotations") or {}).get(key)
    signals = []
    if raw:
        try:
            old = json.loads(raw)
        except ValueError:
            old = {"data": raw}
        signals = old if isinstance(old, list) else [old]
    data.setdefault("id", str(len(signals) + 1))
    data.setdefault("status", "SUCCESS")
    if str(data["status"]).upper() not in ("SUCCESS", "FAILURE"):
        raise CliError("status must be SUCCESS or FAILURE")
    signals.append(data)
    _api(args).patch_namespaced_custom_object(GROUP, VERSION, obj["metadata"]["namespace"], "stacks",
                                              obj["metadata"]["name"], {"metadata": {
                                                  "annotations": {key: json.dumps(signals)},
                                                  "resourceVersion": obj["metadata"]["resourceVersion"]}})
    return 0


def stack_manifest(name: str, template: dict, parameters: dict, files: dict, environment: dict,
                   namespace: str | None = None) -> dict[str, Any]:
    """A Stack custom resource carrying the template inline."""
    from kubestack import API_GROUP, API_VERSION

    from kubestack.orchestration import dns_name

    metadata: dict[str, Any] = {"name": dns_name(name)}
    if metadata["name"] != name:
        # OS::stack_name stays the name the user gave
        metadata["annotations"] = {f"{API_GROUP}/stack-name": name}
    if namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {"template": template}
    if parameters:
        spec["parameters"] = parameters
    if files:
        spec["files"] = files
    if environment:
        spec["environment"] = environment
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Stack", "metadata": metadata, "spec": spec}

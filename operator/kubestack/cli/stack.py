"""`kubestack stack validate|create`: HOT templates offline, like `openstack orchestration
template validate` and `openstack stack create --dry-run`.

`stack create NAME --dry-run` prints the resources (properties resolved where resolvable,
dependencies) and outputs as a JSON document without a cluster; without `--dry-run` it
prints a Stack custom resource manifest to pipe into `kubectl apply -f -`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser("stack", help="HOT templates: validate, create (dry-run or a Stack manifest)")
    verbs = stack.add_subparsers(dest="stack_command", metavar="VERB")
    verbs.required = True

    validate = verbs.add_parser("validate", help="validate a template (openstack orchestration template validate)")
    _template_args(validate)
    validate.add_argument("-f", "--format", choices=("yaml", "json"), default="yaml",
                          help="output format (default yaml)")
    validate.set_defaults(func=_validate)

    create = verbs.add_parser("create", help="print what a stack would create (--dry-run) or its Stack manifest")
    create.add_argument("name", help="stack name")
    _template_args(create, required=False)
    create.add_argument("--dry-run", action="store_true",
                        help="resolve the template offline and print resources and outputs")
    create.add_argument("-f", "--format", "-o", "--output", dest="format", default=None,
                        help="output format json or yaml (dry-run default json, manifest default "
                             "yaml); `-f TEMPLATE.yaml` without -t names the template, as in the "
                             "lecture's `openstack stack create my_stack -f boot.yaml`")
    create.add_argument("-n", "--namespace", help="namespace (project) of the Stack manifest")
    create.set_defaults(func=_create)


def _template_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-t", "--template", required=required, help="HOT template file")
    p.add_argument("-e", "--environment", action="append", default=[],
                   help="environment file (repeatable; later ones override earlier ones)")
    p.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter value (repeatable; several may be joined with ';')")
    p.add_argument("--parameter-file", action="append", default=[], metavar="KEY=FILE",
                   help="parameter value read from a file (repeatable)")


class _InputError(Exception):
    pass


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as e:
        raise _InputError(f"cannot read {path}: {e.strerror}") from None


def _parameters(args: argparse.Namespace) -> dict[str, str]:
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
        params[k.strip()] = _read(path)
    return params


def _collect_files(doc: Any, base: str, files: dict[str, str]) -> None:
    """Read the files a template refers to with get_file (relative to the template), as the
    openstack client does."""
    if isinstance(doc, dict):
        if len(doc) == 1 and "get_file" in doc and isinstance(doc["get_file"], str):
            ref = doc["get_file"]
            if ref not in files:
                path = ref[len("file://"):] if ref.startswith("file://") else ref
                full = path if os.path.isabs(path) else os.path.join(base, path)
                if os.path.isfile(full):
                    files[ref] = _read(full)
            return
        for v in doc.values():
            _collect_files(v, base, files)
    elif isinstance(doc, list):
        for v in doc:
            _collect_files(v, base, files)


def _merge_env(paths: list[str]) -> dict[str, Any]:
    from kubestack.orchestration.template import parse_document

    env: dict[str, Any] = {}
    for path in paths:
        doc = parse_document(_read(path), "environment")
        for section, value in doc.items():
            if isinstance(value, dict) and isinstance(env.get(section), dict):
                env[section] = {**env[section], **value}
            else:
                env[section] = value
    return env


def _inputs(args: argparse.Namespace) -> tuple[dict, dict, dict, dict]:
    """(template map, parameters, files, environment) from the command line."""
    from kubestack.orchestration.template import parse_document

    text = _read(args.template)
    template = parse_document(text, "template")
    files: dict[str, str] = {}
    _collect_files(template, os.path.dirname(os.path.abspath(args.template)), files)
    return template, _parameters(args), files, _merge_env(args.environment)


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

    fmt = args.format or "yaml"
    try:
        stack, (template, params, files, env) = _load(args, args.name)
    except (HeatError, _InputError) as e:
        print(f"ERROR: Failed to validate: {e}", file=sys.stderr)
        return 1
    print(_dump(stack_manifest(args.name, template, params, files, env, args.namespace), fmt),
          end="" if fmt == "yaml" else "\n")
    _note_unchecked(stack)
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

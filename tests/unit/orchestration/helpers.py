"""Small builders for orchestration tests."""

from __future__ import annotations

from typing import Any

import yaml

from kubestack.orchestration import load_stack


def tmpl(version: str = "2021-04-16", resources: dict | None = None, outputs: dict | None = None,
         parameters: dict | None = None, conditions: dict | None = None, **extra: Any) -> dict:
    t: dict[str, Any] = {"heat_template_version": version}
    if parameters is not None:
        t["parameters"] = parameters
    if resources is not None:
        t["resources"] = resources
    if outputs is not None:
        t["outputs"] = outputs
    if conditions is not None:
        t["conditions"] = conditions
    t.update(extra)
    return t


def output_of(expr: Any, version: str = "2021-04-16", parameters: dict | None = None,
              params: dict | None = None, files: dict | None = None, resources: dict | None = None,
              conditions: dict | None = None, attrs: dict | None = None, **kw: Any) -> Any:
    """The value of a single output ``o`` whose value is ``expr``."""
    t = tmpl(version, resources=resources, outputs={"o": {"value": expr}}, parameters=parameters,
             conditions=conditions)
    stack = load_stack(t, params or {}, files or {}, **kw)
    return stack.outputs(attrs or {}, keep_unresolved=True)["o"]


def server(**props: Any) -> dict:
    base = {"image": "cirros", "flavor": "m1.small"}
    base.update(props)
    return {"type": "OS::Nova::Server", "properties": base}


def load_yaml(text: str, **kw: Any):
    return load_stack(yaml.safe_load(text) if kw.pop("parsed", False) else text, **kw)

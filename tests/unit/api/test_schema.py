"""The pydantic -> structural OpenAPI converter."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from kubestack.api.common import IPAddress, KubeModel, cel, rule
from kubestack.api.schema import SchemaError, model_schema, structural_problems

pytestmark = pytest.mark.unit


class Inner(KubeModel):
    model_config = KubeModel.model_config | {"json_schema_extra": cel(rule("true", "inner"))}
    value: int = 1


class Outer(KubeModel):
    maybe: str | None = None
    number_or_name: int | str | None = None
    free: dict[str, Any] | None = None
    anything: Any = None
    labels: dict[str, str] = Field(default_factory=dict, max_length=4)
    inner: Inner | None = Field(default=None, json_schema_extra=cel(rule("false", "outer")))
    address: IPAddress | None = None
    ratio: float = Field(default=1.0, gt=0)
    tags: set[str] = Field(default_factory=set, max_length=3)


def test_conversion():
    s = model_schema(Outer)
    p = s["properties"]
    assert structural_problems(s) == []
    assert p["maybe"] == {"type": "string"}
    assert p["numberOrName"] == {"x-kubernetes-int-or-string": True}
    assert p["free"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert p["anything"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert p["labels"]["additionalProperties"] == {"type": "string"}
    assert p["labels"]["maxProperties"] == 4
    assert [r["message"] for r in p["inner"]["x-kubernetes-validations"]] == ["inner", "outer"]
    assert p["inner"]["properties"]["value"]["default"] == 1
    assert p["address"]["x-kubernetes-validations"][0]["rule"] == "isIP(self)"
    assert p["ratio"]["minimum"] == 0 and p["ratio"]["exclusiveMinimum"] is True
    assert p["tags"]["x-kubernetes-list-type"] == "set" and "uniqueItems" not in p["tags"]
    assert "title" not in s and "$defs" not in s


def test_unions_that_are_not_structural_are_refused():
    class Bad(KubeModel):
        x: int | list[str]

    with pytest.raises(SchemaError, match="cannot be expressed structurally"):
        model_schema(Bad)


def test_structural_problems_are_reported():
    assert structural_problems({"type": "object", "properties": {"a": {}}}) == [".a: no type"]
    assert structural_problems({"type": "object", "properties": {
        "b": {"anyOf": [{"type": "string"}], "type": "string"}}}) == [".b: has anyOf", ".b: unsupported key anyOf"]

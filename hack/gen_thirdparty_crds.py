#!/usr/bin/env python3
"""Generate third-party CRDs (KubeVirt, CDI, Multus, VolumeSnapshot) for the local control plane.

    .venv/bin/python hack/gen_thirdparty_crds.py            write hack/crds/*.yaml
    .venv/bin/python hack/gen_thirdparty_crds.py --check    exit 1 (with a diff summary) when the
                                                            committed files differ from the output
    .venv/bin/python hack/gen_thirdparty_crds.py --out DIR  write somewhere else

Inputs are the upstream API descriptions in ``<repo>/../shared/schemas`` (override with the env var
``KUBESTACK_SHARED_DIR``: the ``shared`` directory holding ``schemas/``, or the schemas directory
itself). KubeVirt and CDI ship no CRD YAML (their operators generate the CRDs at install time), so
their Swagger 2.0 definitions are converted here into structural ``openAPIV3Schema``s:

* every ``$ref`` is inlined; a definition that recurs on its own path, or a nesting deeper than
  ``MAX_DEPTH`` levels, is cut to ``{type: object, x-kubernetes-preserve-unknown-fields: true}``
  (none of the kinds generated today needs a cut: the report in ``main()`` counts them);
* descriptions, ``default``s (except on list-map keys that are not required), ``$ref``,
  ``x-kubernetes-patch-*`` and ``x-kubernetes-unions`` are dropped;
* ``IntOrString`` and ``resource.Quantity`` become ``x-kubernetes-int-or-string: true``
  (Quantity also gets its string pattern), ``metav1.Time`` a ``date-time`` string,
  ``RawExtension``/``FieldsV1`` ``x-kubernetes-preserve-unknown-fields: true``, Swagger's
  ``type: [string, "null"]`` ``nullable: true``; the root ``metadata`` is ``type: object`` only
  (the apiserver owns ObjectMeta there); an embedded ObjectMeta (``spec.template.metadata``,
  ``dataVolumeTemplates[].metadata``) keeps its typed properties plus
  ``x-kubernetes-preserve-unknown-fields: true``, as KubeVirt's own CRDs preserve it;
* every object level is ``type: object`` with ``properties`` (or ``additionalProperties`` for
  maps), so the apiserver knows every field.

What the apiserver does with these schemas: a wrong type (``cores: "two"``) is always rejected;
an unknown field (``spec.template.spec.domain.cpuu``) is rejected only when the client asks for
``fieldValidation=Strict`` (kubectl >= 1.27 does by default: ``--validate=strict``), otherwise it
is pruned silently (``Warn`` returns a warning). Clients of the local control plane should send
``fieldValidation=Strict``; ``tests/support/schemas.py`` applies the same closed-world rule
client-side.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import json
import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "hack" / "crds"
COMMAND = ".venv/bin/python hack/gen_thirdparty_crds.py"
MAX_DEPTH = 40  # nesting levels of schema objects below the root before a cut
SIZE_BUDGET = 1024 * 1024  # bytes per file; the apiserver's etcd value limit is ~1.5 MiB

# The regular expression resource.Quantity strings must match (the apiserver's Quantity grammar).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# Formats kube-apiserver recognises for CRD schemas; any other Swagger format is dropped.
KNOWN_FORMATS = {
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
    "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
    "byte", "password", "date", "duration", "datetime", "date-time", "int32", "int64", "float",
    "double",
}
SCALAR_TYPES = {"string", "integer", "number", "boolean"}
# Definition names (suffix after the last '.', or full name) with a fixed structural rendering.
PRESERVE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _special(name: str) -> dict | None:
    if name.endswith("intstr.IntOrString"):
        return {"x-kubernetes-int-or-string": True}
    if name.endswith("resource.Quantity"):
        return {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    if name.endswith(("v1.Time", "v1.MicroTime")):
        return {"type": "string", "format": "date-time"}
    if name.endswith("v1.Duration"):
        return {"type": "string"}
    if name.endswith(("runtime.RawExtension", "v1.FieldsV1")):
        return dict(PRESERVE)
    if name.endswith("apiextensions.v1.JSON"):
        return {"x-kubernetes-preserve-unknown-fields": True}
    return None


class SwaggerConverter:
    """Inline a Swagger 2.0 definition into a structural openAPIV3Schema."""

    def __init__(self, definitions: dict, max_depth: int = MAX_DEPTH):
        self.defs = definitions
        self.max_depth = max_depth
        self.cuts: list[str] = []
        self.dropped: dict[str, int] = {}

    def _drop(self, key: str) -> None:
        self.dropped[key] = self.dropped.get(key, 0) + 1

    def root(self, name: str) -> dict:
        schema = self._ref(name, stack=(), depth=0, path="")
        props = schema.setdefault("properties", {})
        props["metadata"] = {"type": "object"}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        schema["type"] = "object"
        schema.pop("nullable", None)
        return schema

    def _ref(self, name: str, stack: tuple, depth: int, path: str) -> dict:
        special = _special(name)
        if special is not None:
            return copy.deepcopy(special)
        if name not in self.defs:
            raise KeyError(f"{path or '<root>'}: $ref to unknown definition {name!r}")
        if name in stack or depth > self.max_depth:
            self.cuts.append(f"{path} ({name})")
            return dict(PRESERVE)
        schema = self._schema(self.defs[name], stack + (name,), depth, path)
        if name.endswith("meta.v1.ObjectMeta") or name == "v1.ObjectMeta":
            # Embedded ObjectMeta (pod-template style): typed where known, unknown kept.
            schema["x-kubernetes-preserve-unknown-fields"] = True
        return schema

    def _schema(self, src: dict, stack: tuple, depth: int, path: str) -> dict:
        if "$ref" in src:
            ref = src["$ref"]
            if not ref.startswith("#/definitions/"):
                raise ValueError(f"{path}: unsupported $ref {ref!r}")
            out = self._ref(ref[len("#/definitions/"):], stack, depth, path)
            if src.get("nullable"):
                out["nullable"] = True
            for key in src:
                if key not in ("$ref", "description", "default", "nullable"):
                    raise ValueError(f"{path}: unexpected sibling {key!r} of $ref")
            return out

        out: dict = {}
        typ = src.get("type")
        if isinstance(typ, list):
            kinds = [t for t in typ if t != "null"]
            if "null" in typ:
                out["nullable"] = True
            if len(kinds) == 1:
                typ = kinds[0]
            elif "string" in kinds and ({"integer", "number"} & set(kinds)):
                out["x-kubernetes-int-or-string"] = True
                typ = None
            else:
                raise ValueError(f"{path}: cannot express type {typ!r} structurally")
        if src.get("format") == "int-or-string":
            out["x-kubernetes-int-or-string"] = True
            typ = None
        if typ is None and "properties" in src:
            typ = "object"
        if typ is not None:
            out["type"] = typ

        for key, value in src.items():
            if key in ("type", "properties", "items", "additionalProperties", "$ref"):
                continue
            if key == "description":
                continue
            if key == "default":
                self._drop("default")
                continue
            if key == "format":
                if isinstance(value, str) and value in KNOWN_FORMATS and "type" in out:
                    out["format"] = value
                elif value != "int-or-string":
                    self._drop(f"format:{value}")
                continue
            if key in ("x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key",
                       "x-kubernetes-unions"):
                self._drop(key)
                continue
            if key in ("required", "enum", "nullable", "x-kubernetes-list-type",
                       "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "minimum",
                       "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern"):
                out[key] = copy.deepcopy(value)
                continue
            raise ValueError(f"{path}: unhandled Swagger keyword {key!r}")

        if "properties" in src:
            props = {}
            for pname in sorted(src["properties"]):
                props[pname] = self._schema(src["properties"][pname], stack, depth + 1,
                                            f"{path}.{pname}")
            out["properties"] = props
        addl = src.get("additionalProperties")
        if isinstance(addl, dict):
            if "properties" in src:
                raise ValueError(f"{path}: both properties and additionalProperties")
            out["additionalProperties"] = self._schema(addl, stack, depth + 1, f"{path}{{}}")
        elif addl is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif addl is False:
            self._drop("additionalProperties:false")
        if "items" in src:
            if not isinstance(src["items"], dict):
                raise ValueError(f"{path}: tuple items are not structural")
            out["items"] = self._schema(src["items"], stack, depth + 1, f"{path}[]")
            self._fix_list_type(out, src, path)
        if out.get("type") == "object" and "properties" in out and "required" in out:
            out["required"] = [r for r in out["required"] if r in out["properties"]]
            if not out["required"]:
                del out["required"]
        if "enum" in out and out.get("type") not in SCALAR_TYPES:
            raise ValueError(f"{path}: enum on a non-scalar")
        return out

    def _fix_list_type(self, out: dict, src: dict, path: str) -> None:
        """Make list-type annotations legal for the apiserver, or fail loudly."""
        lt = out.get("x-kubernetes-list-type")
        items = out["items"]
        if lt == "set" and items.get("type") not in SCALAR_TYPES \
                and items.get("x-kubernetes-map-type") != "atomic":
            out["x-kubernetes-list-type"] = "atomic"
            self._drop("list-type:set-on-non-scalar")
        if lt == "map":
            keys = out.get("x-kubernetes-list-map-keys") or []
            iprops = items.get("properties") or {}
            if items.get("type") != "object" or not keys or any(k not in iprops for k in keys):
                raise ValueError(f"{path}: list-type map whose keys are not item properties")
            # A key that is not required needs a default (the apiserver insists): keep Swagger's.
            item_src = src["items"]
            if "$ref" in item_src:
                item_src = self.defs[item_src["$ref"].split("/")[-1]]
            required = set(items.get("required") or [])
            for key in keys:
                if iprops[key].get("type") not in SCALAR_TYPES:
                    raise ValueError(f"{path}: list-map key {key} is not a scalar")
                if key in required:
                    continue
                default = ((item_src.get("properties") or {}).get(key) or {}).get("default")
                enum = iprops[key].get("enum")
                if default is None or (enum and default not in enum):
                    raise ValueError(f"{path}: list-map key {key} neither required nor defaulted")
                iprops[key]["default"] = default
        elif "x-kubernetes-list-map-keys" in out:
            del out["x-kubernetes-list-map-keys"]
            self._drop("list-map-keys-without-map")


# ---------------------------------------------------------------------------------------------
# structural check (shared with the unit test through import)


def structural_problems(schema: dict, path: str = "") -> list[str]:
    """Return the reasons the apiserver would call `schema` non-structural (empty list if fine)."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return [f"{path or '<root>'}: schema is not a mapping"]
    where = path or "<root>"
    if "$ref" in schema:
        problems.append(f"{where}: $ref")
    if "description" in schema:
        problems.append(f"{where}: description kept")
    has_type = "type" in schema
    ios = schema.get("x-kubernetes-int-or-string") is True
    pu = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if not (has_type or ios or pu):
        problems.append(f"{where}: no type")
    if ios and has_type:
        problems.append(f"{where}: type together with x-kubernetes-int-or-string")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{where}: properties together with additionalProperties")
    if schema.get("additionalProperties") is False:
        problems.append(f"{where}: additionalProperties: false")
    if schema.get("type") == "array" and "items" not in schema:
        problems.append(f"{where}: array without items")
    lt = schema.get("x-kubernetes-list-type")
    if lt is not None and schema.get("type") != "array":
        problems.append(f"{where}: x-kubernetes-list-type on a non-array")
    if "x-kubernetes-map-type" in schema and schema.get("type") != "object":
        problems.append(f"{where}: x-kubernetes-map-type on a non-object")
    for key in ("anyOf", "allOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or []):
            forbidden = {"properties", "items", "additionalProperties", "description",
                         "default", "nullable", "x-kubernetes-preserve-unknown-fields",
                         "x-kubernetes-embedded-resource"} & set(sub)
            if forbidden and not (ios and key == "anyOf" and set(sub) == {"type"}):
                problems.append(f"{where}.{key}[{i}]: {sorted(forbidden)} inside a junctor")
            if "type" in sub and not (ios and key == "anyOf"):
                problems.append(f"{where}.{key}[{i}]: type inside a junctor")
    for name, sub in (schema.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += structural_problems(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}{{}}")
    return problems


def _strip_descriptions(node):
    if isinstance(node, dict):
        return {k: _strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


# ---------------------------------------------------------------------------------------------
# CRD assembly


def age() -> dict:
    return {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}


def col(name: str, path: str, typ: str = "string", priority: int | None = None) -> dict:
    c = {"jsonPath": path, "name": name, "type": typ}
    if priority is not None:
        c["priority"] = priority
    return c


def crd(group: str, kind: str, plural: str, singular: str, versions: list[dict], *,
        scope: str = "Namespaced", short_names: list[str] | None = None,
        categories: list[str] | None = None, annotations: dict | None = None) -> dict:
    names = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": singular}
    if short_names:
        names["shortNames"] = short_names
    if categories:
        names["categories"] = categories
    meta: dict = {"name": f"{plural}.{group}"}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta,
        "spec": {"group": group, "names": names, "scope": scope, "versions": versions},
    }


def version(name: str, schema: dict, *, served: bool = True, storage: bool = True,
            status: bool = True, columns: list[dict] | None = None) -> dict:
    v: dict = {"name": name, "served": served, "storage": storage,
               "schema": {"openAPIV3Schema": schema}}
    if status:
        v["subresources"] = {"status": {}}
    if columns:
        v["additionalPrinterColumns"] = columns
    return v


def ready_col(cond: str = "Ready", name: str = "Ready", priority: int | None = None) -> dict:
    return col(name, f".status.conditions[?(@.type=='{cond}')].status", priority=priority)


def kubevirt_crds(schemas: Path, report: dict) -> list[tuple[str, dict]]:
    defs = json.loads((schemas / "kubevirt-swagger.json").read_text())["definitions"]
    conv = SwaggerConverter(defs)
    out = []
    spec = [
        ("VirtualMachine", "virtualmachines", "virtualmachine", ["vm", "vms"],
         [age(), col("Status", ".status.printableStatus"), ready_col()]),
        ("VirtualMachineInstance", "virtualmachineinstances", "virtualmachineinstance",
         ["vmi", "vmis"],
         [age(), col("Phase", ".status.phase"), col("IP", ".status.interfaces[0].ipAddress"),
          col("NodeName", ".status.nodeName"), ready_col(),
          ready_col("LiveMigratable", "Live-Migratable", priority=1),
          ready_col("Paused", "Paused", priority=1)]),
        ("VirtualMachineInstanceMigration", "virtualmachineinstancemigrations",
         "virtualmachineinstancemigration", ["vmim", "vmims"],
         [col("Phase", ".status.phase"), col("VMI", ".spec.vmiName")]),
    ]
    for kind, plural, singular, short, cols in spec:
        schema = conv.root(f"v1.{kind}")
        # KubeVirt's own VMI CRD has no status subresource: virt-controller and virt-handler
        # update the whole object (labels and status in one write); VM and VMIM have one
        has_status = kind != "VirtualMachineInstance"
        out.append(("kubevirt-swagger.json", crd(
            "kubevirt.io", kind, plural, singular,
            [version("v1", schema, status=has_status, columns=cols)],
            short_names=short, categories=["all"])))
    report["kubevirt"] = {"cuts": conv.cuts, "dropped": conv.dropped}
    return out


def cdi_crds(schemas: Path, report: dict) -> list[tuple[str, dict]]:
    defs = json.loads((schemas / "cdi-swagger.json").read_text())["definitions"]
    conv = SwaggerConverter(defs)
    schema = conv.root("v1beta1.DataVolume")
    cols = [col("Phase", ".status.phase"), col("Progress", ".status.progress"),
            col("Restarts", ".status.restartCount", "integer"), age()]
    report["cdi"] = {"cuts": conv.cuts, "dropped": conv.dropped}
    return [("cdi-swagger.json", crd(
        "cdi.kubevirt.io", "DataVolume", "datavolumes", "datavolume",
        [version("v1beta1", schema, columns=cols)], short_names=["dv", "dvs"],
        categories=["all"]))]


def _normalise_upstream(doc: dict) -> dict:
    doc = _strip_descriptions(doc)
    for v in doc["spec"]["versions"]:
        root = v["schema"]["openAPIV3Schema"]
        root["type"] = "object"
        props = root.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"type": "object"}
    out = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": doc["metadata"]["name"]},
        "spec": doc["spec"],
    }
    return out


def multus_crds(schemas: Path) -> list[tuple[str, dict]]:
    out = []
    nad = [d for d in yaml.safe_load_all((schemas / "multus-nad-crd.yaml").read_text()) if d]
    (doc,) = nad
    doc = _normalise_upstream(doc)
    names = doc["spec"]["names"]
    names.setdefault("listKind", names["kind"] + "List")
    names["shortNames"] = list(dict.fromkeys(list(names.get("shortNames") or []) + ["nad"]))
    out.append(("multus-nad-crd.yaml", doc))

    mnp = [d for d in yaml.safe_load_all((schemas / "multi-networkpolicy-crd.yaml").read_text())
           if d]
    (doc,) = mnp
    doc = _normalise_upstream(doc)
    names = doc["spec"]["names"]
    names.setdefault("listKind", names["kind"] + "List")
    versions = []
    for v in doc["spec"]["versions"]:
        if v["name"] == "v1beta1":
            v["served"], v["storage"] = True, True
        else:
            v["served"], v["storage"] = False, False
        versions.append(v)
    if sum(1 for v in versions if v["storage"]) != 1:
        raise ValueError("multi-networkpolicy: exactly one storage version expected")
    doc["spec"]["versions"] = versions
    out.append(("multi-networkpolicy-crd.yaml", doc))
    return out


def snapshot_crds() -> list[tuple[None, dict]]:
    """VolumeSnapshot API (snapshot.storage.k8s.io/v1), written from the published field list."""
    s = lambda: {"type": "string"}  # noqa: E731
    error = {"type": "object", "properties": {
        "message": s(), "time": {"type": "string", "format": "date-time"}}}
    obj_meta = {"type": "object"}
    base = lambda: {"apiVersion": s(), "kind": s(), "metadata": dict(obj_meta)}  # noqa: E731
    approved = {"api-approved.kubernetes.io":
                "https://github.com/kubernetes-csi/external-snapshotter/pull/419"}
    deletion_policy = {"type": "string", "enum": ["Delete", "Retain"]}

    vs = {"type": "object", "required": ["spec"], "properties": {
        **base(),
        "spec": {"type": "object", "required": ["source"], "properties": {
            "source": {
                "type": "object",
                "properties": {"persistentVolumeClaimName": s(),
                               "volumeSnapshotContentName": s()},
                "oneOf": [{"required": ["persistentVolumeClaimName"]},
                          {"required": ["volumeSnapshotContentName"]}],
                "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "spec.source is immutable"}],
            },
            "volumeSnapshotClassName": s(),
        }},
        "status": {"type": "object", "properties": {
            "boundVolumeSnapshotContentName": s(),
            "creationTime": {"type": "string", "format": "date-time"},
            "error": error,
            "readyToUse": {"type": "boolean"},
            "restoreSize": _special("resource.Quantity"),
            "volumeGroupSnapshotName": s(),
        }},
    }}
    vs_cols = [
        col("ReadyToUse", ".status.readyToUse", "boolean"),
        col("SourcePVC", ".spec.source.persistentVolumeClaimName"),
        col("SourceSnapshotContent", ".spec.source.volumeSnapshotContentName"),
        col("RestoreSize", ".status.restoreSize"),
        col("SnapshotClass", ".spec.volumeSnapshotClassName"),
        col("SnapshotContent", ".status.boundVolumeSnapshotContentName"),
        col("CreationTime", ".status.creationTime", "date"),
        age(),
    ]
    ref = {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
        k: s() for k in ("apiVersion", "fieldPath", "kind", "name", "namespace",
                         "resourceVersion", "uid")}}
    vsc = {"type": "object", "required": ["spec"], "properties": {
        **base(),
        "spec": {"type": "object",
                 "required": ["deletionPolicy", "driver", "source", "volumeSnapshotRef"],
                 "properties": {
                     "deletionPolicy": dict(deletion_policy),
                     "driver": s(),
                     "source": {"type": "object",
                                "properties": {"snapshotHandle": s(), "volumeHandle": s()},
                                "oneOf": [{"required": ["snapshotHandle"]},
                                          {"required": ["volumeHandle"]}]},
                     "sourceVolumeMode": {"type": "string", "enum": ["Block", "Filesystem"]},
                     "volumeSnapshotClassName": s(),
                     "volumeSnapshotRef": ref,
                 }},
        "status": {"type": "object", "properties": {
            "creationTime": {"type": "integer", "format": "int64"},
            "error": copy.deepcopy(error),
            "readyToUse": {"type": "boolean"},
            "restoreSize": {"type": "integer", "format": "int64", "minimum": 0},
            "snapshotHandle": s(),
            "volumeGroupSnapshotHandle": s(),
        }},
    }}
    vsc_cols = [
        col("ReadyToUse", ".status.readyToUse", "boolean"),
        col("RestoreSize", ".status.restoreSize", "integer"),
        col("DeletionPolicy", ".spec.deletionPolicy"),
        col("Driver", ".spec.driver"),
        col("VolumeSnapshotClass", ".spec.volumeSnapshotClassName"),
        col("VolumeSnapshot", ".spec.volumeSnapshotRef.name"),
        col("VolumeSnapshotNamespace", ".spec.volumeSnapshotRef.namespace"),
        age(),
    ]
    vsclass = {"type": "object", "required": ["deletionPolicy", "driver"], "properties": {
        **base(),
        "deletionPolicy": dict(deletion_policy),
        "driver": s(),
        "parameters": {"type": "object", "additionalProperties": s()},
    }}
    vsclass_cols = [col("Driver", ".driver"), col("DeletionPolicy", ".deletionPolicy"), age()]
    g = "snapshot.storage.k8s.io"
    return [
        (None, crd(g, "VolumeSnapshot", "volumesnapshots", "volumesnapshot",
                   [version("v1", vs, columns=vs_cols)], short_names=["vs"],
                   annotations=approved)),
        (None, crd(g, "VolumeSnapshotContent", "volumesnapshotcontents",
                   "volumesnapshotcontent", [version("v1", vsc, columns=vsc_cols)],
                   scope="Cluster", short_names=["vsc", "vscs"], annotations=approved)),
        # VolumeSnapshotClass has no status, hence no status subresource.
        (None, crd(g, "VolumeSnapshotClass", "volumesnapshotclasses", "volumesnapshotclass",
                   [version("v1", vsclass, status=False, columns=vsclass_cols)],
                   scope="Cluster", short_names=["vsclass", "vsclasses"],
                   annotations=approved)),
    ]


# ---------------------------------------------------------------------------------------------
# output


def shared_schemas_dir() -> Path:
    env = os.environ.get("KUBESTACK_SHARED_DIR")
    base = Path(env) if env else REPO.parent / "shared"
    if (base / "schemas").is_dir():
        return base / "schemas"
    if (base / "kubevirt-swagger.json").is_file():
        return base
    raise SystemExit(f"gen_thirdparty_crds: no schemas under {base} (set KUBESTACK_SHARED_DIR)")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render(doc: dict, source: str | None, schemas: Path) -> str:
    origin = (f"../shared/schemas/{source} (sha256 {_sha256(schemas / source)[:16]})"
              if source else "facts written in the generator (external-snapshotter v1 API)")
    header = [
        "# GENERATED FILE - DO NOT EDIT.",
        f"# Generated by `{COMMAND}` from {origin}.",
        f"# Check for drift: `{COMMAND} --check`.",
        "# Structural schema, descriptions dropped: a mistyped value is always rejected; an",
        "# unknown field is pruned, and rejected when the client sends fieldValidation=Strict",
        "# (kubectl's default since 1.27, --validate=strict).",
    ]
    body = yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=100,
                          allow_unicode=False)
    return "\n".join(header) + "\n---\n" + body


def file_name(doc: dict) -> str:
    spec = doc["spec"]
    return f"{spec['group']}_{spec['names']['plural']}.yaml"


def generate(report: dict | None = None) -> dict[str, str]:
    """Return {file name: text} for every third-party CRD."""
    report = {} if report is None else report
    schemas = shared_schemas_dir()
    docs = (kubevirt_crds(schemas, report) + cdi_crds(schemas, report) + multus_crds(schemas)
            + snapshot_crds())
    files: dict[str, str] = {}
    for source, doc in docs:
        for v in doc["spec"]["versions"]:
            problems = structural_problems(v["schema"]["openAPIV3Schema"])
            if problems:
                raise ValueError(f"{doc['metadata']['name']} {v['name']} is not structural: "
                                 + "; ".join(problems[:10]))
        name = file_name(doc)
        if name in files:
            raise ValueError(f"two CRDs map to {name}")
        files[name] = render(doc, source, schemas)
    return dict(sorted(files.items()))


def check(out_dir: Path, files: dict[str, str]) -> list[str]:
    """Differences between `files` and the YAML files in `out_dir`, one summary line each."""
    problems = []
    existing = {p.name for p in out_dir.glob("*.yaml")} if out_dir.is_dir() else set()
    for name, text in files.items():
        path = out_dir / name
        if not path.is_file():
            problems.append(f"missing: {path}")
            continue
        current = path.read_text()
        if current != text:
            diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), lineterm="",
                                             n=0))
            changed = sum(1 for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---")))
            first = next((d for d in diff if d.startswith("@@")), "")
            problems.append(f"differs: {path} ({changed} lines changed, first hunk {first})")
    for name in sorted(existing - set(files)):
        problems.append(f"stale (no longer generated): {out_dir / name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing; exit 1 on drift")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output dir (hack/crds)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no size report")
    args = parser.parse_args(argv)

    report: dict = {}
    files = generate(report)
    if args.check:
        problems = check(args.out, files)
        if problems:
            print(f"gen_thirdparty_crds: {len(problems)} file(s) out of date; run `{COMMAND}`",
                  file=sys.stderr)
            for p in problems:
                print("  " + p, file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"gen_thirdparty_crds: {len(files)} files up to date in {args.out}")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    for name in sorted({p.name for p in args.out.glob("*.yaml")} - set(files)):
        (args.out / name).unlink()
    for name, text in files.items():
        path = args.out / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    too_big = []
    for name, text in files.items():
        size = len(text.encode())
        if size > SIZE_BUDGET:
            too_big.append(name)
        if not args.quiet:
            print(f"{size:>9,} bytes  {args.out / name}")
    if not args.quiet:
        for part, info in sorted(report.items()):
            print(f"{part}: depth cuts {len(info['cuts'])}, dropped "
                  + ", ".join(f"{k}={v}" for k, v in sorted(info["dropped"].items())))
    if too_big:
        print(f"gen_thirdparty_crds: over the {SIZE_BUDGET} byte budget: {too_big}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

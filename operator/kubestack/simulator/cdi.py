"""CDI's DataVolume controller (import, clone, restore, upload, blank), as a pure function.

`reconcile_dv(dv, world)` creates the DataVolume's PVC (same name, owned by the DataVolume) and
walks the phases CDI reports:

=========================  ===================================================================
source                     phases (after the PVC is Bound; `Pending` before)
=========================  ===================================================================
http registry s3 gcs       ImportScheduled -> ImportInProgress (progress "N.NN%") -> Succeeded
imageio vddk                 ("100.0%"), or Failed when the source is unreachable (below)
blank                      Succeeded
pvc                        CloneScheduled -> CloneInProgress -> Succeeded (waits for the source
                             PVC to exist and be Bound; condition reason CloneWithoutSource)
snapshot                   CloneScheduled -> CloneFromSnapshotSourceInProgress -> Succeeded
                             (waits for the VolumeSnapshot to be readyToUse)
upload                     UploadScheduled -> UploadReady; the upload is "done" when the
                             DataVolume is annotated simulator.kubestack.io/uploaded: "true"
                             (what `virtctl image-upload` completes on a real cluster) -> Succeeded
=========================  ===================================================================

The import takes `--import-delay` seconds from the moment the PVC is bound.

Unreachable sources (deterministic, no network is ever touched): a URL fails when
  * its scheme does not fit the source (http/https for http, s3 and gcs also s3:// and gs://,
    docker:// or oci-archive:// for registry),
  * it has no host,
  * it contains "invalid" anywhere (so any host under the reserved `.invalid` TLD fails),
or when the DataVolume carries `simulator.kubestack.io/fail: import`. The DataVolume then goes
`Failed` with conditions Running=False/Ready=False reason `Error` and the importer's message,
restartCount 1 (the importer ran once and gave up).

Storage defaults when `spec.storage` leaves them out (the simulated StorageProfile): accessModes
[ReadWriteMany], volumeMode Filesystem; a clone takes the source PVC's size.
"""

from __future__ import annotations

from typing import Mapping
from urllib.parse import urlparse

from kubestack.simulator.common import (
    ANN_UPLOADED, Outcome, World, Write, annotations, deep, deleting, fail_modes, get,
    is_owned_by, make_condition, metadata_write, owner_ref, parse_time, put_conditions,
    status_write, find_condition,
)

IMPORT_SOURCES = ("http", "registry", "s3", "gcs", "imageio", "vddk")
ALLOWED_SCHEMES = {
    "http": ("http", "https"),
    "s3": ("http", "https", "s3"),
    "gcs": ("http", "https", "gs"),
    "registry": ("docker", "oci-archive"),
    "imageio": ("http", "https"),
    "vddk": ("http", "https"),
}
POPULATED_FOR = "cdi.kubevirt.io/storage.populatedFor"
ALLOW_ADOPTION = "cdi.kubevirt.io/allowClaimAdoption"
POD_PHASE = "cdi.kubevirt.io/storage.pod.phase"


def source_kind(dv: Mapping) -> str:
    source = get(dv, "spec", "source", default={})
    for kind in IMPORT_SOURCES + ("pvc", "snapshot", "upload", "blank"):
        if kind in source:
            return kind
    if get(dv, "spec", "sourceRef"):
        return "sourceRef"
    return "blank"


def source_error(dv: Mapping) -> str | None:
    """The importer's failure message for an unreachable source, or None (see module doc)."""
    kind = source_kind(dv)
    if "import" in fail_modes(dv):
        return "simulator: injected import failure (importer exited with an error)"
    if kind not in IMPORT_SOURCES:
        return None
    url = get(dv, "spec", "source", kind, "url", default="")
    if kind == "imageio" and not url:
        return None
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES[kind]:
        return f"Unable to process data: unsupported URL scheme {scheme!r} for a {kind} source"
    host = parsed.hostname or ("" if kind != "registry" else parsed.netloc)
    if not host:
        return f"Unable to connect to {kind} data source: URL {url!r} has no host"
    if "invalid" in url.lower():
        return (f"Unable to connect to {kind} data source: Get \"{url}\": dial tcp: lookup {host}: "
                "no such host")
    return None


def pvc_for(dv: Mapping, world: World) -> dict | str:
    """The PVC CDI creates for `dv` (or the reason it cannot)."""
    md = dv["metadata"]
    spec = dv.get("spec") or {}
    if spec.get("pvc"):
        pvc_spec = deep(spec["pvc"])
    else:
        storage = deep(spec.get("storage") or {})
        pvc_spec = {k: v for k, v in storage.items() if k in (
            "accessModes", "resources", "selector", "storageClassName", "volumeMode", "volumeName",
            "dataSource", "dataSourceRef")}
        pvc_spec.setdefault("accessModes", ["ReadWriteMany"])
        pvc_spec.setdefault("volumeMode", "Filesystem")
    if not get(pvc_spec, "resources", "requests", "storage"):
        size = None
        if source_kind(dv) == "pvc":
            src = get(dv, "spec", "source", "pvc", default={})
            source_pvc = world.pvcs.get((src.get("namespace") or md["namespace"], src.get("name")))
            size = get(source_pvc, "status", "capacity", "storage") or \
                get(source_pvc, "spec", "resources", "requests", "storage")
        if not size:
            return "the DataVolume's storage size is missing (spec.storage.resources.requests.storage)"
        pvc_spec.setdefault("resources", {}).setdefault("requests", {})["storage"] = size
    kind = source_kind(dv)
    annots = {"cdi.kubevirt.io/storage.contentType": spec.get("contentType", "kubevirt"),
              "cdi.kubevirt.io/createdForDataVolume": md["uid"]}
    if kind in IMPORT_SOURCES:
        annots["cdi.kubevirt.io/storage.import.source"] = kind
        url = get(dv, "spec", "source", kind, "url")
        if url:
            annots["cdi.kubevirt.io/storage.import.endpoint"] = url
    elif kind == "blank":
        annots["cdi.kubevirt.io/storage.import.source"] = "none"
    elif kind == "upload":
        annots["cdi.kubevirt.io/storage.upload.target"] = ""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": md["name"],
            "namespace": md["namespace"],
            "labels": {"app": "containerized-data-importer",
                       "app.kubernetes.io/component": "storage",
                       "app.kubernetes.io/managed-by": "cdi-controller"},
            "annotations": annots,
            "ownerReferences": [owner_ref(dv)],
        },
        "spec": pvc_spec,
    }


def _progress(fraction: float) -> str:
    return f"{min(max(fraction, 0.0), 1.0) * 100:.2f}%"


def reconcile_dv(dv: Mapping, world: World) -> Outcome:
    out = Outcome()
    md = dv["metadata"]
    ns, name = md["namespace"], md["name"]
    now = world.now
    if deleting(dv):
        return out
    status = deep(dv.get("status") or {})
    phase = status.get("phase", "")
    if phase in ("Succeeded", "Failed"):
        return out
    conds = status.get("conditions") or []
    status.setdefault("restartCount", 0)
    status["claimName"] = name
    kind = source_kind(dv)
    pvc = world.pvcs.get((ns, name))

    def finish(new_phase: str, bound: tuple, running: tuple, ready: tuple, progress: str | None = None) -> Outcome:
        status["phase"] = new_phase
        if progress is not None:
            status["progress"] = progress
        elif new_phase not in ("ImportInProgress", "CloneInProgress", "CloneFromSnapshotSourceInProgress"):
            status["progress"] = "N/A"
        status["conditions"] = put_conditions(conds, [
            make_condition(conds, "Bound", *bound, now=now, heartbeat=True),
            make_condition(conds, "Running", *running, now=now, heartbeat=True),
            make_condition(conds, "Ready", *ready, now=now, heartbeat=True),
        ])
        w = status_write(dv, status)
        if w:
            out.writes.append(w)
        return out

    # the PVC: create, adopt, or refuse a foreign one
    if pvc is None:
        body = pvc_for(dv, world)
        if isinstance(body, str):
            return finish("Pending", ("Unknown", "NotFound", "No PVC found"), ("False", "Error", body),
                          ("False", "Error", body))
        out.writes.append(Write("create", "PersistentVolumeClaim", ns, name, body))
        return finish("Pending", ("False", "Pending", f"PVC {name} Pending"), ("False", "", ""), ("False", "", ""))
    if not is_owned_by(pvc, md["uid"]):
        pa = annotations(pvc)
        if pa.get(POPULATED_FOR) == name or annotations(dv).get(ALLOW_ADOPTION) == "true":
            bound = get(pvc, "status", "phase") == "Bound"
            return finish("Succeeded" if bound else "Pending",
                          ("True", "Bound", f"PVC {name} Bound") if bound else ("False", "Pending", f"PVC {name} Pending"),
                          ("False", "Completed" if bound else "", ""), ("True" if bound else "False", "", ""),
                          "100.0%" if bound else None)
        message = f'Resource "{name}" already exists and is not managed by DataVolume'
        return finish("Pending", ("False", "ErrExists", message), ("False", "ErrExists", message),
                      ("False", "ErrExists", message))
    if get(pvc, "status", "phase") != "Bound":
        return finish("Pending", ("False", "Pending", f"PVC {name} Pending"), ("False", "", ""), ("False", "", ""))

    bound = ("True", "Bound", f"PVC {name} Bound")
    bound_at = parse_time((find_condition(conds, "Bound") or {}).get("lastTransitionTime")) \
        if (find_condition(conds, "Bound") or {}).get("status") == "True" else None
    t0 = bound_at or now
    delay = max(world.config.import_delay, 0.0)
    elapsed = now - t0

    def mark_pvc_done() -> None:
        w = metadata_write(pvc, annotations={POD_PHASE: "Succeeded"})
        if w:
            out.writes.append(w)

    if kind == "blank":
        mark_pvc_done()
        return finish("Succeeded", bound, ("False", "Completed", ""), ("True", "", ""), "100.0%")

    if kind == "sourceRef":
        message = "the simulator does not resolve DataSource sourceRefs; give the source directly"
        return finish("Pending", bound, ("False", "Error", message), ("False", "Error", message))

    if kind == "upload":
        if annotations(dv).get(ANN_UPLOADED) == "true":
            mark_pvc_done()
            return finish("Succeeded", bound, ("False", "Completed", "Upload Complete"), ("True", "", ""), "100.0%")
        return finish("UploadReady", bound, ("True", "Pod is running", ""),
                      ("False", "TransferRunning", "Upload into the PVC is ready to be received"), "N/A")

    if kind in ("pvc", "snapshot"):
        src = get(dv, "spec", "source", kind, default={})
        src_ns = src.get("namespace") or ns
        if kind == "pvc":
            source_pvc = world.pvcs.get((src_ns, src.get("name")))
            if source_pvc is None or get(source_pvc, "status", "phase") != "Bound":
                why = "not found" if source_pvc is None else "not bound"
                return finish("CloneScheduled", bound, ("False", "CloneWithoutSource",
                              f"source PVC {src_ns}/{src.get('name')} {why}"), ("False", "", ""))
            source_dv = world.dvs.get((src_ns, src.get("name")))
            if source_dv is not None and get(source_dv, "status", "phase") != "Succeeded":
                return finish("CloneScheduled", bound, ("False", "SourcePVCNotReady",
                              f"source DataVolume {src_ns}/{src.get('name')} is not populated yet"), ("False", "", ""))
            in_progress = "CloneInProgress"
        else:
            snap = world.snapshots.get((src_ns, src.get("name")))
            if snap is None or not get(snap, "status", "readyToUse"):
                return finish("CloneScheduled", bound, ("False", "SnapshotNotReady",
                              f"VolumeSnapshot {src_ns}/{src.get('name')} is not ready to use"), ("False", "", ""))
            in_progress = "CloneFromSnapshotSourceInProgress"
        if delay == 0 or elapsed >= delay:
            mark_pvc_done()
            return finish("Succeeded", bound, ("False", "Completed", ""), ("True", "", ""), "100.0%")
        out.requeue(_next_tick(delay, elapsed))
        if elapsed < delay * 0.1:
            return finish("CloneScheduled", bound, ("False", "", ""), ("False", "", ""), "N/A")
        return finish(in_progress, bound, ("True", "Pod is running", ""), ("False", "TransferRunning", ""),
                      _progress(elapsed / delay))

    # import sources
    error = source_error(dv)
    if delay == 0 or elapsed >= delay or (error and elapsed >= delay / 2):
        if error:
            status["restartCount"] = max(status.get("restartCount", 0), 1)
            return finish("Failed", bound, ("False", "Error", error), ("False", "Error", error),
                          status.get("progress") if status.get("progress") not in (None, "N/A") else "0.00%")
        mark_pvc_done()
        return finish("Succeeded", bound, ("False", "Completed", "Import Complete"), ("True", "", ""), "100.0%")
    out.requeue(_next_tick(delay, elapsed))
    if elapsed < delay * 0.1:
        return finish("ImportScheduled", bound, ("False", "", ""), ("False", "", ""), "N/A")
    return finish("ImportInProgress", bound, ("True", "Pod is running", ""), ("False", "TransferRunning", ""),
                  _progress(elapsed / delay))


def _next_tick(delay: float, elapsed: float) -> float:
    """Progress is reported ten times over the delay (at most every 0.2 s)."""
    tick = max(delay / 10, 0.2)
    return max(min(tick - (elapsed % tick), delay - elapsed), 0.05)

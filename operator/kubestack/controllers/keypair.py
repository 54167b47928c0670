"""KeyPair controller (Nova keypairs).

* ``spec.publicKey`` given: validated (OpenSSH line for type ssh, PEM certificate for x509);
  status.publicKey and status.fingerprint as Nova shows them. Invalid data: Ready=False
  (reason InvalidKeypair, "Keypair data is invalid: ...") and a Warning Event, no exception.
* no ``spec.publicKey``: the operator generates an RSA 2048-bit key pair (Nova's choice, see
  kubestack.compute.keys), writes it ONCE into the Secret ``<name>-private-key`` (key
  ``private_key``, plus ``public_key``; type Opaque; owned by the KeyPair, so it goes with it)
  and records status.publicKey / fingerprint / privateKeySecret. A key pair whose status has
  a key is never regenerated: deleting the Secret after saving the private key (what
  `kubestack keypair create` does, as Nova hands the private key out only once) is safe
  across restarts. A Secret written before a crash that lost the status write is adopted,
  never replaced.

`@kopf.on.event` + a work queue (retries with back-off), writes only on change.
"""

from __future__ import annotations

import base64
import logging

import kopf
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.compute import keys
from kubestack.k8s import events, objects
from kubestack.k8s.client import core
from kubestack.k8s.conditions import find_condition, set_condition
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.store import Store
from kubestack.runtime.workqueue import Requeue, WorkQueue

log = logging.getLogger(__name__)

KEYPAIRS = objects.kubestack("keypairs", "KeyPair")
KEYPAIR_LABEL = "kubestack.io/keypair"
PRIVATE_KEY = "private_key"
PUBLIC_KEY = "public_key"

store = Store("keypairs")
queue: WorkQueue | None = None


def secret_name(keypair: str) -> str:
    return f"{keypair}-private-key"


def invalid_message(reason: str) -> str:
    return f"Keypair data is invalid: {reason}"


def _ready(kp: dict, ok: bool, reason: str, message: str) -> dict:
    current = kp.get("status") or {}
    generation = kp["metadata"].get("generation")
    return {"conditions": set_condition(current.get("conditions"), "Ready", ok, reason, message, generation),
            "observedGeneration": generation}


def imported_status(kp: dict) -> dict:
    """Status for a key pair with spec.publicKey (pure)."""
    spec = kp.get("spec") or {}
    try:
        parsed = keys.parse_public_key(spec["publicKey"], spec.get("type", "ssh"))
    except keys.InvalidKey as exc:
        return {**_ready(kp, False, "InvalidKeypair", invalid_message(str(exc))),
                "publicKey": None, "fingerprint": None}
    return {**_ready(kp, True, "Imported", f"public key imported, fingerprint {parsed.fingerprint}"),
            "publicKey": parsed.public_key, "fingerprint": parsed.fingerprint}


def _secret_body(kp: dict, generated: keys.GeneratedKey) -> dict:
    name = kp["metadata"]["name"]
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": secret_name(name), "namespace": kp["metadata"]["namespace"],
                     "labels": {KEYPAIR_LABEL: name},
                     "ownerReferences": [objects.owner_reference(kp)]},
        "stringData": {PRIVATE_KEY: generated.private_key, PUBLIC_KEY: generated.public.public_key},
    }


def _adopt(kp: dict, secret: dict) -> dict:
    """Status from a Secret this key pair wrote earlier."""
    spec = kp.get("spec") or {}
    key_type = spec.get("type", "ssh")
    data = secret.get("data") or {}
    public_text = base64.b64decode(data[PUBLIC_KEY]).decode() if PUBLIC_KEY in data else None
    if public_text:
        parsed = keys.parse_public_key(public_text, key_type)
    else:
        private = base64.b64decode(data.get(PRIVATE_KEY) or b"").decode()
        parsed = keys.public_from_private(private, kp["metadata"]["name"], key_type)
    return parsed_status(kp, parsed, secret["metadata"]["name"])


def parsed_status(kp: dict, parsed: keys.PublicKey, secret: str) -> dict:
    return {**_ready(kp, True, "Generated", f"key pair generated, fingerprint {parsed.fingerprint}; "
                                            f"private key in Secret {secret}"),
            "publicKey": parsed.public_key, "fingerprint": parsed.fingerprint, "privateKeySecret": secret}


def _generated_status(kp: dict) -> tuple[dict, list[tuple[str, str, str]]]:
    meta = kp["metadata"]
    ns, name = meta["namespace"], meta["name"]
    current = kp.get("status") or {}
    if current.get("publicKey"):  # generated before: never again
        return {**current, **_ready(kp, True, "Generated", _ready_message(current))}, []
    sname = secret_name(name)
    secret = objects.get_core("secret", ns, sname)
    if secret is None:
        generated = keys.generate(name, (kp.get("spec") or {}).get("type", "ssh"))
        try:
            core().create_namespaced_secret(ns, _secret_body(kp, generated), field_validation="Strict")
        except ApiException as exc:
            if exc.status != 409:
                raise
            raise Requeue(0.2, "the Secret appeared meanwhile: adopt it") from None
        status = parsed_status(kp, generated.public, sname)
        return status, [(events.NORMAL, "Generated",
                         f"Generated an RSA {keys.RSA_BITS}-bit key pair ({generated.public.fingerprint}); "
                         f"the private key is in Secret {sname} (key {PRIVATE_KEY}): save it and delete "
                         f"the Secret, it is not shown again")]
    owners = secret["metadata"].get("ownerReferences") or []
    if any(o.get("uid") == meta["uid"] for o in owners):
        return _adopt(kp, secret), [(events.NORMAL, "Generated", f"Private key in Secret {sname}")]
    if any(o.get("kind") == "KeyPair" for o in owners):
        # the Secret of an earlier key pair of this name: the garbage collector removes it
        raise Requeue(1.0, f"Secret {sname} belongs to an earlier key pair and is being deleted")
    message = (f"Secret {sname} already exists and does not belong to this key pair: delete or "
               f"rename it, the generated private key goes there")
    return {**_ready(kp, False, "SecretConflict", message)}, [(events.WARNING, "SecretConflict", message)]


def _ready_message(status: dict) -> str:
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return c.get("message") or ""
    return f"key pair generated, fingerprint {status.get('fingerprint')}"


def reconcile(key: tuple[str, str]) -> None:
    kp = store.get(*key)
    if kp is None or kp["metadata"].get("deletionTimestamp"):
        return
    current = kp.get("status") or {}
    if (kp.get("spec") or {}).get("publicKey"):
        desired, to_post = imported_status(kp), []
    else:
        desired, to_post = _generated_status(kp)
    patch = objects.status_diff(current, desired)
    if not patch:
        return
    try:
        updated = objects.patch_status(KEYPAIRS, key[0], key[1], patch)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    store.apply_event("MODIFIED", updated)
    old_ready = _condition(current)
    new_ready = _condition(desired)
    if not to_post and new_ready and (old_ready or {}).get("message") != new_ready.get("message"):
        if new_ready["status"] == "True":
            to_post = [(events.NORMAL, new_ready["reason"], new_ready["message"])]
        else:
            to_post = [(events.WARNING, new_ready["reason"], new_ready["message"])]
    for type_, reason, message in to_post:
        events.post(kp, type_, reason, message)


def _condition(status: dict) -> dict | None:
    return find_condition(status.get("conditions"), "Ready")


@kopf.on.startup()
def keypair_startup(**_) -> None:
    global queue
    queue = WorkQueue("keypairs", reconcile, workers=2)
    queue.start()
    for obj in store.list():
        queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))


@kopf.on.cleanup()
def keypair_cleanup(**_) -> None:
    if queue is not None:
        queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "keypairs")
@instrumented("KeyPair")
def keypair_event(type, body, **_) -> None:  # noqa: A002 - kopf's argument name
    store.apply_event(type, body)
    if type != "DELETED" and queue is not None:
        queue.add((body["metadata"]["namespace"], body["metadata"]["name"]))

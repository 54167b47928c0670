"""RBAC checks from a user's side."""

from __future__ import annotations

from kubernetes.client.rest import ApiException


def forbidden(call) -> bool:
    """True when `call()` is refused with 403 Forbidden (False when it succeeds)."""
    try:
        call()
    except ApiException as exc:
        return exc.status == 403
    return False

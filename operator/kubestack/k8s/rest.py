"""Raw requests through a kubernetes.client.ApiClient, JSON in and out as plain dicts.

The generated client's typed methods validate every argument with pydantic and return models;
the paths that make many calls (informers, the simulator, KubeVirt subresources that the
generated client does not know) go through here instead, with the same auth, TLS and pool.
"""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """A non-2xx answer of the API server (status, the Status object's message and reason)."""

    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(f"{status} {reason}: {message}".strip())
        self.status = status
        self.message = message
        self.reason = reason


def api_request(api: Any, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
                body: Any = None, content_type: str = "application/json",
                timeout: Any = None, stream: bool = False) -> Any:
    """One raw request through a kubernetes.client.ApiClient (its auth, TLS and pool), JSON in
    and out as plain dicts. With stream=True the open urllib3 response is returned (the caller
    reads and closes it); otherwise a non-2xx answer raises ApiError."""
    headers = {"Accept": "application/json"}
    payload = None
    if body is not None:
        headers["Content-Type"] = content_type
        payload = body  # the REST client serialises JSON content types itself
    _, url, headers, payload, _ = api.param_serialize(
        method=method, resource_path=path, query_params=query or [], header_params=headers,
        body=payload, auth_settings=["BearerToken"])
    resp = api.call_api(method, url, header_params=headers, body=payload, _request_timeout=timeout)
    if stream:
        if resp.status >= 400:
            data = resp.read()
            raise _error(resp.status, data)
        return resp.response
    data = resp.read()
    if resp.status >= 400:
        raise _error(resp.status, data)
    return json.loads(data) if data else None


def _error(status: int, data: bytes | None) -> ApiError:
    message, reason = "", ""
    if data:
        try:
            doc = json.loads(data)
            message, reason = doc.get("message", ""), doc.get("reason", "")
        except (ValueError, AttributeError):
            message = data.decode(errors="replace")[:500]
    return ApiError(status, message, reason)

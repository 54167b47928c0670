"""What the API server does with a JSON merge patch (RFC 7386), for in-memory fakes."""

from __future__ import annotations

import copy


def apply_merge_patch(target: dict, patch: dict) -> dict:
    """Apply `patch` to `target` in place (null removes a key) and return it."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            apply_merge_patch(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
    return target

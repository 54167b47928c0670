"""kopf handlers, one module per kind. Importing a module registers its handlers with kopf.

Handlers stay thin: parse the object into its pydantic model, call the domain logic
(`compute/`, `storage/`, ...), patch status, post Events.
"""

from __future__ import annotations

import importlib

# one module per kind; every module listed here is registered by `kubestack operator`
CONTROLLER_MODULES: list[str] = ["project", "server", "image", "volume", "flavor", "keypair", "servergroup", "network", "port", "securitygroup", "floatingip", "router", "stack"]


def load_all(names: list[str] | None = None) -> list[str]:
    """Import (and so register with kopf) the named controllers, or all of them."""
    selected = CONTROLLER_MODULES if names is None else names
    unknown = set(selected) - set(CONTROLLER_MODULES)
    if unknown:
        raise ValueError(f"unknown controllers {sorted(unknown)}; known: {', '.join(CONTROLLER_MODULES)}")
    for name in selected:
        importlib.import_module(f"{__name__}.{name}")
    return list(selected)

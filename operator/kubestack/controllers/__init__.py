"""kopf handlers, one module per kind. Importing a module registers its handlers with kopf.

Handlers stay thin: parse the object into its pydantic model, call the domain logic
(`compute/`, `storage/`, ...), patch status, post Events.
"""

from __future__ import annotations

import importlib

# one module per kind; every module listed here is registered by `kubestack operator`
CONTROLLER_MODULES: list[str] = []


def load_all() -> list[str]:
    for name in CONTROLLER_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return list(CONTROLLER_MODULES)

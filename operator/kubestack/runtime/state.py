"""The operator's process-wide singletons, shared by every controller.

Only the leader runs controllers, so in-memory state here is the one authority for decisions
that must be serialised across concurrent handlers (quota claims; the compute controller's
host cache and scheduler claims live here too, next to the ledger). Each singleton is
rebuilt from the cluster by a kopf startup handler before any handler runs.
"""

from __future__ import annotations

import threading

from kubestack.identity.quota import QuotaLedger

_lock = threading.Lock()
_ledger: QuotaLedger | None = None


def quota_ledger() -> QuotaLedger:
    """The one QuotaLedger of this operator process."""
    global _ledger
    with _lock:
        if _ledger is None:
            _ledger = QuotaLedger()
        return _ledger

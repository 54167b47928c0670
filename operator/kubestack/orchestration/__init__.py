"""The HOT (Heat Orchestration Template) engine: pure, no cluster.

``load_stack(...)`` parses and validates a template with its parameters, files and
environment into a :class:`Stack`; ``Stack.levels()`` / ``resources_in_order()`` give the
creation order, ``Stack.resolve(name, attrs)`` a resource's properties once the resources it
needs exist, ``Stack.outputs(attrs)`` the outputs, ``Stack.plan()`` / ``delete_plan()`` and
``diff(old, new)`` the plans the Stack controller follows. Errors are :class:`HeatError`
subclasses worded like Heat's.
"""

from .errors import HeatError
from .plan import CreatePlan, DeletePlan, DryRunResult, PlannedResource, ResourceChange, UpdatePlan
from .stack import Stack, diff, dns_name, load_stack
from .versions import VERSIONS, get_version

__all__ = ["HeatError", "Stack", "load_stack", "diff", "dns_name", "CreatePlan", "DeletePlan",
           "DryRunResult", "PlannedResource", "ResourceChange", "UpdatePlan", "VERSIONS",
           "get_version"]

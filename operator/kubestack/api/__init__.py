"""kubestack.io/v1alpha1 API: pydantic models (one module per kind) and the CRD generator.

``kubestack.api.registry.ALL_KINDS`` lists every kind's :class:`~kubestack.api.common.KindInfo`.
This package imports nothing else of kubestack's (only the group/version constants).
"""

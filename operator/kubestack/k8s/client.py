"""The operator's ApiClient (loaded once by the operator runtime, shared by controllers)."""

from __future__ import annotations

from functools import lru_cache

from kubernetes import client


@lru_cache(maxsize=1)
def api() -> client.ApiClient:
    # kubernetes.config.load_* has been called by the runtime before any controller runs
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = 64
    return client.ApiClient(configuration)


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api())


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api())

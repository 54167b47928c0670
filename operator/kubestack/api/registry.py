"""Every kind of kubestack.io/v1alpha1, in a stable order."""

from __future__ import annotations

from . import (
    flavor, floatingip, image, keypair, network, port, project, router, securitygroup, server,
    servergroup, stack, volume,
)
from .common import KindInfo

ALL_KINDS: tuple[KindInfo, ...] = (
    project.INFO,
    flavor.INFO,
    server.INFO,
    keypair.INFO,
    servergroup.INFO,
    image.INFO,
    volume.INFO,
    network.INFO,
    port.INFO,
    router.INFO,
    securitygroup.INFO,
    floatingip.INFO,
    stack.INFO,
)

BY_KIND: dict[str, KindInfo] = {k.kind: k for k in ALL_KINDS}
BY_PLURAL: dict[str, KindInfo] = {k.plural: k for k in ALL_KINDS}

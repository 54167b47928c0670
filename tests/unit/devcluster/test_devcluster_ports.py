"""A restarted control-plane process waits until its port is free again
(kubestack.devcluster.cluster.wait_bindable)."""

from __future__ import annotations

import socket
import threading

import pytest

from kubestack.devcluster.cluster import wait_bindable

pytestmark = pytest.mark.unit


def _listener() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_a_port_still_listened_on_is_not_bindable():
    held = _listener()
    try:
        assert not wait_bindable(held.getsockname()[1], timeout=0.3)
    finally:
        held.close()


def test_a_port_given_back_while_waiting_is_bindable():
    held = _listener()
    port = held.getsockname()[1]
    closing = threading.Timer(0.3, held.close)  # the dead process's last thread exits
    closing.start()
    try:
        assert wait_bindable(port, timeout=30)
    finally:
        closing.join()

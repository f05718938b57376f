"""Tests reach nothing beyond loopback: no name lookup, no connection elsewhere."""

from __future__ import annotations

import socket

import pytest
import pytest_socket

from tests.conftest import NetworkLookupBlockedError


def test_name_lookups_and_connections_are_guarded():
    # Checked first, so that a missing guard fails here instead of touching the network below.
    assert socket.getaddrinfo.__name__ == "_loopback_only_getaddrinfo"
    assert socket.socket.connect is not pytest_socket._true_connect


def test_a_public_name_is_not_even_looked_up():
    with pytest.raises(NetworkLookupBlockedError):
        socket.getaddrinfo("sandbox.safaricom.co.ke", 443)


@pytest.mark.filterwarnings("ignore:A test tried to use socket.socket.connect")
def test_a_connection_to_a_public_address_is_refused_before_any_packet_leaves():
    with socket.socket() as sock, pytest.raises(pytest_socket.SocketConnectBlockedError):
        sock.connect(("192.0.2.10", 443))  # TEST-NET-1, never routed


def test_loopback_stays_reachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
    assert socket.getaddrinfo("localhost", 80)

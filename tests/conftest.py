"""Suite-wide guards."""

from __future__ import annotations

import ipaddress
import socket

_real_getaddrinfo = socket.getaddrinfo


class NetworkLookupBlockedError(RuntimeError):
    """A test tried to resolve a name that is not loopback."""


def _is_loopback(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) describes a local bind address
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text.lower() in ("localhost", "localhost.", "testserver"):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    # pytest-socket's --allow-hosts guards connect() only; a name lookup would still ask the
    # resolver, so lookups of anything but loopback are refused too.
    if not _is_loopback(host):
        raise NetworkLookupBlockedError(f"tests may not resolve {host!r}: loopback only")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config) -> None:
    socket.getaddrinfo = _loopback_only_getaddrinfo

"""Suite-wide guards and fixtures."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import responses
from django.core.cache import cache

from payments.gateway import reset_daraja_client
from payments.services.background import background_wait

# Every log line and error body of the run is scanned for secrets and phone numbers; the
# fixtures a host project's tests use (payments.testing) serve the suite too.
pytest_plugins = ["tests.leaks", "payments.testing.fixtures"]

SANDBOX = "https://sandbox.safaricom.co.ke"
OAUTH_URL = f"{SANDBOX}/oauth/v1/generate"

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


@pytest.fixture(autouse=True)
def _fresh_state():
    # Throttle counters and the OAuth token live in the cache; the Daraja client is per process.
    cache.clear()
    reset_daraja_client()
    yield
    # A status poll's STK query runs on a thread of its own: none may outlive its test.
    assert background_wait(timeout=30), "background work still running after the test"
    cache.clear()
    reset_daraja_client()


@pytest.fixture
def daraja():
    """Daraja at the HTTP layer with a working OAuth endpoint; add the answers a test needs."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OAUTH_URL, json={"access_token": "test-token", "expires_in": "3599"})
        yield mock

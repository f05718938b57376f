"""The gateway shares one OAuth token between clients through Django's cache."""

from __future__ import annotations

import socket

import pytest
import responses
from django.core.cache import caches
from django.test import override_settings

from payments.daraja.client import DarajaClient
from payments.gateway import DjangoCacheTokenStore, daraja_config, get_daraja_client

SANDBOX = "https://sandbox.safaricom.co.ke"
OAUTH_URL = f"{SANDBOX}/oauth/v1/generate"
QUERY_URL = f"{SANDBOX}/mpesa/stkpushquery/v1/query"
QUERY_OK = {
    "ResponseCode": "0",
    "ResponseDescription": "The service request has been accepted successsfully",
    "MerchantRequestID": "22205-34066-1",
    "CheckoutRequestID": "ws_CO_1",
    "ResultCode": "0",
    "ResultDesc": "The service request is processed successfully.",
}


def redis_is_listening() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", 6379)) == 0


def query_with_fresh_clients(count: int, alias: str = "default") -> list[str]:
    """Build ``count`` independent clients, as separate processes would, and query once each."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OAUTH_URL, json={"access_token": "shared-token", "expires_in": "3599"})
        mock.post(QUERY_URL, json=QUERY_OK)
        for _ in range(count):
            client = DarajaClient(daraja_config(), token_store=DjangoCacheTokenStore(alias))
            client.stk_query(checkout_request_id="ws_CO_1")
        return [c.request.url for c in mock.calls if c.request.url.startswith(OAUTH_URL)]


@pytest.fixture(autouse=True)
def _empty_cache():
    caches["default"].clear()
    yield
    caches["default"].clear()


def test_clients_built_from_settings_share_one_token_through_the_django_cache():
    assert len(query_with_fresh_clients(3)) == 1


def test_the_process_client_is_reused():
    assert get_daraja_client() is get_daraja_client()


def test_request_calls_have_the_http_deadline_background_queries_their_short_timeouts():
    request, background = daraja_config(), daraja_config(background=True)

    assert (request.connect_timeout, request.read_timeout) == (2.0, 5.0)  # tests/settings.py
    assert (request.max_retries, request.call_deadline) == (2, 45.0)
    assert (background.connect_timeout, background.read_timeout) == (3.0, 5.0)
    # Asked once, token included within the two timeouts: the next poll is the retry.
    assert (background.max_retries, background.call_deadline) == (0, 8.0)


def test_the_background_client_is_another_client_sharing_the_token():
    background = get_daraja_client(background=True)

    assert background is get_daraja_client(background=True)
    assert background is not get_daraja_client()
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, json={"access_token": "cached", "expires_in": "3599"})
        mock.post(QUERY_URL, json=QUERY_OK)
        background.stk_query(checkout_request_id="ws_CO_1")
        get_daraja_client().stk_query(checkout_request_id="ws_CO_1")
        assert len([c for c in mock.calls if c.request.url.startswith(OAUTH_URL)]) == 1


def test_the_process_client_stores_its_token_in_the_configured_cache():
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, json={"access_token": "cached", "expires_in": "3599"})
        mock.post(QUERY_URL, json=QUERY_OK)
        get_daraja_client().stk_query(checkout_request_id="ws_CO_1")
    # Another process's client finds the token in the cache and asks OAuth for nothing.
    assert query_with_fresh_clients(1) == []


@pytest.mark.skipif(not redis_is_listening(), reason="no Redis on 127.0.0.1:6379")
def test_token_is_shared_through_redis():
    redis_cache = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
            "KEY_PREFIX": "payments-tests",
        },
    }
    with override_settings(CACHES=redis_cache):
        caches["shared"].clear()
        try:
            assert len(query_with_fresh_clients(3, alias="shared")) == 1
        finally:
            caches["shared"].clear()

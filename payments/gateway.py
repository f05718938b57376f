"""The one seam between the app and Daraja: settings -> DarajaConfig -> a shared DarajaClient.

The client's OAuth token lives in Django's cache, so every process and worker shares one token
and one refresh lock (with Redis as the cache, across hosts too).
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from django.core.cache import caches
from django.core.signals import setting_changed

from payments.conf import payments_settings
from payments.daraja.client import DarajaClient
from payments.daraja.config import DarajaConfig

# The request path's client, and the one of background work (short timeouts, no retries).
_clients: dict[bool, DarajaClient] = {}
_client_lock = threading.Lock()
# A requests transport adapter that answers instead of Daraja (payments.testing's double);
# None, the network, except in tests.
_transport_adapter: requests.adapters.BaseAdapter | None = None


class DjangoCacheTokenStore:
    """TokenStore backed by a Django cache alias."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    @property
    def _cache(self):
        return caches[self.alias]

    def get(self, key: str) -> str | None:
        return self._cache.get(key)

    def set(self, key: str, value: str, timeout: float) -> None:
        self._cache.set(key, value, timeout=timeout)

    def add(self, key: str, value: str, timeout: float) -> bool:
        return bool(self._cache.add(key, value, timeout=timeout))

    def delete(self, key: str) -> None:
        self._cache.delete(key)


def daraja_config(*, background: bool = False) -> DarajaConfig:
    """The client configuration built from ``payments_settings``.

    ``background``: for work off the request path (STK queries of status polls): the short
    STK_QUERY_TIMEOUT and no retries, so that a slow Daraja frees its thread soon; the next
    query, an interval later, is the retry.
    """
    s = payments_settings
    connect_timeout, read_timeout = s.STK_QUERY_TIMEOUT if background else s.HTTP_TIMEOUT
    return DarajaConfig(
        consumer_key=s.CONSUMER_KEY,
        consumer_secret=s.CONSUMER_SECRET,
        environment=s.ENVIRONMENT,
        base_url=s.BASE_URL,
        shortcode=str(s.SHORTCODE),
        passkey=s.PASSKEY,
        stk_transaction_type=s.STK_TRANSACTION_TYPE,
        till_number=str(s.TILL_NUMBER),
        b2c_shortcode=str(s.B2C_SHORTCODE),
        initiator_name=s.INITIATOR_NAME,
        initiator_password=s.INITIATOR_PASSWORD,
        certificate_path=str(s.CERTIFICATE_PATH),
        security_credential=s.SECURITY_CREDENTIAL,
        connect_timeout=float(connect_timeout),
        read_timeout=float(read_timeout),
        max_retries=0 if background else int(s.HTTP_MAX_RETRIES),
        # In the background the two timeouts bound the whole query, its token included.
        call_deadline=float(connect_timeout) + float(read_timeout)
        if background
        else float(s.HTTP_DEADLINE),
        token_expiry_margin=int(s.TOKEN_EXPIRY_MARGIN),
    )


def get_daraja_client(*, background: bool = False) -> DarajaClient:
    """The process's DarajaClient, built on first use and rebuilt when PAYMENTS changes.

    ``background`` gives the client of work off the request path (see ``daraja_config``); both
    share the OAuth token through the cache.
    """
    with _client_lock:
        if background not in _clients:
            payments_settings.require(("CONSUMER_KEY", "CONSUMER_SECRET"))
            session = None
            if _transport_adapter is not None:
                session = requests.Session()
                session.mount("https://", _transport_adapter)
                session.mount("http://", _transport_adapter)
            _clients[background] = DarajaClient(
                daraja_config(background=background),
                session=session,
                token_store=DjangoCacheTokenStore(payments_settings.TOKEN_CACHE_ALIAS),
            )
        return _clients[background]


def reset_daraja_client() -> None:
    with _client_lock:
        _clients.clear()


def daraja_transport_set(adapter: requests.adapters.BaseAdapter | None) -> None:
    """Send every Daraja request of this process to ``adapter`` instead of the network (None:
    the network again). For tests: ``payments.testing.daraja_double`` uses it."""
    global _transport_adapter
    with _client_lock:
        _transport_adapter = adapter
    reset_daraja_client()


def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("PAYMENTS", "CACHES"):
        reset_daraja_client()


setting_changed.connect(_reset_on_change)

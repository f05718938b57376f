"""OAuth access tokens: fetched once, shared through a pluggable store, refreshed before expiry."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

from .errors import DarajaAuthError, DarajaServerError
from .jsontext import loads_bounded
from .transport import Transport, optional_text

OAUTH_PATH = "/oauth/v1/generate"
# A refresh that takes longer than this is presumed dead; another process may then take over.
REFRESH_LOCK_SECONDS = 30.0
REFRESH_POLL_SECONDS = 0.1


class TokenStore(Protocol):
    """Where the token lives. Django's cache fits; so does anything with these four methods."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, timeout: float) -> None: ...

    def add(self, key: str, value: str, timeout: float) -> bool:
        """Set only if absent and say whether it was set: the refresh lock."""
        ...

    def delete(self, key: str) -> None: ...


class MemoryTokenStore:
    """A process-local store, for scripts and tests; processes do not share its token."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[1] <= self._clock():
                self._items.pop(key, None)
                return None
            return item[0]

    def set(self, key: str, value: str, timeout: float) -> None:
        with self._lock:
            self._items[key] = (value, self._clock() + timeout)

    def add(self, key: str, value: str, timeout: float) -> bool:
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[1] > self._clock():
                return False
            self._items[key] = (value, self._clock() + timeout)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


def parse_expires_in(value: object) -> int:
    """``expires_in`` arrives as the string "3599" in practice and as a number in the docs."""
    try:
        return int(float(str(value).strip()))
    except (TypeError, ValueError):
        raise DarajaServerError("Daraja OAuth answer has no usable expires_in", raw=None) from None


class AccessTokenProvider:
    """Hands out a valid bearer token, fetching a new one only when the shared one is gone.

    One refresh at a time: a thread lock inside the process and an ``add``-based lock in the
    store across processes. A process that loses the race waits for the winner's token.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        consumer_key: str,
        consumer_secret: str,
        store: TokenStore,
        expiry_margin: int,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._credentials = (consumer_key, consumer_secret)
        self._store = store
        self._expiry_margin = expiry_margin
        self._sleep = sleep
        self._clock = clock
        self._thread_lock = threading.Lock()
        # Keyed by origin and consumer key (hashed: cache keys show up in monitoring tools).
        digest = hashlib.sha256(f"{transport.base_url}|{consumer_key}".encode()).hexdigest()[:24]
        self.cache_key = f"payments:daraja:token:{digest}"
        self.lock_key = f"{self.cache_key}:refresh-lock"

    def token(self, *, deadline: float | None = None) -> str:
        """A token valid for at least the expiry margin, fetched (or waited for) by
        ``deadline`` on the transport's clock when one is given."""
        token = self._store.get(self.cache_key)
        if token:
            return token
        with self._thread_lock:
            token = self._store.get(self.cache_key)
            if token:
                return token
            if self._store.add(self.lock_key, "1", REFRESH_LOCK_SECONDS):
                try:
                    return self._fetch(deadline)
                finally:
                    self._store.delete(self.lock_key)
            return self._wait_for_other_refresh(deadline)

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after Daraja refused it, unless another caller already replaced it."""
        if self._store.get(self.cache_key) == token:
            self._store.delete(self.cache_key)

    def _wait_for_other_refresh(self, deadline: float | None) -> str:
        waited = self._clock() + REFRESH_LOCK_SECONDS
        until = waited if deadline is None else min(waited, deadline)
        while self._clock() < until:
            self._sleep(REFRESH_POLL_SECONDS)
            token = self._store.get(self.cache_key)
            if token:
                return token
        # The other refresher died or hangs; a second fetch costs little (and is refused at
        # once when the caller's time has run out).
        return self._fetch(deadline)

    def _fetch(self, deadline: float | None) -> str:
        response = self._transport.request(
            "GET",
            OAUTH_PATH,
            operation="oauth",
            retry_safe=True,
            params={"grant_type": "client_credentials"},
            auth=self._credentials,
            deadline=deadline,
        )
        try:
            body = loads_bounded(response.content)
        except ValueError:
            body = None
        if response.status_code >= 500:
            raise DarajaServerError(
                "Daraja OAuth failed with a server error", http_status=response.status_code
            )
        if response.status_code >= 400 or not isinstance(body, dict):
            body = body if isinstance(body, dict) else {}
            # Wrong key or secret comes back as HTTP 400 with a blank errorMessage (API.md §1.2).
            raise DarajaAuthError(
                "Daraja refused the consumer key and secret",
                http_status=response.status_code,
                error_code=optional_text(body.get("errorCode")),
                error_message=optional_text(body.get("errorMessage")),
                request_id=optional_text(body.get("requestId")),
            )
        token = str(body.get("access_token") or "").strip()
        if not token:
            raise DarajaAuthError(
                "Daraja OAuth answer has no access_token", http_status=response.status_code
            )
        expires_in = parse_expires_in(body.get("expires_in"))
        lifetime = max(expires_in // 2, expires_in - self._expiry_margin)
        if lifetime > 0:
            self._store.set(self.cache_key, token, lifetime)
        return token

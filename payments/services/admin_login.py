"""Admin login limits: failed logins counted per username and per client address, in the cache.

A window opens at the first failure and lasts PAYMENTS["ADMIN_LOGIN_LOCKOUT"] seconds; once a
username or an address has used up its failures in it, every login for that username or from
that address is refused, without checking the password, until the window closes. The cache is
the one the project shares between its workers (CACHE_URL), so the counts are too.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache

from payments.conf import payments_settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "payments:admin-login-failures"


def _keys(*, username: str, address: str | None) -> dict[str, tuple[str, int]]:
    """Cache key and limit of each counter that applies. Hashed: a username may hold anything."""

    def key(kind: str, value: str) -> str:
        return f"{KEY_PREFIX}:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"

    keys = {
        "username": (
            key("username", username.strip().casefold()),
            int(payments_settings.ADMIN_LOGIN_FAILURES_PER_USERNAME),
        )
    }
    if address:
        keys["address"] = (
            key("address", address),
            int(payments_settings.ADMIN_LOGIN_FAILURES_PER_ADDRESS),
        )
    return keys


def admin_login_allowed(*, username: str, address: str | None) -> bool:
    """Whether a login for ``username`` from ``address`` may be tried now."""
    keys = _keys(username=username, address=address)
    counts = cache.get_many([key for key, _ in keys.values()])
    blocked = [kind for kind, (key, limit) in keys.items() if counts.get(key, 0) >= limit]
    if blocked:
        logger.warning(
            "admin login refused: too many failed logins for this %s (client %s)",
            " and ".join(blocked),
            address or "unknown",
        )
    return not blocked


def admin_login_failure_record(*, username: str, address: str | None) -> None:
    """Count one failed login for ``username`` and for ``address``."""
    lockout = int(payments_settings.ADMIN_LOGIN_LOCKOUT)
    for key, _ in _keys(username=username, address=address).values():
        # add() opens the window only if none is open: later failures do not extend it.
        cache.add(key, 0, timeout=lockout)
        try:
            cache.incr(key)
        except ValueError:  # the window closed between the two calls
            cache.add(key, 1, timeout=lockout)


def admin_login_success_record(*, username: str) -> None:
    """A successful login clears its username's failures (not its address's: one valid
    account must not reset the count of an address trying many usernames)."""
    key, _ = _keys(username=username, address=None)["username"]
    cache.delete(key)

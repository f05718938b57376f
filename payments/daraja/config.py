"""DarajaConfig: everything the client needs to talk to one Daraja app, secrets hidden from repr."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

BASE_URLS = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
}
LOOPBACK_HOSTNAMES = frozenset({"localhost"})
# Daraja refuses callback URLs containing these words, in any case (API.md §4.1 and §11).
DARAJA_BANNED_URL_WORDS = ("m-pesa", "mpesa", "safaricom", "exec", "exe", "cmd", "sql", "query")
_BANNED_URL_WORDS = re.compile("|".join(re.escape(w) for w in DARAJA_BANNED_URL_WORDS), re.I)


def banned_url_words(url: str) -> list[str]:
    """The words Daraja refuses that appear in ``url``, lower-cased, in order of appearance."""
    return [m.group(0).lower() for m in _BANNED_URL_WORDS.finditer(url or "")]


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and any 127.0.0.0/8 or ::1 address."""
    if not host:
        return False
    if host.lower() in LOOPBACK_HOSTNAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(environment: str, base_url: str = "") -> str:
    """The Daraja origin to call: an explicit override, else the environment's default.

    An override may be any Daraja-compatible server, but plain http is refused unless the host is
    loopback: credentials and payment data must not cross a network unencrypted.
    """
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Daraja base URL must be an absolute http(s) URL, got {base_url!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"Daraja base URL {base_url!r} uses plain http; only loopback hosts may "
                "(use https for anything else)"
            )
        return base_url.rstrip("/")
    if environment == "simulator":
        raise ValueError("the simulator environment needs an explicit base URL")
    try:
        return BASE_URLS[environment]
    except KeyError:
        raise ValueError(
            f"Unknown Daraja environment {environment!r}; expected one of {', '.join(BASE_URLS)}"
        ) from None


@dataclass(frozen=True)
class DarajaConfig:
    """Credentials and transport settings for one Daraja app.

    Secret fields are excluded from ``repr`` so a config can be logged or shown in a traceback.
    """

    consumer_key: str
    consumer_secret: str = field(repr=False)
    environment: str = "sandbox"
    base_url: str = ""
    shortcode: str = ""
    passkey: str = field(default="", repr=False)
    stk_transaction_type: str = "CustomerPayBillOnline"
    till_number: str = ""
    b2c_shortcode: str = ""
    initiator_name: str = ""
    initiator_password: str = field(default="", repr=False)
    certificate_path: str = ""
    security_credential: str = field(default="", repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 2
    token_expiry_margin: int = 120
    # Seconds one operation may take in all: its token, retries and repeat included (0: only
    # the per-attempt timeouts bound it). What a request that calls Daraja waits at most.
    call_deadline: float = 0.0

    @property
    def api_base_url(self) -> str:
        return resolve_base_url(self.environment, self.base_url)

"""Where a request comes from: the client address behind trusted proxies, and whether a callback
comes from a network allowed to post them.

The number of proxies in front of the server is DRF's ``NUM_PROXIES`` (the project sets it from
DJANGO_NUM_PROXIES): the throttles, the admin login limits and the callback allowlist all read
the client address here, so the operator states it once.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.http import HttpRequest
from rest_framework.settings import api_settings

from payments.conf import payments_settings

# Safaricom's "Callback and IP Whitelisting" list (API.md §11.2): production sources. Older lists
# also named 196.201.212.128 and 196.201.212.132; an operator who sees them refused adds them.
SAFARICOM_CALLBACK_NETWORKS = (
    "196.201.214.200",
    "196.201.214.206",
    "196.201.213.114",
    "196.201.214.207",
    "196.201.214.208",
    "196.201.213.44",
    "196.201.212.127",
    "196.201.212.138",
    "196.201.212.129",
    "196.201.212.136",
    "196.201.212.74",
    "196.201.212.69",
)
# Stands for the list above in PAYMENTS["CALLBACK_ALLOWED_NETWORKS"].
SAFARICOM = "safaricom"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies() -> int:
    """How many proxies in front of this server append to X-Forwarded-For (0: none)."""
    return int(api_settings.NUM_PROXIES or 0)


def client_address(request: HttpRequest) -> str | None:
    """The address of whoever sent ``request``; None when it cannot be known.

    Each trusted proxy appends the address it was connected from to X-Forwarded-For, so the
    client is that many places from the right of X-Forwarded-For + the connecting address.
    Anything further left was written by the client and proves nothing. A request that came
    through fewer proxies than there are, or whose header is malformed, has no known address.
    """
    hops = trusted_proxies()
    chain = [request.META.get("REMOTE_ADDR") or ""]
    if hops:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        chain = [part.strip() for part in forwarded.split(",") if part.strip()] + chain
    if len(chain) <= hops:
        return None
    try:
        address = ipaddress.ip_address(chain[-1 - hops])
    except ValueError:
        return None
    # A dual-stack server sees IPv4 clients as ::ffff:a.b.c.d.
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def callback_networks_parse(value: object) -> tuple[IPNetwork, ...]:
    """The networks a CALLBACK_ALLOWED_NETWORKS value names; ValueError names a bad entry.

    The value is a list of addresses or networks (``"196.201.214.0/24"``), or one string of
    them separated by commas; ``"safaricom"`` stands for Safaricom's published list.
    """
    entries = value.split(",") if isinstance(value, str) else list(value or ())
    networks: list[IPNetwork] = []
    for entry in (str(e).strip() for e in entries):
        if not entry:
            continue
        if entry.lower() == SAFARICOM:
            networks += [ipaddress.ip_network(a) for a in SAFARICOM_CALLBACK_NETWORKS]
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _allowed_networks(value: tuple[str, ...] | str) -> tuple[IPNetwork, ...]:
    return callback_networks_parse(value)


def callback_source_refusal(address: str | None) -> str | None:
    """Why a callback from ``address`` must not be processed, or None when it may be: always,
    unless the allowlist is on (PAYMENTS["CALLBACK_ALLOWED_NETWORKS"] not empty) and the address
    is outside it. An allowlist that cannot be read refuses everything (check payments.E011)."""
    setting = payments_settings.CALLBACK_ALLOWED_NETWORKS
    try:
        networks = _allowed_networks(setting if isinstance(setting, str) else tuple(setting or ()))
    except ValueError as exc:
        return f"PAYMENTS['CALLBACK_ALLOWED_NETWORKS'] cannot be read: {exc}"
    if not networks:
        return None
    if address is None:
        return (
            "the source address is unknown: X-Forwarded-For holds fewer addresses than the "
            "trusted proxies (DJANGO_NUM_PROXIES), or is malformed"
        )
    ip = ipaddress.ip_address(address)
    if any(ip in network for network in networks):
        return None
    return f"source address {address} is not in PAYMENTS['CALLBACK_ALLOWED_NETWORKS']"

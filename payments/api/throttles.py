"""Rate limits on starting STK Pushes: per user, and per phone number whoever asks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from payments.conf import payments_settings
from payments.daraja.errors import InvalidPhoneNumberError
from payments.daraja.phone import normalize_phone_number
from payments.network import client_address


class _SettingsRateThrottle(SimpleRateThrottle):
    """Reads its rate from PAYMENTS at request time, so override_settings applies."""

    setting_name = ""

    def __init__(self) -> None:
        # SimpleRateThrottle reads DEFAULT_THROTTLE_RATES here; ours come from PAYMENTS.
        self.rate = getattr(payments_settings, self.setting_name)
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_ident(self, request) -> str:
        # DRF's own trusts the whole X-Forwarded-For when NUM_PROXIES is unset: a client could
        # name itself anew with each request.
        return client_address(request) or "unknown"


class StkPushUserThrottle(_SettingsRateThrottle):
    scope = "stk_push_user"
    setting_name = "STK_RATE_PER_USER"

    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class StkPushPhoneThrottle(_SettingsRateThrottle):
    """Stops one phone from being flooded with PIN prompts, whichever account sends them."""

    scope = "stk_push_phone"
    setting_name = "STK_RATE_PER_PHONE"

    def get_cache_key(self, request, view) -> str | None:
        raw = request.data.get("phone_number") if hasattr(request.data, "get") else None
        try:
            phone = normalize_phone_number(str(raw or ""))
        except InvalidPhoneNumberError:
            return None  # validation will answer 400
        return self.cache_format % {"scope": self.scope, "ident": phone}


class CheckoutClientThrottle(_SettingsRateThrottle):
    """The checkout page has no login: its pushes are counted per client address instead."""

    scope = "checkout_client"
    setting_name = "STK_RATE_PER_USER"

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def throttle_waits(throttles: Iterable[BaseThrottle], request, view) -> list[float | None]:
    """DRF's check of a view's throttles (each allowed one counts the request, as DRF's own
    loop does), the waits of those that refuse it; in two cache round trips instead of two per
    throttle: every history read with one ``get_many``, the counted ones written with one
    ``set_many``. A throttle that is not a SimpleRateThrottle on the same cache is asked alone.
    """
    throttles = list(throttles)
    keyed: list[tuple[SimpleRateThrottle, str]] = []
    waits: list[float | None] = []
    cache = next((t.cache for t in throttles if isinstance(t, SimpleRateThrottle)), None)
    for throttle in throttles:
        if not isinstance(throttle, SimpleRateThrottle) or throttle.cache is not cache:
            if not throttle.allow_request(request, view):
                waits.append(throttle.wait())
            continue
        key = throttle.get_cache_key(request, view) if throttle.rate is not None else None
        if key is not None:
            keyed.append((throttle, key))
    if not keyed:
        return waits
    histories = cache.get_many([key for _, key in keyed])
    writes: dict[int, dict[str, list[float]]] = defaultdict(dict)
    for throttle, key in keyed:
        throttle.key, throttle.now = key, throttle.timer()
        throttle.history = list(histories.get(key, []))
        while throttle.history and throttle.history[-1] <= throttle.now - throttle.duration:
            throttle.history.pop()
        if len(throttle.history) >= throttle.num_requests:
            waits.append(throttle.wait())
        else:
            throttle.history.insert(0, throttle.now)
            writes[throttle.duration][key] = throttle.history
    for duration, values in writes.items():
        cache.set_many(values, duration)
    return waits

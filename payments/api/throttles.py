"""Rate limits on starting STK Pushes: per user, and per phone number whoever asks."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

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

"""System checks: configuration mistakes reported at start-up with ids and hints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from payments.conf import ENVIRONMENTS, STK_TRANSACTION_TYPES, is_missing, payments_settings
from payments.daraja.config import banned_url_words, resolve_base_url
from payments.daraja.errors import DarajaConfigurationError
from payments.daraja.security import read_certificate
from payments.network import callback_networks_parse

CREDENTIAL_SETTINGS = ("CONSUMER_KEY", "CONSUMER_SECRET", "SHORTCODE", "PASSKEY")
MIN_CALLBACK_SECRET_LENGTH = 32


def _hint_names(names: list[str]) -> str:
    return ", ".join(f"MPESA_{n} (PAYMENTS['{n}'])" for n in names)


@register("payments")
def check_payments_settings(app_configs: Any = None, **kwargs: Any) -> list:
    s = payments_settings
    messages: list = []

    if s.ENVIRONMENT not in ENVIRONMENTS:
        messages.append(
            Error(
                f"Unknown M-Pesa environment {s.ENVIRONMENT!r}.",
                hint=f"Set MPESA_ENVIRONMENT to one of: {', '.join(ENVIRONMENTS)}.",
                id="payments.E001",
            )
        )
    if s.ENVIRONMENT == "simulator" and not settings.DEBUG:
        # Simulator mode is a development mode: every push "succeeds" and the simulator's
        # credentials are public. A deployment must never run on it.
        messages.append(
            Error(
                "MPESA_ENVIRONMENT is 'simulator' while DEBUG is off.",
                hint="The simulator is for local development only (DJANGO_DEBUG=true); a "
                "deployment sets MPESA_ENVIRONMENT to sandbox or production.",
                id="payments.E010",
            )
        )

    missing = s.missing(CREDENTIAL_SETTINGS)
    if missing:
        text = f"Daraja credentials are missing for the {s.ENVIRONMENT} environment."
        hint = f"Set {_hint_names(missing)} from your Daraja app."
        # Placeholders must not stop a developer's server; a deployment must not start.
        if settings.DEBUG and s.ENVIRONMENT != "production":
            messages.append(Warning(text, hint=hint, id="payments.W001"))
        else:
            messages.append(Error(text, hint=hint, id="payments.E002"))

    callback_base = s.CALLBACK_BASE_URL or ""
    parts = urlsplit(callback_base)
    if is_missing(callback_base):
        if not settings.DEBUG:
            messages.append(
                Error(
                    "No callback base URL: Daraja cannot deliver payment results.",
                    hint="Set MPESA_CALLBACK_BASE_URL to the public https origin of this site.",
                    id="payments.E003",
                )
            )
    elif parts.scheme != "https" and not settings.DEBUG:
        messages.append(
            Error(
                "The callback base URL is not https.",
                hint="Daraja production delivers results only to https URLs; set "
                "MPESA_CALLBACK_BASE_URL to an https origin.",
                id="payments.E003",
            )
        )
    words = banned_url_words(callback_base)
    if words:
        messages.append(
            Error(
                f"The callback base URL contains words Daraja refuses in URLs: {', '.join(words)}.",
                hint="Daraja rejects callback URLs containing mpesa, m-pesa, safaricom, exe, exec, "
                "cmd, sql or query (any case); choose a host name and path without them.",
                id="payments.E004",
            )
        )

    # The secret is the only credential of the C2B callback paths: anyone who guesses it can
    # post "payments" to us.
    secret_length = len(str(s.CALLBACK_SECRET or "").strip())
    if secret_length < MIN_CALLBACK_SECRET_LENGTH:
        text = (
            f"The callback secret has {secret_length} characters; it needs at least "
            f"{MIN_CALLBACK_SECRET_LENGTH}."
        )
        hint = (
            "Set MPESA_CALLBACK_SECRET (PAYMENTS['CALLBACK_SECRET']) to a long random value, "
            'e.g. python -c "import secrets; print(secrets.token_urlsafe(32))".'
        )
        if settings.DEBUG:
            messages.append(Warning(text, hint=hint, id="payments.W009"))
        else:
            messages.append(Error(text, hint=hint, id="payments.E009"))

    if s.STK_TRANSACTION_TYPE not in STK_TRANSACTION_TYPES:
        messages.append(
            Error(
                f"Unknown STK transaction type {s.STK_TRANSACTION_TYPE!r}.",
                hint=f"Set MPESA_STK_TRANSACTION_TYPE to {' or '.join(STK_TRANSACTION_TYPES)}.",
                id="payments.E005",
            )
        )
    elif s.STK_TRANSACTION_TYPE == "CustomerBuyGoodsOnline" and is_missing(s.TILL_NUMBER):
        messages.append(
            Error(
                "Buy Goods STK Push needs a till number.",
                hint="Set MPESA_TILL_NUMBER; MPESA_SHORTCODE stays the store number.",
                id="payments.E006",
            )
        )

    if s.ENVIRONMENT in ENVIRONMENTS:
        try:
            resolve_base_url(s.ENVIRONMENT, s.BASE_URL)
        except ValueError as exc:
            messages.append(
                Error(
                    str(exc),
                    hint="MPESA_BASE_URL must be https, or http on a loopback host only.",
                    id="payments.E007",
                )
            )

    if is_missing(s.SECURITY_CREDENTIAL) and not s.missing(
        ("INITIATOR_PASSWORD", "CERTIFICATE_PATH")
    ):
        try:
            read_certificate(str(s.CERTIFICATE_PATH))
        except DarajaConfigurationError as exc:
            messages.append(
                Error(
                    f"The SecurityCredential cannot be made: {exc}.",
                    hint="Point MPESA_CERTIFICATE_PATH (PAYMENTS['CERTIFICATE_PATH']) at the "
                    "certificate of this environment from the Daraja portal (PEM or DER), "
                    "readable by this server, or set MPESA_SECURITY_CREDENTIAL instead.",
                    id="payments.E008",
                )
            )

    try:
        callback_networks_parse(s.CALLBACK_ALLOWED_NETWORKS)
    except ValueError as exc:
        messages.append(
            Error(
                f"The callback allowlist cannot be read: {exc}.",
                hint="Set MPESA_CALLBACK_ALLOWED_NETWORKS (PAYMENTS['CALLBACK_ALLOWED_NETWORKS']) "
                "to addresses or CIDR networks separated by commas, and/or 'safaricom'; until "
                "then every callback is refused (stored, not processed).",
                id="payments.E011",
            )
        )

    b2c_missing = s.missing(("B2C_SHORTCODE", "INITIATOR_NAME"))
    if is_missing(s.SECURITY_CREDENTIAL):
        b2c_missing += s.missing(("INITIATOR_PASSWORD", "CERTIFICATE_PATH"))
    if b2c_missing:
        messages.append(
            Warning(
                "B2C payouts, reversals, balance and transaction status are not configured.",
                hint=f"Set {_hint_names(b2c_missing)}; MPESA_SECURITY_CREDENTIAL may replace "
                "the initiator password and certificate.",
                id="payments.W002",
            )
        )
    return messages

"""Errors raised by the Daraja client: one base class carrying what Daraja said, a few subclasses.

Business outcomes (a customer cancelled, a wrong PIN) are not errors: they arrive as result codes
in callbacks and query answers. These classes describe failures to get an answer at all, or
answers in which Daraja refused the request.
"""

from __future__ import annotations

from typing import Any


class DarajaError(Exception):
    """Base class. Carries the HTTP status, Daraja's errorCode, errorMessage and requestId.

    ``outcome_unknown`` tells the caller whether Daraja may have acted on the request: True for
    a read timeout, a connection dropped after sending, or a server error without a definite
    refusal. A money-moving request with an unknown outcome must never be resent blindly.
    """

    outcome_unknown = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        request_id: str | None = None,
        raw: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id
        self.raw = raw

    def __str__(self) -> str:
        parts = [self.message]
        if self.error_code:
            parts.append(f"errorCode={self.error_code}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.request_id:
            parts.append(f"requestId={self.request_id}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, http_status={self.http_status!r}, "
            f"error_code={self.error_code!r}, request_id={self.request_id!r})"
        )

    @property
    def is_rate_limited(self) -> bool:
        """Daraja's spike-arrest and quota answers: back off, the request was not processed."""
        return self.error_code in RATE_LIMIT_ERROR_CODES


class DarajaConnectionError(DarajaError):
    """No HTTP answer. ``request_sent`` says whether the request may have reached Daraja.

    False only when the connection was never established (DNS failure, connection refused,
    connect timeout): such a request is safe to retry for every operation.
    """

    def __init__(self, message: str, *, request_sent: bool, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.request_sent = request_sent

    @property
    def outcome_unknown(self) -> bool:  # type: ignore[override]
        return self.request_sent


class DarajaAuthError(DarajaError):
    """OAuth failed (wrong consumer key or secret), or Daraja refused our access token twice."""


class DarajaRequestError(DarajaError):
    """Daraja refused the request (HTTP 4xx, or a sync answer whose ResponseCode is not 0)."""


class DarajaServerError(DarajaError):
    """HTTP 5xx, or a 2xx whose body is not the JSON Daraja documents.

    A 5xx may come from a gateway that gave up after Daraja acted, so its outcome is unknown
    unless its errorCode is one Daraja documents, for this ``operation``, as a refusal that acted
    on nothing (``SERVER_REFUSAL_CODES``).
    """

    def __init__(self, message: str, *, operation: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.operation = operation

    @property
    def outcome_unknown(self) -> bool:  # type: ignore[override]
        return self.error_code not in SERVER_REFUSAL_CODES.get(self.operation, GATEWAY_REFUSALS)


class DarajaCallbackError(DarajaError):
    """An asynchronous body (callback or result) that cannot be parsed into its dataclass."""


class InvalidFieldError(ValueError):
    """A value we refuse to send to Daraja. ``field`` names the offending argument."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidPhoneNumberError(InvalidFieldError):
    """A phone number that is not a Kenyan mobile number in any accepted form."""


# Spike arrest and quota violation: the gateway stopped the request before Daraja saw it.
RATE_LIMIT_ERROR_CODES = frozenset({"500.003.02", "500.003.03"})
GATEWAY_REFUSALS = RATE_LIMIT_ERROR_CODES
# The 5xx errorCodes Daraja documents as refusals that acted on nothing, per operation (API.md
# §10, its error table; tests/money_safety/test_ambiguous_answers.py has one test per code).
# Everything else is ambiguous and never resent: no envelope (a gateway timeout), a code nobody
# documents, the generic internal error 500.003.1001, and 500.002.1001 "Duplicate
# OriginatorConversationID" (we send each id once: an earlier copy reached Daraja).
SERVER_REFUSAL_CODES: dict[str, frozenset[str]] = {
    # 500.001.1001: merchant does not exist, wrong credentials, or the subscriber is locked by
    # another payment in progress; documented for STK Push (and its query) only.
    "stk_push": GATEWAY_REFUSALS | {"500.001.1001"},
    "b2c_payment": GATEWAY_REFUSALS,
    "reversal": GATEWAY_REFUSALS,
}


class DarajaConfigurationError(Exception):
    """The client lacks a setting an operation needs (it names the setting)."""

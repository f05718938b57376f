"""Frozen dataclasses for Daraja's synchronous answers, each keeping the raw body.

An answer of 200 without the ids we need is not a success we can act on: it raises
``DarajaServerError`` with no error code, which marks the outcome as unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import DarajaServerError


def _text(body: Mapping[str, Any], *keys: str) -> str | None:
    """The first present key's value as stripped text (codes arrive as numbers or strings)."""
    for key in keys:
        value = body.get(key)
        if value is not None:
            return str(value).strip()
    return None


def _required(body: Mapping[str, Any], operation: str, *keys: str) -> str:
    value = _text(body, *keys)
    if not value:
        raise DarajaServerError(
            f"Daraja {operation} answer lacks {keys[0]}; the request's outcome is unknown",
            raw=dict(body),
        )
    return value


@dataclass(frozen=True)
class StkPushResponse:
    """Daraja queued the PIN prompt. Not a payment: the result comes to the callback URL."""

    merchant_request_id: str
    checkout_request_id: str
    response_code: str
    response_description: str
    customer_message: str
    raw: dict[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> StkPushResponse:
        return cls(
            merchant_request_id=_text(body, "MerchantRequestID") or "",
            checkout_request_id=_required(body, "stk_push", "CheckoutRequestID"),
            response_code=_text(body, "ResponseCode") or "",
            response_description=_text(body, "ResponseDescription") or "",
            customer_message=_text(body, "CustomerMessage") or "",
            raw=dict(body),
        )


@dataclass(frozen=True)
class StkQueryResponse:
    """The state of one STK Push. ``is_pending`` while the customer has not answered."""

    checkout_request_id: str
    merchant_request_id: str | None
    response_code: str | None
    response_description: str
    result_code: str | None
    result_desc: str
    is_pending: bool
    raw: dict[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, checkout_request_id: str) -> StkQueryResponse:
        result_code = _text(body, "ResultCode")
        if result_code is None:
            raise DarajaServerError("Daraja stk_query answer lacks ResultCode", raw=dict(body))
        return cls(
            checkout_request_id=_text(body, "CheckoutRequestID") or checkout_request_id,
            merchant_request_id=_text(body, "MerchantRequestID"),
            response_code=_text(body, "ResponseCode"),
            response_description=_text(body, "ResponseDescription") or "",
            result_code=result_code,
            result_desc=_text(body, "ResultDesc") or "",
            is_pending=False,
            raw=dict(body),
        )

    @classmethod
    def pending(cls, body: Mapping[str, Any], *, checkout_request_id: str) -> StkQueryResponse:
        return cls(
            checkout_request_id=checkout_request_id,
            merchant_request_id=None,
            response_code=None,
            response_description=_text(body, "errorMessage") or "",
            result_code=None,
            result_desc=_text(body, "errorMessage") or "",
            is_pending=True,
            raw=dict(body),
        )


@dataclass(frozen=True)
class C2BResponse:
    """Answer to C2B register URL and simulate (note Daraja's ``OriginatorCoversationID``)."""

    originator_conversation_id: str | None
    response_code: str
    response_description: str
    raw: dict[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> C2BResponse:
        return cls(
            originator_conversation_id=_text(
                body, "OriginatorCoversationID", "OriginatorConversationID"
            ),
            response_code=_text(body, "ResponseCode") or "",
            response_description=_text(body, "ResponseDescription") or "",
            raw=dict(body),
        )


@dataclass(frozen=True)
class AsyncRequestAcknowledgement:
    """Daraja accepted a B2C, reversal, balance or status request; the result comes later."""

    originator_conversation_id: str | None
    conversation_id: str
    response_code: str
    response_description: str
    raw: dict[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, operation: str) -> AsyncRequestAcknowledgement:
        return cls(
            originator_conversation_id=_text(body, "OriginatorConversationID"),
            conversation_id=_required(body, operation, "ConversationID"),
            response_code=_text(body, "ResponseCode") or "",
            response_description=_text(body, "ResponseDescription") or "",
            raw=dict(body),
        )

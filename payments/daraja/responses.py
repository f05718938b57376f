"""Frozen dataclasses for Daraja's synchronous answers, each keeping the raw body.

An answer of 200 without the ids we need is not a success we can act on: it raises
``DarajaServerError`` with no error code, which marks the outcome as unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .callback_values import decimal_of, is_blank, receipt_of, text_of
from .dates import parse_pull_datetime
from .errors import DarajaServerError
from .jsontext import loads_bounded, storable


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


# -- Pull Transactions (API.md §13; its answers are mostly reported, not documented) ------------

PULL_REGISTERED = "1000"
PULL_ALREADY_REGISTERED = "1001"
PULL_FOUND = "1000"
PULL_NOTHING_FOUND = "1001"


@dataclass(frozen=True)
class PullRegisterResponse:
    """Answer to Pull Transactions registration: ``1000`` registered, ``1001`` already was."""

    response_status: str
    response_description: str
    response_ref_id: str
    raw: dict[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PullRegisterResponse:
        return cls(
            # ResponseStatus in the documentation; some answers are reported with ResponseCode.
            response_status=_text(body, "ResponseStatus", "ResponseCode") or "",
            response_description=_text(body, "ResponseDescription", "ResponseMessage") or "",
            response_ref_id=_text(body, "ResponseRefID") or "",
            raw=dict(body),
        )


@dataclass(frozen=True)
class PulledTransaction:
    """One C2B payment to the shortcode as Pull Transactions lists it."""

    transaction_id: str  # the M-Pesa receipt
    trx_date: datetime | None
    amount: Decimal
    transaction_type: str
    bill_reference: str
    organization_name: str
    msisdn: str = field(repr=False)  # reported unmasked: personal data stays out of logs
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class MalformedPullRow:
    """A listed row we cannot book: no readable receipt, or an amount that is not a number."""

    reason: str
    raw: Any = field(repr=False)


@dataclass(frozen=True)
class PullTransactionsPage:
    """One page of a Pull Transactions query: ``1000`` rows found, ``1001`` nothing found."""

    response_code: str
    response_message: str
    response_ref_id: str
    offset: int
    transactions: tuple[PulledTransaction, ...]
    malformed: tuple[MalformedPullRow, ...]
    raw: dict[str, Any] = field(repr=False)

    @property
    def size(self) -> int:
        """Rows on this page, readable or not: the next page starts this much further."""
        return len(self.transactions) + len(self.malformed)

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, offset: int) -> PullTransactionsPage:
        code = _text(body, "ResponseCode") or ""
        rows: list[Any] = [] if code == PULL_NOTHING_FOUND else _pull_rows(body)
        transactions, malformed = [], []
        for row in rows:
            parsed = _pulled_transaction(row)
            (transactions if isinstance(parsed, PulledTransaction) else malformed).append(parsed)
        return cls(
            response_code=code,
            response_message=_text(body, "ResponseMessage", "ResponseDescription") or "",
            response_ref_id=_text(body, "ResponseRefID") or "",
            offset=offset,
            transactions=tuple(transactions),
            malformed=tuple(malformed),
            raw=dict(body),
        )


def _pull_rows(body: Mapping[str, Any]) -> list[Any]:
    """The listed rows, however they are wrapped.

    Reported as ``"Response": [[{...}, ...]]`` (a list holding one list), an empty result as the
    string ``"[[]]"``; a flat list, and SDKs' ``Transactions``, are read the same way. Anything
    else in a row's place is returned as it is, to be counted as malformed.
    """
    listed = body.get("Response", body.get("Transactions"))
    if isinstance(listed, str):
        try:
            listed = storable(loads_bounded(listed))
        except ValueError:
            return [listed] if listed.strip() else []
    if listed is None:
        return []
    if not isinstance(listed, list):
        return [listed]
    rows: list[Any] = []
    for item in listed:
        rows.extend(item if isinstance(item, list) else [item])
    return rows


def _pulled_transaction(row: Any) -> PulledTransaction | MalformedPullRow:
    if not isinstance(row, dict):
        return MalformedPullRow("the row is not a JSON object", row)
    receipt = receipt_of(row.get("transactionId"))
    if receipt is None:
        return MalformedPullRow("no readable transactionId (1-20 letters and digits)", row)
    amount = decimal_of(row.get("amount"))
    if amount is None:
        what = "no amount" if is_blank(row.get("amount")) else "an amount that is not a number"
        return MalformedPullRow(f"{receipt}: {what}", row)
    msisdn = row.get("msisdn")
    return PulledTransaction(
        transaction_id=receipt,
        trx_date=parse_pull_datetime(row.get("trxDate")),
        amount=amount,
        transaction_type=text_of(row.get("transactiontype")) or "",
        bill_reference=text_of(row.get("billreference")) or "",
        organization_name=text_of(row.get("organizationname")) or "",
        # A JSON number in the reported samples; kept as text either way.
        msisdn=text_of(msisdn) or "",
        raw=row,
    )

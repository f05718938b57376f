"""Every callback URL Daraja posts to, each with a fresh target of ours waiting for its result.

Shared by the callback regression tests, the bulk fuzz and the gunicorn test: ``target(route)``
creates what the URL's token belongs to (a pending push, payout, refund or inquiry) and returns
its path, the row and a genuine result body for it, so a test can show that garbage did not
settle a row that a genuine body would have.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models

from payments.enums import InquiryKind, InquiryStatus, TransactionStatus, TransactionType
from payments.models import BalanceSnapshot, CallbackEvent, DarajaInquiry, Transaction
from tests.payments.conftest import load_fixture, stk_callback
from tests.payments.money_out import paid_transaction, result_body

CALLBACKS = "/api/v1/payments/callbacks/"
RESULT_ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
CONFIRMATION_ACK = {"ResultCode": 0, "ResultDesc": "Success"}
VALIDATION_REJECTED = {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}
AMOUNT = 50
PHONE = "254708374149"
MASKED_C2B = "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"

_numbers = itertools.count(1)


@dataclass
class Target:
    """One callback URL with what its token belongs to."""

    route: str
    path: str
    row: Transaction | DarajaInquiry | None
    genuine: dict[str, Any]

    def refreshed(self) -> Transaction | DarajaInquiry | None:
        return None if self.row is None else type(self.row).objects.get(pk=self.row.pk)


def receipt() -> str:
    """A fresh M-Pesa-like receipt: ten capitals and digits."""
    return f"FZ{next(_numbers):08d}"


def _money_out(transaction_type: str, **fields: Any) -> Transaction:
    number = next(_numbers)
    fields.setdefault("status", TransactionStatus.PENDING)
    return Transaction.objects.create(
        transaction_type=transaction_type,
        amount=AMOUNT,
        phone_number=PHONE,
        environment="sandbox",
        originator_conversation_id=f"fuzz-oc-{number}",
        conversation_id=f"AG_FUZZ_{number}",
        **fields,
    )


def _stk() -> Target:
    push = Transaction.objects.create(
        transaction_type=TransactionType.STK_PUSH,
        status=TransactionStatus.PENDING,
        amount=AMOUNT,
        phone_number=PHONE,
        environment="sandbox",
        checkout_request_id=f"ws_CO_fuzz_{next(_numbers)}",
    )
    body = stk_callback(
        checkout_request_id=push.checkout_request_id, amount=AMOUNT, phone_number=PHONE
    )
    for item in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == "MpesaReceiptNumber":
            item["Value"] = receipt()
    return Target("stk", f"{CALLBACKS}stk/{push.callback_token}", push, body)


def _addressed(fixture: str, row: Transaction, **parameters: Any) -> dict[str, Any]:
    return result_body(
        fixture,
        originator_conversation_id=row.originator_conversation_id,
        conversation_id=row.conversation_id,
        **parameters,
    )


def _queue_timeout(row: Transaction | DarajaInquiry) -> dict[str, Any]:
    # Safaricom publishes no queue-timeout sample (API.md §5.3): the Result envelope it assumes.
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": "SFC_IC0003",
            "ResultDesc": "The request timed out in the queue.",
            "OriginatorConversationID": row.originator_conversation_id,
            "ConversationID": row.conversation_id,
        }
    }


def _b2c(which: str) -> Target:
    payout = _money_out(TransactionType.B2C)
    body = (
        _addressed(
            "b2c/b2c_result_success.portal.json",
            payout,
            TransactionAmount=AMOUNT,
            TransactionReceipt=receipt(),
        )
        if which == "result"
        else _queue_timeout(payout)
    )
    return Target(f"b2c-{which}", f"{CALLBACKS}b2c/{payout.callback_token}/{which}", payout, body)


def _reversal(which: str) -> Target:
    original = paid_transaction(amount=AMOUNT, receipt=receipt())
    reversal = _money_out(TransactionType.REVERSAL, original=original)
    body = (
        _addressed("reversal/reversal_result_success.portal.json", reversal, Amount=AMOUNT)
        if which == "result"
        else _queue_timeout(reversal)
    )
    body["Result"]["TransactionID"] = receipt()
    path = f"{CALLBACKS}reversal/{reversal.callback_token}/{which}"
    return Target(f"reversal-{which}", path, reversal, body)


def _inquiry(kind: str, which: str) -> Target:
    number = next(_numbers)
    ids = {"originator_conversation_id": f"fuzz-iq-{number}", "conversation_id": f"AG_IQ_{number}"}
    if kind == InquiryKind.BALANCE:
        inquiry = DarajaInquiry.objects.create(
            kind=kind, status=InquiryStatus.PENDING, metadata={"shortcode": "600992"}, **ids
        )
        fixture, parameters = "balance/account_balance_result_success.portal.json", {}
    else:
        payout = _money_out(TransactionType.B2C, status=TransactionStatus.UNKNOWN)
        inquiry = DarajaInquiry.objects.create(
            kind=kind, status=InquiryStatus.PENDING, transaction=payout, **ids
        )
        fixture = "transaction_status/transaction_status_result_success.portal.json"
        parameters = {"Amount": AMOUNT, "ReceiptNo": receipt()}
    body = (
        result_body(fixture, **parameters, **_result_ids(inquiry))
        if which == "result"
        else _queue_timeout(inquiry)
    )
    path = f"{CALLBACKS}{kind}/{inquiry.token}/{which}"
    return Target(f"{kind}-{which}", path, inquiry, body)


def _result_ids(row: DarajaInquiry) -> dict[str, str]:
    return {
        "originator_conversation_id": row.originator_conversation_id,
        "conversation_id": row.conversation_id,
    }


def confirmation(**changes: Any) -> dict[str, Any]:
    """Daraja's C2B notification (the published sample) with a fresh TransID."""
    return {**load_fixture(MASKED_C2B), "TransID": receipt(), **changes}


def _c2b(which: str) -> Target:
    path = f"{CALLBACKS}c2b/{settings.PAYMENTS['CALLBACK_SECRET']}/{which}"
    return Target(f"c2b-{which}", path, None, confirmation())


FACTORIES = {
    "stk": _stk,
    "b2c-result": lambda: _b2c("result"),
    "b2c-timeout": lambda: _b2c("timeout"),
    "reversal-result": lambda: _reversal("result"),
    "reversal-timeout": lambda: _reversal("timeout"),
    "balance-result": lambda: _inquiry(InquiryKind.BALANCE, "result"),
    "balance-timeout": lambda: _inquiry(InquiryKind.BALANCE, "timeout"),
    "status-result": lambda: _inquiry(InquiryKind.STATUS, "result"),
    "status-timeout": lambda: _inquiry(InquiryKind.STATUS, "timeout"),
    "c2b-validation": lambda: _c2b("validation"),
    "c2b-confirmation": lambda: _c2b("confirmation"),
}
ROUTES = tuple(FACTORIES)


def target(route: str) -> Target:
    return FACTORIES[route]()


def acknowledgement(route: str) -> dict[str, Any]:
    """What Daraja is answered for a body it could not have sent (an unreadable one)."""
    if route == "c2b-validation":
        return VALIDATION_REJECTED
    return CONFIRMATION_ACK if route == "c2b-confirmation" else RESULT_ACK


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def columns_overflowing() -> list[str]:
    """Stored text longer than its column: PostgreSQL refuses it (a DataError), SQLite keeps it.

    Checked after the fact so that a SQLite run finds what a PostgreSQL run would fail on.
    """
    found = []
    for model in (Transaction, DarajaInquiry, BalanceSnapshot, CallbackEvent):
        sized = [
            f
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField) and f.max_length
        ]
        for row in model.objects.all():
            found += [
                f"{model.__name__}.{f.name}: {len(getattr(row, f.attname) or '')} > {f.max_length}"
                for f in sized
                if len(getattr(row, f.attname) or "") > f.max_length
            ]
    return found

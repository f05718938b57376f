"""Plain helpers for the back-office tests: admin URLs, Daraja URLs, messages, callback bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from django.contrib.messages import get_messages

from payments.enums import CallbackKind, CallbackOutcome
from payments.models import CallbackEvent, Transaction

SANDBOX = "https://sandbox.safaricom.co.ke"
OAUTH_URL = f"{SANDBOX}/oauth/v1/generate"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "daraja"

CHANGELIST = "/admin/payments/transaction/"
REFUND_BULK = "/admin/payments/transaction/refund/"
QUERY_STATUS = "/admin/payments/transaction/query-status/"
EXPORT = "/admin/payments/transaction/export/"
PAYOUT = "/admin/payments/transaction/payout/"
BALANCE = "/admin/payments/transaction/balance/"
CALLBACKS = "/admin/payments/callbackevent/"
REPROCESS = "/admin/payments/callbackevent/reprocess/"
PAYOUT_REQUESTS = "/admin/payments/payoutrequest/"
AUDIT = "/admin/payments/auditrecord/"


def change_url(transaction: Transaction) -> str:
    return f"{CHANGELIST}{transaction.pk}/change/"


def refund_url(transaction: Transaction) -> str:
    return f"{CHANGELIST}{transaction.pk}/refund/"


def decide_url(payout_request) -> str:
    return f"{PAYOUT_REQUESTS}{payout_request.pk}/decide/"


def action_data(action: str, *objects) -> dict:
    """The POST the changelist's action bar sends for ``objects``."""
    return {"action": action, "index": "0", "_selected_action": [str(o.pk) for o in objects]}


def messages_of(response) -> list[str]:
    """The messages the view queued for the next page."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def stk_success_body(transaction: Transaction) -> dict:
    """The published success callback, addressed to ``transaction``'s push, amount and phone."""
    body = copy.deepcopy(load_fixture("stk/stk_callback_success.portal.json"))
    callback = body["Body"]["stkCallback"]
    callback["CheckoutRequestID"] = transaction.checkout_request_id
    for item in callback["CallbackMetadata"]["Item"]:
        if item["Name"] == "Amount":
            item["Value"] = transaction.amount
        if item["Name"] == "PhoneNumber":
            item["Value"] = int(transaction.phone_number)
    return body


def stk_event(
    transaction: Transaction, *, outcome: str = CallbackOutcome.RECEIVED, error: str = ""
) -> CallbackEvent:
    """A stored STK callback for ``transaction``, compact JSON as Daraja posts it."""
    return CallbackEvent.objects.create(
        kind=CallbackKind.STK,
        token=transaction.callback_token,
        body=json.dumps(stk_success_body(transaction), separators=(",", ":")),
        source_ip="196.201.214.200",
        headers={"Content-Type": "application/json"},
        outcome=outcome,
        error=error,
        transaction=transaction if outcome == CallbackOutcome.PROCESSED else None,
    )

"""Test helpers for host projects: M-Pesa's answers without Daraja, through the real callbacks.

    from payments import testing

    with testing.daraja_double():                   # pytest: the ``daraja_double`` fixture
        payment = stk_push_initiate(..., for_object=order)
        testing.stk_push_complete(payment)            # the customer entered their PIN

Requests that would reach Daraja are answered in-process by ``DarajaDouble``: accepted, as
Daraja accepts them, which pays nothing yet. The outcome then arrives as in production: each
helper posts the body Daraja would post to the transaction's callback URL, through the host's
own URLconf and middleware (Django's test client), so the body is stored as a CallbackEvent,
processed once, and the signals are sent after the commit, inside a test's transaction too.
For tests only: the test client speaks to ``testserver``.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.test import Client, TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from requests.adapters import BaseAdapter

from payments.conf import is_missing, payments_settings
from payments.daraja import client as daraja_paths
from payments.daraja.auth import OAUTH_PATH
from payments.daraja.dates import NAIROBI
from payments.enums import CallbackOutcome, TransactionStatus, stk_result_outcome
from payments.gateway import daraja_transport_set
from payments.models import CallbackEvent, Transaction
from payments.network import (
    SAFARICOM_CALLBACK_NETWORKS,
    callback_networks_parse,
    trusted_proxies,
)

__all__ = [
    "CallbackNotAppliedError",
    "DarajaDouble",
    "c2b_payment_deliver",
    "daraja_double",
    "payout_complete",
    "payout_fail",
    "stk_push_cancel",
    "stk_push_complete",
    "stk_push_fail",
    "stk_push_timeout",
]

# Daraja's operations by path, as payments.daraja.client calls them.
OPERATIONS = {
    OAUTH_PATH: "oauth",
    daraja_paths.STK_PUSH_PATH: "stk_push",
    daraja_paths.STK_QUERY_PATH: "stk_query",
    **{path: "c2b_register" for path in daraja_paths.C2B_REGISTER_PATHS.values()},
    **{path: "c2b_simulate" for path in daraja_paths.C2B_SIMULATE_PATHS.values()},
    daraja_paths.B2C_PATH: "b2c_payment",
    daraja_paths.REVERSAL_PATH: "reversal",
    daraja_paths.ACCOUNT_BALANCE_PATH: "account_balance",
    daraja_paths.TRANSACTION_STATUS_PATH: "transaction_status",
}
ACCEPTED = "Accept the service request successfully."
# Outcomes of a delivered callback that applied it (or found it applied already).
APPLIED = (CallbackOutcome.PROCESSED, CallbackOutcome.DUPLICATE)


@dataclass(frozen=True)
class SentRequest:
    """One request that would have reached Daraja: its operation and its JSON body."""

    operation: str
    body: dict[str, Any]


class DarajaDouble(BaseAdapter):
    """A requests transport adapter that answers as Daraja does when it accepts a request.

    STK Push gets a fresh CheckoutRequestID, payouts, refunds and inquiries a ConversationID;
    an STK query says "being processed". ``refuse(operation)`` makes the next request of that
    operation fail as Daraja refuses one. ``sent`` lists what was asked, in order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[SentRequest] = []
        self._refusals: dict[str, tuple[int, str, str]] = {}
        self._lock = threading.Lock()

    def refuse(
        self,
        operation: str,
        *,
        status: int = 400,
        error_code: str = "400.002.02",
        error_message: str = "Bad Request - Invalid PhoneNumber",
    ) -> None:
        """Refuse the next ``operation`` ("stk_push", "b2c_payment", …) with Daraja's error."""
        if operation not in OPERATIONS.values():
            raise ValueError(f"unknown operation {operation!r}: one of {sorted(OPERATIONS)}")
        with self._lock:
            self._refusals[operation] = (status, error_code, error_message)

    def requests_for(self, operation: str) -> list[dict[str, Any]]:
        """The bodies sent for ``operation``, in order."""
        return [request.body for request in self.sent if request.operation == operation]

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any):
        # By the path's end: a BASE_URL may put Daraja's paths under one of its own.
        path = urlsplit(request.url).path.rstrip("/")
        operation = next((op for end, op in OPERATIONS.items() if path.endswith(end)), None)
        body = json.loads(request.body) if request.body else {}
        with self._lock:
            if operation is not None and operation != "oauth":
                self.sent.append(SentRequest(operation, body))
            refusal = self._refusals.pop(operation, None) if operation else None
        if operation is None:
            return _response(request, 404, _envelope("404.001.01", "Resource not found"))
        if refusal is not None:
            status, code, message = refusal
            return _response(request, status, _envelope(code, message))
        return _response(request, *_answer(operation, body))

    def close(self) -> None:
        """Nothing to close: no connection is ever opened."""


def _answer(operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if operation == "oauth":
        return 200, {"access_token": f"double-{secrets.token_hex(8)}", "expires_in": "3599"}
    if operation == "stk_push":
        return 200, {
            "MerchantRequestID": f"double-{secrets.token_hex(6)}",
            "CheckoutRequestID": f"ws_CO_double_{secrets.token_hex(10)}",
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        }
    if operation == "stk_query":
        return 500, _envelope("500.001.1001", "The transaction is being processed")
    if operation == "c2b_register":
        return 200, {"ResponseCode": "0", "ResponseDescription": "Success"}
    if operation == "c2b_simulate":
        return 200, {"ResponseCode": "0", "ResponseDescription": ACCEPTED}
    return 200, {
        "ConversationID": _conversation_id(),
        "OriginatorConversationID": str(body.get("OriginatorConversationID") or ""),
        "ResponseCode": "0",
        "ResponseDescription": ACCEPTED,
    }


def _envelope(code: str, message: str) -> dict[str, str]:
    return {"requestId": secrets.token_hex(8), "errorCode": code, "errorMessage": message}


def _response(request: requests.PreparedRequest, status: int, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = request.url or ""
    response.request = request
    response.encoding = "utf-8"
    return response


# Stand-ins for the PAYMENTS settings a host's test settings may leave empty: nothing they
# name leaves the process.
STAND_INS = {
    "CONSUMER_KEY": "double-consumer-key",
    "CONSUMER_SECRET": "double-consumer-secret",
    "SHORTCODE": "174379",
    "PASSKEY": "double-passkey",
    "B2C_SHORTCODE": "600992",
    "INITIATOR_NAME": "double-initiator",
    "SECURITY_CREDENTIAL": "double-security-credential",
    "CALLBACK_BASE_URL": "https://testserver",
    "CALLBACK_SECRET": "double-callback-secret-0123456789abcdef",
}


@contextmanager
def daraja_double() -> Iterator[DarajaDouble]:
    """Answer every Daraja request of this process with a ``DarajaDouble`` until the block
    ends (the network is never reached). PAYMENTS settings left empty get stand-ins meanwhile,
    so that a host's tests need no Daraja credentials."""
    double = DarajaDouble()
    current = dict(getattr(settings, "PAYMENTS", {}) or {})
    filled = {
        name: value
        for name, value in STAND_INS.items()
        if is_missing(getattr(payments_settings, name))
        # A credential is made from the initiator password when there is one.
        and not (name == "SECURITY_CREDENTIAL" and payments_settings.INITIATOR_PASSWORD)
    }
    with override_settings(PAYMENTS={**current, **filled}) if filled else nullcontext():
        daraja_transport_set(double)
        try:
            yield double
        finally:
            daraja_transport_set(None)


class CallbackNotAppliedError(AssertionError):
    """The body was delivered, but the app did not apply it (its event says why)."""


# -- STK Push ----------------------------------------------------------------------------------


def stk_push_complete(
    transaction: Transaction, *, receipt: str | None = None, paid_at: datetime | None = None
) -> Transaction:
    """Deliver the callback of a paid push: the customer entered their PIN.

    The callback carries the push's own amount and phone number, and ``receipt`` (a fresh one
    by default). Returns the transaction as the callback left it (``success``); raises
    CallbackNotAppliedError when the app refused it (a push already failed, say).
    """
    items = [
        {"Name": "Amount", "Value": transaction.amount},
        {"Name": "MpesaReceiptNumber", "Value": receipt or new_receipt()},
        {"Name": "TransactionDate", "Value": int(_compact_time(paid_at))},
        {"Name": "PhoneNumber", "Value": int(transaction.phone_number)},
    ]
    body = _stk_callback(transaction, 0, "The service request is processed successfully.")
    body["Body"]["stkCallback"]["CallbackMetadata"] = {"Item": items}
    return _deliver_stk(transaction, body, TransactionStatus.SUCCESS)


def stk_push_fail(
    transaction: Transaction,
    *,
    result_code: int = 1,
    result_desc: str = "The balance is insufficient for the transaction.",
) -> Transaction:
    """Deliver the callback of a push that failed (by default: insufficient funds, code 1):
    ``failed``, or the status the result code means (1032 ``cancelled``, 1037 ``timeout``)."""
    body = _stk_callback(transaction, result_code, result_desc)
    return _deliver_stk(transaction, body, stk_result_outcome(str(result_code)).status)


def stk_push_cancel(transaction: Transaction) -> Transaction:
    """Deliver the callback of a push the customer dismissed (1032): ``cancelled``."""
    return stk_push_fail(transaction, result_code=1032, result_desc="Request cancelled by user")


def stk_push_timeout(transaction: Transaction) -> Transaction:
    """Deliver the callback of a prompt nobody answered (1037): ``timeout``."""
    return stk_push_fail(
        transaction, result_code=1037, result_desc="DS timeout user cannot be reached"
    )


def _stk_callback(transaction: Transaction, result_code: int, result_desc: str) -> dict:
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": transaction.merchant_request_id or "",
                # A push whose acknowledgement was lost adopts the callback's id.
                "CheckoutRequestID": transaction.checkout_request_id
                or f"ws_CO_double_{secrets.token_hex(10)}",
                "ResultCode": result_code,
                "ResultDesc": result_desc,
            }
        }
    }


def _deliver_stk(transaction: Transaction, body: dict, expected: str) -> Transaction:
    path = reverse("payments:stk-callback", kwargs={"callback_token": transaction.callback_token})
    return _settled(transaction, _deliver(path, body), expected)


# -- C2B ---------------------------------------------------------------------------------------


def c2b_payment_deliver(
    *,
    amount: int,
    account_reference: str,
    phone_number: str = "254708374149",
    receipt: str | None = None,
    shortcode: str | None = None,
    paid_at: datetime | None = None,
    first_name: str = "JOHN",
) -> Transaction:
    """Deliver the C2B confirmation of a customer paying the PayBill from their M-Pesa menu.

    ``phone_number`` (``2547…``) is sent masked, as Daraja sends it. The payment is booked as
    in production: it completes one of our pushes that it fits (same reference, amount and
    phone), or becomes a C2B payment (``c2b_payment_received``). Returns that transaction.
    """
    body = {
        "TransactionType": "Pay Bill",
        "TransID": receipt or new_receipt(),
        "TransTime": _compact_time(paid_at),
        "TransAmount": f"{amount}.00",
        "BusinessShortCode": str(shortcode or payments_settings.SHORTCODE),
        "BillRefNumber": account_reference,
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": f"{phone_number[:4]} ***** {phone_number[-3:]}",
        "FirstName": first_name,
        "MiddleName": "",
        "LastName": "",
    }
    path = reverse(
        "payments:c2b-confirmation", kwargs={"secret": str(payments_settings.CALLBACK_SECRET)}
    )
    event = _deliver(path, body)
    return Transaction.objects.get(pk=event.transaction_id)


# -- B2C payouts -------------------------------------------------------------------------------


def payout_complete(
    transaction: Transaction, *, receipt: str | None = None, recipient_name: str = "JOHN DOE"
) -> Transaction:
    """Deliver the result of a payout M-Pesa paid: ``success``, ``payout_completed``."""
    receipt = receipt or new_receipt()
    parameters = {
        "TransactionAmount": transaction.amount,
        "TransactionReceipt": receipt,
        "ReceiverPartyPublicName": f"{transaction.phone_number} - {recipient_name}",
        "TransactionCompletedDateTime": timezone.now()
        .astimezone(NAIROBI)
        .strftime("%d.%m.%Y %H:%M:%S"),
        "B2CRecipientIsRegisteredCustomer": "Y",
    }
    body = _payout_result(transaction, 0, "The service request is processed successfully.")
    body["Result"]["TransactionID"] = receipt
    body["Result"]["ResultParameters"] = {
        "ResultParameter": [{"Key": key, "Value": value} for key, value in parameters.items()]
    }
    return _deliver_payout(transaction, body, TransactionStatus.SUCCESS)


def payout_fail(
    transaction: Transaction,
    *,
    result_code: int = 2001,
    result_desc: str = "The initiator information is invalid.",
) -> Transaction:
    """Deliver the result of a payout M-Pesa refused: ``failed``, ``payout_failed``."""
    body = _payout_result(transaction, result_code, result_desc)
    return _deliver_payout(transaction, body, TransactionStatus.FAILED)


def _payout_result(transaction: Transaction, result_code: int, result_desc: str) -> dict:
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": result_code,
            "ResultDesc": result_desc,
            "OriginatorConversationID": transaction.originator_conversation_id or "",
            "ConversationID": transaction.conversation_id or _conversation_id(),
            "TransactionID": new_receipt(),
        }
    }


def _deliver_payout(transaction: Transaction, body: dict, expected: str) -> Transaction:
    path = reverse("payments:b2c-result", kwargs={"callback_token": transaction.callback_token})
    return _settled(transaction, _deliver(path, body), expected)


# -- delivery ----------------------------------------------------------------------------------


def _deliver(path: str, body: dict) -> CallbackEvent:
    """POST ``body`` to ``path`` as Daraja would; the stored event, once processed."""
    last = CallbackEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    # The signals wait for the commit: inside a test's transaction, run them when it would be.
    with TestCase.captureOnCommitCallbacks(using=DEFAULT_DB_ALIAS, execute=True):
        response = Client().post(
            path,
            json.dumps(body),
            content_type="application/json",
            secure=True,
            **_daraja_address(),
        )
    event = CallbackEvent.objects.filter(pk__gt=last).order_by("-pk").first()
    if response.status_code != 200 or event is None:
        raise CallbackNotAppliedError(
            f"the callback to {path} was answered {response.status_code}: "
            f"{response.content[:200]!r}"
        )
    if event.outcome not in APPLIED:
        raise CallbackNotAppliedError(
            f"callback event {event.pk} ended {event.outcome}: {event.error[:500]}"
        )
    return event


def _settled(transaction: Transaction, event: CallbackEvent, expected: str) -> Transaction:
    """``transaction`` as the event left it, which must be ``expected``: a result the
    transaction can no longer take (a success after a failure) is stored as a duplicate."""
    transaction.refresh_from_db()
    if transaction.status != expected:
        raise CallbackNotAppliedError(
            f"transaction {transaction.pk} is {transaction.status}, not {expected}: callback "
            f"event {event.pk} ended {event.outcome} {event.error[:300]}".rstrip()
        )
    return transaction


def _daraja_address() -> dict[str, str]:
    """WSGI variables that make the request come from an address the callback allowlist
    takes (one of Safaricom's), through as many proxies as the site trusts."""
    networks = callback_networks_parse(payments_settings.CALLBACK_ALLOWED_NETWORKS)
    address = str(networks[0].network_address) if networks else SAFARICOM_CALLBACK_NETWORKS[0]
    hops = trusted_proxies()
    if not hops:
        return {"REMOTE_ADDR": address}
    # The client, then each trusted proxy but the last, which is the connecting address.
    forwarded = [address, *["127.0.0.1"] * (hops - 1)]
    return {"HTTP_X_FORWARDED_FOR": ", ".join(forwarded), "REMOTE_ADDR": "127.0.0.1"}


def new_receipt() -> str:
    """A fresh M-Pesa receipt number: 10 capital letters and digits."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "T" + "".join(secrets.choice(alphabet) for _ in range(9))


def _conversation_id() -> str:
    return f"AG_{timezone.now().astimezone(NAIROBI):%Y%m%d}_{secrets.token_hex(10)}"


def _compact_time(moment: datetime | None) -> str:
    return (moment or timezone.now()).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")

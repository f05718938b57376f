"""Fixtures for the app's tests: users with API tokens, and Daraja mocked at the HTTP layer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import responses
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

SANDBOX = "https://sandbox.safaricom.co.ke"
OAUTH_URL = f"{SANDBOX}/oauth/v1/generate"
STK_PUSH_URL = f"{SANDBOX}/mpesa/stkpush/v1/processrequest"
STK_QUERY_URL = f"{SANDBOX}/mpesa/stkpushquery/v1/query"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "daraja"

PUSH_PATH = "/api/v1/payments/mpesa/stk-push"
STATUS_PATH = "/api/v1/payments/mpesa/stk-push/status/{}"
TRANSACTIONS_PATH = "/api/v1/payments/mpesa/transactions"
CALLBACK_PATH = "/api/v1/payments/callbacks/stk/{}"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def push_accepted(checkout_request_id: str = "ws_CO_191220191020363925") -> dict:
    body = load_fixture("stk/stk_push_response_accepted.portal.json")
    body["CheckoutRequestID"] = checkout_request_id
    return body


def stk_callback(
    name: str = "stk/stk_callback_success.portal.json",
    *,
    checkout_request_id: str,
    amount: int | None = None,
    phone_number: str | None = None,
) -> dict:
    """A published callback body, re-addressed to our push (and amount/phone if given)."""
    body = copy.deepcopy(load_fixture(name))
    callback = body["Body"]["stkCallback"]
    callback["CheckoutRequestID"] = checkout_request_id
    for item in callback.get("CallbackMetadata", {}).get("Item", []):
        if item["Name"] == "Amount" and amount is not None:
            item["Value"] = amount
        if item["Name"] == "PhoneNumber" and phone_number is not None:
            item["Value"] = int(phone_number)
    return body


def calls_to(mock: responses.RequestsMock, url: str) -> list:
    return [c for c in mock.calls if c.request.url == url]


def api_client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("customer", password="pw-customer-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("someone-else", password="pw-other-1")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("clerk", password="pw-staff-1", is_staff=True)


@pytest.fixture
def api(user) -> APIClient:
    return api_client_for(user)


@pytest.fixture
def push_body() -> dict:
    return {
        "phone_number": "0708 374 149",
        "amount": 1,
        "account_reference": "INV00042",
        "transaction_desc": "Order 42",
    }


def stk_transaction(
    *,
    checkout_request_id: str,
    status: str = "pending",
    user=None,
    age_seconds: int = 0,
    **fields,
):
    """An STK Push row as the push service leaves it once Daraja accepted, ``age_seconds`` old."""
    from datetime import timedelta

    from django.utils import timezone

    from payments.enums import TransactionType
    from payments.models import Transaction

    transaction = Transaction.objects.create(
        transaction_type=TransactionType.STK_PUSH,
        status=status,
        checkout_request_id=checkout_request_id,
        amount=1,
        phone_number="254708374149",
        environment="sandbox",
        user=user,
        **fields,
    )
    if age_seconds:
        # created_at is auto_now_add: only an update can put it in the past.
        Transaction.objects.filter(pk=transaction.pk).update(
            created_at=timezone.now() - timedelta(seconds=age_seconds)
        )
        transaction.refresh_from_db()
    return transaction


@pytest.fixture
def post_result(client, django_capture_on_commit_callbacks):
    """Post a body to a result or timeout URL as Daraja would, running on-commit hooks.

    ``post(kind, token, body, which="result")`` for kind b2c, reversal, balance or status.
    """

    def post(kind: str, token: str, body, which: str = "result"):
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                f"/api/v1/payments/callbacks/{kind}/{token}/{which}",
                raw,
                content_type="application/json",
            )

    return post


@pytest.fixture
def money_signals():
    """(signal name, kwargs) of each money-out signal sent during the test, in order."""
    from payments import signals

    names = (
        "payout_completed",
        "payout_failed",
        "reversal_completed",
        "reversal_failed",
        "balance_updated",
    )
    received: list[tuple[str, dict]] = []
    receivers = {}
    for name in names:

        def receiver(sender, signal=None, _name=name, **kwargs):
            received.append((_name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield received
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)

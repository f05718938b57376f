"""Fixtures for the app's tests: users with API tokens, and Daraja mocked at the HTTP layer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import responses
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from payments.gateway import reset_daraja_client

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


@pytest.fixture(autouse=True)
def _fresh_state():
    # Throttle counters and the OAuth token live in the cache; the client is per process.
    cache.clear()
    reset_daraja_client()
    yield
    cache.clear()
    reset_daraja_client()


@pytest.fixture
def daraja():
    """Daraja at the HTTP layer with a working OAuth endpoint; add the answers a test needs."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OAUTH_URL, json={"access_token": "test-token", "expires_in": "3599"})
        yield mock


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

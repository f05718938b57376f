"""Requests to every JSON POST endpoint of the API, as a client outside would send them.

Shared by tests/survival/test_api_input.py and test_api_schema.py: the bodies that each
endpoint takes, a staff account allowed to call them all, and Daraja accepting everything at
the HTTP layer.
"""

from __future__ import annotations

import itertools
import json

import pytest
from django.test import Client
from django.urls import reverse

from payments.models import PayoutRequest, RefundRequest, Transaction
from payments.services.checkout import checkout_link_create
from tests.payments.conftest import (
    PUSH_PATH,
    STK_PUSH_URL,
    STK_QUERY_URL,
    api_client_for,
    load_fixture,
    push_accepted,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    BALANCE_PATH,
    BALANCE_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    STATUS_URL,
    accept,
    new_key,
    staff_user_with,
)
from tests.payments.test_c2b import REGISTER_PATH, REGISTER_V1_URL, REGISTER_V2_URL

CHECKOUT_PATH = "/api/v1/payments/mpesa/checkout"
EVERY_PERMISSION = (
    "pay_out",
    "refund",
    "view_balance",
    "query_status",
    "view_transaction",
    "create_checkout_link",
    "register_c2b_urls",
)
# A valid body for each JSON POST endpoint; the tests spoil one part of it at a time.
VALID_BODIES = {
    "stk-push": {"phone_number": "0708374149", "amount": 10, "account_reference": "INV42"},
    "b2c": {"phone_number": "0708374149", "amount": 100, "remarks": "Supplier 17"},
    "reverse": {"transaction": "NLJ7RT61SV", "remarks": "Refund"},
    "balance": {"shortcode": "600992"},
    "checkout": {"amount": 10, "account_reference": "INV42", "description": "Order 42"},
    "register-urls": {"shortcode": "600992"},
    "checkout-start": {"phone_number": "0708374149"},
}
JSON_POST_ENDPOINTS = tuple(VALID_BODIES)
# The endpoints of the OpenAPI schema (the checkout page's start is not an API of its own).
SCHEMA_PATHS = {
    "stk-push": PUSH_PATH,
    "b2c": B2C_PATH,
    "reverse": REVERSE_PATH,
    "balance": BALANCE_PATH,
    "checkout": CHECKOUT_PATH,
    "register-urls": REGISTER_PATH,
}
# Rows that a request which moved money (or will, once approved) leaves behind.
RECORDED = (Transaction, PayoutRequest, RefundRequest)


@pytest.fixture
def finance(django_user_model):
    """A staff account holding every permission the API asks for."""
    return staff_user_with(django_user_model, "finance", *EVERY_PERMISSION)


@pytest.fixture
def post(finance):
    """``post(endpoint, raw, content_type=..., **headers)``: raw bytes or text as a client would
    send them, by an account allowed to call the endpoint (nobody for the checkout page's
    start), with a fresh Idempotency-Key where one is required unless given."""
    staff = api_client_for(finance)
    anonymous = Client()
    token = checkout_link_create(amount=10, account_reference="INV42")
    paths = {
        **SCHEMA_PATHS,
        "checkout-start": reverse("payments:checkout-pay", kwargs={"token": token}),
    }

    def send(endpoint: str, raw, *, content_type: str = "application/json", **headers):
        client = anonymous if endpoint == "checkout-start" else staff
        if endpoint in ("b2c", "reverse"):
            headers = {**new_key(), **headers}
        # generic(): the bytes as given; post() would re-encode them to the charset named.
        return client.generic("POST", paths[endpoint], raw, content_type=content_type, **headers)

    return send


def daraja_accepts_everything(daraja) -> None:
    """Every request accepted, each with ids of its own (the ledger's columns are unique)."""
    numbers = itertools.count(1)
    daraja.add_callback(
        "POST",
        STK_PUSH_URL,
        callback=lambda request: (200, {}, json.dumps(push_accepted(f"ws_CO_{next(numbers)}"))),
        content_type="application/json",
    )
    daraja.post(STK_QUERY_URL, json=load_fixture("stk/stk_query_response_success.portal.json"))
    for url in (B2C_URL, REVERSAL_URL, BALANCE_URL, STATUS_URL):
        accept(daraja, url)
    for url in (REGISTER_V1_URL, REGISTER_V2_URL):
        daraja.post(url, json=load_fixture("c2b/c2b_register_url_response.portal.json"))


def nothing_moved(daraja) -> bool:
    """No request reached Daraja (not even for a token) and nothing was recorded to be sent."""
    return not daraja.calls and not any(model.objects.exists() for model in RECORDED)


def error_body(response) -> dict:
    """The body of an error answer, checked to be the API's error shape."""
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = json.loads(response.content)
    # "transaction": the payment a 409 or a 502 is about.
    assert {"code", "detail"} <= set(body) <= {"code", "detail", "errors", "transaction"}, body
    return body

"""Nothing secret in logs or error bodies: the suite-wide scan (tests/leaks.py) and what it found.

The scan itself fails the run when any test makes a log line or an error body hold a secret
or a full phone number; these tests pin down that it sees what it must, and the leaks it
found.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from payments.daraja.phone import mask_phone_number
from tests.leaks import RECORDER, ErrorBodyMiddleware
from tests.payments.conftest import (
    PUSH_PATH,
    STK_PUSH_URL,
    api_client_for,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    new_key,
    paid_transaction,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

PHONE = "254708374149"
SECRET = "test-callback-secret-0123456789abcdef"
REFUSAL = {"requestId": "r-1", "errorCode": "400.002.02", "errorMessage": "Bad Request"}


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("customer", password="pw-customer-1")


def test_the_scan_knows_the_secrets_of_the_settings_and_of_the_rows(user):
    token = Token.objects.create(user=user).key
    payment = paid_transaction()
    scanner = RECORDER.scanner

    for value in (
        "test-consumer-secret-value",
        "test-passkey-value-0123456789",
        "test-security-credential-value",
        SECRET,
        token,
        payment.callback_token,
    ):
        assert scanner.leaks_in(f"x {value} y"), value
    assert scanner.leaks_in(f'"phone_number": "{PHONE}"') == [("a phone number", PHONE)]
    assert scanner.leaks_in("+254 708 374 149 is not a run of digits") == []
    assert scanner.leaks_in(f"masked {mask_phone_number(PHONE)}, hex a{PHONE}b") == []


def test_a_log_line_is_scanned_as_the_configured_handlers_print_it():
    logger = logging.getLogger("payments.tests")

    with RECORDER.diverted() as found:
        # The configured filter redacts the callback path; the phone number goes through.
        logger.warning("POST /api/v1/payments/callbacks/c2b/%s/confirmation", SECRET)
        logger.warning("paid by %s", PHONE)
        logger.info("masked", extra={"phone": PHONE, "request": object()})

    assert [(f.where, [name for name, _ in f.leaks]) for f in found] == [
        ("log line of payments.tests", ["a phone number"]),
        ("log line of payments.tests", ["a phone number"]),
    ]


def test_an_error_body_is_scanned_and_a_success_body_is_not():
    request = RequestFactory().post(f"/api/v1/payments/callbacks/c2b/{SECRET}/confirmation")

    with RECORDER.diverted() as found:
        for status in (200, 201, 400, 502):
            ErrorBodyMiddleware(lambda r, s=status: HttpResponse(PHONE, status=s))(request)

    assert [f.where.split()[0] for f in found] == ["400", "502"]
    assert SECRET not in "".join(f.where for f in found)


def refused(mock, url: str) -> None:
    mock.post(url, status=400, json=REFUSAL)


def test_a_push_refused_by_daraja_answers_502_with_the_phone_masked(user, daraja):
    refused(daraja, STK_PUSH_URL)
    body = {"phone_number": "0708374149", "amount": 1, "account_reference": "INV1"}

    response = api_client_for(user).post(PUSH_PATH, body, format="json")

    assert response.status_code == 502
    assert response.json()["transaction"]["phone_number"] == mask_phone_number(PHONE)
    assert PHONE not in response.content.decode()


@pytest.mark.parametrize("what", ["payout", "refund"])
def test_money_out_refused_by_daraja_answers_502_with_the_phone_masked(
    what, daraja, django_user_model
):
    if what == "payout":
        url, path = B2C_URL, B2C_PATH
        user = staff_user_with(django_user_model, "payer", "pay_out")
        body = {"phone_number": "0708374149", "amount": 100, "remarks": "Supplier"}
    else:
        url, path = REVERSAL_URL, REVERSE_PATH
        user = staff_user_with(django_user_model, "refunder", "refund")
        body = {"transaction": str(paid_transaction(amount=100).pk), "remarks": "Refund"}
    refused(daraja, url)
    key = new_key()

    first = api_client_for(user).post(path, body, format="json", **key)
    again = api_client_for(user).post(path, body, format="json", **key)

    assert (first.status_code, again.status_code) == (502, 502)
    assert again["Idempotent-Replayed"] == "true"
    for response in (first, again):
        assert response.json()["transaction"]["phone_number"] == mask_phone_number(PHONE)
        assert PHONE not in json.dumps(response.json())

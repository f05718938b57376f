"""The mobile app's flow end to end: push, Daraja's callback, then the status endpoint."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from payments.daraja.dates import NAIROBI
from payments.models import CallbackEvent, Transaction
from payments.signals import payment_failed, payment_succeeded

from .conftest import (
    CALLBACK_PATH,
    PUSH_PATH,
    STATUS_PATH,
    STK_PUSH_URL,
    calls_to,
    push_accepted,
    stk_callback,
)

pytestmark = pytest.mark.django_db

CHECKOUT = "ws_CO_191220191020363925"


@pytest.fixture
def signals():
    received = []

    def record(signal_name):
        def receiver(sender, transaction, **kwargs):
            received.append((signal_name, transaction.pk, transaction.status))

        return receiver

    succeeded, failed = record("succeeded"), record("failed")
    payment_succeeded.connect(succeeded)
    payment_failed.connect(failed)
    yield received
    payment_succeeded.disconnect(succeeded)
    payment_failed.disconnect(failed)


def start_push(api, daraja, push_body) -> Transaction:
    daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))
    response = api.post(PUSH_PATH, push_body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    assert response.json()["checkout_request_id"] == CHECKOUT
    assert response.json()["customer_message"] == "Success. Request accepted for processing"
    return Transaction.objects.get(pk=response.json()["id"])


@pytest.fixture
def post_callback(client, django_capture_on_commit_callbacks):
    """Post a body as Daraja would, running on-commit hooks as a real commit would."""

    def post(transaction: Transaction, body) -> dict:
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                CALLBACK_PATH.format(transaction.callback_token),
                raw,
                content_type="application/json",
            )
        assert response.status_code == 200
        return response.json()

    return post


def test_push_then_success_callback_shows_success_with_receipt_and_date(
    api, post_callback, daraja, push_body, signals
):
    transaction = start_push(api, daraja, push_body)
    sent = json.loads(calls_to(daraja, STK_PUSH_URL)[0].request.body)
    assert sent["CallBackURL"] == (
        f"https://pay.example.co.ke/api/v1/payments/callbacks/stk/{transaction.callback_token}"
    )

    ack = post_callback(
        transaction,
        stk_callback(checkout_request_id=CHECKOUT, amount=1, phone_number="254708374149"),
    )

    assert ack == {"ResultCode": 0, "ResultDesc": "Accepted"}
    status = api.get(STATUS_PATH.format(CHECKOUT)).json()
    assert status["status"] == "success"
    assert status["mpesa_receipt_number"] == "NLJ7RT61SV"
    assert status["result_code"] == "0"
    assert status["message"] == "Payment received. Thank you."
    transaction.refresh_from_db()
    assert transaction.transaction_date == dt.datetime(2019, 12, 19, 10, 21, 15, tzinfo=NAIROBI)
    assert signals == [("succeeded", transaction.pk, "success")]


@pytest.mark.parametrize(
    ("fixture", "status", "code", "message"),
    [
        (
            "stk/stk_callback_cancelled_1032.portal.json",
            "cancelled",
            "1032",
            "You cancelled the M-Pesa prompt.",
        ),
        (
            "stk/stk_callback_wrong_pin_2001.2019.django-daraja.json",
            "failed",
            "2001",
            "The M-Pesa PIN entered was wrong.",
        ),
        (
            "stk/stk_callback_timeout_1036_smsc_ack.2019.django-daraja.json",
            "timeout",
            "1036",
            "M-Pesa could not reach your phone. Please try again.",
        ),
    ],
)
def test_push_then_failure_callback_shows_its_status_and_message(
    api, post_callback, daraja, push_body, signals, fixture, status, code, message
):
    transaction = start_push(api, daraja, push_body)
    post_callback(transaction, stk_callback(fixture, checkout_request_id=CHECKOUT))

    body = api.get(STATUS_PATH.format(CHECKOUT)).json()
    assert (body["status"], body["result_code"], body["message"]) == (status, code, message)
    assert body["mpesa_receipt_number"] == ""
    assert signals == [("failed", transaction.pk, status)]


def test_callback_for_1037_is_a_timeout(api, post_callback, daraja, push_body):
    transaction = start_push(api, daraja, push_body)
    body = stk_callback("stk/stk_callback_cancelled_1032.portal.json", checkout_request_id=CHECKOUT)
    body["Body"]["stkCallback"]["ResultCode"] = 1037
    post_callback(transaction, body)
    assert api.get(STATUS_PATH.format(CHECKOUT)).json()["status"] == "timeout"


def test_the_same_callback_twice_changes_state_once(api, post_callback, daraja, push_body, signals):
    transaction = start_push(api, daraja, push_body)
    body = stk_callback(checkout_request_id=CHECKOUT, amount=1, phone_number="254708374149")
    post_callback(transaction, body)
    post_callback(transaction, body)

    outcomes = list(
        CallbackEvent.objects.filter(transaction=transaction)
        .order_by("received_at", "pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["processed", "duplicate"]
    assert len(signals) == 1


def test_amount_mismatch_is_not_a_success_and_is_flagged(
    api, post_callback, daraja, push_body, signals
):
    transaction = start_push(api, daraja, push_body)
    post_callback(
        transaction,
        stk_callback(checkout_request_id=CHECKOUT, amount=100, phone_number="254708374149"),
    )
    transaction.refresh_from_db()
    assert transaction.status == "pending"
    assert transaction.needs_review is True
    assert "amount" in transaction.review_reason
    assert CallbackEvent.objects.get(transaction=transaction).outcome == "rejected"
    assert signals == []


def test_unknown_token_is_404_and_nothing_is_stored(client):
    response = client.post(CALLBACK_PATH.format("x" * 48), "{}", content_type="application/json")
    assert response.status_code == 404
    assert CallbackEvent.objects.count() == 0


def test_a_body_that_is_not_json_is_stored_with_its_error_and_acknowledged(
    api, post_callback, daraja, push_body
):
    transaction = start_push(api, daraja, push_body)
    ack = post_callback(transaction, b"<xml>not json</xml>")
    assert ack["ResultCode"] == 0
    event = CallbackEvent.objects.get(token=transaction.callback_token)
    assert event.body == "<xml>not json</xml>"
    assert event.outcome == "error"
    assert "JSON" in event.error or "json" in event.error
    transaction.refresh_from_db()
    assert transaction.status == "pending"


def test_a_callback_after_a_query_success_adds_the_receipt_and_says_paid_once(
    api, post_callback, daraja, push_body, signals
):
    transaction = start_push(api, daraja, push_body)
    Transaction.objects.filter(pk=transaction.pk).update(status="awaiting_receipt", result_code="0")

    post_callback(
        transaction,
        stk_callback(checkout_request_id=CHECKOUT, amount=1, phone_number="254708374149"),
    )

    transaction.refresh_from_db()
    assert transaction.status == "success"
    assert transaction.mpesa_receipt_number == "NLJ7RT61SV"
    assert CallbackEvent.objects.get(transaction=transaction).outcome == "processed"
    assert signals == [("succeeded", transaction.pk, "success")]


def test_a_mismatched_callback_after_a_query_success_flags_the_payment(
    api, post_callback, daraja, push_body
):
    transaction = start_push(api, daraja, push_body)
    Transaction.objects.filter(pk=transaction.pk).update(status="awaiting_receipt", result_code="0")

    post_callback(transaction, stk_callback(checkout_request_id=CHECKOUT, amount=999))

    transaction.refresh_from_db()
    assert transaction.needs_review is True
    assert transaction.mpesa_receipt_number == ""

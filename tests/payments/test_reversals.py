"""Refunds with Daraja's reversal API: full or partial, never more than the payment."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from payments.enums import TransactionType
from payments.models import CallbackEvent, Transaction

from .conftest import api_client_for, load_fixture
from .money_out import (
    REVERSAL_URL,
    REVERSE_PATH,
    accept,
    addressed_to,
    new_key,
    paid_transaction,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

SUCCESS = "reversal/reversal_result_success.portal.json"
FAILURE = "reversal/reversal_result_failure_R000002.portal.json"
INVALID_TRANSACTION_ID = "errors/error_400.002.02_invalid_transactionid_reversal.portal.json"


@pytest.fixture
def refunder(django_user_model):
    return staff_user_with(django_user_model, "refunder", "refund")


@pytest.fixture
def api(refunder) -> APIClient:
    return api_client_for(refunder)


@pytest.fixture
def payment() -> Transaction:
    return paid_transaction(amount=100, receipt="NLJ7RT61SV")


def reverse(api, daraja, payment: Transaction, amount: int | None = None) -> Transaction:
    """An accepted reversal of ``payment``, as the API answered it."""
    accept(daraja, REVERSAL_URL)
    body = {"transaction": str(payment.pk), "remarks": "Duplicate payment"}
    if amount is not None:
        body["amount"] = amount
    response = api.post(REVERSE_PATH, body, format="json", **new_key())
    assert response.status_code == 202, response.content
    return Transaction.objects.get(pk=response.json()["id"])


def settle(post_result, reversal: Transaction, fixture: str = SUCCESS) -> None:
    body = addressed_to(fixture, reversal)
    if fixture == SUCCESS:
        body = addressed_to(fixture, reversal, Amount=reversal.amount)
    assert post_result("reversal", reversal.callback_token, body).status_code == 200


def test_reversal_request_names_the_receipt_amount_and_our_shortcode(api, daraja, payment):
    accept(daraja, REVERSAL_URL)

    response = api.post(
        REVERSE_PATH,
        {"transaction": str(payment.pk), "amount": 40, "remarks": "Refund"},
        format="json",
        **new_key(),
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["transaction_type"], body["status"], body["amount"]) == ("REVERSAL", "pending", 40)
    assert body["original"] == str(payment.pk)
    reversal = Transaction.objects.get(pk=body["id"])
    assert (reversal.original_id, reversal.phone_number) == (payment.pk, "254708374149")
    assert reversal.conversation_id.startswith("AG_")
    (request,) = sent(daraja, REVERSAL_URL)
    assert request["TransactionID"] == "NLJ7RT61SV"
    assert request["Amount"] == 40
    assert request["RecieverIdentifierType"] == "11"
    assert request["ReceiverParty"] == 174379
    assert request["CommandID"] == "TransactionReversal"
    assert request["Initiator"] == "testapi"
    assert request["Remarks"] == "Refund"
    callbacks = (
        f"https://pay.example.co.ke/api/v1/payments/callbacks/reversal/{reversal.callback_token}"
    )
    assert request["ResultURL"] == f"{callbacks}/result"
    assert request["QueueTimeOutURL"] == f"{callbacks}/timeout"


def test_payment_is_found_by_its_receipt_number(api, daraja, payment):
    accept(daraja, REVERSAL_URL)

    response = api.post(REVERSE_PATH, {"transaction": "nlj7rt61sv"}, format="json", **new_key())

    assert response.status_code == 202, response.content
    assert response.json()["original"] == str(payment.pk)
    assert response.json()["amount"] == 100


def test_a_c2b_payment_can_be_refunded(api, daraja):
    c2b = paid_transaction(transaction_type=TransactionType.C2B, receipt="RKTQDM7W6S", amount=50)
    accept(daraja, REVERSAL_URL)

    response = api.post(REVERSE_PATH, {"transaction": "RKTQDM7W6S"}, format="json", **new_key())

    assert response.status_code == 202, response.content
    assert response.json()["original"] == str(c2b.pk)
    assert sent(daraja, REVERSAL_URL)[0]["TransactionID"] == "RKTQDM7W6S"


def test_partial_then_full_reversal_adds_up_to_the_payment(
    api, daraja, payment, post_result, money_signals
):
    first = reverse(api, daraja, payment, amount=30)
    settle(post_result, first)

    payment.refresh_from_db()
    first.refresh_from_db()
    assert (first.status, first.mpesa_receipt_number) == ("success", "SKE52PAWR9")
    assert (payment.reversed_amount, payment.status) == (30, "success")

    rest = reverse(api, daraja, payment)
    assert rest.amount == 70
    assert [r["Amount"] for r in sent(daraja, REVERSAL_URL)] == [30, 70]
    settle(post_result, rest)

    payment.refresh_from_db()
    assert (payment.reversed_amount, payment.status) == (100, "reversed")
    assert [
        (name, kw["transaction"].pk, kw["original"].pk, kw["original"].reversed_amount)
        for name, kw in money_signals
    ] == [
        ("reversal_completed", first.pk, payment.pk, 30),
        ("reversal_completed", rest.pk, payment.pk, 100),
    ]


def test_refund_above_what_is_left_is_refused_while_a_reversal_is_pending(api, daraja, payment):
    reverse(api, daraja, payment, amount=60)

    response = api.post(
        REVERSE_PATH, {"transaction": str(payment.pk), "amount": 60}, format="json", **new_key()
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["amount"]
    assert "40" in response.json()["errors"]["amount"][0]
    assert len(sent(daraja, REVERSAL_URL)) == 1
    assert payment.reversals.count() == 1


def test_a_reversal_of_unknown_fate_still_holds_its_amount(api, daraja, payment, post_result):
    reversal = reverse(api, daraja, payment, amount=60)
    timeout = addressed_to(FAILURE, reversal)
    post_result("reversal", reversal.callback_token, timeout, "timeout")
    reversal.refresh_from_db()
    assert reversal.status == "unknown"

    response = api.post(
        REVERSE_PATH, {"transaction": str(payment.pk), "amount": 41}, format="json", **new_key()
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["amount"]


def test_fully_reversed_payment_cannot_be_refunded_again(api, daraja, payment, post_result):
    settle(post_result, reverse(api, daraja, payment))

    response = api.post(
        REVERSE_PATH, {"transaction": str(payment.pk), "amount": 1}, format="json", **new_key()
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["transaction"]
    assert len(sent(daraja, REVERSAL_URL)) == 1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: paid_transaction(status="failed"), id="failed STK payment"),
        pytest.param(
            lambda: paid_transaction(transaction_type=TransactionType.B2C), id="B2C payout"
        ),
        pytest.param(lambda: paid_transaction(receipt=""), id="success without receipt"),
        pytest.param(lambda: uuid.uuid4(), id="unknown id"),
        pytest.param(lambda: "QWERTY1234", id="unknown receipt"),
    ],
)
def test_only_successful_stk_or_c2b_payments_with_a_receipt_can_be_refunded(api, daraja, make):
    accept(daraja, REVERSAL_URL)
    made = make()
    ref = str(made.pk) if isinstance(made, Transaction) else str(made)

    response = api.post(REVERSE_PATH, {"transaction": ref}, format="json", **new_key())

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["transaction"]
    assert not sent(daraja, REVERSAL_URL)
    assert not Transaction.objects.filter(transaction_type=TransactionType.REVERSAL).exists()


def test_failed_reversal_leaves_the_payment_untouched_and_frees_the_amount(
    api, daraja, payment, post_result, money_signals
):
    reversal = reverse(api, daraja, payment, amount=100)

    settle(post_result, reversal, FAILURE)

    reversal.refresh_from_db()
    payment.refresh_from_db()
    assert (reversal.status, reversal.result_code) == ("failed", "R000002")
    assert (payment.status, payment.reversed_amount) == ("success", 0)
    assert [(name, kw["transaction"].pk, kw["original"].pk) for name, kw in money_signals] == [
        ("reversal_failed", reversal.pk, payment.pk)
    ]
    again = reverse(api, daraja, payment)
    assert again.amount == 100


def test_daraja_refusal_answers_502_and_frees_the_amount(api, daraja, payment):
    # responses answers a URL's registrations in turn: the refusal first, then acceptance.
    daraja.post(REVERSAL_URL, status=400, json=load_fixture(INVALID_TRANSACTION_ID))
    accept(daraja, REVERSAL_URL)

    response = api.post(REVERSE_PATH, {"transaction": str(payment.pk)}, format="json", **new_key())

    assert response.status_code == 502, response.content
    assert response.json()["code"] == load_fixture(INVALID_TRANSACTION_ID)["errorCode"]
    assert response.json()["transaction"]["status"] == "failed"
    again = api.post(REVERSE_PATH, {"transaction": str(payment.pk)}, format="json", **new_key())
    assert again.status_code == 202, again.content
    assert again.json()["amount"] == 100


def test_the_same_reversal_result_twice_counts_once(api, daraja, payment, post_result):
    reversal = reverse(api, daraja, payment, amount=30)

    settle(post_result, reversal)
    settle(post_result, reversal)

    payment.refresh_from_db()
    assert payment.reversed_amount == 30
    outcomes = list(
        CallbackEvent.objects.filter(transaction=reversal)
        .order_by("received_at", "pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["processed", "duplicate"]


def test_reversal_result_naming_another_requests_ids_is_rejected_and_flagged(
    api, daraja, payment, post_result
):
    reversal = reverse(api, daraja, payment, amount=30)

    post_result("reversal", reversal.callback_token, load_fixture(SUCCESS))

    reversal.refresh_from_db()
    payment.refresh_from_db()
    assert (reversal.status, reversal.needs_review) == ("pending", True)
    assert payment.reversed_amount == 0
    assert CallbackEvent.objects.get(transaction=reversal).outcome == "rejected"


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("customer", 403), ("staff without refund", 403), ("refunder", 202)],
)
def test_only_staff_holding_refund_may_refund(
    who, expected, daraja, payment, user, refunder, django_user_model
):
    accept(daraja, REVERSAL_URL)
    payer = staff_user_with(django_user_model, "payer", "pay_out", "view_balance")
    clients = {
        "anonymous": APIClient(),
        "customer": api_client_for(user),
        "staff without refund": api_client_for(payer),
        "refunder": api_client_for(refunder),
    }

    response = clients[who].post(
        REVERSE_PATH, {"transaction": str(payment.pk)}, format="json", **new_key()
    )

    assert response.status_code == expected, response.content
    assert len(sent(daraja, REVERSAL_URL)) == (1 if expected == 202 else 0)


def test_a_refund_with_an_idempotency_key_is_answered_and_replayed(api, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100)
    body = {"transaction": str(payment.pk), "amount": 40}
    headers = {"HTTP_IDEMPOTENCY_KEY": "refund-k1"}

    first = api.post(REVERSE_PATH, body, format="json", **headers)
    again = api.post(REVERSE_PATH, body, format="json", **headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["original"] == str(payment.pk)
    assert len(sent(daraja, REVERSAL_URL)) == 1

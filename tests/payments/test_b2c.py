"""B2C payouts through the API: sent once, settled by Daraja's result or by Transaction Status."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from payments.daraja.dates import NAIROBI
from payments.models import CallbackEvent, DarajaInquiry, Transaction

from .conftest import api_client_for, load_fixture
from .money_out import (
    B2C_PATH,
    B2C_URL,
    REFRESH_PATH,
    STATUS_URL,
    accept,
    addressed_to,
    new_key,
    result_body,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

SUCCESS = "b2c/b2c_result_success.portal.json"
FAILURE_2001 = "b2c/b2c_result_failure_2001.portal.json"
STATUS_SUCCESS = "transaction_status/transaction_status_result_success.portal.json"
DUPLICATE_ID = "errors/error_500.002.1001_duplicate_originatorconversationid.portal.json"


@pytest.fixture
def payer(django_user_model):
    return staff_user_with(django_user_model, "payer", "pay_out", "query_status")


@pytest.fixture
def api(payer) -> APIClient:
    return api_client_for(payer)


@pytest.fixture
def clerk(django_user_model):
    """Staff who may look things up, without the right to pay out."""
    return staff_user_with(django_user_model, "clerk-no-payout", "refund", "view_balance")


def payout(**overrides) -> dict:
    return {
        "phone_number": "0708374149",
        "amount": 10,
        "remarks": "Refund order 42",
        "occasion": "Refund",
        **overrides,
    }


def pay_out(api, daraja, **overrides) -> Transaction:
    """An accepted payout, as the API answered it."""
    accept(daraja, B2C_URL)
    response = api.post(B2C_PATH, payout(**overrides), format="json", **new_key())
    assert response.status_code == 202, response.content
    return Transaction.objects.get(pk=response.json()["id"])


def test_accepted_payout_is_pending_and_carries_our_originator_conversation_id(api, daraja):
    accept(daraja, B2C_URL)

    response = api.post(B2C_PATH, payout(), format="json", **new_key())

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["transaction_type"], body["amount"]) == ("pending", "B2C", 10)
    transaction = Transaction.objects.get(pk=body["id"])
    assert transaction.originator_conversation_id == f"b2c-{transaction.pk}"
    assert transaction.conversation_id.startswith("AG_20240706_")
    (request,) = sent(daraja, B2C_URL)
    assert request["OriginatorConversationID"] == f"b2c-{transaction.pk}"
    assert request["CommandID"] == "BusinessPayment"
    assert request["InitiatorName"] == "testapi"
    assert request["SecurityCredential"] == "test-security-credential-value"
    assert (request["Amount"], request["PartyA"], request["PartyB"]) == (10, 600992, 254708374149)
    assert request["Remarks"] == "Refund order 42"
    callbacks = (
        f"https://pay.example.co.ke/api/v1/payments/callbacks/b2c/{transaction.callback_token}"
    )
    assert request["ResultURL"] == f"{callbacks}/result"
    assert request["QueueTimeOutURL"] == f"{callbacks}/timeout"


@pytest.mark.parametrize("command_id", ["SalaryPayment", "PromotionPayment"])
def test_payout_sends_the_command_id_asked_for(api, daraja, command_id):
    transaction = pay_out(api, daraja, command_id=command_id)

    assert sent(daraja, B2C_URL)[0]["CommandID"] == command_id
    assert transaction.command_id == command_id


def test_success_result_settles_payout_with_receipt_recipient_time_and_balances(
    api, daraja, post_result, money_signals
):
    transaction = pay_out(api, daraja)

    response = post_result("b2c", transaction.callback_token, addressed_to(SUCCESS, transaction))

    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    transaction.refresh_from_db()
    assert transaction.status == "success"
    assert (transaction.result_code, transaction.mpesa_receipt_number) == ("0", "SG632NMUAB")
    # The portal sample names the recipient "254705912645 - NICHOLAS JOHN SONGOK": we keep
    # the name, not the number.
    assert transaction.counterparty_name == "NICHOLAS JOHN SONGOK"
    assert transaction.transaction_date == dt.datetime(2024, 7, 6, 22, 48, 52, tzinfo=NAIROBI)
    reported = transaction.metadata["result"]
    # JSON numbers: 8959269.60 arrives as 8959269.6; compare the amounts, not the text.
    assert Decimal(reported["utility_account_balance"]) == Decimal("8959269.60")
    assert Decimal(reported["working_account_balance"]) == Decimal("1199371.00")
    assert Decimal(reported["charges_paid_account_balance"]) == Decimal("-1980.00")
    assert reported["recipient_is_registered"] is True
    assert [(name, kw["transaction"].pk) for name, kw in money_signals] == [
        ("payout_completed", transaction.pk)
    ]


def test_success_result_keeps_the_recipient_name_without_the_number(api, daraja, post_result):
    transaction = pay_out(api, daraja)
    body = addressed_to(SUCCESS, transaction, ReceiverPartyPublicName="254708374149 - John Doe")

    post_result("b2c", transaction.callback_token, body)

    transaction.refresh_from_db()
    assert transaction.counterparty_name == "John Doe"


def test_failure_result_2001_fails_payout_and_signals_payout_failed(
    api, daraja, post_result, money_signals
):
    transaction = pay_out(api, daraja)

    post_result("b2c", transaction.callback_token, addressed_to(FAILURE_2001, transaction))

    transaction.refresh_from_db()
    assert (transaction.status, transaction.result_code) == ("failed", "2001")
    assert transaction.mpesa_receipt_number == ""
    assert [(name, kw["transaction"].pk) for name, kw in money_signals] == [
        ("payout_failed", transaction.pk)
    ]


def test_insufficient_funds_result_fails_payout(api, daraja, post_result):
    transaction = pay_out(api, daraja)
    body = addressed_to(
        FAILURE_2001,
        transaction,
        result__ResultCode=1,
        result__ResultDesc="The balance is insufficient for the transaction.",
    )

    post_result("b2c", transaction.callback_token, body)

    transaction.refresh_from_db()
    assert (transaction.status, transaction.result_code) == ("failed", "1")


def test_queue_timeout_leaves_payout_unknown_until_transaction_status_settles_it(
    api, daraja, post_result, money_signals
):
    transaction = pay_out(api, daraja, amount=300)

    # Any Result envelope: Safaricom does not document the timeout body.
    timeout = addressed_to(FAILURE_2001, transaction)
    assert post_result("b2c", transaction.callback_token, timeout, "timeout").status_code == 200
    transaction.refresh_from_db()
    assert transaction.status == "unknown"
    assert not transaction.is_final

    accept(daraja, STATUS_URL)
    response = api.post(REFRESH_PATH.format(transaction.pk))

    assert response.status_code == 202, response.content
    inquiry = DarajaInquiry.objects.get(pk=response.json()["inquiry"]["id"])
    assert (inquiry.kind, inquiry.status, inquiry.transaction_id) == (
        "status",
        "pending",
        transaction.pk,
    )
    (query,) = sent(daraja, STATUS_URL)
    assert query["OriginalConversationID"] == f"b2c-{transaction.pk}"
    assert query["CommandID"] == "TransactionStatusQuery"
    assert query["PartyA"] == 600992
    assert "TransactionID" not in query
    assert len(sent(daraja, B2C_URL)) == 1  # never re-sent

    status = result_body(
        STATUS_SUCCESS,
        originator_conversation_id=inquiry.originator_conversation_id,
        conversation_id=inquiry.conversation_id,
        OriginatorConversationID=transaction.originator_conversation_id,
        ConversationID=transaction.conversation_id,
        Amount="300",
    )
    assert post_result("status", inquiry.token, status).status_code == 200

    transaction.refresh_from_db()
    assert transaction.status == "success"
    assert transaction.mpesa_receipt_number == "MBN31H462N"
    assert transaction.counterparty_name == "John Doe"
    assert transaction.transaction_date == dt.datetime(2018, 2, 23, 5, 41, 12, tzinfo=NAIROBI)
    inquiry.refresh_from_db()
    assert inquiry.status == "completed"
    assert [(name, kw["transaction"].pk) for name, kw in money_signals] == [
        ("payout_completed", transaction.pk)
    ]


def test_payout_whose_request_timed_out_is_unknown_and_never_sent_twice(api, daraja):
    daraja.post(B2C_URL, body=requests.ReadTimeout("read timed out"))
    headers = {"HTTP_IDEMPOTENCY_KEY": "payout-42"}

    first = api.post(B2C_PATH, payout(), format="json", **headers)
    again = api.post(B2C_PATH, payout(), format="json", **headers)

    assert first.status_code == 202, first.content
    assert first.json()["status"] == "unknown"
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert len(sent(daraja, B2C_URL)) == 1
    (transaction,) = Transaction.objects.all()
    assert transaction.status == "unknown"
    assert transaction.metadata["request_error"]["error"] == "DarajaConnectionError"


def test_payout_answered_with_503_is_unknown_and_not_retried(api, daraja):
    daraja.post(B2C_URL, status=503, body="Service Unavailable")

    response = api.post(B2C_PATH, payout(), format="json", **new_key())

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "unknown"
    assert len(sent(daraja, B2C_URL)) == 1
    assert Transaction.objects.get().status == "unknown"


def test_daraja_refusal_answers_502_with_its_code_and_fails_payout(api, daraja):
    refusal = {
        "requestId": "r-1",
        "errorCode": "400.002.02",
        "errorMessage": "Bad Request - Invalid PartyB",
    }
    daraja.post(B2C_URL, status=400, json=refusal)

    response = api.post(B2C_PATH, payout(), format="json", **new_key())

    assert response.status_code == 502, response.content
    body = response.json()
    assert body["code"] == "400.002.02"
    assert body["detail"] == "Bad Request - Invalid PartyB"
    assert body["transaction"]["status"] == "failed"
    transaction = Transaction.objects.get()
    assert (transaction.status, transaction.result_code) == ("failed", "400.002.02")
    assert len(sent(daraja, B2C_URL)) == 1


def test_a_duplicate_originator_conversation_id_leaves_the_payout_unknown(api, daraja):
    # We send each id once: Daraja having seen it means an earlier copy arrived and may pay.
    daraja.post(B2C_URL, status=500, json=load_fixture(DUPLICATE_ID))

    response = api.post(B2C_PATH, payout(), format="json", **new_key())

    assert response.status_code == 202, response.content
    assert Transaction.objects.get().status == "unknown"
    assert len(sent(daraja, B2C_URL)) == 1


@pytest.mark.parametrize("amount", [9, 250_001])
def test_amount_outside_the_limits_is_refused_naming_amount(api, daraja, amount):
    response = api.post(B2C_PATH, payout(amount=amount), format="json", **new_key())

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["amount"]
    assert not sent(daraja, B2C_URL)
    assert not Transaction.objects.exists()


@override_settings(PAYMENTS={**settings.PAYMENTS, "B2C_DAILY_LIMIT": 100})
def test_daily_cap_refuses_a_payout_that_would_pass_it(api, daraja):
    pay_out(api, daraja, amount=60)

    response = api.post(B2C_PATH, payout(amount=50), format="json", **new_key())

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["amount"]
    assert "40 left today" in response.json()["errors"]["amount"][0]
    assert len(sent(daraja, B2C_URL)) == 1
    assert Transaction.objects.count() == 1


@override_settings(PAYMENTS={**settings.PAYMENTS, "B2C_DAILY_LIMIT": 100})
def test_failed_payouts_do_not_count_toward_the_daily_cap(api, daraja, post_result):
    transaction = pay_out(api, daraja, amount=60)
    post_result("b2c", transaction.callback_token, addressed_to(FAILURE_2001, transaction))

    response = api.post(B2C_PATH, payout(amount=100), format="json", **new_key())

    assert response.status_code == 202, response.content
    assert len(sent(daraja, B2C_URL)) == 2


@override_settings(PAYMENTS={**settings.PAYMENTS, "B2C_DAILY_LIMIT": 100})
def test_payouts_of_unknown_fate_count_toward_the_daily_cap(api, daraja):
    daraja.post(B2C_URL, body=requests.ReadTimeout("read timed out"))
    first = api.post(B2C_PATH, payout(amount=60), format="json", **new_key())
    assert first.json()["status"] == "unknown"

    response = api.post(B2C_PATH, payout(amount=50), format="json", **new_key())

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["amount"]
    assert len(sent(daraja, B2C_URL)) == 1


@pytest.mark.parametrize("phone_number", ["0708", "255708374149", "not a phone"])
def test_bad_phone_number_is_refused_naming_phone_number(api, daraja, phone_number):
    response = api.post(B2C_PATH, payout(phone_number=phone_number), format="json", **new_key())

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["phone_number"]
    assert not sent(daraja, B2C_URL)


def test_unknown_command_id_is_refused(api, daraja):
    response = api.post(
        B2C_PATH, payout(command_id="CustomerPayBillOnline"), format="json", **new_key()
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["command_id"]
    assert not sent(daraja, B2C_URL)


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("customer", 403), ("staff without pay_out", 403), ("payer", 202)],
)
def test_only_staff_holding_pay_out_may_pay_out(who, expected, daraja, user, clerk, payer):
    accept(daraja, B2C_URL)
    clients = {
        "anonymous": APIClient(),
        "customer": api_client_for(user),
        "staff without pay_out": api_client_for(clerk),
        "payer": api_client_for(payer),
    }

    response = clients[who].post(B2C_PATH, payout(), format="json", **new_key())

    assert response.status_code == expected, response.content
    assert len(sent(daraja, B2C_URL)) == (1 if expected == 202 else 0)


# --- Result callbacks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "b2c/{}/result",
        "b2c/{}/timeout",
        "reversal/{}/result",
        "reversal/{}/timeout",
        "balance/{}/result",
        "balance/{}/timeout",
        "status/{}/result",
        "status/{}/timeout",
    ],
)
def test_result_for_an_unknown_token_is_404_and_stores_nothing(client, path):
    token = uuid.uuid4().hex

    response = client.post(
        f"/api/v1/payments/callbacks/{path.format(token)}",
        load_fixture(SUCCESS),
        content_type="application/json",
    )

    assert response.status_code == 404
    assert not CallbackEvent.objects.exists()


def test_the_same_result_twice_changes_state_once(api, daraja, post_result, money_signals):
    transaction = pay_out(api, daraja)
    body = addressed_to(SUCCESS, transaction)

    post_result("b2c", transaction.callback_token, body)
    post_result("b2c", transaction.callback_token, body)

    transaction.refresh_from_db()
    assert transaction.status == "success"
    assert not transaction.needs_review
    outcomes = list(
        CallbackEvent.objects.filter(transaction=transaction)
        .order_by("received_at", "pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["processed", "duplicate"]
    assert [name for name, _ in money_signals] == ["payout_completed"]


def test_a_contradicting_second_result_changes_nothing_and_flags_for_review(
    api, daraja, post_result, money_signals
):
    transaction = pay_out(api, daraja)
    post_result("b2c", transaction.callback_token, addressed_to(SUCCESS, transaction))

    post_result("b2c", transaction.callback_token, addressed_to(FAILURE_2001, transaction))

    transaction.refresh_from_db()
    assert (transaction.status, transaction.needs_review) == ("success", True)
    assert [name for name, _ in money_signals] == ["payout_completed"]


def test_result_naming_another_requests_ids_is_rejected_and_flagged(
    api, daraja, post_result, money_signals
):
    transaction = pay_out(api, daraja)
    # The sample as published: its ids are someone else's request.
    post_result("b2c", transaction.callback_token, load_fixture(SUCCESS))

    transaction.refresh_from_db()
    assert (transaction.status, transaction.needs_review) == ("pending", True)
    assert "conversation ids" in transaction.review_reason
    event = CallbackEvent.objects.get(transaction=transaction)
    assert event.outcome == "rejected"
    assert not money_signals


def test_success_result_for_another_amount_is_rejected_and_flagged(api, daraja, post_result):
    transaction = pay_out(api, daraja, amount=10)
    body = addressed_to(SUCCESS, transaction, TransactionAmount=1000)

    post_result("b2c", transaction.callback_token, body)

    transaction.refresh_from_db()
    assert (transaction.status, transaction.needs_review) == ("pending", True)
    assert CallbackEvent.objects.get(transaction=transaction).outcome == "rejected"


def test_a_success_result_without_an_amount_is_not_a_payout(api, daraja, post_result):
    transaction = pay_out(api, daraja)
    body = addressed_to(SUCCESS, transaction)
    parameters = body["Result"]["ResultParameters"]["ResultParameter"]
    body["Result"]["ResultParameters"]["ResultParameter"] = [
        p for p in parameters if p["Key"] != "TransactionAmount"
    ]

    post_result("b2c", transaction.callback_token, body)

    transaction.refresh_from_db()
    assert transaction.status == "pending"
    assert transaction.needs_review is True

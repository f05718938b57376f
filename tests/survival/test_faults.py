"""Injected faults: every outbound Daraja call failing every way it can (issue 10, Build 3),
and what reconciliation then settles (Found 9).

Daraja is mocked at the HTTP layer with ``responses``; a connection error is a ``body``
exception, as requests would raise it.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import requests
from django.db.models import F
from django.utils import timezone

from payments.models import DarajaInquiry, Transaction
from payments.services.reconcile import transactions_reconcile
from tests.payments.conftest import api_client_for
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    STATUS_URL,
    accept,
    addressed_to,
    new_key,
    paid_transaction,
    result_body,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

STATUS_SUCCESS = "transaction_status/transaction_status_result_success.portal.json"
# What Daraja's sandbox answered a Transaction Status query about a receipt it does not know
# (reported: numeric code, ResultType 0, no ResultParameters; see payments/services/inquiries.py).
NOT_FOUND_CODE = 2032
NOT_FOUND_DESC = "The transaction receipt number does not exist."
PAYOUT = {
    "phone_number": "0708374149",
    "amount": 100,
    "command_id": "BusinessPayment",
    "remarks": "Supplier invoice 17",
}


@pytest.fixture
def manager(django_user_model):
    return staff_user_with(django_user_model, "manager-faults", "pay_out", "refund")


def age(transaction: Transaction, seconds: float) -> None:
    Transaction.objects.filter(pk=transaction.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def time_passes(transaction: Transaction, seconds: float) -> None:
    """Move the row's clock marks ``seconds`` into the past, as if that much time went by."""
    shift = timedelta(seconds=seconds)
    Transaction.objects.filter(pk=transaction.pk).update(
        created_at=F("created_at") - shift, last_queried_at=F("last_queried_at") - shift
    )


def status_answer(inquiry: DarajaInquiry, *, code=NOT_FOUND_CODE, desc=NOT_FOUND_DESC) -> dict:
    """Transaction Status's result for ``inquiry``: by default, "no such transaction"."""
    body = result_body(
        STATUS_SUCCESS,
        originator_conversation_id=inquiry.originator_conversation_id,
        conversation_id=inquiry.conversation_id,
        result__ResultCode=code,
        result__ResultDesc=desc,
    )
    body = copy.deepcopy(body)
    del body["Result"]["ResultParameters"]
    return body


def lost_payout(manager, daraja) -> Transaction:
    """A payout whose request never reached Daraja: the connection dropped, so it is unknown."""
    daraja.post(B2C_URL, body=requests.ReadTimeout("read timed out"))
    response = api_client_for(manager).post(B2C_PATH, PAYOUT, format="json", **new_key())
    assert response.status_code == 202, response.content
    payout = Transaction.objects.get(transaction_type="B2C")
    assert payout.status == "unknown"
    return payout


def reconcile_with_status_answer(daraja, post_result, payout, **answer) -> DarajaInquiry:
    accept(daraja, STATUS_URL)
    report = transactions_reconcile(older_than=0, sleep=lambda seconds: None)
    assert report.status_queries == 1, report.lines
    inquiry = DarajaInquiry.objects.get(transaction=payout)
    assert post_result("status", inquiry.token, status_answer(inquiry, **answer)).status_code == 200
    payout.refresh_from_db()
    return inquiry


def test_found_09_a_payout_that_never_reached_daraja_fails_after_the_grace_period(
    daraja, manager, post_result, money_signals
):
    payout = lost_payout(manager, daraja)
    age(payout, 2 * 24 * 60 * 60)

    reconcile_with_status_answer(daraja, post_result, payout)

    assert (payout.status, payout.needs_review) == ("failed", False)
    assert payout.result_code == str(NOT_FOUND_CODE)
    assert "does not exist" in payout.result_desc
    assert [name for name, _ in money_signals] == ["payout_failed"]
    assert len(sent(daraja, B2C_URL)) == 1


def test_found_09_asked_before_the_grace_period_it_stays_unknown_and_is_asked_again_after(
    daraja, manager, post_result, money_signals, settings
):
    settings.PAYMENTS = {**settings.PAYMENTS, "STATUS_NOT_FOUND_GRACE": 3600}
    payout = lost_payout(manager, daraja)
    age(payout, 600)

    reconcile_with_status_answer(daraja, post_result, payout)
    soon = transactions_reconcile(older_than=0)
    time_passes(payout, 3000)
    later = transactions_reconcile(older_than=0)

    assert (payout.status, payout.needs_review) == ("unknown", False)
    assert not money_signals
    assert (soon.claimed, later.claimed) == (0, 1)  # no question wasted inside the grace


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        pytest.param("pending", {}, id="acknowledged-by-daraja"),
        pytest.param("unknown", {"code": 2001, "desc": "The initiator information is invalid."}),
        pytest.param("unknown", {"code": 17, "desc": "Internal failure"}, id="other-code"),
    ],
)
def test_other_answers_about_a_payout_are_left_to_a_person(
    daraja, manager, post_result, money_signals, status, answer
):
    payout = lost_payout(manager, daraja)
    Transaction.objects.filter(pk=payout.pk).update(status=status)
    age(payout, 2 * 24 * 60 * 60)

    reconcile_with_status_answer(daraja, post_result, payout, **answer)

    assert (payout.status, payout.needs_review) == (status, True)
    assert "Transaction Status answered" in payout.review_reason
    assert not money_signals


def test_found_09_a_refund_lost_in_darajas_queue_fails_and_frees_its_amount(
    daraja, manager, post_result, money_signals
):
    payment = paid_transaction(amount=100)
    accept(daraja, REVERSAL_URL)
    refund = {"transaction": str(payment.pk), "remarks": "Refund"}
    api = api_client_for(manager)
    assert api.post(REVERSE_PATH, refund, format="json", **new_key()).status_code == 202
    reversal = Transaction.objects.get(transaction_type="REVERSAL")
    timeout = addressed_to("reversal/reversal_result_failure_R000002.portal.json", reversal)
    assert post_result("reversal", reversal.callback_token, timeout, "timeout").status_code == 200
    reversal.refresh_from_db()
    assert reversal.status == "unknown"
    age(reversal, 2 * 60 * 60)

    reconcile_with_status_answer(daraja, post_result, reversal)

    assert (reversal.status, reversal.result_code) == ("failed", str(NOT_FOUND_CODE))
    assert [name for name, _ in money_signals] == ["reversal_failed"]
    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == ("success", 0)
    again = api.post(REVERSE_PATH, refund, format="json", **new_key())
    assert again.status_code == 202, again.content  # the whole amount can be refunded again
    assert len(sent(daraja, REVERSAL_URL)) == 2

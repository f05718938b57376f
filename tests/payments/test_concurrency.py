"""Races between real database connections: one settlement per payment, one query per interval.

PostgreSQL only: SQLite serialises writers on the whole file, so its row locks prove nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from payments.models import CallbackEvent
from payments.services.background import background_wait
from payments.signals import payment_failed, payment_succeeded
from tests.concurrency import POSTGRESQL_ONLY, run_together

from .conftest import (
    CALLBACK_PATH,
    STATUS_PATH,
    STK_QUERY_URL,
    calls_to,
    load_fixture,
    stk_callback,
    stk_transaction,
)

pytestmark = POSTGRESQL_ONLY

CHECKOUT = "ws_CO_191220191020363925"
ACKNOWLEDGEMENT = {"ResultCode": 0, "ResultDesc": "Accepted"}


@pytest.fixture
def signals():
    received: list[tuple[str, Any, str]] = []
    lock = threading.Lock()

    def record(name: str):
        def receiver(sender, transaction, **kwargs):
            with lock:
                received.append((name, transaction.pk, transaction.status))

        return receiver

    succeeded, failed = record("succeeded"), record("failed")
    payment_succeeded.connect(succeeded)
    payment_failed.connect(failed)
    yield received
    payment_succeeded.disconnect(succeeded)
    payment_failed.disconnect(failed)


def test_twenty_copies_of_one_success_callback_settle_the_payment_once(signals):
    transaction = stk_transaction(checkout_request_id=CHECKOUT)
    body = json.dumps(
        stk_callback(checkout_request_id=CHECKOUT, amount=1, phone_number="254708374149")
    )
    url = CALLBACK_PATH.format(transaction.callback_token)

    def post_callback(_: int) -> tuple[int, dict]:
        response = Client().post(url, body, content_type="application/json")
        return response.status_code, response.json()

    answers = run_together(20, post_callback)

    assert answers == [(200, ACKNOWLEDGEMENT)] * 20
    events = CallbackEvent.objects.filter(token=transaction.callback_token)
    assert events.count() == 20
    outcomes = list(events.values_list("outcome", flat=True))
    assert sorted(outcomes) == ["duplicate"] * 19 + ["processed"]
    assert events.filter(transaction=transaction).count() == 20
    transaction.refresh_from_db()
    assert transaction.status == "success"
    assert transaction.mpesa_receipt_number == "NLJ7RT61SV"
    assert transaction.needs_review is False
    assert signals == [("succeeded", transaction.pk, "success")]


def test_ten_simultaneous_polls_of_a_stale_push_query_daraja_once(user, daraja):
    transaction = stk_transaction(checkout_request_id=CHECKOUT, user=user, age_seconds=60)
    token = Token.objects.create(user=user).key
    answered = threading.Condition()
    finished: list[int] = []
    others_finished_during_query: list[bool] = []

    def stk_query_answer(request):
        # Daraja answers only once every poll is done, so the winner's query is still running
        # when the others decide: any of them that also asked would be counted below. No poll
        # waits for the query, the winner's included.
        with answered:
            others_finished_during_query.append(
                answered.wait_for(lambda: len(finished) >= 10, timeout=10)
            )
        body = load_fixture("stk/stk_query_response_cancelled_1032.2017.php-mpesa.json")
        return 200, {}, json.dumps(body)

    daraja.add_callback(
        "POST", STK_QUERY_URL, callback=stk_query_answer, content_type="application/json"
    )

    def poll(index: int) -> tuple[int, str]:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = api.get(STATUS_PATH.format(CHECKOUT))
        with answered:
            finished.append(index)
            answered.notify_all()
        return response.status_code, response.json()["status"]

    answers = run_together(10, poll)
    assert background_wait(timeout=10)

    assert len(calls_to(daraja, STK_QUERY_URL)) == 1
    assert others_finished_during_query == [True]
    # Every poll answers from the database; the query settles the push behind them.
    assert answers == [(200, "pending")] * 10
    transaction.refresh_from_db()
    assert transaction.status == "cancelled"
    assert transaction.last_queried_at is not None

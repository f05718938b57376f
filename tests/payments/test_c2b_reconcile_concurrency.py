"""Races between real database connections: one C2B payment per TransID, one query per row.

PostgreSQL only: SQLite serialises writers on the whole file, so its row locks prove nothing.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from django.test import Client

from payments.models import CallbackEvent, Transaction
from payments.services.reconcile import transactions_reconcile
from payments.signals import c2b_payment_received
from tests.concurrency import POSTGRESQL_ONLY, run_together

from .conftest import STK_QUERY_URL, calls_to, load_fixture, stk_transaction

pytestmark = POSTGRESQL_ONLY

SECRET = "test-callback-secret-0123456789abcdef"
CONFIRMATION_PATH = f"/api/v1/payments/callbacks/c2b/{SECRET}/confirmation"
MASKED = "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"
CANCELLED = "stk/stk_query_response_cancelled_1032.2017.php-mpesa.json"


def test_twenty_copies_of_one_confirmation_record_one_payment():
    received: list[Any] = []
    lock = threading.Lock()

    def receiver(sender, transaction, **kwargs):
        with lock:
            received.append(transaction.pk)

    c2b_payment_received.connect(receiver)
    body = json.dumps(load_fixture(MASKED))

    def confirm(_: int) -> tuple[int, dict]:
        response = Client().post(CONFIRMATION_PATH, body, content_type="application/json")
        return response.status_code, response.json()

    try:
        answers = run_together(20, confirm)
    finally:
        c2b_payment_received.disconnect(receiver)

    assert answers == [(200, {"ResultCode": 0, "ResultDesc": "Success"})] * 20
    events = CallbackEvent.objects.filter(kind="c2b_confirmation", token="c2b")
    assert events.count() == 20
    assert sorted(events.values_list("outcome", flat=True)) == ["duplicate"] * 19 + ["processed"]
    payment = Transaction.objects.get(transaction_type="C2B")
    assert (payment.mpesa_receipt_number, payment.amount, payment.status) == (
        "RKL51ZDR4F",
        5,
        "success",
    )
    assert events.filter(transaction=payment).count() == 20
    assert received == [payment.pk]


def test_two_concurrent_reconcile_runs_query_each_row_once(daraja):
    checkouts = [f"ws_CO_race_{n:02d}" for n in range(10)]
    for n, checkout in enumerate(checkouts):
        stk_transaction(checkout_request_id=checkout, age_seconds=600 - n)

    def stk_query_answer(request):
        # The published cancelled answer, addressed to whichever push was asked about.
        asked = json.loads(request.body)["CheckoutRequestID"]
        return 200, {}, json.dumps({**load_fixture(CANCELLED), "CheckoutRequestID": asked})

    daraja.add_callback("POST", STK_QUERY_URL, callback=stk_query_answer)

    # Each run may take half the rows: overlapping claims would show as rows asked twice.
    reports = run_together(
        2, lambda _: transactions_reconcile(older_than=60, limit=5, sleep=lambda s: None)
    )

    asked = Counter(
        json.loads(c.request.body)["CheckoutRequestID"] for c in calls_to(daraja, STK_QUERY_URL)
    )
    assert asked == Counter(checkouts)
    assert sorted(report.claimed for report in reports) == [5, 5]
    assert set(Transaction.objects.values_list("status", flat=True)) == {"cancelled"}

"""Issue 9's race points under real concurrency, PostgreSQL only (row and advisory locks).

Points 1 and 2: the STK callback and the C2B confirmation of one payment, delivered many times
at once, book it once. Point 20: a checkout link started many times at once sends one push.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from payments.models import CallbackEvent, Transaction
from payments.services.checkout import checkout_link_create, checkout_link_key
from tests.concurrency import POSTGRESQL_ONLY, run_together

from .test_checkout_once import accept_pushes, pushes_sent, start
from .test_one_booking import (
    CONFIRMATION_PATH,
    RECEIPT,
    REFERENCE,
    STK_CALLBACK_PATH,
    confirmation,
    paid_rows,
    success_callback,
    waiting_push,
)

pytestmark = POSTGRESQL_ONLY


@pytest.mark.parametrize(
    "reference", [REFERENCE, "X"], ids=["confirmation-fits-push", "confirmation-does-not-fit"]
)
def test_p01_p02_stk_callbacks_and_confirmations_at_once_book_one_payment(reference, sent_signals):
    push = waiting_push()
    callback = json.dumps(success_callback(push))
    confirmation_json = json.dumps(confirmation(BillRefNumber=reference))

    def deliver(index: int) -> int:
        if index % 2:
            path, body = STK_CALLBACK_PATH.format(push.callback_token), callback
        else:
            path, body = CONFIRMATION_PATH, confirmation_json
        return Client().post(path, body, content_type="application/json").status_code

    assert run_together(20, deliver) == [200] * 20

    assert Transaction.objects.filter(mpesa_receipt_number=RECEIPT).count() == 1
    assert len(paid_rows()) == 1
    push.refresh_from_db()
    assert push.status == "success"
    assert len(sent_signals) == 1
    assert not CallbackEvent.objects.exclude(outcome__in=("processed", "duplicate")).exists()


def test_p20_concurrent_starts_on_one_link_send_one_push(daraja):
    token = checkout_link_create(amount=10, account_reference="INV42")
    accept_pushes(daraja)

    # Ten payers (ten phones, under the per-phone limit) press Pay on one link at once.
    answers = run_together(10, lambda i: start(Client(), token, f"07083741{i:02d}").status_code)

    assert sorted(answers) == [201] + [409] * 9
    assert pushes_sent(daraja) == 1
    assert Transaction.objects.filter(checkout_link=checkout_link_key(token)).count() == 1

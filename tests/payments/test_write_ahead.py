"""Money-moving rows are committed before Daraja is called, and no transaction spans the call."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db import transaction as db_transaction

from payments.models import Transaction
from payments.services.b2c import b2c_payout_initiate
from payments.services.stk_push import stk_push_initiate

from .conftest import STK_PUSH_URL, push_accepted

B2C_URL = "https://sandbox.safaricom.co.ke/mpesa/b2c/v3/paymentrequest"
pytestmark = pytest.mark.django_db(transaction=True)


def observe_during_call(seen: list, answer: dict):
    """A Daraja stand-in that records, while the request is in flight, what our side holds."""

    def callback(request):
        seen.append(
            {
                "in_transaction": connection.in_atomic_block,
                "rows": list(Transaction.objects.values_list("status", flat=True)),
            }
        )
        return 200, {}, json.dumps(answer)

    return callback


def test_the_push_row_is_committed_and_no_transaction_is_open_during_the_call(daraja):
    seen: list = []
    daraja.add_callback("POST", STK_PUSH_URL, callback=observe_during_call(seen, push_accepted()))

    stk_push_initiate(
        user=None,
        phone_number="0708374149",
        amount=1,
        account_reference="INV1",
        transaction_desc="x",
    )

    assert seen == [{"in_transaction": False, "rows": ["unknown"]}]


def test_the_payout_row_is_committed_and_no_transaction_is_open_during_the_call(daraja):
    seen: list = []
    answer = {"ConversationID": "AG_1", "OriginatorConversationID": "x", "ResponseCode": "0"}
    daraja.add_callback("POST", B2C_URL, callback=observe_during_call(seen, answer))

    b2c_payout_initiate(user=None, phone_number="0708374149", amount=10, remarks="Salary")

    assert seen == [{"in_transaction": False, "rows": ["unknown"]}]


def test_starting_a_push_inside_a_callers_transaction_is_refused(daraja):
    # Daraja would be called before the caller commits: a callback could find no row.
    with pytest.raises(RuntimeError, match="durable"), db_transaction.atomic():
        stk_push_initiate(
            user=None,
            phone_number="0708374149",
            amount=1,
            account_reference="INV1",
            transaction_desc="x",
        )
    assert Transaction.objects.count() == 0

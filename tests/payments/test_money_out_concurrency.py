"""Races between real database connections: refunds never pass the payment, payouts the cap.

PostgreSQL only: SQLite serialises writers on the whole file, so its locks prove nothing.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db.models import Sum
from django.test import override_settings
from rest_framework.test import APIClient

from payments.enums import TransactionType
from payments.models import Transaction
from tests.concurrency import POSTGRESQL_ONLY, run_together

from .conftest import api_client_for
from .money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    accept,
    new_key,
    paid_transaction,
    sent,
    staff_user_with,
)

pytestmark = POSTGRESQL_ONLY

HOLDING = ("pending", "unknown", "success")


def clients_for(user, count: int) -> list[APIClient]:
    """One API client per thread, all with ``user``'s token."""
    api_client_for(user)  # creates the token, committed before the threads start
    return [api_client_for(user) for _ in range(count)]


# Ten threads: without the row lock, several pass the check together in nearly every run.
@pytest.mark.parametrize("threads", [2, 10])
def test_concurrent_refunds_never_reverse_more_than_the_payment(daraja, django_user_model, threads):
    payment = paid_transaction(amount=100)
    refunder = staff_user_with(django_user_model, "refunder", "refund")
    clients = clients_for(refunder, threads)
    accept(daraja, REVERSAL_URL)

    def refund(index: int) -> tuple[int, list[str]]:
        response = clients[index].post(
            REVERSE_PATH,
            {"transaction": str(payment.pk), "amount": 60},
            format="json",
            **new_key(),
        )
        return response.status_code, list(response.json().get("errors", {}))

    answers = run_together(threads, refund)

    assert sorted(answers) == [(202, [])] + [(400, ["amount"])] * (threads - 1)
    reversed_total = payment.reversals.filter(status__in=HOLDING).aggregate(t=Sum("amount"))["t"]
    assert reversed_total == 60 <= payment.amount
    assert [body["Amount"] for body in sent(daraja, REVERSAL_URL)] == [60]


@override_settings(PAYMENTS={**settings.PAYMENTS, "B2C_DAILY_LIMIT": 100})
def test_concurrent_payouts_never_pass_the_daily_cap(daraja, django_user_model):
    payer = staff_user_with(django_user_model, "payer", "pay_out")
    threads = 10
    clients = clients_for(payer, threads)
    accept(daraja, B2C_URL)

    def pay_out(index: int) -> int:
        body = {"phone_number": "0708374149", "amount": 30, "remarks": f"Payout {index}"}
        return clients[index].post(B2C_PATH, body, format="json", **new_key()).status_code

    answers = run_together(threads, pay_out)

    # 3 x 30 fit under 100; a fourth would make 120.
    assert sorted(answers) == [202] * 3 + [400] * 7
    committed = Transaction.objects.filter(
        transaction_type=TransactionType.B2C, status__in=HOLDING
    ).aggregate(t=Sum("amount"))["t"]
    assert committed == 90
    assert len(sent(daraja, B2C_URL)) == 3

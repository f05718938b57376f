"""Sweeps of Pull Transactions at once (two cron hosts) book each payment once (PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from responses import matchers

from payments.enums import TransactionStatus
from payments.models import AuditRecord, Transaction
from payments.services.pull import pull_transactions_recover
from payments.signals import c2b_payment_received, payment_succeeded
from tests.concurrency import POSTGRESQL_ONLY, run_together

from .test_pull import NOTHING, QUERY_URL, page, row, stk_push

pytestmark = [pytest.mark.concurrency, *POSTGRESQL_ONLY]


def at_offset(offset: int) -> list:
    return [matchers.json_params_matcher({"OffSetValue": str(offset)}, strict_match=False)]


def test_sweeps_at_once_book_each_payment_once_with_one_signal(daraja):
    push = stk_push(TransactionStatus.AWAITING_RECEIPT, minutes_old=15)
    daraja.post(
        QUERY_URL,
        json=page(row("SAO7RT61S1", "10.0"), row("SAO7RT61S2", "75.0")),
        match=at_offset(0),
    )
    daraja.post(QUERY_URL, json=NOTHING, match=at_offset(2))
    sent, lock = [], threading.Lock()

    def receiver(sender, transaction, signal, **kwargs):
        with lock:
            sent.append((signal, transaction.pk))

    payment_succeeded.connect(receiver)
    c2b_payment_received.connect(receiver)
    since = timezone.now() - timedelta(hours=1)
    try:
        run_together(4, lambda _: pull_transactions_recover(since=since))
    finally:
        payment_succeeded.disconnect(receiver)
        c2b_payment_received.disconnect(receiver)

    push.refresh_from_db()
    payment = Transaction.objects.get(mpesa_receipt_number="SAO7RT61S2")
    assert (push.status, push.mpesa_receipt_number) == ("success", "SAO7RT61S1")
    assert sorted(sent, key=str) == sorted(
        [(payment_succeeded, push.pk), (c2b_payment_received, payment.pk)], key=str
    )
    assert AuditRecord.objects.filter(action="pull_recover").count() == 2

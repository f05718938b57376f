"""Each staff action on money or its status appends an AuditRecord; the trail is read-only."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import override_settings
from django.utils import timezone

from payments.enums import CallbackOutcome, TransactionStatus, TransactionType
from payments.models import AuditRecord, PayoutRequest, RefundRequest, Transaction
from tests.payments.money_out import (
    B2C_URL,
    BALANCE_URL,
    REVERSAL_URL,
    STATUS_URL,
    accept,
    paid_transaction,
)

from .helpers import (
    AUDIT,
    BALANCE,
    EXPORT,
    PAYOUT,
    QUERY_STATUS,
    REPROCESS,
    decide_url,
    refund_url,
    stk_event,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def started() -> datetime:
    return timezone.now()


def the_record(action: str, started: datetime) -> AuditRecord:
    """The one record of ``action``, written during the test."""
    [record] = AuditRecord.objects.filter(action=action)
    assert started <= record.created_at <= timezone.now()
    return record


def payout_form(amount: int) -> dict:
    return {
        "phone_number": "0708374149",
        "amount": str(amount),
        "command_id": "BusinessPayment",
        "remarks": "Supplier invoice 17",
        "step": "execute",
    }


def submit_for_approval(client, amount: int = 500) -> PayoutRequest:
    with override_settings(PAYMENTS={**settings.PAYMENTS, "PAYOUT_APPROVAL_THRESHOLD": 100}):
        client.post(PAYOUT, payout_form(amount))
    return PayoutRequest.objects.get(state=PayoutRequest.State.AWAITING_APPROVAL)


def test_refund_is_audited(as_manager, manager, daraja, started):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100)

    as_manager.post(refund_url(payment), {"amount": "40", "remarks": "Part", "step": "execute"})

    record = the_record("refund", started)
    reversal = Transaction.objects.get(transaction_type=TransactionType.REVERSAL)
    assert (record.actor, record.transaction, record.amount) == (manager, payment, 40)
    assert record.outcome == TransactionStatus.PENDING
    refund = RefundRequest.objects.get()
    assert record.details == {"refund_request": refund.pk}
    assert refund.transaction == reversal


def test_refused_refund_is_audited_with_the_reason(as_manager, manager, daraja, started):
    payment = paid_transaction(amount=100)
    # A refund still in flight holds 60: the form (which sees only settled refunds) lets 50
    # through, and the service, under the row lock, refuses it.
    Transaction.objects.create(
        transaction_type="REVERSAL",
        status="pending",
        original=payment,
        amount=60,
        environment="sandbox",
    )

    as_manager.post(refund_url(payment), {"amount": "50", "remarks": "Over", "step": "execute"})

    record = the_record("refund", started)
    assert (record.actor, record.transaction, record.amount) == (manager, payment, 50)
    assert record.outcome.startswith("refused: must be from 1 to 40")


def test_payout_sent_at_once_is_audited(as_manager, manager, daraja, started):
    accept(daraja, B2C_URL)

    as_manager.post(PAYOUT, payout_form(500))

    record = the_record("payout", started)
    payout = PayoutRequest.objects.get()
    assert (record.actor, record.transaction, record.amount) == (manager, payout.transaction, 500)
    assert record.outcome == TransactionStatus.PENDING
    assert record.details == {"payout_request": payout.pk}


def test_payout_request_is_audited(as_manager, manager, daraja, started):
    payout = submit_for_approval(as_manager)

    record = the_record("payout_requested", started)
    assert (record.actor, record.transaction, record.amount) == (manager, None, 500)
    assert record.outcome == "awaiting approval"
    assert record.details == {"payout_request": payout.pk}


def test_payout_approval_is_audited(as_manager, as_second_manager, second_manager, daraja, started):
    accept(daraja, B2C_URL)
    payout = submit_for_approval(as_manager)

    as_second_manager.post(decide_url(payout), {"decision": "approve"})

    record = the_record("payout_approved", started)
    payout.refresh_from_db()
    assert (record.actor, record.transaction, record.amount) == (
        second_manager,
        payout.transaction,
        500,
    )
    assert record.outcome == TransactionStatus.PENDING


def test_refused_self_approval_is_audited(as_manager, manager, daraja, started):
    payout = submit_for_approval(as_manager)

    as_manager.post(decide_url(payout), {"decision": "approve"})

    record = the_record("payout_approved", started)
    assert (record.actor, record.amount) == (manager, 500)
    assert record.outcome.startswith("refused: must be approved by someone other")


def test_payout_rejection_is_audited(as_manager, as_second_manager, second_manager, started):
    payout = submit_for_approval(as_manager)

    as_second_manager.post(decide_url(payout), {"decision": "reject"})

    record = the_record("payout_rejected", started)
    assert (record.actor, record.amount, record.outcome) == (second_manager, 500, "rejected")
    assert record.details == {"payout_request": payout.pk}


def test_refused_rejection_is_audited_as_a_rejection(
    as_manager, as_second_manager, second_manager, daraja, started
):
    accept(daraja, B2C_URL)
    payout = submit_for_approval(as_manager)
    as_second_manager.post(decide_url(payout), {"decision": "approve"})

    as_second_manager.post(decide_url(payout), {"decision": "reject"})

    record = the_record("payout_rejected", started)
    assert record.actor == second_manager
    assert record.outcome == "refused: is already sent"
    assert AuditRecord.objects.filter(action="payout_approved").count() == 1


def test_status_query_is_audited(as_manager, manager, daraja, started):
    accept(daraja, STATUS_URL)
    payment = paid_transaction(amount=300, transaction_type=TransactionType.C2B)

    as_manager.post(QUERY_STATUS, {"ids": [str(payment.pk)]})

    record = the_record("status_query", started)
    assert (record.actor, record.transaction, record.amount) == (manager, payment, 300)
    assert record.outcome == "asked (pending)"


def test_callback_reprocess_is_audited(as_manager, manager, started):
    push = Transaction.objects.create(
        transaction_type=TransactionType.STK_PUSH,
        status=TransactionStatus.PENDING,
        checkout_request_id="ws_CO_000000000000000000007",
        amount=75,
        phone_number="254708374149",
        environment="sandbox",
    )
    event = stk_event(push, outcome=CallbackOutcome.ERROR, error="boom")

    as_manager.post(REPROCESS, {"ids": [str(event.pk)]})

    record = the_record("reprocess_callback", started)
    assert (record.actor, record.transaction, record.amount) == (manager, push, 75)
    assert record.outcome == CallbackOutcome.PROCESSED
    assert record.details == {"callback_event": event.pk}


def test_balance_refresh_is_audited(as_manager, manager, daraja, started):
    accept(daraja, BALANCE_URL)

    as_manager.post(BALANCE)

    record = the_record("balance_refresh", started)
    assert (record.actor, record.transaction, record.amount) == (manager, None, None)
    assert record.outcome == "asked: PayBill 174379 (pending), B2C payouts 600992 (pending)"


def test_export_is_audited(as_clerk, clerk, started):
    rows = [paid_transaction(receipt="NLJ7RT61SV"), paid_transaction(receipt="NLJ7RT61SW")]

    as_clerk.post(EXPORT, {"ids": [str(t.pk) for t in rows]})

    record = the_record("export", started)
    assert (record.actor, record.outcome) == (clerk, "2 transactions exported")


def test_audit_trail_cannot_be_added_changed_or_deleted_even_by_a_superuser(
    as_superuser, superuser, manager
):
    record = AuditRecord.objects.create(actor=manager, action="refund", outcome="pending")
    model_admin = admin.site._registry[AuditRecord]
    request = type("Request", (), {"user": superuser})()

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, record)
    assert not model_admin.has_delete_permission(request, record)
    assert as_superuser.get(f"{AUDIT}add/").status_code == 403
    assert as_superuser.get(f"{AUDIT}{record.pk}/delete/").status_code == 403
    assert as_superuser.post(f"{AUDIT}{record.pk}/delete/", {"post": "yes"}).status_code == 403
    change = as_superuser.post(f"{AUDIT}{record.pk}/change/", {"outcome": "forged"})
    assert change.status_code == 403
    record.refresh_from_db()
    assert record.outcome == "pending"
    page = as_superuser.get(f"{AUDIT}{record.pk}/change/").content.decode()
    assert 'name="_save"' not in page

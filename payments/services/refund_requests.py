"""Refunds with maker-checker: large ones wait for a second staff member, as payouts do."""

from __future__ import annotations

from typing import Any

from django.db import transaction as db_transaction

from payments.conf import payments_settings
from payments.exceptions import PaymentsError
from payments.models import IdempotencyKey, RefundRequest, Transaction
from payments.services.approvals import (
    ApprovalFlow,
    approval_needed,
    approval_request_approve,
    approval_request_reject,
    approval_request_start,
)
from payments.services.audit import audit_record
from payments.services.common import REFUND_LEDGER_LOCK, ledger_lock, nairobi_day_start
from payments.services.idempotency import idempotency_key_link
from payments.services.reversals import (
    reversal_amount_checked,
    reversal_initiate,
    reversal_original_locked,
    reversal_validated,
)

State = RefundRequest.State


def refund_request_submit(
    *,
    maker: Any,
    transaction_ref: str,
    remarks: str,
    amount: int | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> RefundRequest:
    """Refund a payment now, or park the refund for approval (``refund_request_needs_approval``).

    The one way staff refund, from the admin and from the API alike. ``amount`` defaults to
    all that is left to refund; a parked refund holds its amount, so the refunds of one
    payment, sent or waiting, never add up to more than it. The decision and the request row
    are committed together, one refund at a time, before Daraja is called; ``idempotency_key``
    (the API request's claimed key) is told of the request in that commit. A refusal is
    audited too.
    """
    original = None
    try:
        remarks = reversal_validated(remarks=remarks, amount=amount)
        with db_transaction.atomic(durable=True):
            ledger_lock(REFUND_LEDGER_LOCK)
            original = reversal_original_locked(transaction_ref)
            to_refund = reversal_amount_checked(original=original, amount=amount)
            waits = refund_request_needs_approval(maker=maker, original=original, amount=to_refund)
            request = RefundRequest.objects.create(
                state=State.AWAITING_APPROVAL if waits else State.SENT,
                maker=maker,
                original=original,
                amount=to_refund,
                remarks=remarks,
            )
            idempotency_key_link(record=idempotency_key, refund_request=request)
        return approval_request_start(REFUNDS, request)
    except PaymentsError as exc:
        audit_record(
            actor=maker,
            action="refund",
            transaction=original,
            amount=amount,
            outcome=f"refused: {exc.message}",
        )
        raise


def refund_request_needs_approval(*, maker: Any, original: Transaction, amount: int) -> bool:
    """Whether a refund takes the maker's refunds sent without approval today (Kenyan day),
    or those of ``original`` ever, above REFUND_APPROVAL_THRESHOLD."""
    return approval_needed(
        amount=amount,
        threshold=int(payments_settings.REFUND_APPROVAL_THRESHOLD),
        groups=(
            RefundRequest.objects.filter(maker=maker, created_at__gte=nairobi_day_start()),
            RefundRequest.objects.filter(original=original),
        ),
    )


def refund_request_approve(*, refund_request_id: int, checker: Any) -> RefundRequest:
    """The checker approves another staff member's refund, which is then sent once."""
    return approval_request_approve(REFUNDS, request_id=refund_request_id, checker=checker)


def refund_request_reject(*, refund_request_id: int, checker: Any) -> RefundRequest:
    return approval_request_reject(REFUNDS, request_id=refund_request_id, checker=checker)


def _send(request: RefundRequest) -> Transaction:
    return reversal_initiate(
        user=request.maker,
        transaction_ref=str(request.original_id),
        amount=request.amount,
        remarks=request.remarks,
        refund_request=request,
    )


REFUNDS = ApprovalFlow(
    kind="refund", model=RefundRequest, send=_send, audited=lambda request: request.original
)

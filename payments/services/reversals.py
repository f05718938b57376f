"""Refunds through Daraja's reversal API: full or partial, never more than was paid."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from django.db import transaction as db_transaction
from django.db.models import Q

from payments.conf import payments_settings
from payments.daraja.client import DarajaClient
from payments.enums import TransactionStatus, TransactionType
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.gateway import get_daraja_client
from payments.models import RefundRequest, Transaction
from payments.services.approvals import approval_request_link
from payments.services.common import (
    MAY_HAVE_MOVED,
    amount_total,
    money_out_send,
    security_credential_check,
    send_on_commit,
)
from payments.signals import reversal_completed, reversal_failed

logger = logging.getLogger(__name__)

S = TransactionStatus
REVERSIBLE_TYPES = (TransactionType.STK_PUSH, TransactionType.C2B)
# Reversals that hold part of the original: done, or possibly done.
RESERVING_STATUSES = MAY_HAVE_MOVED
REQUIRED_FOR_REVERSAL = ("CONSUMER_KEY", "CONSUMER_SECRET", "SHORTCODE", "INITIATOR_NAME")


def reversal_initiate(
    *,
    user: Any,
    transaction_ref: str,
    remarks: str,
    amount: int | None = None,
    refund_request: RefundRequest | None = None,
    client: DarajaClient | None = None,
) -> Transaction:
    """Refund a successful STK or C2B payment, by our id or its M-Pesa receipt number.

    ``amount`` defaults to all that is not yet reversed. The original row is locked while the
    amount is checked and the REVERSAL row is written, so two staff refunding at once can never
    reverse more than was paid. The REVERSAL row is committed before Daraja is called, naming
    it on ``refund_request``, the request it sends, in the same commit: it is sent once.
    """
    remarks = reversal_validated(remarks=remarks, amount=amount)
    client = client or get_daraja_client()
    security_credential_check(client=client, what="Reversals")

    # Durable: the row is committed before Daraja is called, even inside a caller's atomic().
    with db_transaction.atomic(durable=True):
        original = reversal_original_locked(transaction_ref)
        to_reverse = reversal_amount_checked(original=original, amount=amount)
        reversal = Transaction.objects.create(
            id=uuid.uuid4(),
            transaction_type=TransactionType.REVERSAL,
            status=S.UNKNOWN,
            original=original,
            phone_number=original.phone_number,
            msisdn=original.msisdn,
            amount=to_reverse,
            account_reference=original.account_reference,
            remarks=remarks,
            environment=payments_settings.ENVIRONMENT,
            shortcode=original.shortcode or str(payments_settings.SHORTCODE),
            user=user if getattr(user, "is_authenticated", False) else None,
            # A refund is about what its payment was for: the host's order hears of it too.
            for_content_type_id=original.for_content_type_id,
            for_object_id=original.for_object_id,
            metadata={"request": {"amount": to_reverse, "receipt": original.mpesa_receipt_number}},
        )
        if refund_request is not None:
            approval_request_link(refund_request, reversal)
    return money_out_send(
        transaction=reversal,
        what="Reversal",
        send=lambda result_url, queue_timeout_url: client.reversal(
            transaction_id=original.mpesa_receipt_number,
            amount=to_reverse,
            remarks=remarks,
            receiver_party=reversal.shortcode,
            result_url=result_url,
            queue_timeout_url=queue_timeout_url,
        ),
    )


def reversal_validated(*, remarks: str, amount: Any) -> str:
    """The remarks of a refund, once its input and the settings it needs are checked."""
    remarks = (remarks or "").strip() or "Refund"
    if not 2 <= len(remarks) <= 100:
        raise PaymentValidationError("remarks", "must be 2 to 100 characters")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise PaymentValidationError("amount", "must be a whole number of shillings")
    missing = payments_settings.missing(REQUIRED_FOR_REVERSAL)
    if missing:
        raise PaymentsNotConfiguredError(
            f"Reversals are not configured on this server (missing {', '.join(missing)})."
        )
    return remarks


def reversal_amount_checked(*, original: Transaction, amount: int | None) -> int:
    """What to refund of the locked ``original``: ``amount``, or by default all that is left.

    Refunds done, in flight or waiting for approval all hold part of the payment.
    """
    reserved = amount_total(original.reversals.filter(status__in=RESERVING_STATUSES))
    waiting = amount_total(
        original.refund_requests.filter(state=RefundRequest.State.AWAITING_APPROVAL)
    )
    available = original.amount - reserved - waiting
    if available <= 0:
        raise PaymentValidationError("transaction", "has nothing left to refund")
    to_reverse = available if amount is None else amount
    if not 1 <= to_reverse <= available:
        raise PaymentValidationError(
            "amount", f"must be from 1 to {available}, what is left to refund"
        )
    return to_reverse


def reversal_result_apply(
    *,
    reversal: Transaction,
    result_code: str,
    result_desc: str,
    source: str,
    receipt_number: str | None = None,
    completed_at: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Settle a locked reversal and, on success, the payment it refunds.

    The caller holds the reversal's lock and checked that the transition is allowed; the
    original is locked here, after the reversal, always in that order.
    """
    succeeded = result_code == "0"
    reversal.transition_to(S.SUCCESS if succeeded else S.FAILED)
    reversal.result_code = result_code[:20]
    reversal.result_desc = (result_desc or "")[:255]
    if receipt_number:
        reversal.mpesa_receipt_number = receipt_number
    if completed_at:
        reversal.transaction_date = completed_at
    reversal.metadata = {
        **reversal.metadata,
        "result": {"source": source, "result_code": result_code, **(details or {})},
    }
    reversal.save()
    original = Transaction.objects.select_for_update().get(pk=reversal.original_id)
    if succeeded:
        original.reversed_amount += reversal.amount
        if original.reversed_amount >= original.amount and original.can_transition_to(S.REVERSED):
            original.transition_to(S.REVERSED)
        original.save()
    send_on_commit(
        reversal_completed if succeeded else reversal_failed,
        transaction=reversal,
        original=original,
    )


def reversal_original_locked(transaction_ref: str) -> Transaction:
    """The refundable payment ``transaction_ref`` names, locked until the transaction ends."""
    ref = (transaction_ref or "").strip()
    if not ref:
        raise PaymentValidationError("transaction", "give our transaction id or the M-Pesa receipt")
    match = Q(mpesa_receipt_number=ref.upper())
    with contextlib.suppress(ValueError):  # a receipt number is not a UUID
        match |= Q(pk=uuid.UUID(ref))
    candidates = Transaction.objects.select_for_update().filter(
        match, transaction_type__in=REVERSIBLE_TYPES
    )
    original = candidates.first()
    if original is None:
        raise PaymentValidationError(
            "transaction", "no STK Push or C2B payment has this id or receipt number"
        )
    if original.booked_as_id:
        raise PaymentValidationError(
            "transaction",
            f"was booked as C2B payment {original.booked_as_id}: refund that payment",
        )
    if original.status != S.SUCCESS or not original.mpesa_receipt_number:
        raise PaymentValidationError(
            "transaction",
            f"only successful payments with a receipt can be refunded ({original.status})",
        )
    return original

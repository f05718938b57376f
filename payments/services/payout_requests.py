"""Back-office payouts with maker-checker: large ones wait for a second staff member."""

from __future__ import annotations

from typing import Any

from django.db import transaction as db_transaction
from django.utils import timezone

from payments.conf import payments_settings
from payments.exceptions import PaymentsError, PaymentValidationError
from payments.models import PayoutRequest
from payments.services.audit import audit_record
from payments.services.b2c import b2c_payout_initiate, b2c_payout_validated

State = PayoutRequest.State


def payout_request_submit(
    *,
    maker: Any,
    phone_number: str,
    amount: int,
    command_id: str,
    remarks: str,
    occasion: str = "",
) -> PayoutRequest:
    """Send a payout now, or park it for approval when it is above the threshold.

    The one way staff pay out, from the admin and from the API alike: nobody sends a large
    payout alone.
    """
    payout = b2c_payout_validated(
        phone_number=phone_number,
        amount=amount,
        remarks=remarks,
        command_id=command_id,
        occasion=occasion,
    )
    amount = payout["amount"]
    needs_approval = amount > int(payments_settings.PAYOUT_APPROVAL_THRESHOLD)
    request = PayoutRequest.objects.create(
        state=State.AWAITING_APPROVAL if needs_approval else State.SENT, maker=maker, **payout
    )
    if needs_approval:
        audit_record(
            actor=maker,
            action="payout_requested",
            amount=amount,
            outcome="awaiting approval",
            details={"payout_request": request.pk},
        )
        return request
    try:
        return _send(request, actor=maker, action="payout")
    except PaymentsError:
        request.delete()  # nothing was sent: the form shows the error instead
        raise


def payout_request_approve(*, payout_request_id: int, checker: Any) -> PayoutRequest:
    """The checker approves another staff member's payout, which is then sent once."""
    with db_transaction.atomic():
        request = PayoutRequest.objects.select_for_update().get(pk=payout_request_id)
        if request.state != State.AWAITING_APPROVAL:
            raise PaymentValidationError("payout_request", f"is already {request.state}")
        if request.maker_id == checker.pk:
            raise PaymentValidationError(
                "payout_request", "must be approved by someone other than the person who made it"
            )
        # Claimed before Daraja is called, and no lock is held during the call.
        request.state = State.SENT
        request.checker = checker
        request.decided_at = timezone.now()
        request.save()
    try:
        return _send(request, actor=checker, action="payout_approved")
    except PaymentsError:
        PayoutRequest.objects.filter(pk=request.pk).update(
            state=State.AWAITING_APPROVAL, checker=None, decided_at=None
        )
        raise


def payout_request_reject(*, payout_request_id: int, checker: Any) -> PayoutRequest:
    with db_transaction.atomic():
        request = PayoutRequest.objects.select_for_update().get(pk=payout_request_id)
        if request.state != State.AWAITING_APPROVAL:
            raise PaymentValidationError("payout_request", f"is already {request.state}")
        request.state = State.REJECTED
        request.checker = checker
        request.decided_at = timezone.now()
        request.save()
    audit_record(
        actor=checker,
        action="payout_rejected",
        amount=request.amount,
        outcome="rejected",
        details={"payout_request": request.pk},
    )
    return request


def _send(request: PayoutRequest, *, actor: Any, action: str) -> PayoutRequest:
    transaction = b2c_payout_initiate(
        user=request.maker,
        phone_number=request.phone_number,
        amount=request.amount,
        command_id=request.command_id,
        remarks=request.remarks,
        occasion=request.occasion,
    )
    request.transaction = transaction
    request.save(update_fields=["transaction"])
    audit_record(
        actor=actor,
        action=action,
        transaction=transaction,
        outcome=transaction.status,
        details={"payout_request": request.pk},
    )
    return request

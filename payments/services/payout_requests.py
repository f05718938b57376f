"""Back-office payouts with maker-checker: large ones wait for a second staff member."""

from __future__ import annotations

from typing import Any

from django.db import transaction as db_transaction
from django.db.models import Model

from payments.conf import payments_settings
from payments.models import IdempotencyKey, PayoutRequest, Transaction
from payments.services.approvals import (
    ApprovalFlow,
    approval_needed,
    approval_request_approve,
    approval_request_reject,
    approval_request_start,
)
from payments.services.b2c import b2c_payout_initiate, b2c_payout_validated
from payments.services.common import (
    PAYOUT_LEDGER_LOCK,
    for_object_fields,
    ledger_lock,
    nairobi_day_start,
)
from payments.services.idempotency import idempotency_key_link

State = PayoutRequest.State


def payout_request_submit(
    *,
    maker: Any,
    phone_number: str,
    amount: int,
    command_id: str,
    remarks: str,
    occasion: str = "",
    for_object: Model | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> PayoutRequest:
    """Send a payout now, or park it for approval (``payout_request_needs_approval``).

    The one way staff pay out, from the admin and from the API alike: nobody sends a large
    sum alone, in one payout or in several. The decision and the request row are committed
    together, one payout at a time, before Daraja is called; ``idempotency_key`` (the API
    request's claimed key) is told of the request in that commit. ``for_object`` (the host's
    withdrawal, say) is linked to the request and to its payout.
    """
    payout = b2c_payout_validated(
        phone_number=phone_number,
        amount=amount,
        remarks=remarks,
        command_id=command_id,
        occasion=occasion,
    )
    link = for_object_fields(for_object)
    with db_transaction.atomic(durable=True):
        ledger_lock(PAYOUT_LEDGER_LOCK)
        waits = payout_request_needs_approval(
            maker=maker, phone_number=payout["phone_number"], amount=payout["amount"]
        )
        request = PayoutRequest.objects.create(
            state=State.AWAITING_APPROVAL if waits else State.SENT, maker=maker, **payout, **link
        )
        idempotency_key_link(record=idempotency_key, payout_request=request)
    return approval_request_start(PAYOUTS, request)


def payout_request_needs_approval(*, maker: Any, phone_number: str, amount: int) -> bool:
    """Whether a payout takes the maker's payouts sent without approval today (Kenyan day),
    or those to ``phone_number``, above PAYOUT_APPROVAL_THRESHOLD."""
    today = PayoutRequest.objects.filter(created_at__gte=nairobi_day_start())
    return approval_needed(
        amount=amount,
        threshold=int(payments_settings.PAYOUT_APPROVAL_THRESHOLD),
        groups=(today.filter(maker=maker), today.filter(phone_number=phone_number)),
    )


def payout_request_approve(*, payout_request_id: int, checker: Any) -> PayoutRequest:
    """The checker approves another staff member's payout, which is then sent once."""
    return approval_request_approve(PAYOUTS, request_id=payout_request_id, checker=checker)


def payout_request_reject(*, payout_request_id: int, checker: Any) -> PayoutRequest:
    return approval_request_reject(PAYOUTS, request_id=payout_request_id, checker=checker)


def _send(request: PayoutRequest) -> Transaction:
    return b2c_payout_initiate(
        user=request.maker,
        phone_number=request.phone_number,
        amount=request.amount,
        command_id=request.command_id,
        remarks=request.remarks,
        occasion=request.occasion,
        payout_request=request,
    )


PAYOUTS = ApprovalFlow(
    kind="payout", model=PayoutRequest, send=_send, audited=lambda request: request.transaction
)

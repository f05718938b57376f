"""Maker-checker for money out: a request above its threshold waits for a second staff member.

Payouts and refunds share it: payout_requests.py and refund_requests.py each describe their
kind with an ``ApprovalFlow``; recording, sending, approving and rejecting happen here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction as db_transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from payments.exceptions import PaymentsError, PaymentValidationError
from payments.models import ApprovalRequest, Transaction
from payments.services.audit import audit_record
from payments.services.common import MAY_HAVE_MOVED, amount_total

State = ApprovalRequest.State


class ApprovalRequestSentError(PaymentsError):
    """The request was sent already, or withdrawn by a retry that found it unsent: nothing is
    sent (again)."""

    code = "already_sent"


@dataclass(frozen=True)
class ApprovalFlow:
    """One kind of request and how its money is sent."""

    # "payout" or "refund": names the audit actions and the field of refusals.
    kind: str
    model: type[ApprovalRequest]
    # Sends the request's money, returning its transaction, which it records on the request in
    # its write-ahead commit (approval_request_link); PaymentsError if nothing was sent.
    send: Callable[[Any], Transaction]
    # The transaction its audit records point at.
    audited: Callable[[Any], Transaction | None]


def unapproved_total(requests: QuerySet) -> int:
    """Shillings of ``requests`` sent without a second person that moved, or may have moved.

    A sent request whose transaction is not written yet counts: it is being sent.
    """
    return amount_total(
        requests.filter(state=State.SENT, checker__isnull=True).filter(
            Q(transaction__isnull=True) | Q(transaction__status__in=MAY_HAVE_MOVED)
        )
    )


def approval_needed(*, amount: int, threshold: int, groups: Iterable[QuerySet]) -> bool:
    """Whether ``amount`` takes any group's total sent without approval above ``threshold``.

    Sums, not single requests: a large amount split into small ones needs approval too.
    """
    return any(unapproved_total(group) + amount > threshold for group in groups)


def approval_request_start(flow: ApprovalFlow, request: ApprovalRequest) -> ApprovalRequest:
    """Send a committed request at once, or leave it waiting for a second staff member."""
    if request.state == State.AWAITING_APPROVAL:
        _audit(flow, request, actor=request.maker, action=f"{flow.kind}_requested")
        return request
    try:
        return _send(flow, request, actor=request.maker, action=flow.kind)
    except PaymentsError:
        # Nothing was sent unless a transaction was recorded: the caller shows the error.
        _unsent(flow, request).delete()
        raise


def approval_request_link(request: ApprovalRequest, transaction: Transaction) -> None:
    """Name ``transaction`` as what sends ``request``, in the write-ahead commit that records
    it: a request is sent once, and one without a transaction has sent nothing.

    Raises ApprovalRequestSentError, rolling the caller's transaction back, when the request
    already has its transaction or is gone.
    """
    linked = (
        type(request)
        .objects.filter(pk=request.pk, transaction__isnull=True)
        .update(transaction=transaction)
    )
    if not linked:
        raise ApprovalRequestSentError(
            f"{request} was already sent or withdrawn: nothing was sent again."
        )
    request.transaction = transaction


def approval_request_approve(
    flow: ApprovalFlow, *, request_id: int, checker: Any
) -> ApprovalRequest:
    """The checker approves another staff member's request, which is then sent once."""
    with db_transaction.atomic():
        request = _locked_awaiting(flow, request_id)
        if request.maker_id == checker.pk:
            raise PaymentValidationError(
                f"{flow.kind}_request",
                "must be approved by someone other than the person who made it",
            )
        # Claimed before Daraja is called, and no lock is held during the call.
        _decide(request, State.SENT, checker)
    try:
        return _send(flow, request, actor=checker, action=f"{flow.kind}_approved")
    except PaymentsError:
        _unsent(flow, request).update(state=State.AWAITING_APPROVAL, checker=None, decided_at=None)
        raise


def approval_request_reject(
    flow: ApprovalFlow, *, request_id: int, checker: Any
) -> ApprovalRequest:
    with db_transaction.atomic():
        request = _locked_awaiting(flow, request_id)
        _decide(request, State.REJECTED, checker)
    _audit(flow, request, actor=checker, action=f"{flow.kind}_rejected")
    return request


def _locked_awaiting(flow: ApprovalFlow, request_id: int) -> ApprovalRequest:
    """The request, locked, if it still waits for a decision; a second decision is refused."""
    request = flow.model.objects.select_for_update().get(pk=request_id)
    if request.state != State.AWAITING_APPROVAL:
        raise PaymentValidationError(f"{flow.kind}_request", f"is already {request.state}")
    return request


def _decide(request: ApprovalRequest, state: str, checker: Any) -> None:
    request.state = state
    request.checker = checker
    request.decided_at = timezone.now()
    request.save(update_fields=["state", "checker", "decided_at"])


def _send(flow: ApprovalFlow, request: ApprovalRequest, *, actor: Any, action: str):
    # The send records the transaction on the request itself (approval_request_link).
    request.transaction = flow.send(request)
    _audit(flow, request, actor=actor, action=action)
    return request


def _unsent(flow: ApprovalFlow, request: ApprovalRequest) -> QuerySet:
    return flow.model.objects.filter(pk=request.pk, transaction__isnull=True)


def _audit(flow: ApprovalFlow, request: ApprovalRequest, *, actor: Any, action: str) -> None:
    sent = request.transaction if request.state == State.SENT else None
    audit_record(
        actor=actor,
        action=action,
        transaction=flow.audited(request),
        amount=request.amount,
        outcome=sent.status if sent else request.get_state_display().lower(),
        details={f"{flow.kind}_request": request.pk},
    )

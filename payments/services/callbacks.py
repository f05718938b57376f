"""Callback intake: store the raw body first, then process it once, whatever arrives twice."""

from __future__ import annotations

import logging
import traceback
from decimal import Decimal
from typing import Any

from django.db import transaction as db_transaction
from django.utils import timezone

from payments.daraja.callbacks import StkCallback, parse_stk_callback
from payments.daraja.errors import DarajaCallbackError
from payments.daraja.phone import mask_phone_number
from payments.enums import CallbackKind, CallbackOutcome, TransactionStatus, stk_result_outcome
from payments.models import CallbackEvent, Transaction
from payments.services.stk_push import stk_result_apply

logger = logging.getLogger(__name__)

# Headers worth keeping with a callback: enough to trace its origin, nothing secret.
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For", "X-Real-Ip")
# Outcomes after which an event is settled: replaying it changes nothing.
SETTLED_OUTCOMES = frozenset(
    {CallbackOutcome.PROCESSED, CallbackOutcome.DUPLICATE, CallbackOutcome.REJECTED}
)


def callback_event_record(
    *,
    kind: str,
    token: str,
    body: bytes,
    source_ip: str | None,
    headers: dict[str, str],
) -> CallbackEvent:
    """Store a callback exactly as received, before any parsing. Committed on return."""
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    return CallbackEvent.objects.create(
        kind=kind,
        token=token,
        body=body.decode("utf-8", errors="replace"),
        source_ip=source_ip,
        headers=kept,
    )


def callback_event_process(*, event: CallbackEvent) -> CallbackEvent:
    """Process a stored event once. Errors are kept on the event for a human or a replay."""
    processor = PROCESSORS[event.kind]
    try:
        with db_transaction.atomic():
            locked = CallbackEvent.objects.select_for_update().get(pk=event.pk)
            if locked.outcome in SETTLED_OUTCOMES:
                return locked
            processor(locked)
            locked.processed_at = timezone.now()
            locked.save()
        return locked
    except Exception:
        logger.exception("callback event %s failed to process", event.pk)
        CallbackEvent.objects.filter(pk=event.pk).update(
            outcome=CallbackOutcome.ERROR,
            error=traceback.format_exc()[-4000:],
            processed_at=timezone.now(),
        )
        return CallbackEvent.objects.get(pk=event.pk)


def _process_stk_callback(event: CallbackEvent) -> None:
    transaction = Transaction.objects.select_for_update().filter(callback_token=event.token).first()
    event.transaction = transaction
    try:
        callback = parse_stk_callback(event.body)
    except DarajaCallbackError as exc:
        _settle_event(event, CallbackOutcome.ERROR, f"unreadable STK callback: {exc.message}")
        return
    if transaction is None:
        _settle_event(event, CallbackOutcome.UNMATCHED, "no transaction has this callback token")
        return
    if transaction.checkout_request_id not in (None, callback.checkout_request_id):
        _reject(event, transaction, "CheckoutRequestID differs from the one Daraja gave us")
        return

    outcome = stk_result_outcome(callback.result_code)
    if not transaction.can_transition_to(outcome.status):
        if transaction.result_code and callback.result_code != transaction.result_code:
            transaction.flag_for_review(
                f"a later callback reported result {callback.result_code} after "
                f"{transaction.result_code}"
            )
            transaction.save()
        _settle_event(event, CallbackOutcome.DUPLICATE, "")
        return
    if outcome.status == TransactionStatus.SUCCESS:
        problems = _mismatches(transaction, callback)
        if problems:
            # Never a success: the money may not be what we asked for. A human decides.
            _reject(event, transaction, "; ".join(problems))
            return

    if transaction.checkout_request_id is None:
        # The callback beat the push's acknowledgement: the token matched, so adopt its ids.
        transaction.checkout_request_id = callback.checkout_request_id
        transaction.merchant_request_id = callback.merchant_request_id or ""
    stk_result_apply(
        transaction=transaction,
        result_code=callback.result_code,
        result_desc=callback.result_desc,
        source=f"callback:{event.pk}",
        receipt_number=callback.mpesa_receipt_number,
        transaction_date=callback.transaction_date,
        details=_callback_details(callback),
    )
    _settle_event(event, CallbackOutcome.PROCESSED, "")


def _mismatches(transaction: Transaction, callback: StkCallback) -> list[str]:
    problems = []
    if callback.amount is None:
        problems.append("the success callback carries no amount")
    elif callback.amount != Decimal(transaction.amount):
        problems.append(f"amount {callback.amount} differs from the {transaction.amount} asked")
    if callback.phone_number and callback.phone_number != transaction.phone_number:
        problems.append(
            f"phone {mask_phone_number(callback.phone_number)} differs from "
            f"{mask_phone_number(transaction.phone_number)}"
        )
    if not callback.mpesa_receipt_number:
        problems.append("the success callback carries no receipt number")
    return problems


def _reject(event: CallbackEvent, transaction: Transaction, reason: str) -> None:
    transaction.flag_for_review(reason)
    transaction.save()
    _settle_event(event, CallbackOutcome.REJECTED, reason)
    logger.warning(
        "callback %s rejected for transaction %s: %s",
        event.pk,
        transaction.pk,
        reason,
        extra={"transaction_id": str(transaction.pk)},
    )


def _settle_event(event: CallbackEvent, outcome: str, error: str) -> None:
    event.outcome = outcome
    event.error = error


def _callback_details(callback: StkCallback) -> dict[str, Any]:
    return {
        "amount": str(callback.amount) if callback.amount is not None else None,
        "mpesa_receipt_number": callback.mpesa_receipt_number,
        "transaction_date": (
            callback.transaction_date.isoformat() if callback.transaction_date else None
        ),
        "phone_number": callback.phone_number,
    }


PROCESSORS = {CallbackKind.STK: _process_stk_callback}

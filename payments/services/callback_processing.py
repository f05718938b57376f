"""Processing one stored callback of each kind: match it to its row, lock, check, apply once.

Reached through ``PROCESSORS`` from ``callback_event_process`` (services/callbacks.py), which
holds the event's lock and its transaction around each processor.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from payments.compiled import CompiledQuery
from payments.daraja.callbacks import (
    B2CResult,
    ResultBody,
    ReversalResult,
    StkCallback,
    parse_account_balance_result,
    parse_b2c_result,
    parse_c2b_notification,
    parse_queue_timeout,
    parse_reversal_result,
    parse_stk_callback,
    parse_transaction_status_result,
)
from payments.daraja.errors import DarajaCallbackError
from payments.daraja.phone import mask_phone_number
from payments.enums import (
    CallbackKind,
    CallbackOutcome,
    InquiryKind,
    InquiryStatus,
    TransactionStatus,
    TransactionType,
    stk_result_outcome,
)
from payments.models import CallbackEvent, DarajaInquiry, Transaction
from payments.services.b2c import b2c_result_apply
from payments.services.c2b import C2BBooking, c2b_confirmation_record
from payments.services.common import amount_matches, text_or_none
from payments.services.inquiries import (
    balance_result_apply,
    inquiry_queue_timeout_apply,
    status_result_apply,
)
from payments.services.reversals import reversal_result_apply
from payments.services.stk_results import stk_payment_book, stk_result_apply

logger = logging.getLogger(__name__)

# What an STK callback may set on its push before the result's own fields (stk_result_apply).
ADOPTED_IDS = ("checkout_request_id", "merchant_request_id")


def _process_stk_callback(event: CallbackEvent) -> None:
    transaction = _locked_transaction(event)
    if transaction is None:
        return
    try:
        callback = parse_stk_callback(event.received_bytes)
    except DarajaCallbackError as exc:
        _settle_event(event, CallbackOutcome.ERROR, f"unreadable STK callback: {exc.message}")
        return
    if transaction.checkout_request_id not in (None, callback.checkout_request_id):
        _reject(event, transaction, "CheckoutRequestID differs from the one Daraja gave us")
        return
    outcome = stk_result_outcome(callback.result_code)
    if _is_duplicate(event, transaction, callback.result_code, outcome.status):
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
    if outcome.status != TransactionStatus.SUCCESS:
        stk_result_apply(
            transaction=transaction,
            result_code=callback.result_code,
            result_desc=callback.result_desc,
            source=f"callback:{event.pk}",
            details=_callback_details(callback),
            also_changed=ADOPTED_IDS,
        )
        _settle_event(event, CallbackOutcome.PROCESSED, "")
        return
    holder = stk_payment_book(
        transaction=transaction,
        receipt_number=callback.mpesa_receipt_number or "",
        result_desc=callback.result_desc,
        source=f"callback:{event.pk}",
        transaction_date=callback.transaction_date,
        details=_callback_details(callback),
        also_changed=ADOPTED_IDS,
    )
    if holder is not None:
        _reject(
            event,
            transaction,
            f"receipt {callback.mpesa_receipt_number} already belongs to payment {holder.pk}",
        )
        return
    note = f"booked as C2B payment {transaction.booked_as_id}" if transaction.booked_as_id else ""
    _settle_event(event, CallbackOutcome.PROCESSED, note)


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


def _process_money_out_result(event: CallbackEvent, *, what: str, parse, apply) -> None:
    """The shared steps of a B2C or reversal result: match, parse, dedupe, check, apply."""
    transaction = _locked_transaction(event)
    if transaction is None:
        return
    try:
        result = parse(event.received_bytes)
    except DarajaCallbackError as exc:
        _settle_event(event, CallbackOutcome.ERROR, f"unreadable {what} result: {exc.message}")
        return
    if not _ids_match(event, transaction, result):
        return
    if _is_duplicate(event, transaction, result.result_code, _success_or_failed(result)):
        return
    if result.is_success and not amount_matches(transaction.amount, result.amount):
        _reject(event, transaction, f"{what} amount {result.amount}, not {transaction.amount}")
        return
    apply(transaction, result, f"callback:{event.pk}")
    _settle_event(event, CallbackOutcome.PROCESSED, "")


def _apply_b2c_result(transaction: Transaction, result: B2CResult, source: str) -> None:
    b2c_result_apply(
        transaction=transaction,
        result_code=result.result_code,
        result_desc=result.result_desc,
        source=source,
        receipt_number=result.receipt_number if result.is_success else None,
        recipient_name=result.recipient_name,
        completed_at=result.completed_at,
        details={
            "receiver_public_name": result.receiver_public_name,
            "recipient_is_registered": result.recipient_is_registered,
            "utility_account_balance": text_or_none(result.utility_account_balance),
            "working_account_balance": text_or_none(result.working_account_balance),
            "charges_paid_account_balance": text_or_none(result.charges_paid_account_balance),
        },
    )


def _apply_reversal_result(transaction: Transaction, result: ReversalResult, source: str) -> None:
    reversal_result_apply(
        reversal=transaction,
        result_code=result.result_code,
        result_desc=result.result_desc,
        source=source,
        receipt_number=result.transaction_id if result.is_success else None,
        completed_at=result.completed_at,
        details={
            "original_transaction_id": result.original_transaction_id,
            "charge": text_or_none(result.charge),
        },
    )


def _process_b2c_result(event: CallbackEvent) -> None:
    _process_money_out_result(event, what="B2C", parse=parse_b2c_result, apply=_apply_b2c_result)


def _process_reversal_result(event: CallbackEvent) -> None:
    _process_money_out_result(
        event, what="reversal", parse=parse_reversal_result, apply=_apply_reversal_result
    )


def _process_transaction_queue_timeout(event: CallbackEvent) -> None:
    """A B2C or reversal request timed out in Daraja's queue: its fate is unknown, not failed."""
    transaction = _locked_transaction(event)
    if transaction is None:
        return
    try:
        parse_queue_timeout(event.received_bytes)
    except DarajaCallbackError as exc:
        # The URL alone says what happened; an odd body does not change that.
        event.error = f"unreadable queue timeout body: {exc.message}"
    if transaction.status == TransactionStatus.PENDING:
        transaction.transition_to(TransactionStatus.UNKNOWN)
        transaction.save()
        _settle_event(event, CallbackOutcome.PROCESSED, event.error)
    else:
        _settle_event(event, CallbackOutcome.DUPLICATE, event.error)


def _open_inquiry_result(event: CallbackEvent, *, what: str, parse):
    """The locked inquiry and its parsed result, or None once the event is settled here
    (no such inquiry, an unreadable body, or an inquiry already answered)."""
    inquiry = _locked_inquiry(event)
    if inquiry is None:
        return None
    try:
        result = parse(event.received_bytes)
    except DarajaCallbackError as exc:
        _settle_event(event, CallbackOutcome.ERROR, f"unreadable {what} result: {exc.message}")
        return None
    if inquiry.status in (InquiryStatus.COMPLETED, InquiryStatus.FAILED):
        _settle_event(event, CallbackOutcome.DUPLICATE, "")
        return None
    return inquiry, result


def _process_balance_result(event: CallbackEvent) -> None:
    opened = _open_inquiry_result(event, what="balance", parse=parse_account_balance_result)
    if opened is None:
        return
    inquiry, result = opened
    balance_result_apply(inquiry=inquiry, result=result)
    _settle_event(event, CallbackOutcome.PROCESSED, "")


def _process_status_result(event: CallbackEvent) -> None:
    opened = _open_inquiry_result(event, what="status", parse=parse_transaction_status_result)
    if opened is None:
        return
    inquiry, result = opened
    event.transaction_id = inquiry.transaction_id
    if not _inquiry_ids_match(inquiry, result):
        # Misrouted or forged: it could settle our payout with another transaction's receipt.
        transaction = Transaction.objects.select_for_update().get(pk=inquiry.transaction_id)
        _reject(event, transaction, "the status result's conversation ids are not this query's")
        return
    effect = status_result_apply(inquiry=inquiry, result=result)
    _settle_event(event, CallbackOutcome.PROCESSED, "" if effect != "flagged" else effect)


def _process_inquiry_queue_timeout(event: CallbackEvent) -> None:
    inquiry = _locked_inquiry(event)
    if inquiry is None:
        return
    applied = inquiry_queue_timeout_apply(inquiry=inquiry)
    _settle_event(event, CallbackOutcome.PROCESSED if applied else CallbackOutcome.DUPLICATE, "")


def _process_c2b_confirmation(event: CallbackEvent) -> None:
    try:
        notification = parse_c2b_notification(event.received_bytes)
    except DarajaCallbackError as exc:
        _settle_event(event, CallbackOutcome.ERROR, f"unreadable C2B confirmation: {exc.message}")
        return
    transaction, booking = c2b_confirmation_record(
        notification=notification, source=f"c2b:{event.pk}"
    )
    event.transaction = transaction
    if booking == C2BBooking.DUPLICATE:
        _settle_event(event, CallbackOutcome.DUPLICATE, "")
    elif booking == C2BBooking.COMPLETED_PUSH:
        _settle_event(event, CallbackOutcome.PROCESSED, "completed our STK Push it paid")
    else:
        _settle_event(event, CallbackOutcome.PROCESSED, transaction.review_reason)


def _process_c2b_validation(event: CallbackEvent) -> None:
    # Validation is answered synchronously by the view; a stored validation is history only.
    _settle_event(event, CallbackOutcome.PROCESSED, event.error)


def _process_pull_notice(event: CallbackEvent) -> None:
    # Daraja documents no body for it: kept as history, for a person who wants to read it.
    _settle_event(event, CallbackOutcome.PROCESSED, "")


# The locked read of every callback's transaction, compiled once (payments/compiled.py). The
# token is unique: no ORDER BY (``first()`` would add one).
_TRANSACTION_BY_TOKEN = CompiledQuery(
    lambda token: (
        Transaction.objects.select_for_update().filter(callback_token=token).order_by()[:1]
    )
)


def _locked_transaction(event: CallbackEvent) -> Transaction | None:
    """The locked transaction the event's URL is for; None once the event is settled here.

    A token posted to the URL of another kind (an STK Push's at a B2C result URL) is refused:
    its body must never be applied to a transaction it does not describe.
    """
    expected = CALLBACK_KIND_OWNERS[event.kind]
    transaction = _TRANSACTION_BY_TOKEN.first_instance(event.token)
    if transaction is None:
        _settle_unowned(event)
    elif transaction.transaction_type != expected:
        _settle_event(
            event,
            CallbackOutcome.REJECTED,
            f"this URL takes {CallbackKind(event.kind).label} callbacks; the token belongs to "
            f"a {transaction.get_transaction_type_display()} ({transaction.pk})",
        )
        return None
    event.transaction = transaction
    return transaction


def _locked_inquiry(event: CallbackEvent) -> DarajaInquiry | None:
    """The locked inquiry the event's URL is for, as ``_locked_transaction``."""
    expected = CALLBACK_KIND_OWNERS[event.kind]
    inquiry = _first(DarajaInquiry.objects.select_for_update().filter(token=event.token))
    if inquiry is None:
        _settle_unowned(event)
    elif inquiry.kind != expected:
        _settle_event(
            event,
            CallbackOutcome.REJECTED,
            f"this URL takes {CallbackKind(event.kind).label} callbacks; the token belongs to "
            f"a {inquiry.get_kind_display()} inquiry ({inquiry.pk})",
        )
        return None
    event.inquiry = inquiry
    return inquiry


def _first(queryset):
    """The one row of a lookup by a unique column, or None."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def _settle_unowned(event: CallbackEvent) -> None:
    expected = CALLBACK_KIND_OWNERS[event.kind]
    other = (
        DarajaInquiry.objects.filter(token=event.token)
        if expected in TransactionType.values
        else Transaction.objects.filter(callback_token=event.token)
    )
    if other.exists():
        _settle_event(
            event,
            CallbackOutcome.REJECTED,
            f"this URL takes {CallbackKind(event.kind).label} callbacks; the token is not one",
        )
    else:
        _settle_event(event, CallbackOutcome.UNMATCHED, "nothing of ours has this callback token")


def _ids_match(event: CallbackEvent, transaction: Transaction, result: ResultBody) -> bool:
    """The result names the request we sent (our OriginatorConversationID or Daraja's id)."""
    ours = {transaction.originator_conversation_id, transaction.conversation_id} - {None, ""}
    theirs = {result.originator_conversation_id, result.conversation_id} - {None, ""}
    if ours and theirs and not ours & theirs:
        _reject(event, transaction, "the result's conversation ids are not this request's")
        return False
    return True


def _inquiry_ids_match(inquiry: DarajaInquiry, result: ResultBody) -> bool:
    """The result answers the inquiry we sent (the ids Daraja acknowledged it with)."""
    ours = {inquiry.originator_conversation_id, inquiry.conversation_id} - {None, ""}
    theirs = {result.originator_conversation_id, result.conversation_id} - {None, ""}
    return not (ours and theirs and not ours & theirs)


def _success_or_failed(result: ResultBody) -> str:
    return TransactionStatus.SUCCESS if result.is_success else TransactionStatus.FAILED


def _is_duplicate(
    event: CallbackEvent, transaction: Transaction, result_code: str, new_status: str
) -> bool:
    """A result the transaction cannot take any more: recorded as a duplicate, changing nothing.

    A duplicate that contradicts the stored result is flagged for a human.
    """
    if transaction.can_transition_to(new_status):
        return False
    if transaction.result_code and result_code != transaction.result_code:
        transaction.flag_for_review(
            f"a later result reported {result_code} after {transaction.result_code}"
        )
        transaction.save()
    _settle_event(event, CallbackOutcome.DUPLICATE, "")
    return True


# Which transaction type or inquiry kind the tokens at each kind's URL belong to.
CALLBACK_KIND_OWNERS: dict[str, str] = {
    CallbackKind.STK: TransactionType.STK_PUSH,
    CallbackKind.B2C_RESULT: TransactionType.B2C,
    CallbackKind.B2C_TIMEOUT: TransactionType.B2C,
    CallbackKind.REVERSAL_RESULT: TransactionType.REVERSAL,
    CallbackKind.REVERSAL_TIMEOUT: TransactionType.REVERSAL,
    CallbackKind.BALANCE_RESULT: InquiryKind.BALANCE,
    CallbackKind.BALANCE_TIMEOUT: InquiryKind.BALANCE,
    CallbackKind.STATUS_RESULT: InquiryKind.STATUS,
    CallbackKind.STATUS_TIMEOUT: InquiryKind.STATUS,
}

PROCESSORS = {
    CallbackKind.STK: _process_stk_callback,
    CallbackKind.B2C_RESULT: _process_b2c_result,
    CallbackKind.B2C_TIMEOUT: _process_transaction_queue_timeout,
    CallbackKind.REVERSAL_RESULT: _process_reversal_result,
    CallbackKind.REVERSAL_TIMEOUT: _process_transaction_queue_timeout,
    CallbackKind.BALANCE_RESULT: _process_balance_result,
    CallbackKind.BALANCE_TIMEOUT: _process_inquiry_queue_timeout,
    CallbackKind.STATUS_RESULT: _process_status_result,
    CallbackKind.STATUS_TIMEOUT: _process_inquiry_queue_timeout,
    CallbackKind.C2B_VALIDATION: _process_c2b_validation,
    CallbackKind.C2B_CONFIRMATION: _process_c2b_confirmation,
    CallbackKind.PULL_NOTICE: _process_pull_notice,
}

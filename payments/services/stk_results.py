"""STK Push results: settle a push once, from its callback, a query or a C2B confirmation of
the same payment, booked once across STK and C2B under its receipt."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError
from django.db import transaction as db_transaction

from payments.daraja.client import DarajaClient
from payments.enums import TransactionStatus, TransactionType, stk_result_outcome
from payments.gateway import get_daraja_client
from payments.logs import log_context
from payments.models import INCOMING_TYPES, Transaction
from payments.services.common import send_on_commit
from payments.signals import payment_failed, payment_succeeded

logger = logging.getLogger(__name__)

S = TransactionStatus
# What settling a push with its result writes (stk_result_apply).
RESULT_FIELDS = (
    "status",
    "result_code",
    "result_desc",
    "mpesa_receipt_number",
    "transaction_date",
    "metadata",
    "updated_at",
)


def stk_query_settle(
    *, transaction: Transaction, client: DarajaClient | None = None
) -> Transaction:
    """Ask Daraja for the result of a push and settle with it; raises DarajaError.

    A query never downgrades a success: the transition table forbids it. A query that says
    "paid" carries no receipt and no amount, so the push only becomes ``awaiting_receipt``: the
    callback or the C2B confirmation completes it.
    """
    client = client or get_daraja_client()
    with log_context(transaction_id=str(transaction.pk)):
        answer = client.stk_query(checkout_request_id=transaction.checkout_request_id)
    if answer.is_pending or answer.result_code is None:
        return transaction
    with db_transaction.atomic():
        locked = Transaction.objects.select_for_update().get(pk=transaction.pk)
        outcome = stk_result_outcome(answer.result_code)
        if locked.needs_review:
            # A person is deciding about this payment (e.g. a callback for another amount):
            # the query, which carries no amount, is noted but settles nothing.
            locked.metadata = {
                **locked.metadata,
                "query_while_in_review": {"result_code": answer.result_code},
            }
            locked.save()
        elif outcome.status == S.SUCCESS:
            if locked.can_transition_to(S.AWAITING_RECEIPT):
                _await_receipt(locked, answer.result_code, answer.result_desc)
        elif locked.can_transition_to(outcome.status):
            stk_result_apply(
                transaction=locked,
                result_code=answer.result_code,
                result_desc=answer.result_desc,
                source="stk_query",
            )
    return locked


def _await_receipt(transaction: Transaction, result_code: str, result_desc: str) -> None:
    transaction.transition_to(S.AWAITING_RECEIPT)
    transaction.result_code = result_code
    transaction.result_desc = result_desc[:255]
    transaction.metadata = {
        **transaction.metadata,
        "result": {"source": "stk_query", "result_code": result_code},
    }
    transaction.save()
    logger.info(
        "transaction %s paid by STK query; awaiting its receipt",
        transaction.pk,
        extra={"transaction_id": str(transaction.pk)},
    )


def stk_payment_book(
    *,
    transaction: Transaction,
    receipt_number: str,
    result_desc: str,
    source: str,
    transaction_date: datetime | None = None,
    details: dict[str, Any] | None = None,
    also_changed: tuple[str, ...] | None = None,
) -> Transaction | None:
    """Book a locked push as paid under its M-Pesa receipt, once across STK and C2B.

    The receipt may already be on the ledger: on a C2B row (its confirmation came first and
    matched no push) the push is linked to that row, paid but not a second entry, and no
    signal is sent. Returns the row that holds the receipt when it is another push's: the
    caller refuses the result. The caller checked amount and phone.
    """
    # Booked first, asked after: the unique receipt constraint finds a holder (a C2B row whose
    # confirmation came first, a copy booked concurrently) without a lookup on every payment.
    # The savepoint keeps the transaction usable when it does.
    before = {name: getattr(transaction, name) for name in RESULT_FIELDS}
    try:
        with db_transaction.atomic():
            stk_result_apply(
                transaction=transaction,
                result_code="0",
                result_desc=result_desc,
                source=source,
                receipt_number=receipt_number,
                transaction_date=transaction_date,
                details=details,
                also_changed=also_changed,
            )
        return None
    except IntegrityError:
        # Nothing was written: the push is as it was before, the caller's changes included.
        for name, value in before.items():
            setattr(transaction, name, value)
        holder = _receipt_holder(receipt_number, transaction)
        if holder is None:
            raise
    if holder.transaction_type != TransactionType.C2B:
        return holder
    transaction.transition_to(S.SUCCESS)
    transaction.booked_as = holder
    transaction.result_code = "0"
    transaction.result_desc = result_desc[:255]
    transaction.transaction_date = transaction_date or transaction.transaction_date
    transaction.metadata = {
        **transaction.metadata,
        "result": {
            "source": source,
            "result_code": "0",
            "booked_as": str(holder.pk),
            **(details or {}),
        },
    }
    transaction.save()
    logger.info(
        "transaction %s paid; booked as C2B payment %s",
        transaction.pk,
        holder.pk,
        extra={"transaction_id": str(transaction.pk)},
    )
    return None


def _receipt_holder(receipt_number: str, transaction: Transaction) -> Transaction | None:
    return (
        Transaction.objects.select_for_update()
        .filter(transaction_type__in=INCOMING_TYPES, mpesa_receipt_number=receipt_number)
        .exclude(pk=transaction.pk)
        .first()
    )


def stk_result_apply(
    *,
    transaction: Transaction,
    result_code: str,
    result_desc: str,
    source: str,
    receipt_number: str | None = None,
    transaction_date: datetime | None = None,
    details: dict[str, Any] | None = None,
    also_changed: tuple[str, ...] | None = None,
) -> None:
    """Move a locked transaction to the status of ``result_code`` and schedule its signal.

    The caller holds the row lock and has checked that the transition is allowed.
    ``also_changed`` names the fields the caller changed on it beforehand: only those and the
    result's are written (a callback's hot path). None (the default) writes every field.
    """
    outcome = stk_result_outcome(result_code)
    transaction.transition_to(outcome.status)
    transaction.result_code = result_code
    transaction.result_desc = result_desc[:255]
    if receipt_number:
        transaction.mpesa_receipt_number = receipt_number
    if transaction_date:
        transaction.transaction_date = transaction_date
    transaction.metadata = {
        **transaction.metadata,
        "result": {"source": source, "result_code": result_code, **(details or {})},
    }
    if also_changed is None:
        transaction.save()
    else:
        transaction.save(update_fields=(*RESULT_FIELDS, *also_changed))
    signal = payment_succeeded if outcome.status == S.SUCCESS else payment_failed
    send_on_commit(signal, transaction=transaction)
    logger.info(
        "transaction %s settled as %s by %s",
        transaction.pk,
        outcome.status,
        source,
        extra={"transaction_id": str(transaction.pk), "result_code": result_code},
    )

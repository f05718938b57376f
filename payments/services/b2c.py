"""B2C payouts: record first, send once, settle from the result or a status query."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction as db_transaction
from django.db.models import Model, Sum

from payments.conf import payments_settings
from payments.daraja.client import DarajaClient
from payments.enums import B2CCommand, TransactionStatus, TransactionType
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.gateway import get_daraja_client
from payments.models import PayoutRequest, Transaction
from payments.services.approvals import approval_request_link
from payments.services.common import (
    MAY_HAVE_MOVED,
    PAYOUT_LEDGER_LOCK,
    for_object_fields,
    ledger_lock,
    money_out_send,
    nairobi_day_start,
    security_credential_check,
    send_on_commit,
    validated_phone_number,
    validated_whole_amount,
)
from payments.signals import payout_completed, payout_failed

logger = logging.getLogger(__name__)

S = TransactionStatus
# Payouts that count against the daily cap: everything that has left or may have left.
COMMITTED_STATUSES = MAY_HAVE_MOVED
REQUIRED_FOR_B2C = ("CONSUMER_KEY", "CONSUMER_SECRET", "B2C_SHORTCODE", "INITIATOR_NAME")


def b2c_payout_initiate(
    *,
    user: Any,
    phone_number: str,
    amount: int,
    remarks: str,
    command_id: str = B2CCommand.BUSINESS_PAYMENT,
    occasion: str = "",
    for_object: Model | None = None,
    payout_request: PayoutRequest | None = None,
    client: DarajaClient | None = None,
) -> Transaction:
    """Send money to a customer. Returns the B2C transaction: pending, unknown or failed.

    ``for_object`` (the host's withdrawal, say) is linked to the payout and passed to its
    signals' receivers; a ``payout_request`` brings its own.

    The row, with our own OriginatorConversationID, is committed before Daraja is called.
    After a read timeout or a 5xx it stays ``unknown`` and is never resent: reconciliation asks
    Transaction Status. Daraja refuses a reused OriginatorConversationID, a second guard.
    ``payout_request``, the request it sends, names the row in that commit: it is sent once.
    """
    payout = b2c_payout_validated(
        phone_number=phone_number,
        amount=amount,
        remarks=remarks,
        command_id=command_id,
        occasion=occasion,
    )
    msisdn, whole_amount = payout["phone_number"], payout["amount"]
    remarks, occasion = payout["remarks"], payout["occasion"]
    link = for_object_fields(for_object)
    if payout_request is not None:
        # The request was linked when it was submitted.
        link = {
            "for_content_type_id": payout_request.for_content_type_id,
            "for_object_id": payout_request.for_object_id,
        }
    missing = payments_settings.missing(REQUIRED_FOR_B2C)
    if missing:
        raise PaymentsNotConfiguredError(
            f"B2C payouts are not configured on this server (missing {', '.join(missing)})."
        )
    client = client or get_daraja_client()
    security_credential_check(client=client, what="B2C payouts")

    transaction_id = uuid.uuid4()
    # Durable: the row is committed before Daraja is called, even inside a caller's atomic().
    with db_transaction.atomic(durable=True):
        # Two payouts checked at once could both fit under the cap.
        ledger_lock(PAYOUT_LEDGER_LOCK)
        _check_daily_cap(whole_amount)
        transaction = Transaction.objects.create(
            id=transaction_id,
            transaction_type=TransactionType.B2C,
            status=S.UNKNOWN,
            phone_number=msisdn,
            amount=whole_amount,
            command_id=command_id,
            remarks=remarks,
            transaction_desc=occasion,
            originator_conversation_id=f"b2c-{transaction_id}",
            environment=payments_settings.ENVIRONMENT,
            shortcode=str(payments_settings.B2C_SHORTCODE),
            user=user if getattr(user, "is_authenticated", False) else None,
            **link,
            metadata={"request": {"amount": whole_amount, "command_id": command_id}},
        )
        if payout_request is not None:
            approval_request_link(payout_request, transaction)
    return money_out_send(
        transaction=transaction,
        what="B2C payout",
        send=lambda result_url, queue_timeout_url: client.b2c_payment(
            originator_conversation_id=transaction.originator_conversation_id,
            phone_number=msisdn,
            amount=whole_amount,
            remarks=remarks,
            occasion=occasion,
            command_id=command_id,
            result_url=result_url,
            queue_timeout_url=queue_timeout_url,
        ),
    )


def b2c_payout_validated(
    *, phone_number: str, amount: Any, remarks: str, command_id: str, occasion: str = ""
) -> dict[str, Any]:
    """A payout's fields, normalised, or PaymentValidationError naming the first bad one."""
    if command_id not in B2CCommand.values:
        raise PaymentValidationError("command_id", f"must be one of {', '.join(B2CCommand.values)}")
    remarks = (remarks or "").strip()
    if not 2 <= len(remarks) <= 100:
        raise PaymentValidationError("remarks", "must be 2 to 100 characters")
    occasion = (occasion or "").strip()
    if len(occasion) > 100:
        raise PaymentValidationError("occasion", "must be at most 100 characters")
    return {
        "phone_number": validated_phone_number(phone_number),
        "amount": validated_whole_amount(
            amount,
            minimum=payments_settings.B2C_MIN_AMOUNT,
            maximum=payments_settings.B2C_MAX_AMOUNT,
        ),
        "command_id": command_id,
        "remarks": remarks,
        "occasion": occasion,
    }


def b2c_result_apply(
    *,
    transaction: Transaction,
    result_code: str,
    result_desc: str,
    source: str,
    receipt_number: str | None = None,
    recipient_name: str | None = None,
    completed_at: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Settle a locked payout from a result (callback or status query) and schedule its signal.

    The caller holds the row lock and checked that the transition is allowed.
    """
    succeeded = result_code == "0"
    transaction.transition_to(S.SUCCESS if succeeded else S.FAILED)
    transaction.result_code = result_code[:20]
    transaction.result_desc = (result_desc or "")[:255]
    if receipt_number:
        transaction.mpesa_receipt_number = receipt_number
    if recipient_name:
        transaction.counterparty_name = recipient_name[:150]
    if completed_at:
        transaction.transaction_date = completed_at
    transaction.metadata = {
        **transaction.metadata,
        "result": {"source": source, "result_code": result_code, **(details or {})},
    }
    transaction.save()
    send_on_commit(payout_completed if succeeded else payout_failed, transaction=transaction)


def b2c_payouts_total_today() -> int:
    """Whole shillings paid out, or possibly paid out, since midnight in Kenya."""
    total = Transaction.objects.filter(
        transaction_type=TransactionType.B2C,
        status__in=COMMITTED_STATUSES,
        created_at__gte=nairobi_day_start(),
    ).aggregate(total=Sum("amount"))["total"]
    return total or 0


def _check_daily_cap(amount: int) -> None:
    cap = int(payments_settings.B2C_DAILY_LIMIT or 0)
    if not cap:
        return
    total = b2c_payouts_total_today()
    if total + amount > cap:
        raise PaymentValidationError(
            "amount",
            f"would take today's payouts to {total + amount} shillings, above the daily "
            f"limit of {cap} ({cap - total} left today)",
        )

"""Account balance and transaction status: ask Daraja, then apply the result it posts back."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction as db_transaction
from django.utils import timezone

from payments.conf import payments_settings
from payments.daraja.callbacks import AccountBalanceResult, TransactionStatusResult, party_name
from payments.daraja.client import DarajaClient
from payments.daraja.errors import DarajaConfigurationError, DarajaError
from payments.enums import InquiryKind, InquiryStatus, TransactionStatus, TransactionType
from payments.exceptions import PaymentsError, PaymentsNotConfiguredError, PaymentValidationError
from payments.gateway import get_daraja_client
from payments.logs import log_context
from payments.models import BalanceSnapshot, DarajaInquiry, Transaction
from payments.services.b2c import b2c_result_apply
from payments.services.common import (
    amount_matches,
    callback_url,
    column_text,
    error_details,
    security_credential_check,
)
from payments.services.reversals import reversal_result_apply
from payments.services.stk_results import stk_payment_book, stk_query_settle
from payments.signals import balance_updated

logger = logging.getLogger(__name__)

S = TransactionStatus
REQUIRED_FOR_INQUIRIES = ("CONSUMER_KEY", "CONSUMER_SECRET", "INITIATOR_NAME")
# Transaction Status's word for "it went through" (API.md §7).
COMPLETED = "completed"
# Transaction Status's result codes for "M-Pesa holds no transaction under this id". API.md §7
# documents none; Daraja's sandbox has been seen answering an unknown id with 2032 "The
# transaction receipt number does not exist." (ResultType 0, no ResultParameters). Only these
# codes can fail a request; any other answer is left to a person.
NOT_FOUND_RESULT_CODES = frozenset({"2032"})
# Money out whose request may never have reached M-Pesa (Daraja's answer was lost, or its queue
# timed out), which Transaction Status can settle as failed when it finds no such transaction.
# A pending one was accepted and awaits its result: "no such transaction" is left to a person.
FATE_UNKNOWN = (S.UNKNOWN,)


class DarajaRefusedError(PaymentsError):
    """Daraja definitely refused a request; ``code`` is its error code, ``inquiry`` the inquiry
    it refused (stored as failed), if any."""

    code = "daraja_error"

    def __init__(
        self, message: str, *, code: str | None = None, inquiry: DarajaInquiry | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.inquiry = inquiry


def account_balance_request(
    *, user: Any = None, shortcode: str = "", client: DarajaClient | None = None
) -> DarajaInquiry:
    """Ask Daraja for the shortcode's balances; they arrive later as a result callback."""
    shortcode = shortcode or str(payments_settings.SHORTCODE)
    client = _ready_client(client)
    # Durable: committed before Daraja is called, so its result always finds it.
    with db_transaction.atomic(durable=True):
        inquiry = DarajaInquiry.objects.create(
            kind=InquiryKind.BALANCE,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
            metadata={"shortcode": shortcode},
        )
    return _send(
        inquiry,
        client,
        lambda c, result_url, timeout_url: c.account_balance(
            shortcode=shortcode, result_url=result_url, queue_timeout_url=timeout_url
        ),
    )


def transaction_status_query(
    *, transaction: Transaction, user: Any = None, client: DarajaClient | None = None
) -> DarajaInquiry:
    """Ask Daraja about one transaction, by receipt or by OriginatorConversationID."""
    receipt = transaction.mpesa_receipt_number
    originator_id = transaction.originator_conversation_id or ""
    if not (receipt or originator_id):
        # Nothing to ask Daraja with (its answer to our request was lost): only a person with
        # the M-Pesa Org portal can settle it, and reconciliation stops picking it.
        reason = "no M-Pesa receipt or conversation id to ask about: check the M-Pesa Org portal"
        Transaction.objects.filter(pk=transaction.pk).update(
            needs_review=True, review_reason=reason
        )
        raise PaymentValidationError("transaction", f"has {reason}")
    shortcode = transaction.shortcode or str(payments_settings.SHORTCODE)
    client = _ready_client(client)
    # Durable: committed before Daraja is called, so its result always finds it.
    with db_transaction.atomic(durable=True):
        inquiry = DarajaInquiry.objects.create(
            kind=InquiryKind.STATUS,
            transaction=transaction,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
            metadata={"receipt": receipt, "originator_conversation_id": originator_id},
        )
    return _send(
        inquiry,
        client,
        lambda c, result_url, timeout_url: c.transaction_status(
            transaction_id=receipt,
            original_conversation_id="" if receipt else originator_id,
            shortcode=shortcode,
            result_url=result_url,
            queue_timeout_url=timeout_url,
        ),
    )


def balance_result_apply(*, inquiry: DarajaInquiry, result: AccountBalanceResult) -> None:
    """Store one snapshot per account of a successful balance result (inquiry locked)."""
    _inquiry_settle(inquiry, result.result_code, result.result_desc)
    if not result.is_success:
        return
    reported_at = result.completed_at or timezone.now()
    snapshots = [
        BalanceSnapshot.objects.create(
            inquiry=inquiry,
            shortcode=inquiry.metadata.get("shortcode", ""),
            account=column_text(BalanceSnapshot, "account", account.name),
            currency=column_text(BalanceSnapshot, "currency", account.currency or ""),
            current=account.current,
            available=account.available,
            reserved=account.reserved,
            uncleared=account.uncleared,
            reported_at=reported_at,
        )
        for account in result.accounts
    ]
    db_transaction.on_commit(
        lambda: balance_updated.send(sender=BalanceSnapshot, snapshots=snapshots), robust=True
    )


def status_result_apply(*, inquiry: DarajaInquiry, result: TransactionStatusResult) -> str:
    """Settle the inquiry's transaction from a Transaction Status result (inquiry locked).

    "Completed" with result 0 settles it, never downgrading. "No such transaction" fails a
    payout or refund of unknown fate, once asked after STATUS_NOT_FOUND_GRACE
    (``_not_found_apply``). Other answers are kept for a human, and the transaction is flagged
    for review. Returns what happened.
    """
    _inquiry_settle(inquiry, result.result_code, result.result_desc)
    transaction = Transaction.objects.select_for_update().get(pk=inquiry.transaction_id)
    completed = result.is_success and (result.transaction_status or "").lower() == COMPLETED
    if (
        result.result_code in NOT_FOUND_RESULT_CODES
        and transaction.status in FATE_UNKNOWN
        and transaction.transaction_type in (TransactionType.B2C, TransactionType.REVERSAL)
    ):
        return _not_found_apply(inquiry, transaction, result)
    if not completed:
        transaction.flag_for_review(
            f"Transaction Status answered {result.result_code} "
            f"{result.transaction_status or ''}: {result.result_desc}".strip()
        )
        transaction.save()
        return "flagged"
    if not transaction.can_transition_to(S.SUCCESS):
        if transaction.status in (S.SUCCESS, S.REVERSED):
            return "unchanged"
        # M-Pesa says it went through, our ledger says it did not: money may have moved.
        transaction.flag_for_review(
            f"Transaction Status reports Completed, but the transaction is {transaction.status}"
        )
        transaction.save()
        return "flagged"
    if not amount_matches(transaction.amount, result.amount):
        transaction.flag_for_review(
            f"Transaction Status reports amount {result.amount}, not {transaction.amount}"
        )
        transaction.save()
        return "flagged"
    source = f"status:{inquiry.pk}"
    details = {"transaction_status": result.transaction_status}
    if transaction.transaction_type == TransactionType.B2C:
        b2c_result_apply(
            transaction=transaction,
            result_code="0",
            result_desc=result.result_desc,
            source=source,
            receipt_number=result.receipt_number,
            recipient_name=party_name(result.credit_party_name),
            completed_at=result.finalised_at,
            details=details,
        )
    elif transaction.transaction_type == TransactionType.REVERSAL:
        reversal_result_apply(
            reversal=transaction,
            result_code="0",
            result_desc=result.result_desc,
            source=source,
            receipt_number=result.receipt_number,
            completed_at=result.finalised_at,
            details=details,
        )
    elif transaction.transaction_type == TransactionType.STK_PUSH and result.receipt_number:
        holder = stk_payment_book(
            transaction=transaction,
            receipt_number=result.receipt_number,
            result_desc=result.result_desc,
            source=source,
            transaction_date=result.finalised_at,
            details=details,
        )
        if holder is not None:
            transaction.flag_for_review(
                f"receipt {result.receipt_number} already belongs to payment {holder.pk}"
            )
            transaction.save()
            return "flagged"
    else:  # C2B rows are born successful and never awaiting a result
        return "unchanged"
    return "settled"


def _not_found_apply(
    inquiry: DarajaInquiry, transaction: Transaction, result: TransactionStatusResult
) -> str:
    """M-Pesa holds no transaction for a payout or refund of unknown fate. Asked long enough
    after the request, that means it never reached M-Pesa and
    moved no money: it fails, with the answer as its reason. Asked sooner, M-Pesa may not have
    recorded it yet: reconciliation asks again once the grace period is over.
    """
    grace = timedelta(seconds=payments_settings.STATUS_NOT_FOUND_GRACE)
    if inquiry.created_at - transaction.created_at < grace:
        interval = timedelta(seconds=payments_settings.RECONCILE_INTERVAL)
        transaction.last_queried_at = max(
            transaction.last_queried_at or timezone.now(), transaction.created_at + grace - interval
        )
        transaction.save(update_fields=["last_queried_at"])
        return "unchanged"
    waited = int((inquiry.created_at - transaction.created_at).total_seconds())
    reason = (
        f"M-Pesa has no such transaction ({result.result_desc.strip() or result.result_code}), "
        f"asked {waited} s after it was recorded: the request never reached M-Pesa."
    )
    failure = {
        "result_code": result.result_code,
        "result_desc": reason,
        "source": f"status:{inquiry.pk}",
        "details": {"not_found": True},
    }
    if transaction.transaction_type == TransactionType.B2C:
        b2c_result_apply(transaction=transaction, **failure)
    else:
        reversal_result_apply(reversal=transaction, **failure)
    logger.warning(
        "transaction %s failed: %s",
        transaction.pk,
        reason,
        extra={"transaction_id": str(transaction.pk), "inquiry_id": inquiry.pk},
    )
    return "settled"


def inquiry_queue_timeout_apply(*, inquiry: DarajaInquiry) -> bool:
    """Daraja's queue timed out: the inquiry's answer will not come; it may be asked again.

    Returns False, changing nothing, for an inquiry already answered or timed out (a repeated
    timeout, or one that lost the race to its result).
    """
    answered = inquiry.completed_at is not None
    if answered or inquiry.status not in (InquiryStatus.PENDING, InquiryStatus.UNKNOWN):
        return False
    inquiry.status = InquiryStatus.UNKNOWN
    inquiry.result_desc = "Daraja's queue timed out before answering."
    inquiry.completed_at = timezone.now()
    inquiry.save()
    return True


def _inquiry_settle(inquiry: DarajaInquiry, result_code: str, result_desc: str) -> None:
    inquiry.status = InquiryStatus.COMPLETED if result_code == "0" else InquiryStatus.FAILED
    inquiry.result_code = result_code[:20]
    inquiry.result_desc = (result_desc or "")[:255]
    inquiry.completed_at = timezone.now()
    inquiry.save()


def _ready_client(client: DarajaClient | None) -> DarajaClient:
    """The client, once an inquiry can be sent: checked before it is recorded, so a server
    that cannot send one records nothing."""
    missing = payments_settings.missing(REQUIRED_FOR_INQUIRIES)
    if missing:
        raise PaymentsNotConfiguredError(
            f"M-Pesa inquiries are not configured on this server (missing {', '.join(missing)})."
        )
    client = client or get_daraja_client()
    security_credential_check(client=client, what="M-Pesa inquiries")
    return client


def _send(inquiry: DarajaInquiry, client: DarajaClient, call) -> DarajaInquiry:
    kind = inquiry.kind
    ids = {"inquiry_id": inquiry.pk}
    if inquiry.transaction_id:
        ids["transaction_id"] = str(inquiry.transaction_id)
    try:
        with log_context(**ids):
            ack = call(
                client,
                callback_url(f"payments:{kind}-result", callback_token=inquiry.token),
                callback_url(f"payments:{kind}-timeout", callback_token=inquiry.token),
            )
    except DarajaConfigurationError as exc:
        inquiry.status = InquiryStatus.FAILED
        inquiry.save()
        raise PaymentsNotConfiguredError(f"M-Pesa inquiries are misconfigured: {exc}") from exc
    except DarajaError as exc:
        inquiry.metadata = {**inquiry.metadata, "request_error": error_details(exc)}
        if exc.outcome_unknown:
            inquiry.save()
            return inquiry
        inquiry.status = InquiryStatus.FAILED
        inquiry.result_code = (exc.error_code or "")[:20]
        inquiry.result_desc = (exc.error_message or str(exc))[:255]
        inquiry.save()
        raise DarajaRefusedError(
            inquiry.result_desc, code=exc.error_code or DarajaRefusedError.code, inquiry=inquiry
        ) from exc
    inquiry.status = InquiryStatus.PENDING
    inquiry.originator_conversation_id = ack.originator_conversation_id or ""
    inquiry.conversation_id = ack.conversation_id
    inquiry.metadata = {**inquiry.metadata, "acknowledgement": ack.raw}
    inquiry.save()
    return inquiry


def transaction_refresh(
    *, transaction: Transaction, user: Any = None, client: DarajaClient | None = None
) -> tuple[Transaction, DarajaInquiry | None]:
    """Bring one transaction up to date: an STK query now, or a Transaction Status inquiry.

    Returns the transaction and, for a status inquiry, the inquiry whose result comes later.
    """
    if transaction.transaction_type == TransactionType.STK_PUSH and transaction.checkout_request_id:
        try:
            return stk_query_settle(transaction=transaction, client=client), None
        except DarajaError as exc:
            raise DarajaRefusedError(
                exc.error_message or str(exc), code=exc.error_code or DarajaRefusedError.code
            ) from exc
    return transaction, transaction_status_query(transaction=transaction, user=user, client=client)

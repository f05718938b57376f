"""STK Push: start a payment, learn its result from a callback or a query, settle it once."""

from __future__ import annotations

import contextlib
import logging
import re
from datetime import timedelta
from typing import Any

from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.db.models import Model, Q
from django.utils import timezone

from payments.conf import REQUIRED_FOR_STK, payments_settings
from payments.daraja.client import DarajaClient
from payments.daraja.errors import (
    DarajaConfigurationError,
    DarajaError,
    InvalidFieldError,
)
from payments.daraja.phone import mask_phone_number
from payments.daraja.responses import StkPushResponse
from payments.enums import TransactionStatus, TransactionType
from payments.exceptions import PaymentsError, PaymentsNotConfiguredError, PaymentValidationError
from payments.gateway import get_daraja_client
from payments.logs import log_context
from payments.models import IdempotencyKey, Transaction
from payments.services.background import background_busy, background_run_on_commit
from payments.services.common import (
    callback_url,
    for_object_fields,
    ledger_lock,
    request_error_record,
    validated_phone_number,
    validated_whole_amount,
)
from payments.services.idempotency import idempotency_key_link
from payments.services.stk_results import stk_query_settle

logger = logging.getLogger(__name__)

S = TransactionStatus
ACCOUNT_REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]{0,11}")
# Daraja shows these in the prompt; special characters have made requests fail (API.md §2.1).
ACCOUNT_REFERENCE_RULE = (
    "1 to 12 letters, digits, spaces or dashes, starting with a letter or digit"
)
TRANSACTION_DESC_MAX = 100
AWAITING_RESULT = (S.PENDING, S.UNKNOWN)
# What merging Daraja's acknowledgement into a push writes.
ACKNOWLEDGEMENT_FIELDS = (
    "merchant_request_id",
    "metadata",
    "checkout_request_id",
    "status",
    "needs_review",
    "review_reason",
    "updated_at",
)
# A checkout link is for one payment: these statuses have paid it, or still may.
CHECKOUT_LINK_USED_STATUSES = (S.PENDING, S.UNKNOWN, S.AWAITING_RECEIPT, S.SUCCESS, S.REVERSED)


class CheckoutLinkUsedError(PaymentsError):
    """The one-time checkout link already has a payment that succeeded or may still succeed."""

    code = "checkout_link_used"

    def __init__(self, transaction: Transaction) -> None:
        paid = transaction.status in (S.SUCCESS, S.REVERSED)
        super().__init__(
            "This payment link has already been paid."
            if paid
            else "A payment for this link is already in progress."
        )
        self.transaction = transaction


def stk_push_initiate(
    *,
    user: Any,
    phone_number: str,
    amount: int,
    account_reference: str,
    transaction_desc: str = "",
    checkout_link: str = "",
    for_object: Model | None = None,
    idempotency_key: IdempotencyKey | None = None,
    client: DarajaClient | None = None,
) -> Transaction:
    """Start an STK Push and return its transaction: pending, unknown or failed.

    ``for_object`` (the host's order, say) is linked to the payment, shown in the API and the
    admin, and passed to its signals' receivers as ``for_object``.

    The row, with its callback token, is committed before Daraja is called and no lock is held
    during the call, so a callback that beats the acknowledgement still finds its row. A read
    timeout or a 5xx leaves the row ``unknown``: the push is never resent; the callback or
    reconciliation settles it.

    ``checkout_link`` (the link's key) makes the push the link's one payment: while another of
    its payments succeeded or may still succeed, CheckoutLinkUsedError is raised and nothing is
    sent. ``idempotency_key`` (the API request's claimed key) is told of the row in its commit.
    """
    msisdn, whole_amount, reference, description = _validated_push(
        phone_number=phone_number,
        amount=amount,
        account_reference=account_reference,
        transaction_desc=transaction_desc,
    )
    link = for_object_fields(for_object)
    missing = payments_settings.missing(REQUIRED_FOR_STK)
    if missing:
        raise PaymentsNotConfiguredError(
            "M-Pesa payments are not configured on this server (missing "
            + ", ".join(missing)
            + ")."
        )
    client = client or get_daraja_client()

    # Durable: committed here, before Daraja is called, even inside a caller's atomic().
    with db_transaction.atomic(durable=True):
        if checkout_link:
            _checkout_link_claim(checkout_link)
        transaction = Transaction.objects.create(
            transaction_type=TransactionType.STK_PUSH,
            status=S.UNKNOWN,
            phone_number=msisdn,
            amount=whole_amount,
            account_reference=reference,
            transaction_desc=description,
            environment=payments_settings.ENVIRONMENT,
            shortcode=str(payments_settings.SHORTCODE),
            user=user if getattr(user, "is_authenticated", False) else None,
            checkout_link=checkout_link,
            **link,
            metadata={
                "request": {
                    "amount": whole_amount,
                    "account_reference": reference,
                    "transaction_desc": description,
                    "transaction_type": payments_settings.STK_TRANSACTION_TYPE,
                }
            },
        )
        idempotency_key_link(record=idempotency_key, transaction=transaction)
    log_extra = {"transaction_id": str(transaction.pk), "phone": mask_phone_number(msisdn)}
    try:
        with log_context(transaction_id=str(transaction.pk)):
            ack = client.stk_push(
                phone_number=msisdn,
                amount=whole_amount,
                account_reference=reference,
                transaction_desc=description,
                callback_url=callback_url(
                    "payments:stk-callback", callback_token=transaction.callback_token
                ),
            )
    except DarajaError as exc:
        if exc.outcome_unknown:
            logger.warning(
                "stk push outcome unknown for %s: %s", transaction.pk, exc, extra=log_extra
            )
            return request_error_record(transaction=transaction, exc=exc, refused=False)
        logger.warning("stk push refused for %s: %s", transaction.pk, exc, extra=log_extra)
        return request_error_record(transaction=transaction, exc=exc, refused=True)
    except (InvalidFieldError, DarajaConfigurationError) as exc:
        # Our own validation ran first, so this is a configuration problem: nothing was sent.
        request_error_record(transaction=transaction, exc=exc, refused=True)
        raise PaymentsNotConfiguredError(f"M-Pesa payments are misconfigured: {exc}") from exc

    try:
        locked = _acknowledgement_apply_unchanged(transaction, ack)
        if locked is None:
            locked = _acknowledgement_merge(transaction, ack, ask_first=False)
    except IntegrityError:
        # Another row holds the CheckoutRequestID (the unique column refused it): nothing was
        # written; merged again, asking first, the push is flagged.
        locked = _acknowledgement_merge(transaction, ack, ask_first=True)
    logger.info("stk push accepted for %s", transaction.pk, extra=log_extra)
    return locked


def _acknowledgement_apply_unchanged(
    transaction: Transaction, ack: StkPushResponse
) -> Transaction | None:
    """The usual case in one UPDATE, no lock read: the row is as this request inserted it
    (still unknown, no CheckoutRequestID, not flagged, not saved since: its updated_at), so
    the merge of ``_acknowledgement_merge`` is known without reading it. None when the row
    changed meanwhile (its callback came first, say): the caller merges under the lock.
    Raises IntegrityError when another row holds the CheckoutRequestID.
    """
    now = timezone.now()
    metadata = _acknowledged(transaction.metadata, ack)
    # Inside a caller's transaction (tests), a savepoint: the unique column's refusal must
    # not break it. Outside one, the UPDATE is its own transaction.
    in_transaction = db_transaction.get_connection().in_atomic_block
    with db_transaction.atomic() if in_transaction else contextlib.nullcontext():
        updated = Transaction.objects.filter(
            pk=transaction.pk,
            status=S.UNKNOWN,
            checkout_request_id__isnull=True,
            needs_review=False,
            updated_at=transaction.updated_at,
        ).update(
            merchant_request_id=ack.merchant_request_id,
            checkout_request_id=ack.checkout_request_id,
            status=S.PENDING,
            metadata=metadata,
            updated_at=now,
        )
    if not updated:
        return None
    transaction.merchant_request_id = ack.merchant_request_id
    transaction.checkout_request_id = ack.checkout_request_id
    transaction.transition_to(S.PENDING)
    transaction.metadata = metadata
    transaction.updated_at = now
    return transaction


def _acknowledgement_merge(
    transaction: Transaction, ack: StkPushResponse, *, ask_first: bool
) -> Transaction:
    """Merge Daraja's acknowledgement into the push under its lock, in one transaction.

    Whether another push holds the acknowledged CheckoutRequestID is asked of the database
    first only when ``ask_first`` or when the push has an id already (its callback came
    first); otherwise the unique column answers, raising IntegrityError: one query fewer on
    every push.
    """
    with db_transaction.atomic():
        locked = Transaction.objects.select_for_update().get(pk=transaction.pk)
        locked.merchant_request_id = ack.merchant_request_id
        locked.metadata = _acknowledged(locked.metadata, ack)
        holder = None
        if ask_first or locked.checkout_request_id is not None:
            holder = (
                Transaction.objects.filter(checkout_request_id=ack.checkout_request_id)
                .exclude(pk=locked.pk)
                .values_list("pk", flat=True)
                .order_by()
                .first()
            )
        if holder is not None:
            # Daraja named another push of ours: neither its callback nor a query can tell
            # this one apart any more. It stays unknown, for a person.
            locked.flag_for_review(
                f"Daraja acknowledged it with CheckoutRequestID {ack.checkout_request_id}, "
                f"which is already transaction {holder}'s"
            )
        else:
            locked.checkout_request_id = locked.checkout_request_id or ack.checkout_request_id
            # The callback may already have settled it: an acknowledgement never undoes that.
            if locked.status == S.UNKNOWN:
                locked.transition_to(S.PENDING)
        locked.save(update_fields=ACKNOWLEDGEMENT_FIELDS)
    return locked


def _acknowledged(metadata: dict[str, Any], ack: StkPushResponse) -> dict[str, Any]:
    """A push's metadata with Daraja's acknowledgement merged in."""
    return {**metadata, "acknowledgement": ack.raw, "customer_message": ack.customer_message}


def stk_push_refresh_if_stale(*, transaction: Transaction) -> Transaction:
    """Have Daraja asked, off the request path, about a push still awaiting its result after
    STK_QUERY_AFTER seconds; return the push as stored, at once.

    A status poll never waits for Daraja: the query runs on a background thread with the short
    STK_QUERY_TIMEOUT, and a later poll shows its answer. At most one caller queries per
    STK_QUERY_INTERVAL, across processes: the caller whose conditional update of
    ``last_queried_at`` changes the row is the one that has it asked. A process already
    running STK_QUERY_THREADS queries claims nothing: a later poll or reconciliation asks.
    """
    if transaction.status not in AWAITING_RESULT or not transaction.checkout_request_id:
        return transaction
    now = timezone.now()
    if transaction.created_at > now - timedelta(seconds=payments_settings.STK_QUERY_AFTER):
        return transaction
    if background_busy(limit=payments_settings.STK_QUERY_THREADS):
        return transaction
    interval = timedelta(seconds=payments_settings.STK_QUERY_INTERVAL)
    if transaction.last_queried_at is not None and transaction.last_queried_at > now - interval:
        return transaction  # asked lately, as the row just read says: no claim to try
    claimed = (
        Transaction.objects.filter(pk=transaction.pk, status__in=AWAITING_RESULT)
        .filter(Q(last_queried_at__isnull=True) | Q(last_queried_at__lte=now - interval))
        .update(last_queried_at=now)
    )
    if claimed:
        background_run_on_commit(
            name="stk-query",
            work=lambda: stk_push_query(
                transaction=transaction, client=get_daraja_client(background=True)
            ),
        )
    return transaction


def stk_push_query(*, transaction: Transaction, client: DarajaClient | None = None) -> Transaction:
    """Ask Daraja for the result of a push and settle with it; Daraja errors are logged only.

    "Being processed" leaves it pending; an error leaves it for the next query or
    reconciliation.
    """
    try:
        return stk_query_settle(transaction=transaction, client=client)
    except DarajaError as exc:
        logger.warning(
            "stk query failed for %s: %s",
            transaction.pk,
            exc,
            extra={"transaction_id": str(transaction.pk), "error_code": exc.error_code},
        )
        return transaction


def _checkout_link_claim(checkout_link: str) -> None:
    """Refuse a second payment for a one-time link; the lock makes check and insert one step."""
    ledger_lock(f"checkout-link:{checkout_link}")
    used = (
        Transaction.objects.filter(
            checkout_link=checkout_link, status__in=CHECKOUT_LINK_USED_STATUSES
        )
        .order_by("-created_at")
        .first()
    )
    if used is not None:
        raise CheckoutLinkUsedError(used)


def _validated_push(
    *, phone_number: str, amount: Any, account_reference: str, transaction_desc: str
) -> tuple[str, int, str, str]:
    msisdn = validated_phone_number(phone_number)
    whole_amount = validated_whole_amount(
        amount,
        minimum=payments_settings.STK_MIN_AMOUNT,
        maximum=payments_settings.STK_MAX_AMOUNT,
    )
    reference = (account_reference or "").strip()
    if not ACCOUNT_REFERENCE_PATTERN.fullmatch(reference):
        raise PaymentValidationError("account_reference", f"must be {ACCOUNT_REFERENCE_RULE}")
    description = (transaction_desc or "").strip()
    if len(description) > TRANSACTION_DESC_MAX:
        raise PaymentValidationError(
            "transaction_desc", f"must be at most {TRANSACTION_DESC_MAX} characters"
        )
    return msisdn, whole_amount, reference, description or reference

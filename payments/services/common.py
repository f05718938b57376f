"""Helpers shared by the services."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db import transaction as db_transaction
from django.db.models import Model, QuerySet, Sum
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone

from payments.conf import payments_settings
from payments.daraja.client import DarajaClient
from payments.daraja.dates import NAIROBI
from payments.daraja.errors import DarajaConfigurationError, DarajaError, InvalidFieldError
from payments.daraja.phone import normalize_phone_number
from payments.enums import TransactionStatus, TransactionType
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.logs import log_context
from payments.models import Transaction
from payments.signals import payment_failed, payout_failed, reversal_failed

logger = logging.getLogger(__name__)

# The largest amount every database holds in an amount column (PositiveIntegerField).
AMOUNT_MAX = 2**31 - 1
# PayBill, till and B2C shortcodes; [0-9], not \d, which takes the digits of every script.
SHORTCODE_PATTERN = re.compile(r"[0-9]{5,7}")
SHORTCODE_RULE = "must be 5 to 7 digits"


def callback_url(view_name: str, **kwargs: str) -> str:
    """The public URL Daraja calls for ``view_name``: CALLBACK_BASE_URL + our path."""
    base = str(payments_settings.CALLBACK_BASE_URL).rstrip("/")
    return base + reverse(view_name, kwargs=kwargs)


def send_on_commit(signal: Signal, **kwargs: Any) -> None:
    """Send ``signal`` once the current database transaction commits, never before.

    A signal about a transaction also carries its ``for_object`` (the host's order, or None),
    read after the commit: a host marks its order paid in one handler.
    """

    def send() -> None:
        transaction = kwargs.get("transaction")
        if transaction is not None:
            kwargs.setdefault("for_object", transaction.for_object)
        signal.send(sender=Transaction, **kwargs)

    db_transaction.on_commit(send, robust=True)


FOR_OBJECT_ID_MAX = 64


def for_object_fields(for_object: Model | None) -> dict[str, Any]:
    """The ForObject columns linking a row to ``for_object``, a saved model instance of the
    host's (or nothing for None); PaymentValidationError names ``for_object`` otherwise."""
    if for_object is None:
        return {}
    if not isinstance(for_object, Model) or for_object.pk is None:
        raise PaymentValidationError("for_object", "must be a saved model instance")
    object_id = str(for_object.pk)
    if len(object_id) > FOR_OBJECT_ID_MAX:
        raise PaymentValidationError(
            "for_object", f"must have a primary key of at most {FOR_OBJECT_ID_MAX} characters"
        )
    return {
        "for_content_type": ContentType.objects.get_for_model(for_object),
        "for_object_id": object_id,
    }


def failure_signal_send(transaction: Transaction) -> None:
    """Schedule the signal that says ``transaction`` ended without moving money."""
    if transaction.transaction_type == TransactionType.REVERSAL:
        send_on_commit(reversal_failed, transaction=transaction, original=transaction.original)
    elif transaction.transaction_type == TransactionType.B2C:
        send_on_commit(payout_failed, transaction=transaction)
    elif transaction.transaction_type == TransactionType.STK_PUSH:
        send_on_commit(payment_failed, transaction=transaction)


def ledger_lock(name: str) -> None:
    """Serialise a check-then-insert on the ledger under ``name`` until the transaction ends.

    Two requests checked at once could each fit under a limit that together they pass (or
    each find a checkout link unused): on PostgreSQL a transaction-scoped advisory lock makes
    check-and-insert one at a time; SQLite writes one at a time anyway. Call it in ``atomic()``.
    """
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def error_details(exc: Exception) -> dict[str, Any]:
    """What a DarajaError says, for a transaction's metadata; no secrets are in it."""
    return {
        "error": type(exc).__name__,
        "error_code": getattr(exc, "error_code", None),
        "error_message": getattr(exc, "error_message", None),
        "request_id": getattr(exc, "request_id", None),
        "http_status": getattr(exc, "http_status", None),
    }


def request_error_record(*, transaction: Transaction, exc: Exception, refused: bool) -> Transaction:
    """Record a failed request to Daraja on its write-ahead row.

    ``refused``: Daraja definitely did not act, so the row fails. Otherwise the outcome is
    unknown and the row stays ``unknown`` for the callback or reconciliation to settle.
    """
    details = error_details(exc)
    with db_transaction.atomic():
        locked = Transaction.objects.select_for_update().get(pk=transaction.pk)
        locked.metadata = {**locked.metadata, "request_error": details}
        if refused and locked.can_transition_to("failed"):
            locked.transition_to("failed")
            locked.result_code = (details["error_code"] or "")[:20]
            locked.result_desc = (details["error_message"] or str(exc))[:255]
            failure_signal_send(locked)
        locked.save()
    return locked


# Money out in these states has left, or may have: it counts against every limit.
MAY_HAVE_MOVED = (TransactionStatus.PENDING, TransactionStatus.UNKNOWN, TransactionStatus.SUCCESS)

# Names of ledger locks (see ledger_lock): payouts and refunds check their limits under them.
PAYOUT_LEDGER_LOCK = "payouts"
REFUND_LEDGER_LOCK = "refunds"


def amount_total(rows: QuerySet) -> int:
    """The sum of ``rows``' amounts in whole shillings; 0 for none."""
    return rows.aggregate(total=Sum("amount"))["total"] or 0


def nairobi_day_start(now: datetime | None = None) -> datetime:
    """Midnight of the current day in Kenya, where M-Pesa's daily limits are counted."""
    today = (now or timezone.now()).astimezone(NAIROBI).date()
    return datetime.combine(today, time.min, tzinfo=NAIROBI)


def acknowledgement_record(*, transaction: Transaction, ack: Any) -> Transaction:
    """Store Daraja's acceptance of a B2C or reversal request; unknown becomes pending.

    A result that beat the acknowledgement has already settled the row: it stays settled.
    """
    with db_transaction.atomic():
        locked = Transaction.objects.select_for_update().get(pk=transaction.pk)
        locked.conversation_id = locked.conversation_id or ack.conversation_id
        locked.originator_conversation_id = (
            locked.originator_conversation_id or ack.originator_conversation_id
        )
        locked.metadata = {**locked.metadata, "acknowledgement": ack.raw}
        if locked.status == "unknown":
            locked.transition_to("pending")
        locked.save()
    return locked


def amount_matches(expected: int, reported: Any) -> bool:
    """Whether Daraja reported exactly the amount we asked for; an absent amount is no match."""
    return reported is not None and reported == expected


def validated_phone_number(value: Any, *, field: str = "phone_number") -> str:
    """The number in Daraja's 2547/2541 form, or PaymentValidationError naming ``field``."""
    try:
        return normalize_phone_number(value or "", field=field)
    except InvalidFieldError as exc:
        raise PaymentValidationError(field, exc.message) from None


def whole_amount_rule(minimum: int, maximum: int) -> str:
    return f"must be a whole number of shillings from {minimum} to {maximum}"


def validated_whole_amount(value: Any, *, minimum: int, maximum: int, field: str = "amount") -> int:
    """A whole number of shillings within the limits, or PaymentValidationError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | Decimal)
        or (isinstance(value, Decimal) and not value.is_finite())
        # The range first: int() of Decimal("1e1000000") would take half a minute.
        or not minimum <= value <= maximum
        or value != int(value)
    ):
        raise PaymentValidationError(field, whole_amount_rule(minimum, maximum))
    return int(value)


def validated_shortcode(value: Any, *, field: str = "shortcode") -> str:
    """A shortcode as Daraja knows them, or PaymentValidationError naming ``field``: checked
    before anything is sent ("0" would reach Daraja and come back as its own obscure error)."""
    text = value if isinstance(value, str) else ""
    if not SHORTCODE_PATTERN.fullmatch(text):
        raise PaymentValidationError(field, SHORTCODE_RULE)
    return text


def security_credential_check(*, client: DarajaClient, what: str) -> None:
    """Make the SecurityCredential before anything is recorded: a certificate that cannot be
    read is a configuration error, never a request left ``unknown`` or ``failed``."""
    try:
        client.security_credential()
    except DarajaConfigurationError as exc:
        raise PaymentsNotConfiguredError(
            f"{what} cannot be sent: {exc}. Check PAYMENTS CERTIFICATE_PATH and "
            "INITIATOR_PASSWORD (MPESA_CERTIFICATE_PATH, MPESA_INITIATOR_PASSWORD), or set "
            "MPESA_SECURITY_CREDENTIAL."
        ) from exc


def money_out_send(
    *, transaction: Transaction, what: str, send: Callable[[str, str], Any]
) -> Transaction:
    """Call Daraja for a committed B2C or reversal row and record what came of it.

    ``send(result_url, queue_timeout_url)`` makes the request. A refusal fails the row; an
    unknown outcome leaves it ``unknown`` (never resent); an acceptance makes it pending.
    """
    kind = transaction.transaction_type.lower()
    token = transaction.callback_token
    log_extra = {"transaction_id": str(transaction.pk)}
    try:
        with log_context(**log_extra):
            ack = send(
                callback_url(f"payments:{kind}-result", callback_token=token),
                callback_url(f"payments:{kind}-timeout", callback_token=token),
            )
    except DarajaError as exc:
        logger.warning("%s %s: %s", what, transaction.pk, exc, extra=log_extra)
        return request_error_record(
            transaction=transaction, exc=exc, refused=not exc.outcome_unknown
        )
    except (InvalidFieldError, DarajaConfigurationError) as exc:
        request_error_record(transaction=transaction, exc=exc, refused=True)
        raise PaymentsNotConfiguredError(f"{what} is misconfigured: {exc}") from exc
    logger.info("%s %s accepted", what, transaction.pk, extra=log_extra)
    return acknowledgement_record(transaction=transaction, ack=ack)


def without_nul(text: str) -> str:
    """``text`` with each NUL written as ``\\x00``: PostgreSQL refuses NUL in text and JSON."""
    return text.replace("\x00", "\\x00")


def column_text(model: type[Model], field: str, text: str) -> str:
    """``text`` cut to the length of ``model.field``: PostgreSQL refuses longer text, and a
    callback that is not Daraja's must not fail on it."""
    return text[: model._meta.get_field(field).max_length]


def text_or_none(value: Any) -> str | None:
    """A value for JSON metadata: Decimals and the like as text, None kept."""
    return None if value is None else str(value)

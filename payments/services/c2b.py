"""C2B: register our URLs, answer validation within Daraja's time budget, record confirmations."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from payments.conf import payments_settings
from payments.daraja.callbacks import C2BNotification
from payments.daraja.client import DarajaClient
from payments.daraja.config import banned_url_words
from payments.daraja.jsontext import REPLACEMENT
from payments.daraja.phone import msisdn_matches
from payments.daraja.responses import C2BResponse
from payments.enums import TransactionStatus, TransactionType
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.gateway import get_daraja_client
from payments.models import INCOMING_TYPES, Transaction
from payments.services.common import (
    callback_url,
    column_text,
    send_on_commit,
    text_or_none,
    validated_shortcode,
)
from payments.services.stk_results import stk_payment_book
from payments.signals import c2b_payment_received

logger = logging.getLogger(__name__)

# Daraja's reject codes for validation (API.md §4.3).
C2B_REJECT_CODES = ("C2B00011", "C2B00012", "C2B00013", "C2B00014", "C2B00015", "C2B00016")
OTHER_ERROR = "C2B00016"
# The largest amount the ledger's amount column holds.
MAX_BOOKABLE_AMOUNT = 2_147_483_647
# Pushes a C2B confirmation may complete: waiting for their result, or for their receipt.
STK_AWAITING_PAYMENT = (
    TransactionStatus.PENDING,
    TransactionStatus.UNKNOWN,
    TransactionStatus.AWAITING_RECEIPT,
)
# Daraja's TransTime and our clock may disagree by a little.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class C2BValidationResult:
    """What a validator decides. ``result_code`` is "0" to accept, a C2B000xx code to reject."""

    result_code: str = "0"
    result_desc: str = "Accepted"
    third_party_trans_id: str = ""

    @property
    def accepted(self) -> bool:
        return self.result_code == "0"

    def as_response(self) -> dict[str, str]:
        body = {"ResultCode": self.result_code, "ResultDesc": self.result_desc}
        if self.accepted and self.third_party_trans_id:
            body["ThirdPartyTransID"] = self.third_party_trans_id
        return body


def accept_all_payments(notification: C2BNotification) -> C2BValidationResult:
    """The default validator: every payment is welcome."""
    return C2BValidationResult()


def c2b_validate(*, notification: C2BNotification) -> C2BValidationResult:
    """Ask the host's validator (PAYMENTS["C2B_VALIDATOR"]) about a payment about to happen.

    Daraja waits about 8 seconds (API.md §4.3): validators must answer from the database alone.
    A validator that crashes or answers nonsense rejects the payment with "Other Error" rather
    than accepting money we cannot account for.
    """
    try:
        validator = import_string(payments_settings.C2B_VALIDATOR)
        result = validator(notification)
    except Exception:
        logger.exception("C2B validator failed for %s", notification.trans_id)
        return C2BValidationResult(OTHER_ERROR, "Rejected")
    if not isinstance(result, C2BValidationResult) or not (
        result.accepted or result.result_code in C2B_REJECT_CODES
    ):
        logger.error("C2B validator returned %r; rejecting", result)
        return C2BValidationResult(OTHER_ERROR, "Rejected")
    return result


class C2BBooking(StrEnum):
    """What recording a confirmation did."""

    BOOKED = "booked"  # a new C2B payment on the ledger
    # Recorded for a person and announced to nobody: an amount we cannot book (booked as 0),
    # or text that could not be stored as sent.
    FLAGGED = "flagged"
    COMPLETED_PUSH = "completed_push"  # it paid one of our STK Pushes, now settled
    DUPLICATE = "duplicate"  # this receipt was on the ledger already


def c2b_confirmation_record(
    *, notification: C2BNotification, source: str = "c2b", problems: tuple[str, ...] = ()
) -> tuple[Transaction, C2BBooking]:
    """Book a confirmed C2B payment once per M-Pesa receipt (TransID), across STK and C2B.

    A receipt already on the ledger is a duplicate. A confirmation that pays one of our STK
    Pushes still waiting for its result (same shortcode, account reference and amount, a phone
    that fits where it is readable, within C2B_STK_MATCH_WINDOW) completes that push, under its
    row lock, instead of becoming a second payment. An amount the ledger cannot book (not whole
    shillings, or outside 1 to MAX_BOOKABLE_AMOUNT) books 0; text that does not fit its column,
    or held what no column stores (NUL, lone surrogates, invalid UTF-8), is stored as it fits.
    Either way the row is flagged for a person, announced to nobody, and the exact amount and
    reference are kept in its metadata (the raw body in its CallbackEvent). ``problems`` the
    caller found in what announced the payment are treated the same way.

    The unique receipt constraint makes concurrent copies safe: one booking wins, the others
    find it.
    """
    receipt = notification.trans_id
    existing = _incoming_with_receipt(receipt)
    if existing is not None:
        return existing, C2BBooking.DUPLICATE
    amount = bookable_amount(notification.trans_amount)
    columns, found = _stored_text(notification)
    problems = [*problems, *found]
    if amount is None:
        problems.insert(0, _amount_problem(notification.trans_amount))
    if not problems:
        push = _push_paid_by(notification, amount)
        if push is not None:
            push.msisdn = columns["msisdn"]
            push.counterparty_name = columns["counterparty_name"]
            holder = stk_payment_book(
                transaction=push,
                receipt_number=receipt,
                result_desc="Paid; confirmed by C2B.",
                source=source,
                transaction_date=notification.trans_time,
                details=_confirmation_details(notification),
            )
            if holder is not None:
                return holder, C2BBooking.DUPLICATE
            return push, C2BBooking.COMPLETED_PUSH
    try:
        # A savepoint: a concurrent copy, or the STK callback of this payment, may book the
        # receipt first.
        with db_transaction.atomic():
            transaction = _c2b_row_create(notification, amount, columns, problems)
    except IntegrityError:
        existing = _incoming_with_receipt(receipt)
        if existing is None:
            raise
        return existing, C2BBooking.DUPLICATE
    if problems:
        return transaction, C2BBooking.FLAGGED
    send_on_commit(c2b_payment_received, transaction=transaction)
    return transaction, C2BBooking.BOOKED


def bookable_amount(amount: Decimal) -> int | None:
    """Whole shillings the ledger can hold; None for a fraction or an impossible amount."""
    if not amount.is_finite() or amount != amount.to_integral_value():
        return None
    whole = int(amount)
    return whole if 1 <= whole <= MAX_BOOKABLE_AMOUNT else None


def _amount_problem(amount: Decimal) -> str:
    if amount != amount.to_integral_value():
        return f"amount {amount} is not whole shillings: nothing was booked"
    return (
        f"amount {amount} is outside what the ledger books (1 to {MAX_BOOKABLE_AMOUNT} "
        "shillings): nothing was booked"
    )


def _stored_text(notification: C2BNotification) -> tuple[dict[str, str], list[str]]:
    """The confirmation's text as the ledger's columns hold it, and what had to change."""
    sent = {
        "command_id": ("TransactionType", notification.transaction_type),
        "shortcode": ("BusinessShortCode", notification.business_shortcode),
        "account_reference": ("BillRefNumber", notification.bill_ref_number),
        "msisdn": ("MSISDN", notification.msisdn),
        "counterparty_name": ("the payer's names", _names(notification)),
    }
    columns, problems = {}, []
    for column, (what, text) in sent.items():
        columns[column] = column_text(Transaction, column, text)
        if columns[column] != text:
            limit = len(columns[column])
            problems.append(f"{what} is longer than {limit} characters: stored shortened")
        if REPLACEMENT in text:
            problems.append(f"{what} held bytes no text column stores: stored as U+FFFD")
    if notification.trans_time is None and str(notification.raw.get("TransTime") or "").strip():
        problems.append("TransTime is not a date: booked without one")
    return columns, problems


def _c2b_row_create(
    notification: C2BNotification, amount: int | None, columns: dict[str, str], problems: list
) -> Transaction:
    reason = "; ".join(problems) + "; check the M-Pesa statement" if problems else ""
    return Transaction.objects.create(
        transaction_type=TransactionType.C2B,
        status=TransactionStatus.SUCCESS,
        # Never rounded: an amount we cannot book books nothing until a person decides.
        amount=amount or 0,
        mpesa_receipt_number=notification.trans_id,
        transaction_date=notification.trans_time,
        environment=payments_settings.ENVIRONMENT,
        result_code="0",
        needs_review=bool(problems),
        review_reason=reason[:255],
        metadata=_confirmation_details(notification),
        **columns,
    )


def _incoming_with_receipt(receipt: str) -> Transaction | None:
    return (
        Transaction.objects.select_for_update()
        .filter(transaction_type__in=INCOMING_TYPES, mpesa_receipt_number=receipt)
        .first()
    )


def _push_paid_by(notification: C2BNotification, amount: int) -> Transaction | None:
    """The one STK Push of ours this confirmation pays, locked; None when none or several fit.

    Several that fit are not guessed between: the confirmation is booked as a C2B payment and
    the push whose callback carries its receipt links to it.
    """
    paid_at = notification.trans_time or timezone.now()
    window = timedelta(seconds=payments_settings.C2B_STK_MATCH_WINDOW)
    shortcodes = {notification.business_shortcode}
    if notification.business_shortcode == str(payments_settings.TILL_NUMBER):
        shortcodes.add(str(payments_settings.SHORTCODE))  # Buy Goods: pushes name the store
    candidates = (
        Transaction.objects.select_for_update()
        .filter(
            transaction_type=TransactionType.STK_PUSH,
            status__in=STK_AWAITING_PAYMENT,
            needs_review=False,
            mpesa_receipt_number="",
            shortcode__in=shortcodes,
            amount=amount,
            account_reference__iexact=notification.bill_ref_number.strip(),
            created_at__gte=paid_at - window,
            created_at__lte=paid_at + CLOCK_SKEW,
        )
        .order_by("created_at")
    )
    fits = [
        push
        for push in candidates
        if msisdn_matches(notification.msisdn, push.phone_number) is not False
    ]
    return fits[0] if len(fits) == 1 else None


def _names(notification: C2BNotification) -> str:
    names = (notification.first_name, notification.middle_name, notification.last_name)
    return " ".join(n for n in names if n)


def _confirmation_details(notification: C2BNotification) -> dict:
    return {
        "trans_amount": str(notification.trans_amount),
        "bill_ref_number": notification.bill_ref_number,
        "org_account_balance": text_or_none(notification.org_account_balance),
        "third_party_trans_id": notification.third_party_trans_id,
        "invoice_number": notification.invoice_number,
    }


def c2b_urls_register(
    *,
    api_version: str = "v2",
    response_type: str = "Completed",
    shortcode: str = "",
    client: DarajaClient | None = None,
) -> C2BResponse:
    """Register our validation and confirmation URLs with Daraja for the shortcode.

    Refused before calling Daraja when the URLs are not ones Daraja takes (secret_callback_url).
    """
    if api_version not in ("v1", "v2"):
        raise PaymentValidationError("api_version", "must be v1 or v2")
    if response_type not in ("Completed", "Cancelled"):
        raise PaymentValidationError("response_type", "must be Completed or Cancelled")
    if shortcode:
        validated_shortcode(shortcode)
    urls = {
        name: secret_callback_url(f"payments:c2b-{name}", what=f"the {name} URL")
        for name in ("validation", "confirmation")
    }
    client = client or get_daraja_client()
    return client.register_c2b_urls(
        confirmation_url=urls["confirmation"],
        validation_url=urls["validation"],
        response_type=response_type,
        api_version=api_version,
        shortcode=shortcode or str(payments_settings.SHORTCODE),
    )


def secret_callback_url(view_name: str, *, what: str) -> str:
    """The URL of our callback ``view_name``, MPESA_CALLBACK_SECRET in its path, checked.

    Refused before Daraja sees it: no callback secret or base URL, a non-https base outside
    DEBUG, or a URL containing a word Daraja rejects (it would fail there, less clearly).
    """
    if payments_settings.missing(("CALLBACK_SECRET", "CALLBACK_BASE_URL")):
        raise PaymentsNotConfiguredError(
            "Callback URLs need PAYMENTS CALLBACK_SECRET and CALLBACK_BASE_URL "
            "(MPESA_CALLBACK_SECRET, MPESA_CALLBACK_BASE_URL)."
        )
    url = callback_url(view_name, secret=str(payments_settings.CALLBACK_SECRET))
    if urlsplit(url).scheme != "https" and not settings.DEBUG:
        raise PaymentValidationError(
            "callback_base_url", f"{what} must be https outside DEBUG: {_shown(url)}"
        )
    words = banned_url_words(url)
    if words:
        raise PaymentValidationError(
            "callback_base_url",
            f"{what} contains words Daraja refuses ({', '.join(words)}): {_shown(url)}",
        )
    return url


def c2b_simulate(
    *,
    phone_number: str,
    amount: int,
    bill_ref_number: str = "",
    shortcode: str = "",
    client: DarajaClient | None = None,
) -> C2BResponse:
    """Ask the sandbox to simulate a customer paying our shortcode."""
    if payments_settings.ENVIRONMENT == "production":
        raise PaymentValidationError("environment", "C2B simulation exists only in the sandbox")
    if shortcode:
        validated_shortcode(shortcode)
    client = client or get_daraja_client()
    return client.c2b_simulate(
        phone_number=phone_number,
        amount=amount,
        bill_ref_number=bill_ref_number,
        shortcode=shortcode or str(payments_settings.SHORTCODE),
    )


def _shown(url: str) -> str:
    # The secret is part of the path: never put it in an error message.
    secret = str(payments_settings.CALLBACK_SECRET or "")
    return url.replace(secret, "<secret>") if secret else url

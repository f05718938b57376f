"""C2B: register our URLs, answer validation within Daraja's time budget, record confirmations."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.utils.module_loading import import_string

from payments.conf import payments_settings
from payments.daraja.callbacks import C2BNotification
from payments.daraja.client import DarajaClient
from payments.daraja.config import banned_url_words
from payments.daraja.responses import C2BResponse
from payments.enums import TransactionStatus, TransactionType
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.gateway import get_daraja_client
from payments.models import Transaction
from payments.services.common import callback_url, send_on_commit, text_or_none
from payments.signals import c2b_payment_received

logger = logging.getLogger(__name__)

# Daraja's reject codes for validation (API.md §4.3).
C2B_REJECT_CODES = ("C2B00011", "C2B00012", "C2B00013", "C2B00014", "C2B00015", "C2B00016")
OTHER_ERROR = "C2B00016"


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


def c2b_confirmation_record(*, notification: C2BNotification) -> tuple[Transaction, bool]:
    """Record a confirmed C2B payment once per TransID. Returns (transaction, created).

    A TransID that is the receipt of one of our STK Pushes is that payment, not a new one.

    The unique constraint on C2B receipts makes concurrent copies safe: one insert wins and the
    others find its row.
    """
    # An STK Push paid into a PayBill can be confirmed over C2B too, with the same receipt:
    # it is one payment, already on the ledger, and must not be counted (or refunded) twice.
    stk_payment = Transaction.objects.filter(
        transaction_type=TransactionType.STK_PUSH, mpesa_receipt_number=notification.trans_id
    ).first()
    if stk_payment is not None:
        return stk_payment, False
    amount = notification.trans_amount
    whole = int(amount) if amount == amount.to_integral_value() else None
    names = " ".join(
        n for n in (notification.first_name, notification.middle_name, notification.last_name) if n
    )
    try:
        with db_transaction.atomic():
            transaction = Transaction.objects.create(
                transaction_type=TransactionType.C2B,
                status=TransactionStatus.SUCCESS,
                amount=whole if whole is not None else int(amount),
                mpesa_receipt_number=notification.trans_id,
                msisdn=notification.msisdn,
                counterparty_name=names[:150],
                account_reference=notification.bill_ref_number[:20],
                command_id=notification.transaction_type[:32],
                transaction_date=notification.trans_time,
                shortcode=notification.business_shortcode[:16],
                environment=payments_settings.ENVIRONMENT,
                result_code="0",
                needs_review=whole is None,
                review_reason="" if whole is not None else f"fractional amount {amount}",
                metadata={
                    "trans_amount": str(amount),
                    "bill_ref_number": notification.bill_ref_number,
                    "org_account_balance": text_or_none(notification.org_account_balance),
                    "third_party_trans_id": notification.third_party_trans_id,
                    "invoice_number": notification.invoice_number,
                },
            )
            send_on_commit(c2b_payment_received, transaction=transaction)
        return transaction, True
    except IntegrityError:
        existing = Transaction.objects.get(
            transaction_type=TransactionType.C2B, mpesa_receipt_number=notification.trans_id
        )
        return existing, False


def c2b_urls_register(
    *,
    api_version: str = "v2",
    response_type: str = "Completed",
    shortcode: str = "",
    client: DarajaClient | None = None,
) -> C2BResponse:
    """Register our validation and confirmation URLs with Daraja for the shortcode.

    Refused before calling Daraja: no callback secret, a non-https base outside DEBUG, or a URL
    containing a word Daraja rejects (it would fail there, less clearly).
    """
    if api_version not in ("v1", "v2"):
        raise PaymentValidationError("api_version", "must be v1 or v2")
    if response_type not in ("Completed", "Cancelled"):
        raise PaymentValidationError("response_type", "must be Completed or Cancelled")
    secret = str(payments_settings.CALLBACK_SECRET or "")
    if payments_settings.missing(("CALLBACK_SECRET", "CALLBACK_BASE_URL")):
        raise PaymentsNotConfiguredError(
            "C2B URLs need PAYMENTS CALLBACK_SECRET and CALLBACK_BASE_URL (MPESA_CALLBACK_SECRET, "
            "MPESA_CALLBACK_BASE_URL)."
        )
    urls = {
        name: callback_url(f"payments:c2b-{name}", secret=secret)
        for name in ("validation", "confirmation")
    }
    for name, url in urls.items():
        if urlsplit(url).scheme != "https" and not settings.DEBUG:
            raise PaymentValidationError(
                "callback_base_url", f"the {name} URL must be https outside DEBUG: {_shown(url)}"
            )
        words = banned_url_words(url)
        if words:
            raise PaymentValidationError(
                "callback_base_url",
                f"the {name} URL contains words Daraja refuses ({', '.join(words)}): {_shown(url)}",
            )
    client = client or get_daraja_client()
    return client.register_c2b_urls(
        confirmation_url=urls["confirmation"],
        validation_url=urls["validation"],
        response_type=response_type,
        api_version=api_version,
        shortcode=shortcode or str(payments_settings.SHORTCODE),
    )


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

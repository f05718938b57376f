"""Hosted checkout links: amount, reference and description fixed and signed by the server."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from payments.conf import payments_settings
from payments.exceptions import PaymentsError, PaymentValidationError
from payments.models import Transaction
from payments.services.common import for_object_fields, validated_whole_amount
from payments.services.stk_push import (
    ACCOUNT_REFERENCE_PATTERN,
    ACCOUNT_REFERENCE_RULE,
    CHECKOUT_LINK_USED_STATUSES,
    stk_push_initiate,
)

SALT = "payments.checkout-link"
DESCRIPTION_MAX = 100
MAX_LIFETIME_DAYS = 30


class CheckoutLinkInvalidError(PaymentsError):
    """The link was tampered with, is not one of ours, or has expired."""

    code = "checkout_link_invalid"


@dataclass(frozen=True)
class CheckoutLink:
    amount: int
    account_reference: str
    description: str
    expires_at: datetime
    created_by_id: int | None
    # The host object the payment is for: (app label, model, primary key), or None.
    for_object_key: tuple[str, str, str] | None = None

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    def for_object(self) -> Model | None:
        """The host object the link pays for; CheckoutLinkInvalidError once it is gone."""
        if self.for_object_key is None:
            return None
        app_label, model, pk = self.for_object_key
        try:
            content_type = ContentType.objects.get_by_natural_key(app_label, model)
            return content_type.get_object_for_this_type(pk=pk)
        except (ContentType.DoesNotExist, AttributeError, ObjectDoesNotExist):
            raise CheckoutLinkInvalidError("This payment link is no longer valid.") from None


def checkout_link_create(
    *,
    amount: int,
    account_reference: str,
    description: str = "",
    expires_at: datetime | None = None,
    created_by: Any = None,
    for_object: Model | None = None,
) -> str:
    """Sign a checkout link's terms into a token; ``checkout_path(token)`` is its page.

    The customer can change none of them: only the phone number is theirs to enter.
    ``for_object`` (the host's order, say) is linked to the payment the link starts.
    """
    link = for_object_fields(for_object)
    amount = validated_whole_amount(
        amount,
        minimum=payments_settings.STK_MIN_AMOUNT,
        maximum=payments_settings.STK_MAX_AMOUNT,
    )
    reference = (account_reference or "").strip()
    if not ACCOUNT_REFERENCE_PATTERN.fullmatch(reference):
        raise PaymentValidationError("account_reference", f"must be {ACCOUNT_REFERENCE_RULE}")
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise PaymentValidationError("description", f"must be at most {DESCRIPTION_MAX} characters")
    now = timezone.now()
    expires_at = expires_at or now + timedelta(seconds=payments_settings.CHECKOUT_LINK_TTL)
    if expires_at <= now:
        raise PaymentValidationError("expires_at", "must be in the future")
    if expires_at > now + timedelta(days=MAX_LIFETIME_DAYS):
        # A link cannot be revoked: it must not live for ever.
        raise PaymentValidationError(
            "expires_at", f"must be at most {MAX_LIFETIME_DAYS} days ahead"
        )
    terms = {
        "a": amount,
        "r": reference,
        "d": description,
        "e": int(expires_at.timestamp()),
        "u": getattr(created_by, "pk", None),
    }
    if link:
        # By natural key: content type ids differ between databases, a link may outlive one.
        terms["o"] = [*link["for_content_type"].natural_key(), link["for_object_id"]]
    return signing.dumps(terms, salt=SALT, compress=True)


def checkout_path(token: str) -> str:
    return reverse("payments:checkout-page", kwargs={"token": token})


def checkout_link_read(token: str, *, allow_expired: bool = False) -> CheckoutLink:
    """The link's terms; CheckoutLinkInvalidError if tampered with (or expired, unless
    ``allow_expired``)."""
    try:
        data = signing.loads(token, salt=SALT)
        link = CheckoutLink(
            amount=int(data["a"]),
            account_reference=str(data["r"]),
            description=str(data["d"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), tz=UTC),
            created_by_id=data.get("u"),
            for_object_key=tuple(str(part) for part in data["o"]) if data.get("o") else None,
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise CheckoutLinkInvalidError("This payment link is not valid.") from None
    if link.is_expired and not allow_expired:
        raise CheckoutLinkInvalidError("This payment link has expired.")
    return link


def checkout_pay(*, token: str, phone_number: str) -> Transaction:
    """Start the STK Push of a checkout link for the phone number the customer typed.

    A link pays once: while one of its payments succeeded or may still succeed, a second push
    is refused with CheckoutLinkUsedError, which carries that payment.
    """
    link = checkout_link_read(token)
    owner = None
    if link.created_by_id is not None:
        from django.contrib.auth import get_user_model

        owner = get_user_model().objects.filter(pk=link.created_by_id).first()
    return stk_push_initiate(
        user=owner,
        phone_number=phone_number,
        amount=link.amount,
        account_reference=link.account_reference,
        transaction_desc=link.description,
        checkout_link=checkout_link_key(token),
        for_object=link.for_object(),
    )


def checkout_transaction(*, token: str, transaction_id: Any) -> Transaction | None:
    """A transaction started from this link (and only from this link).

    A payment started just before the link expired can still be followed to its end.
    """
    checkout_link_read(token, allow_expired=True)
    return Transaction.objects.filter(
        pk=transaction_id, checkout_link=checkout_link_key(token)
    ).first()


def checkout_link_payment(*, token: str) -> Transaction | None:
    """The link's payment that succeeded or may still succeed, if any: the page shows it."""
    return (
        Transaction.objects.filter(
            checkout_link=checkout_link_key(token), status__in=CHECKOUT_LINK_USED_STATUSES
        )
        .order_by("-created_at")
        .first()
    )


def checkout_link_key(token: str) -> str:
    # A hash, not the token: metadata is shown to staff, and the token is a bearer credential.
    return hashlib.sha256(token.encode()).hexdigest()[:40]

"""The hosted checkout page: the web twin of the mobile app's payment screen."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from payments.services.checkout import (
    CheckoutLinkInvalidError,
    checkout_link_payment,
    checkout_link_read,
)


@require_GET
def checkout_page(request: HttpRequest, token: str) -> HttpResponse:
    """The link's page: the Pay form, or the payment the link already has (paid or under way)."""
    try:
        # A paid link shows its receipt even after it expired; an unpaid one must be live.
        link = checkout_link_read(token, allow_expired=True)
        payment = checkout_link_payment(token=token)
        if payment is None:
            link = checkout_link_read(token)
    except CheckoutLinkInvalidError as exc:
        return render(
            request, "payments/checkout_invalid.html", {"message": exc.message}, status=404
        )
    return render(
        request, "payments/checkout.html", {"link": link, "token": token, "payment": payment}
    )

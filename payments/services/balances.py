"""Account balances of every shortcode that holds our money: ask Daraja for each of them."""

from __future__ import annotations

from typing import Any

from payments.daraja.client import DarajaClient
from payments.exceptions import PaymentsNotConfiguredError
from payments.models import DarajaInquiry
from payments.selectors import balance_shortcodes
from payments.services.common import validated_shortcode
from payments.services.inquiries import DarajaRefusedError, account_balance_request


def account_balances_request(
    *, user: Any = None, shortcode: str = "", client: DarajaClient | None = None
) -> list[DarajaInquiry]:
    """Ask Daraja for the balances of ``shortcode``, or else of the PayBill and of the shortcode
    that funds payouts; one inquiry each, their results arrive later as callbacks.

    Daraja refusing one shortcode is kept on its inquiry (failed) and the others are still
    asked: the refusal is raised only when every shortcode was refused.
    """
    shortcodes = [validated_shortcode(shortcode)] if shortcode else list(balance_shortcodes())
    if not shortcodes:
        raise PaymentsNotConfiguredError(
            "No shortcode to ask about: set MPESA_SHORTCODE or MPESA_B2C_SHORTCODE."
        )
    inquiries: list[DarajaInquiry] = []
    refusals: list[DarajaRefusedError] = []
    for code in shortcodes:
        try:
            inquiries.append(account_balance_request(user=user, shortcode=code, client=client))
        except DarajaRefusedError as refused:
            refusals.append(refused)
            inquiries.append(refused.inquiry)
    if len(refusals) == len(shortcodes):
        raise refusals[0]
    return inquiries

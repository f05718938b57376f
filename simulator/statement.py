"""The simulated account's statement, as the M-Pesa org portal exports it (CSV): what a finance
person downloads to close the day, so that `make run` shows the whole loop offline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from payments.statement_file import statement_csv
from simulator.engine import OPENING_BALANCES, UTILITY
from simulator.models import SimulatedRequest

ACCOUNT_HOLDER = "SIMULATED BUSINESS"
# How each kind of simulated request reads on the statement, and where its shortcode is.
REASONS = {"stk": "Pay Utility", "c2b": "Pay Bill Online", "reversal": "Reversal"}
SHORTCODE_FIELD = {"stk": "BusinessShortCode", "c2b": "ShortCode", "reversal": "ReceiverParty"}


def statement_text(*, shortcode: str, start: datetime, end: datetime) -> str:
    """The Utility account of ``shortcode`` from ``start`` to ``end``: payments in (STK Push and
    C2B), reversals out, with the running balance."""
    balance = Decimal(OPENING_BALANCES[UTILITY])
    rows = []
    done = SimulatedRequest.objects.filter(
        kind__in=tuple(REASONS), result_code="0", completes_at__lte=end
    ).order_by("completes_at", "pk")
    for request in done:
        # Daraja takes shortcodes as numbers or strings; the payloads keep what was sent.
        if str(request.payload.get(SHORTCODE_FIELD[request.kind], "")) != shortcode:
            continue
        amount = Decimal(request.amount)
        balance += -amount if request.kind == "reversal" else amount
        if request.completes_at >= start:
            rows.append(_row(request, amount, balance))
    return statement_csv(
        account_holder=ACCOUNT_HOLDER, shortcode=shortcode, period=(start, end), rows=rows
    )


def _row(request: SimulatedRequest, amount: Decimal, balance: Decimal) -> list[Any]:
    payload = request.payload
    phone = request.phone_number
    party = f"{phone[:6]}{'*' * max(len(phone) - 9, 0)}{phone[-3:]} - SIMULATED CUSTOMER"
    paid_in = request.kind != "reversal"
    account = str(payload.get("AccountReference") or payload.get("BillRefNumber") or "")
    details = (
        f"Pay Bill from {party} Acc. {account}"
        if paid_in
        else f"Reversal of {payload.get('TransactionID', '')}"
    )
    return [
        request.receipt,
        request.completes_at,
        request.created_at,
        details,
        "Completed",
        f"{amount:.2f}" if paid_in else "",
        f"-{amount:.2f}" if not paid_in else "",
        f"{balance:.2f}",
        "true",
        REASONS[request.kind],
        party if paid_in else "",
        "" if paid_in else str(payload.get("TransactionID", "")),
        account,
    ]

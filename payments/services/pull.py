"""Pull Transactions: find the C2B payments whose confirmation never reached us, and book them.

Daraja does not retry a confirmation it failed to deliver: that money is in the till and not on
our ledger. Pull Transactions lists the shortcode's C2B payments of about the last 48 hours
(API.md §13). Each one not on the ledger is booked through the confirmation's own path
(``c2b_confirmation_record``: once per receipt, completing the STK Push it pays, one signal),
marked as recovered and audited; one whose amount differs from ours is flagged, never changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction as db_transaction
from django.utils import timezone

from payments.conf import payments_settings
from payments.daraja.callbacks import C2BNotification
from payments.daraja.client import DarajaClient
from payments.daraja.errors import DarajaError, InvalidPhoneNumberError
from payments.daraja.phone import mask_phone_number, normalize_phone_number
from payments.daraja.responses import (
    PULL_NOTHING_FOUND,
    PulledTransaction,
    PullRegisterResponse,
    PullTransactionsPage,
)
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.gateway import get_daraja_client
from payments.models import INCOMING_TYPES, PullTransactionsRun, Transaction
from payments.services.audit import audit_record
from payments.services.c2b import (
    C2BBooking,
    c2b_confirmation_record,
    secret_callback_url,
)
from payments.services.common import validated_phone_number, validated_shortcode

logger = logging.getLogger(__name__)

RECOVERED_FROM = "pull_transactions"
# What Daraja keeps (API.md §13): an older window would come back empty, not complete.
RETENTION = timedelta(hours=48)
# An automatic sweep starts this far before the last one ended: a payment may be listed a
# little after the time it carries (unconfirmed how long; minutes at most is our guess).
OVERLAP = timedelta(minutes=15)
# A window may end a little after our clock's "now" (the two clocks differ).
CLOCK_SKEW = timedelta(minutes=5)
# No shortcode has this many pages in 48 hours; past it, Daraja is ignoring OffSetValue.
MAX_PAGES = 500
RUNS_KEPT = timedelta(days=30)


@dataclass
class PullReport:
    """What one sweep found and did."""

    since: datetime
    until: datetime
    dry_run: bool = False
    pages: int = 0
    rows: int = 0
    on_ledger: int = 0
    recovered: int = 0  # booked as C2B payments
    completed_pushes: int = 0  # STK Pushes waiting for their result or receipt, now paid
    flagged: int = 0  # booked with what could be booked, for a person (and announced to nobody)
    amount_differs: int = 0
    malformed: int = 0
    finished: bool = False
    error: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def booked(self) -> int:
        return self.recovered + self.completed_pushes + self.flagged

    def summary(self) -> str:
        window = f"{_local(self.since)} to {_local(self.until)}"
        verb = "would book" if self.dry_run else "booked"
        text = (
            f"Pull Transactions {window}: {self.rows} rows on {self.pages} pages; "
            f"{self.on_ledger} on the ledger, {verb} {self.booked} "
            f"({self.recovered} C2B payments, {self.completed_pushes} STK Pushes completed, "
            f"{self.flagged} flagged), {self.amount_differs} amounts differ, "
            f"{self.malformed} unreadable rows"
        )
        if self.error:
            text += f"; stopped: {self.error}"
        return text

    def as_dict(self) -> dict[str, Any]:
        names = (
            "pages",
            "rows",
            "on_ledger",
            "recovered",
            "completed_pushes",
            "flagged",
            "amount_differs",
            "malformed",
        )
        return {name: getattr(self, name) for name in names}


def pull_transactions_recover(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    shortcode: str = "",
    client: DarajaClient | None = None,
    audit_details: dict[str, Any] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> PullReport:
    """Sweep Pull Transactions over ``since``..``until`` and book what the ledger lacks.

    Without ``since`` the sweep is automatic: it starts where the last finished automatic sweep
    ended (less OVERLAP), at most 48 hours back, so cron can run it often and an outage is
    caught up. Every page is read (OffSetValue) until Daraja has no more; a sweep that stops
    early (an error, or Daraja repeating a page) is recorded unfinished and repeated next time.
    Each booking is its own database transaction; no lock is held while Daraja is called.
    ``dry_run`` asks Daraja and books nothing. Daraja's errors end the sweep and are reported in
    ``error``: what was booked before stays booked.
    """
    shortcode = validated_shortcode(shortcode) if shortcode else _configured_shortcode()
    automatic = since is None
    since, until, unchecked_from = _window(since=since, until=until, shortcode=shortcode)
    report = PullReport(since=since, until=until, dry_run=dry_run)
    if unchecked_from is not None:
        report.lines.append(
            f"no sweep finished since {_local(unchecked_from)}, and Daraja keeps 48 hours: "
            f"check the payments until {_local(since)} against the M-Pesa statement"
        )
    client = client or get_daraja_client()
    run = None
    if not dry_run:
        run = PullTransactionsRun.objects.create(
            shortcode=shortcode, since=since, until=until, automatic=automatic
        )
    details = {**(audit_details or {}), "window": [since.isoformat(), until.isoformat()]}
    try:
        for page in _pages(client, since=since, until=until, shortcode=shortcode, report=report):
            _sweep_page(page, shortcode=shortcode, report=report, details=details)
        report.finished = not report.error
    except DarajaError as exc:
        report.error = f"Daraja error: {exc}"
    for line in report.lines:
        progress(line)
    log = logger.warning if report.error or report.malformed else logger.info
    log("%s", report.summary(), extra={"shortcode": shortcode})
    if run is not None:
        run.report = report.as_dict()
        run.error = report.error
        run.finished_at = timezone.now() if report.finished else None
        run.save(update_fields=["report", "error", "finished_at"])
        _old_runs_forget(shortcode)
    return report


def pull_transactions_register(
    *, nominated_number: str = "", shortcode: str = "", client: DarajaClient | None = None
) -> PullRegisterResponse:
    """Register the shortcode for Pull Transactions, with our notice URL and the nominated number.

    ``nominated_number`` defaults to PAYMENTS["PULL_NOMINATED_NUMBER"]. Refused before Daraja
    is called when it is missing or not a Kenyan mobile number, or when the callback URL is not
    one Daraja takes.
    """
    if shortcode:
        validated_shortcode(shortcode)
    number = nominated_number or str(payments_settings.PULL_NOMINATED_NUMBER or "")
    if not number.strip():
        raise PaymentsNotConfiguredError(
            "Pull Transactions registration needs a nominated number: PAYMENTS "
            "PULL_NOMINATED_NUMBER (MPESA_PULL_NOMINATED_NUMBER), a Safaricom number that "
            "receives Daraja's notices."
        )
    number = validated_phone_number(number, field="nominated_number")
    url = secret_callback_url("payments:c2b-pull-notice", what="the Pull Transactions URL")
    client = client or get_daraja_client()
    return client.pull_transactions_register(
        nominated_number=number, callback_url=url, shortcode=shortcode or _configured_shortcode()
    )


# -- the window ------------------------------------------------------------------------------


def _configured_shortcode() -> str:
    shortcode = str(payments_settings.SHORTCODE or "")
    if payments_settings.missing(("SHORTCODE",)):
        raise PaymentsNotConfiguredError("Pull Transactions needs PAYMENTS SHORTCODE.")
    return shortcode


def _window(
    *, since: datetime | None, until: datetime | None, shortcode: str
) -> tuple[datetime, datetime, datetime | None]:
    """The sweep's window; and for an automatic one, where the unchecked time began when that
    is older than Daraja keeps."""
    now = timezone.now()
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise PaymentValidationError(name, "must carry a time zone")
    until = until or now
    if until > now + CLOCK_SKEW:
        raise PaymentValidationError("until", "is in the future")
    unchecked_from = None
    if since is None:
        since, unchecked_from = _automatic_start(shortcode=shortcode, until=until)
    if since >= until:
        raise PaymentValidationError("since", "must be before until")
    return since, until, unchecked_from


def _automatic_start(*, shortcode: str, until: datetime) -> tuple[datetime, datetime | None]:
    """Where the last finished automatic sweep ended, less OVERLAP, at most 48 hours back; and
    that end when it lies further back than that (payments Pull can no longer list)."""
    last_end = (
        PullTransactionsRun.objects.filter(
            shortcode=shortcode, automatic=True, finished_at__isnull=False, until__lte=until
        )
        .order_by("-until")
        .values_list("until", flat=True)
        .first()
    )
    earliest = until - RETENTION
    if last_end is None:
        return earliest, None
    start = last_end - OVERLAP
    return (start, None) if start >= earliest else (earliest, last_end)


def _old_runs_forget(shortcode: str) -> None:
    """Cron sweeps every few minutes: keep a month of runs, and always the watermark's."""
    newest = (
        PullTransactionsRun.objects.filter(
            shortcode=shortcode, automatic=True, finished_at__isnull=False
        )
        .order_by("-until")
        .values_list("pk", flat=True)
        .first()
    )
    PullTransactionsRun.objects.filter(
        shortcode=shortcode, started_at__lt=timezone.now() - RUNS_KEPT
    ).exclude(pk=newest).delete()


# -- reading the pages -----------------------------------------------------------------------


def _pages(
    client: DarajaClient, *, since: datetime, until: datetime, shortcode: str, report: PullReport
) -> Iterator[PullTransactionsPage]:
    """Every page of the window, until Daraja says there is nothing more.

    The page size is not documented, so the sweep reads on until an empty page (or 1001). A
    page holding only receipts already read means Daraja ignored OffSetValue: reading on would
    never end.
    """
    offset = 0
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = client.pull_transactions_query(
            start=since, end=until, offset=offset, shortcode=shortcode
        )
        if page.response_code == PULL_NOTHING_FOUND or page.size == 0:
            return
        receipts = {row.transaction_id for row in page.transactions}
        if receipts and receipts <= seen:
            report.error = f"Daraja repeated the rows of offset {offset}: OffSetValue ignored"
            return
        seen |= receipts
        report.pages += 1
        yield page
        offset += page.size
    report.error = f"more than {MAX_PAGES} pages: stopped"


def _sweep_page(
    page: PullTransactionsPage, *, shortcode: str, report: PullReport, details: dict[str, Any]
) -> None:
    report.rows += page.size
    for bad in page.malformed:
        report.malformed += 1
        # Only the reason: the row holds the payer's full number.
        report.lines.append(f"unreadable row at offset {page.offset}: {bad.reason}")
    held = dict(
        Transaction.objects.filter(
            transaction_type__in=INCOMING_TYPES,
            mpesa_receipt_number__in=[row.transaction_id for row in page.transactions],
        ).values_list("mpesa_receipt_number", "amount")
    )
    for row in page.transactions:
        if row.transaction_id in held and Decimal(held[row.transaction_id]) == row.amount:
            report.on_ledger += 1
        elif report.dry_run:
            _describe(row, held, report)
        else:
            _settle_row(row, shortcode=shortcode, report=report, details=details)


def _describe(row: PulledTransaction, held: dict[str, int], report: PullReport) -> None:
    if row.transaction_id in held:
        report.amount_differs += 1
        report.lines.append(
            f"{row.transaction_id}: M-Pesa lists {row.amount}, the ledger has "
            f"{held[row.transaction_id]}: would be flagged"
        )
    else:
        report.recovered += 1
        report.lines.append(f"{row.transaction_id}: {row.amount} not on the ledger: would book")


# -- booking ---------------------------------------------------------------------------------


def _settle_row(
    row: PulledTransaction, *, shortcode: str, report: PullReport, details: dict[str, Any]
) -> None:
    with db_transaction.atomic():
        problems = ()
        if row.trx_date is None and str(row.raw.get("trxDate") or "").strip():
            problems = ("trxDate is not a date: booked without one",)
        transaction, booking = c2b_confirmation_record(
            notification=_notification(row, shortcode),
            source=f"pull:{row.transaction_id}",
            problems=problems,
        )
        if booking == C2BBooking.DUPLICATE:
            # On the ledger since the page was read (its confirmation came), locked.
            if Decimal(transaction.amount) == row.amount:
                report.on_ledger += 1
            else:
                _flag_amount(transaction, row, report=report, details=details)
            return
        _mark_recovered(transaction, row)
        counter = {
            C2BBooking.BOOKED: "recovered",
            C2BBooking.COMPLETED_PUSH: "completed_pushes",
            C2BBooking.FLAGGED: "flagged",
        }[booking]
        setattr(report, counter, getattr(report, counter) + 1)
        what = {
            C2BBooking.BOOKED: "booked as a C2B payment",
            C2BBooking.COMPLETED_PUSH: "completed the STK Push it paid",
            C2BBooking.FLAGGED: f"booked and flagged: {transaction.review_reason}",
        }[booking]
        report.lines.append(f"{row.transaction_id}: {what} ({transaction.pk})")
        audit_record(
            actor=None,
            action="pull_recover",
            transaction=transaction,
            outcome=f"recovered from Pull Transactions: {what}"[:255],
            details={**details, "receipt": row.transaction_id, "booking": str(booking)},
        )


def _notification(row: PulledTransaction, shortcode: str) -> C2BNotification:
    """The row as the confirmation that never came would have said it."""
    return C2BNotification(
        transaction_type=row.transaction_type,
        trans_id=row.transaction_id,
        trans_time=row.trx_date,
        trans_amount=row.amount,
        # The query names one shortcode; its rows do not repeat it.
        business_shortcode=shortcode,
        bill_ref_number=row.bill_reference,
        invoice_number="",
        org_account_balance=None,
        third_party_trans_id="",
        msisdn=_masked(row.msisdn),
        first_name="",
        middle_name="",
        last_name="",
        raw=row.raw,
    )


def _masked(msisdn: str) -> str:
    """Pull lists the payer's full number (reported); the ledger keeps it masked, as a C2B v2
    confirmation sends it. The shown digits still match an STK Push's phone."""
    try:
        return mask_phone_number(normalize_phone_number(msisdn, field="msisdn"))
    except InvalidPhoneNumberError:
        return msisdn  # already masked or hashed, or not a number: kept as listed


def _mark_recovered(transaction: Transaction, row: PulledTransaction) -> None:
    transaction.recovered_from = RECOVERED_FROM
    transaction.metadata = {
        **transaction.metadata,
        "recovered": {
            "source": RECOVERED_FROM,
            "found_at": timezone.now().isoformat(),
            "listed": {**_without_msisdn(row.raw), "msisdn": _masked(row.msisdn)},
        },
    }
    transaction.save(update_fields=["recovered_from", "metadata", "updated_at"])


def _flag_amount(
    holder: Transaction, row: PulledTransaction, *, report: PullReport, details: dict[str, Any]
) -> None:
    """Flag a ledger row whose amount M-Pesa lists differently; its amount is never changed."""
    report.amount_differs += 1
    listed = str(row.amount)
    reason = (
        f"Pull Transactions lists {listed} for receipt {row.transaction_id}; "
        f"the ledger has {holder.amount}: check the M-Pesa statement"
    )
    report.lines.append(f"{row.transaction_id}: {reason}")
    if holder.metadata.get("pull_amount") == listed:
        return  # flagged by an earlier sweep
    holder.metadata = {**holder.metadata, "pull_amount": listed}
    if not holder.needs_review:
        holder.flag_for_review(reason)
    holder.save(update_fields=["metadata", "needs_review", "review_reason", "updated_at"])
    logger.warning(
        "receipt %s: Pull Transactions lists another amount than the ledger; flagged",
        row.transaction_id,
        extra={"transaction_id": str(holder.pk)},
    )
    audit_record(
        actor=None,
        action="pull_amount_differs",
        transaction=holder,
        outcome=reason[:255],
        details={**details, "receipt": row.transaction_id, "listed_amount": listed},
    )


def _without_msisdn(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key != "msisdn"}


def _local(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")

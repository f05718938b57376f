"""Reconciliation: settle what is still pending or unknown by asking Daraja, never by guessing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction as db_transaction
from django.db.models import Q
from django.utils import timezone

from payments.conf import payments_settings
from payments.daraja.client import DarajaClient
from payments.daraja.errors import DarajaError
from payments.enums import TransactionStatus, TransactionType
from payments.exceptions import PaymentsError
from payments.gateway import get_daraja_client
from payments.models import Transaction
from payments.services.common import failure_signal_send
from payments.services.inquiries import transaction_status_query
from payments.services.stk_results import stk_query_settle

logger = logging.getLogger(__name__)

S = TransactionStatus
AWAITING = (S.PENDING, S.UNKNOWN)
RATE_LIMIT_RETRIES = 3
RATE_LIMIT_BACKOFF = (5.0, 15.0, 45.0)


@dataclass
class ReconcileReport:
    claimed: int = 0
    settled: int = 0
    still_pending: int = 0
    expired: int = 0
    status_queries: int = 0
    errors: int = 0
    rate_limited: int = 0
    stopped_early: bool = False
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.claimed} examined: {self.settled} settled, {self.expired} expired, "
            f"{self.status_queries} status queries sent, {self.still_pending} still pending, "
            f"{self.errors} errors, {self.rate_limited} rate-limited answers"
        )
        return text + (" (stopped early: Daraja keeps throttling)" if self.stopped_early else "")


def transactions_due_for_reconciliation(*, older_than: int) -> Q:
    """Pending or unknown rows older than ``older_than`` seconds not asked about recently."""
    now = timezone.now()
    interval = timedelta(seconds=payments_settings.RECONCILE_INTERVAL)
    return (
        Q(status__in=AWAITING, needs_review=False)
        & Q(created_at__lte=now - timedelta(seconds=older_than))
        & (Q(last_queried_at__isnull=True) | Q(last_queried_at__lte=now - interval))
    )


def transactions_reconcile(
    *,
    older_than: int = 60,
    limit: int = 100,
    dry_run: bool = False,
    client: DarajaClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda line: None,
) -> ReconcileReport:
    """Ask Daraja about up to ``limit`` stuck transactions and apply what it says.

    Rows are claimed in a short transaction (``select_for_update(skip_locked=True)`` plus a
    fresh ``last_queried_at``), so two runs on two hosts never ask about the same row; no lock
    is held while Daraja is called. STK Pushes are settled by STK query (or expire to
    ``timeout`` when they never got a CheckoutRequestID); B2C payouts and reversals by a
    Transaction Status query whose result arrives later. A success is never downgraded.
    """
    report = ReconcileReport()
    due = Transaction.objects.filter(transactions_due_for_reconciliation(older_than=older_than))
    if dry_run:
        for row in due.order_by("created_at")[:limit]:
            report.claimed += 1
            progress(f"would check {row.transaction_type} {row.pk} ({row.status})")
        return report
    with db_transaction.atomic():
        rows = list(due.select_for_update(skip_locked=True).order_by("created_at")[:limit])
        Transaction.objects.filter(pk__in=[r.pk for r in rows]).update(
            last_queried_at=timezone.now()
        )
    report.claimed = len(rows)
    client = client or get_daraja_client()
    for row in rows:
        if report.stopped_early:
            break
        _reconcile_one(row, client=client, sleep=sleep, report=report, progress=progress)
    return report


def _reconcile_one(row, *, client, sleep, report, progress) -> None:
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            _settle(row, client=client, report=report, progress=progress)
            return
        except (DarajaError, PaymentsError) as exc:
            throttled = _rate_limit_error(exc)
            if throttled is None:
                report.errors += 1
                progress(
                    f"{row.pk}: Daraja error {exc}"
                    if isinstance(exc, DarajaError)
                    else f"{row.pk}: {exc.message}"
                )
                return
            report.rate_limited += 1
            if attempt == RATE_LIMIT_RETRIES:
                report.stopped_early = True
                progress(f"{row.pk}: Daraja keeps throttling ({throttled.error_code}); stopping")
                return
            delay = RATE_LIMIT_BACKOFF[min(attempt, len(RATE_LIMIT_BACKOFF) - 1)]
            progress(f"{row.pk}: throttled ({throttled.error_code}); waiting {delay:.0f}s")
            sleep(delay)


def _rate_limit_error(exc: Exception) -> DarajaError | None:
    """Daraja's spike-arrest or quota answer behind ``exc``, if that is what it is.

    A Transaction Status query reports Daraja's refusal as a DarajaRefusedError caused by the
    DarajaError: throttling there must back off (and stop the run) just like an STK query.
    """
    error = exc if isinstance(exc, DarajaError) else exc.__cause__
    return error if isinstance(error, DarajaError) and error.is_rate_limited else None


def _settle(row: Transaction, *, client, report: ReconcileReport, progress) -> None:
    if row.transaction_type == TransactionType.STK_PUSH:
        if row.checkout_request_id:
            before = row.status
            after = stk_query_settle(transaction=row, client=client).status
            if after == before:
                report.still_pending += 1
            else:
                report.settled += 1
            progress(f"STK {row.pk}: {before} -> {after}")
            return
        _expire_if_old(row, report=report, progress=progress)
        return
    if row.transaction_type in (TransactionType.B2C, TransactionType.REVERSAL):
        inquiry = transaction_status_query(transaction=row, client=client)
        report.status_queries += 1
        progress(f"{row.transaction_type} {row.pk}: status query {inquiry.pk} ({inquiry.status})")


def _expire_if_old(row: Transaction, *, report: ReconcileReport, progress) -> None:
    """An STK Push that never got a CheckoutRequestID cannot be queried; after a while it is
    given up as ``timeout`` (a late genuine callback can still settle it)."""
    cutoff = timezone.now() - timedelta(seconds=payments_settings.STK_EXPIRE_AFTER)
    if row.created_at > cutoff:
        report.still_pending += 1
        return
    with db_transaction.atomic():
        locked = Transaction.objects.select_for_update().get(pk=row.pk)
        if locked.checkout_request_id is None and locked.can_transition_to(S.TIMEOUT):
            locked.transition_to(S.TIMEOUT)
            locked.result_desc = "No answer from M-Pesa; expired by reconciliation."
            locked.save()
            failure_signal_send(locked)
            report.expired += 1
            progress(f"STK {row.pk}: expired to timeout")
            return
    report.still_pending += 1

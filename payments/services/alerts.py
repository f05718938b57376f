"""Alerts: what needs a person, counted for the admin index and e-mailed once per problem.

Three kinds: transactions flagged ``needs_review``, transactions still ``unknown`` after
PAYMENTS["UNKNOWN_ALERT_AFTER"], and statement lines that do not match the ledger. The digest
goes to the Finance manager group through Django's e-mail backend; each problem is sent once
(``AlertNotice`` remembers it), so a run every two minutes mails only what is new.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from payments.conf import payments_settings
from payments.models import AlertNotice, Transaction
from payments.selectors import (
    statement_mismatches_open,
    transactions_needing_review,
    transactions_unknown_too_long,
    unknown_alert_cutoff,
)
from payments.services.roles import MANAGER

logger = logging.getLogger(__name__)

# Enough to read in an e-mail; the admin lists the rest.
DIGEST_MAX_LINES_PER_KIND = 50


@dataclass(frozen=True)
class AlertCount:
    """One kind of problem on the admin index: how many, and the list that shows them."""

    kind: str
    label: str
    count: int
    url: str | None


@dataclass(frozen=True)
class Problem:
    key: str  # what makes it "the same problem" from one run to the next
    kind: str
    text: str
    path: str


@dataclass
class AlertsReport:
    open: int = 0
    new: int = 0
    recipients: int = 0
    dry_run: bool = False
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.new:
            return f"Alerts: {self.open} open, none new"
        if self.dry_run:
            return f"Alerts: {self.open} open, {self.new} new (would e-mail them)"
        if not self.recipients:
            return (
                f"Alerts: {self.open} open, {self.new} new, not e-mailed: no active user of the "
                f"{MANAGER} group has an e-mail address"
            )
        return f"Alerts: {self.open} open, {self.new} new, e-mailed to {self.recipients}"


def alerts_open_counts(*, now: datetime | None = None) -> list[AlertCount]:
    """The admin index's badges, each linking to the list of its problems."""
    now = now or timezone.now()
    changelist = reverse("admin:payments_transaction_changelist")
    unknown_filter = {"status__exact": "unknown", "created_at__lt": unknown_alert_cutoff(now)}
    minutes = round(payments_settings.UNKNOWN_ALERT_AFTER / 60)
    return [
        AlertCount(
            "needs_review",
            "Transactions flagged for review",
            transactions_needing_review().count(),
            f"{changelist}?needs_review__exact=1",
        ),
        AlertCount(
            "unknown",
            f"Unknown for over {minutes} minutes",
            transactions_unknown_too_long(now=now).count(),
            f"{changelist}?{urlencode(unknown_filter)}",
        ),
        AlertCount(
            "statement",
            "Statement lines that do not match",
            statement_mismatches_open().count(),
            reverse("admin:payments_statementline_changelist") + "?needs_a_person=yes",
        ),
    ]


def alerts_digest_send(*, dry_run: bool = False, now: datetime | None = None) -> AlertsReport:
    """E-mail the Finance managers the problems not e-mailed before, in one message.

    The problems are recorded as sent in the same database transaction that sends the mail: a
    run on another host waits for it and then finds them sent, and a mail that fails to go
    records nothing, so the next run tries again. With nobody to send to, nothing is recorded.
    """
    problems = open_problems(now=now)
    report = AlertsReport(open=len(problems), dry_run=dry_run)
    sent_before = set(
        AlertNotice.objects.filter(key__in=[p.key for p in problems]).values_list("key", flat=True)
    )
    new = [problem for problem in problems if problem.key not in sent_before]
    report.new = len(new)
    report.lines = [f"{problem.kind}: {problem.text}" for problem in new]
    recipients = _recipients()
    report.recipients = len(recipients)
    if not new or dry_run or not recipients:
        return report
    with db_transaction.atomic():
        fresh = [problem for problem in new if _claim(problem.key)]
        report.new = len(fresh)
        if fresh:
            subject, body = _digest(fresh)
            send_mail(subject, body, None, recipients)
    if fresh:
        logger.info("alert digest of %s problems e-mailed", len(fresh))
    return report


def open_problems(*, now: datetime | None = None) -> list[Problem]:
    """Every problem open now, oldest first within each kind."""
    now = now or timezone.now()
    problems = [
        Problem(
            key=f"review:{row.pk}:{_digest_of(row.review_reason)}",
            kind="Flagged for review",
            text=f"{_described(row)}: {row.review_reason or 'no reason given'}",
            path=_admin_path(row),
        )
        for row in transactions_needing_review().order_by("created_at")
    ]
    problems += [
        Problem(
            key=f"unknown:{row.pk}",
            kind="Unknown too long",
            text=f"{_described(row)}, recorded {timezone.localtime(row.created_at):%Y-%m-%d %H:%M}",
            path=_admin_path(row),
        )
        for row in transactions_unknown_too_long(now=now).order_by("created_at")
    ]
    problems += [
        Problem(
            key=f"statement:{line._meta.label_lower}:{line.pk}",
            kind="Statement mismatch",
            text=str(line),
            path=_admin_path(line),
        )
        for line in statement_mismatches_open().order_by("pk")
    ]
    return problems


def _claim(key: str) -> bool:
    """Record ``key`` as sent; False if it already was (by a run at the same time, say)."""
    try:
        with db_transaction.atomic():
            AlertNotice.objects.create(key=key)
    except IntegrityError:
        return False
    return True


def _recipients() -> list[str]:
    users = get_user_model().objects.filter(groups__name=MANAGER, is_active=True)
    return sorted({email for email in users.values_list("email", flat=True) if email})


def _digest(problems: list[Problem]) -> tuple[str, str]:
    count = len(problems)
    subject = f"M-Pesa: {count} new problem{'s' if count != 1 else ''} need a person"
    lines = ["New since the last digest:"]
    kinds: dict[str, list[Problem]] = {}
    for problem in problems:
        kinds.setdefault(problem.kind, []).append(problem)
    for kind, items in kinds.items():
        lines += ["", f"{kind} ({len(items)}):"]
        for problem in items[:DIGEST_MAX_LINES_PER_KIND]:
            lines.append(f"- {problem.text}")
            if problem.path:
                lines.append(f"  {_absolute(problem.path)}")
        if len(items) > DIGEST_MAX_LINES_PER_KIND:
            lines.append(f"- and {len(items) - DIGEST_MAX_LINES_PER_KIND} more")
    lines += ["", f"Everything open: {_absolute(_admin_path(None))}"]
    return subject, "\n".join(lines) + "\n"


def _described(row: Transaction) -> str:
    receipt = row.payment_receipt
    text = f"{row.get_transaction_type_display()} of KES {row.amount} ({row.get_status_display()})"
    return f"{text}, receipt {receipt}" if receipt else text


def _admin_path(obj: Model | None) -> str:
    """The admin page of ``obj`` (the admin index for None); "" where no admin is mounted."""
    try:
        if obj is None:
            return reverse("admin:index")
        meta = obj._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def _absolute(path: str) -> str:
    # The site's public origin, where the admin is served in most deployments.
    base = str(payments_settings.CALLBACK_BASE_URL or "").rstrip("/")
    return f"{base}{path}" if path else "(the admin is not mounted)"


def _digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]

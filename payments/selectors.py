"""Read-side queries."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, time, timedelta

from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from payments.compiled import CompiledQuery
from payments.conf import is_missing, payments_settings
from payments.daraja.dates import NAIROBI
from payments.daraja.errors import InvalidPhoneNumberError
from payments.daraja.phone import normalize_phone_number
from payments.enums import (
    FINAL_STATUSES,
    CallbackOutcome,
    StatementCategory,
    TransactionStatus,
    TransactionType,
)
from payments.models import (
    INCOMING_TYPES,
    BalanceSnapshot,
    CallbackEvent,
    DarajaInquiry,
    StatementLine,
    Transaction,
)


def transaction_visible_to(user) -> QuerySet[Transaction]:
    """Every transaction for holders of ``payments.view_transaction``; otherwise the user's own.

    Being staff grants nothing here: staff status opens the admin site, not the ledger.
    """
    queryset = Transaction.objects.all()
    if not user.has_perm("payments.view_transaction"):
        queryset = queryset.filter(user=user)
    return queryset


# An M-Pesa receipt is ten upper-case letters and digits (NLJ7RT61SV): from four of them on, a
# search matches receipts starting with them (fewer would list a good part of the ledger).
RECEIPT_PREFIX = re.compile(r"[A-Z0-9]{4,10}")


def transaction_search(queryset: QuerySet[Transaction], term: str) -> QuerySet[Transaction]:
    """The transactions of ``queryset`` that ``term`` names: an M-Pesa receipt (whole or its
    first four characters or more, any case), a phone number in any accepted form (07…, 2547…,
    +254…), an account reference (whole, any case), a CheckoutRequestID, a conversation id or
    an originator conversation id (whole).

    Only exact and prefix matches, each served by an index (models.Transaction.Meta): a
    "contains" match reads every row of the ledger, and the ledger grows by the day.
    """
    term = " ".join(term.split())
    if not term:
        return queryset
    upper = term.upper()
    receipt = (
        Q(mpesa_receipt_number__startswith=upper)
        if RECEIPT_PREFIX.fullmatch(upper)
        else Q(mpesa_receipt_number=upper)
    )
    match = (
        receipt
        | Q(account_reference__iexact=term)
        | Q(checkout_request_id=term)
        | Q(conversation_id=term)
        | Q(originator_conversation_id=term)
    )
    with contextlib.suppress(InvalidPhoneNumberError):  # not a phone number: the rest
        match |= Q(phone_number=normalize_phone_number(term))
    return queryset.filter(match)


def transaction_visible_or_none(user, **lookup) -> Transaction | None:
    """The transaction ``lookup`` names (by a unique column) if ``user`` may see it, as
    ``transaction_visible_to``; None otherwise. Read first, so that its owner (the app polling
    its own push) costs no permission lookup."""
    # A unique column: no ORDER BY (``first()`` would add one).
    found = list(Transaction.objects.filter(**lookup).order_by()[:1])
    if not found:
        return None
    transaction = found[0]
    visible = _owns(user, transaction) or user.has_perm("payments.view_transaction")
    return transaction if visible else None


def _owns(user, transaction: Transaction) -> bool:
    """Whether ``user`` started ``transaction`` (anonymous and system rows have no owner)."""
    return transaction.user_id is not None and transaction.user_id == user.pk


def transactions_for(obj: Model) -> QuerySet[Transaction]:
    """The transactions linked to the host's ``obj`` (``for_object``), newest first: its
    payments, payouts and their refunds."""
    return Transaction.objects.filter(
        for_content_type=ContentType.objects.get_for_model(obj), for_object_id=str(obj.pk)
    )


def for_object_label(content_type_id: int | None) -> str:
    """``app_label.model`` of a for_object's content type, as the API names it ("" for none)."""
    if content_type_id is None:
        return ""
    content_type = ContentType.objects.get_for_id(content_type_id)
    return f"{content_type.app_label}.{content_type.model}"


# Asked before every callback is stored: compiled once (payments/compiled.py).
_TRANSACTION_TOKEN = CompiledQuery(
    lambda token: Transaction.objects.filter(callback_token=token), exists=True
)
_INQUIRY_TOKEN = CompiledQuery(lambda token: DarajaInquiry.objects.filter(token=token), exists=True)


def callback_token_exists(token: str) -> bool:
    """Whether a transaction or an inquiry of ours owns this callback token."""
    return (
        _TRANSACTION_TOKEN.first_row(token) is not None
        or _INQUIRY_TOKEN.first_row(token) is not None
    )


# Stored but never processed (the process died in between), failed, matching nothing of ours,
# or refused: each waits for a person (or a replay).
OUTCOMES_NEEDING_A_PERSON = (
    CallbackOutcome.RECEIVED,
    CallbackOutcome.ERROR,
    CallbackOutcome.UNMATCHED,
    CallbackOutcome.REJECTED,
    CallbackOutcome.REFUSED,  # from outside the callback allowlist: genuine, or forged
)


def callback_events_needing_a_person(events: QuerySet[CallbackEvent]) -> QuerySet[CallbackEvent]:
    """The events among ``events`` a person must look at: those with an outcome above, and
    those whose transaction is flagged for review (a C2B confirmation booked with what could
    be booked, say)."""
    return events.filter(
        Q(outcome__in=OUTCOMES_NEEDING_A_PERSON) | Q(transaction__needs_review=True)
    )


def transactions_needing_review() -> QuerySet[Transaction]:
    """Transactions flagged for a person: an amount or phone that differs, a contradicting
    result, a confirmation booked with what could be booked, an amount Pull lists otherwise."""
    return Transaction.objects.filter(needs_review=True)


def unknown_alert_cutoff(now: datetime | None = None) -> datetime:
    """A transaction still ``unknown`` since before this instant is reported to a person."""
    return (now or timezone.now()) - timedelta(seconds=payments_settings.UNKNOWN_ALERT_AFTER)


def transactions_unknown_too_long(*, now: datetime | None = None) -> QuerySet[Transaction]:
    """Transactions whose fate reconciliation has not learnt within UNKNOWN_ALERT_AFTER."""
    return Transaction.objects.filter(
        status=TransactionStatus.UNKNOWN, created_at__lt=unknown_alert_cutoff(now)
    )


def statement_mismatches_open() -> QuerySet[StatementLine]:
    """Statement lines a person must still look at, not yet resolved: an amount that differs;
    a payment on the statement the ledger still lacks (booked since, by Pull Transactions say,
    it is closed); a ledger payment missing from its statement that no later statement shows.
    """
    on_ledger = Transaction.objects.filter(
        transaction_type__in=INCOMING_TYPES, mpesa_receipt_number=OuterRef("receipt")
    )
    on_a_later_statement = StatementLine.objects.filter(
        receipt=OuterRef("receipt"),
        row_number__isnull=False,
        statement__created_at__gt=OuterRef("statement__created_at"),
    )
    return (
        StatementLine.objects.alias(
            already_booked=Exists(on_ledger), shown_later=Exists(on_a_later_statement)
        )
        .filter(resolved_at__isnull=True)
        .filter(
            Q(category=StatementCategory.AMOUNT_DIFFERS)
            | Q(category=StatementCategory.MISSING_FROM_LEDGER, already_booked=False)
            | Q(category=StatementCategory.MISSING_FROM_STATEMENT, shown_later=False)
        )
    )


def transaction_may_query(user, transaction: Transaction) -> bool:
    """Whether ``user`` reading ``transaction`` may make us ask Daraja about it.

    The owner polling their own payment may; anyone else needs ``payments.query_status``, as
    seeing a transaction is not the right to spend Daraja calls on it.
    """
    return _owns(user, transaction) or user.has_perm("payments.query_status")


def balance_shortcodes() -> dict[str, str]:
    """The shortcodes that hold our money, each with its label: the one customers pay, and the
    one that funds payouts (B2C pays from its Utility account). One entry when they are one."""
    roles: dict[str, list[str]] = {}
    collects = (
        "PayBill"
        if payments_settings.STK_TRANSACTION_TYPE == "CustomerPayBillOnline"
        else "Buy Goods"
    )
    for setting, role in (("SHORTCODE", collects), ("B2C_SHORTCODE", "B2C payouts")):
        shortcode = str(getattr(payments_settings, setting) or "").strip()
        if not is_missing(shortcode):
            roles.setdefault(shortcode, []).append(role)
    return {shortcode: f"{' and '.join(r)} {shortcode}" for shortcode, r in roles.items()}


def shortcode_label(shortcode: str) -> str:
    """How the back office names ``shortcode``, e.g. "PayBill 174379"."""
    return balance_shortcodes().get(shortcode, f"Shortcode {shortcode}")


def balances_latest() -> list[BalanceSnapshot]:
    """The newest snapshot of each (shortcode, account), newest shortcode first."""
    latest: dict[tuple[str, str], BalanceSnapshot] = {}
    for snapshot in BalanceSnapshot.objects.order_by("-reported_at", "-pk")[:500]:
        latest.setdefault((snapshot.shortcode, snapshot.account), snapshot)
    return list(latest.values())


def payments_dashboard(*, days: int = 7) -> dict:
    """Incoming money (STK Push and C2B) today and over ``days`` Kenyan days, per day.

    Amount counts successful payments once each, net of their refunds (full or partial); the
    success rate is among STK Pushes that ended.
    """
    today = timezone.now().astimezone(NAIROBI).date()
    start = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=NAIROBI)
    rows = Transaction.objects.filter(
        transaction_type__in=(TransactionType.STK_PUSH, TransactionType.C2B),
        created_at__gte=start,
    ).values_list(
        "created_at", "status", "amount", "transaction_type", "reversed_amount", "booked_as"
    )
    per_day = {today - timedelta(days=n): _DayTotals() for n in range(days)}
    for created_at, status, amount, kind, refunded, booked_as in rows:
        totals = per_day.get(created_at.astimezone(NAIROBI).date())
        if totals is not None:
            totals.add(
                status=status, amount=amount - refunded, kind=kind, booked_elsewhere=bool(booked_as)
            )
    ordered = [(day, per_day[day]) for day in sorted(per_day)]
    week = _DayTotals.combined(t for _, t in ordered)
    return {"today": per_day[today], "week": week, "days": ordered}


class _DayTotals:
    def __init__(self) -> None:
        self.count = 0
        self.amount = 0
        self.successes = 0
        self.finished_pushes = 0
        self.successful_pushes = 0

    def add(self, *, status: str, amount: int, kind: str, booked_elsewhere: bool) -> None:
        """``booked_elsewhere``: a push paid as its C2B confirmation, counted on that row."""
        self.count += 1
        if status in (TransactionStatus.SUCCESS, TransactionStatus.REVERSED) and not (
            booked_elsewhere
        ):
            self.successes += 1
            self.amount += amount
        if kind == TransactionType.STK_PUSH and status in FINAL_STATUSES:
            self.finished_pushes += 1
            if status in (TransactionStatus.SUCCESS, TransactionStatus.REVERSED):
                self.successful_pushes += 1

    @property
    def success_rate(self) -> int | None:
        """Percentage of finished STK Pushes that were paid; None when none finished."""
        if not self.finished_pushes:
            return None
        return round(100 * self.successful_pushes / self.finished_pushes)

    @classmethod
    def combined(cls, parts) -> _DayTotals:
        total = cls()
        for part in parts:
            for name in ("count", "amount", "successes", "finished_pushes", "successful_pushes"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
        return total

"""Read-side queries."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from payments.daraja.dates import NAIROBI
from payments.enums import FINAL_STATUSES, TransactionStatus, TransactionType
from payments.models import BalanceSnapshot, DarajaInquiry, Transaction


def transaction_visible_to(user) -> QuerySet[Transaction]:
    """Every transaction for holders of ``payments.view_transaction``; otherwise the user's own.

    Being staff grants nothing here: staff status opens the admin site, not the ledger.
    """
    queryset = Transaction.objects.all()
    if not user.has_perm("payments.view_transaction"):
        queryset = queryset.filter(user=user)
    return queryset


def transaction_may_query(user, transaction: Transaction) -> bool:
    """Whether ``user`` reading ``transaction`` may make us ask Daraja about it.

    The owner polling their own payment may; anyone else needs ``payments.query_status``, as
    seeing a transaction is not the right to spend Daraja calls on it.
    """
    owns = transaction.user_id is not None and transaction.user_id == user.pk
    return owns or user.has_perm("payments.query_status")


def transaction_get_by_token(token: str) -> Transaction | None:
    return Transaction.objects.filter(callback_token=token).first()


def inquiry_get_by_token(token: str) -> DarajaInquiry | None:
    return DarajaInquiry.objects.filter(token=token).first()


def balances_latest() -> list[BalanceSnapshot]:
    """The newest snapshot of each (shortcode, account), newest shortcode first."""
    latest: dict[tuple[str, str], BalanceSnapshot] = {}
    for snapshot in BalanceSnapshot.objects.order_by("-reported_at", "-pk")[:500]:
        latest.setdefault((snapshot.shortcode, snapshot.account), snapshot)
    return list(latest.values())


def payments_dashboard(*, days: int = 7) -> dict:
    """Incoming money (STK Push and C2B) today and over ``days`` Kenyan days, per day.

    Amount counts successful payments; the success rate is among STK Pushes that ended.
    """
    today = timezone.now().astimezone(NAIROBI).date()
    start = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=NAIROBI)
    rows = Transaction.objects.filter(
        transaction_type__in=(TransactionType.STK_PUSH, TransactionType.C2B),
        created_at__gte=start,
    ).values_list("created_at", "status", "amount", "transaction_type")
    per_day = {today - timedelta(days=n): _DayTotals() for n in range(days)}
    for created_at, status, amount, kind in rows:
        totals = per_day.get(created_at.astimezone(NAIROBI).date())
        if totals is not None:
            totals.add(status=status, amount=amount, kind=kind)
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

    def add(self, *, status: str, amount: int, kind: str) -> None:
        self.count += 1
        if status in (TransactionStatus.SUCCESS, TransactionStatus.REVERSED):
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

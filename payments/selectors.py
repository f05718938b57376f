"""Read-side queries."""

from __future__ import annotations

from django.db.models import QuerySet

from payments.models import BalanceSnapshot, DarajaInquiry, Transaction


def transaction_visible_to(user) -> QuerySet[Transaction]:
    """Staff see every transaction; everyone else sees their own."""
    queryset = Transaction.objects.all()
    if not user.is_staff:
        queryset = queryset.filter(user=user)
    return queryset


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

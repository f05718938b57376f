"""Read-side queries."""

from __future__ import annotations

from django.db.models import QuerySet

from payments.models import Transaction


def transaction_visible_to(user) -> QuerySet[Transaction]:
    """Staff see every transaction; everyone else sees their own."""
    queryset = Transaction.objects.all()
    if not user.is_staff:
        queryset = queryset.filter(user=user)
    return queryset


def transaction_get_by_token(token: str) -> Transaction | None:
    return Transaction.objects.filter(callback_token=token).first()

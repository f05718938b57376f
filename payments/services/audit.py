"""The audit trail: one append-only record per staff action on money or its status."""

from __future__ import annotations

from typing import Any

from payments.models import AuditRecord, Transaction


def audit_record(
    *,
    actor: Any,
    action: str,
    outcome: str,
    transaction: Transaction | None = None,
    amount: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    return AuditRecord.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        transaction=transaction,
        amount=amount if amount is not None else getattr(transaction, "amount", None),
        outcome=outcome[:255],
        details=details or {},
    )

"""The audit trail: one append-only record per staff action on money or its status."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from payments.daraja.errors import DarajaError
from payments.exceptions import PaymentsError
from payments.models import AuditRecord, Transaction
from payments.services.common import AMOUNT_MAX


def audit_record(
    *,
    actor: Any,
    action: str,
    outcome: str,
    transaction: Transaction | None = None,
    amount: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    recorded = amount if amount is not None else getattr(transaction, "amount", None)
    if recorded is not None and not 0 <= recorded <= AMOUNT_MAX:
        # A refused request for 10**30 shillings is audited too; no amount column holds that.
        details = {**(details or {}), "amount_asked": str(recorded)}
        recorded = None
    return AuditRecord.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        transaction=transaction,
        amount=recorded,
        outcome=outcome[:255],
        details=details or {},
    )


@contextmanager
def audit_failure(*, actor: Any, action: str, details: dict[str, Any]) -> Iterator[None]:
    """Record ``action`` as failed, with the reason, when the block raises; then re-raise."""
    try:
        yield
    except (PaymentsError, DarajaError) as exc:
        audit_record(actor=actor, action=action, outcome=f"failed: {exc}", details=details)
        raise


def command_details(command: str, **options: Any) -> dict[str, Any]:
    """How a management command was run: the record of an action that has no user."""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        os_user = ""
    return {"via": "command", "command": command, "os_user": os_user, **options}

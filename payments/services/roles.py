"""The finance roles: groups a superuser hands to back-office staff."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

CLERK = "Finance clerk"
MANAGER = "Finance manager"

_CLERK_PERMISSIONS = (
    "view_transaction",
    "export_transactions",
    "view_callbackevent",
    "view_balancesnapshot",
    "view_payoutrequest",
    "view_refundrequest",
    "view_auditrecord",
    "view_statementimport",
    "view_statementline",
)
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    CLERK: _CLERK_PERMISSIONS,
    MANAGER: (
        *_CLERK_PERMISSIONS,
        "refund",
        "pay_out",
        "approve_payout",
        "approve_refund",
        "view_balance",
        "query_status",
        "change_callbackevent",
        "register_c2b_urls",
        "import_statement",
        "book_statement_line",
    ),
}


def finance_roles_ensure() -> dict[str, Group]:
    """Create the finance groups, or bring their permissions back to the definition."""
    groups = {}
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="payments", codename__in=codenames)
        )
        groups[name] = group
    return groups

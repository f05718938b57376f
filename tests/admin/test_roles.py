"""The finance roles exist after migrate with the documented permissions (the project lists
payments before django.contrib.auth: its handler creates the permissions it needs)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from payments.services.roles import CLERK, MANAGER

pytestmark = pytest.mark.django_db

MONEY_MOVING = {
    "refund",
    "pay_out",
    "approve_payout",
    "approve_refund",
    "view_balance",
    "query_status",
    "register_c2b_urls",
    "import_statement",
    "book_statement_line",
}


def codenames(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def test_finance_clerk_may_look_and_export_but_not_move_money():
    assert codenames(CLERK) == {
        "payments.view_transaction",
        "payments.export_transactions",
        "payments.view_callbackevent",
        "payments.view_balancesnapshot",
        "payments.view_payoutrequest",
        "payments.view_refundrequest",
        "payments.view_auditrecord",
        "payments.view_statementimport",
        "payments.view_statementline",
    }


def test_finance_manager_may_also_refund_pay_out_approve_and_query():
    assert codenames(MANAGER) == codenames(CLERK) | {
        f"payments.{codename}" for codename in MONEY_MOVING | {"change_callbackevent"}
    }


def test_group_membership_is_what_grants_the_permissions(clerk, manager):
    for codename in MONEY_MOVING:
        assert not clerk.has_perm(f"payments.{codename}")
        assert manager.has_perm(f"payments.{codename}")
    assert clerk.has_perm("payments.export_transactions")
    assert not clerk.has_perm("payments.change_transaction")
    assert not manager.has_perm("payments.delete_transaction")

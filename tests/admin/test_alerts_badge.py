"""The admin index counts what needs a person, each count linking to the list of those rows."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from payments.enums import TransactionStatus, TransactionType
from payments.models import Transaction

pytestmark = pytest.mark.django_db


def made(status: str, *, minutes_old: int = 0, **fields) -> Transaction:
    transaction = Transaction.objects.create(
        transaction_type=TransactionType.B2C,
        status=status,
        amount=500,
        phone_number="254708374149",
        environment="sandbox",
        **fields,
    )
    Transaction.objects.filter(pk=transaction.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_old)
    )
    return transaction


def badge(page: str, kind: str) -> tuple[str, str | None]:
    """The count of one badge, and where it links (None when it does not)."""
    item = re.search(rf'<li id="alert-{kind}".*?</li>', page, re.S)
    assert item, f"no {kind} badge"
    count = re.search(r'class="alert-count"[^>]*>(\d+)<', item.group()).group(1)
    link = re.search(r'href="([^"]+)"', item.group())
    return count, unescape(link.group(1)) if link else None


def listed(client: Client, url: str) -> set[str]:
    page = client.get(url).content.decode()
    return set(re.findall(r"/admin/payments/transaction/([0-9a-f-]{36})/change/", page))


def test_the_index_counts_what_needs_a_person_and_links_to_those_rows(as_clerk):
    flagged = made(TransactionStatus.SUCCESS, needs_review=True, review_reason="amount differs")
    stuck = made(TransactionStatus.UNKNOWN, minutes_old=90)
    made(TransactionStatus.UNKNOWN, minutes_old=10)  # reconciliation still has time
    made(TransactionStatus.SUCCESS)

    page = as_clerk.get("/admin/").content.decode()

    assert "Needs a person" in page
    review_count, review_url = badge(page, "needs_review")
    unknown_count, unknown_url = badge(page, "unknown")
    assert (review_count, unknown_count) == ("1", "1")
    assert "Unknown for over 60 minutes" in page
    assert listed(as_clerk, review_url) == {str(flagged.pk)}
    assert listed(as_clerk, unknown_url) == {str(stuck.pk)}


def test_a_count_of_nothing_links_nowhere(as_manager):
    page = as_manager.get("/admin/").content.decode()

    assert badge(page, "needs_review") == ("0", None)
    assert badge(page, "unknown") == ("0", None)
    assert badge(page, "statement") == ("0", None)


def test_staff_who_may_not_see_the_ledger_see_no_counts(django_user_model):
    staff = django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    client = Client()
    client.force_login(staff)

    page = client.get("/admin/").content.decode()

    assert "Needs a person" not in page

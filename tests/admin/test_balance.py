"""The balance page: the newest snapshot of each account with its age, and a Refresh button."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.enums import InquiryKind, InquiryStatus
from payments.models import BalanceSnapshot, DarajaInquiry
from tests.payments.money_out import BALANCE_URL, accept, sent

from .helpers import BALANCE, messages_of

pytestmark = pytest.mark.django_db


def snapshot(account: str, available: str, age: timedelta) -> BalanceSnapshot:
    return BalanceSnapshot.objects.create(
        shortcode="174379",
        account=account,
        currency="KES",
        available=Decimal(available),
        current=Decimal(available),
        reported_at=timezone.now() - age,
    )


def test_balance_page_lists_the_newest_snapshot_of_each_account_with_its_age(as_manager):
    snapshot("Working Account", "1000.00", timedelta(days=1))
    newest = snapshot("Working Account", "4321.00", timedelta(hours=2, minutes=5))
    utility = snapshot("Utility Account", "99.50", timedelta(minutes=30))

    response = as_manager.get(BALANCE)

    assert response.status_code == 200
    accounts = response.context["accounts"]
    assert {s.pk for _, s, _ in accounts} == {newest.pk, utility.pk}
    assert {label for label, _, _ in accounts} == {"PayBill 174379"}
    ages = {s.account: age for _, s, age in accounts}
    assert timedelta(hours=2, minutes=5) <= ages["Working Account"] < timedelta(hours=2, minutes=6)
    page = response.content.decode()
    assert "KES 4321.00" in page
    assert "KES 1000.00" not in page
    assert "KES 99.50" in page
    assert "2\xa0hours, 5\xa0minutes ago" in page
    assert "30\xa0minutes ago" in page


def test_refresh_asks_daraja_for_the_balance_of_the_paybill_and_the_payout_shortcode(
    as_manager, manager, daraja
):
    accept(daraja, BALANCE_URL)

    response = as_manager.post(BALANCE)

    assert response.status_code == 302
    assert response["Location"] == BALANCE
    requests = sent(daraja, BALANCE_URL)
    assert {r["CommandID"] for r in requests} == {"AccountBalance"}
    assert [r["PartyA"] for r in requests] == [174379, 600992]
    inquiries = DarajaInquiry.objects.order_by("pk")
    assert [(i.kind, i.status, i.requested_by) for i in inquiries] == 2 * [
        (InquiryKind.BALANCE, InquiryStatus.PENDING, manager)
    ]
    assert (
        "M-Pesa was asked for the balance of PayBill 174379 and B2C payouts 600992; refresh in "
        "a few seconds." in messages_of(response)
    )


def test_opening_the_balance_page_asks_daraja_nothing(as_manager, daraja):
    assert as_manager.get(BALANCE).status_code == 200
    assert len(daraja.calls) == 0
    assert DarajaInquiry.objects.count() == 0

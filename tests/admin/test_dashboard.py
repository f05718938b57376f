"""The dashboard on the admin index: counts, amounts, success rate and the 7-day bar chart."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from payments.daraja.dates import NAIROBI
from payments.enums import TransactionStatus, TransactionType
from payments.models import Transaction

pytestmark = pytest.mark.django_db

S = TransactionStatus
STK, C2B, B2C = TransactionType.STK_PUSH, TransactionType.C2B, TransactionType.B2C


def made(kind: str, status: str, amount: int, *, days_ago: int = 0) -> Transaction:
    transaction = Transaction.objects.create(
        transaction_type=kind,
        status=status,
        amount=amount,
        phone_number="254708374149",
        environment="sandbox",
    )
    if days_ago:
        # created_at is auto_now_add: only an update can move it into the past. Whole days
        # keep the time of day, so the row lands on the Kenyan day ``days_ago`` before today.
        Transaction.objects.filter(pk=transaction.pk).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )
    return transaction


@pytest.fixture
def week_of_payments() -> None:
    # Today: 5 incoming payments, KES 350 received, 2 of 3 finished pushes paid (67%).
    made(STK, S.SUCCESS, 100)
    made(STK, S.SUCCESS, 50)
    made(STK, S.FAILED, 30)
    made(STK, S.PENDING, 20)  # not finished: no part of the rate
    made(C2B, S.SUCCESS, 200)  # counted and received, but not an STK push
    # Two days ago, the biggest day: KES 1000, 1 of 2 pushes paid.
    made(STK, S.SUCCESS, 1000, days_ago=2)
    made(STK, S.CANCELLED, 10, days_ago=2)
    # Not incoming money, or older than the week: left out.
    made(B2C, S.SUCCESS, 9999)
    made(TransactionType.REVERSAL, S.SUCCESS, 40)
    made(STK, S.SUCCESS, 5000, days_ago=8)


def row(page: str, label: str) -> list[str]:
    match = re.search(rf'<th scope="row">{label}</th>((?:<td>[^<]*</td>)+)</tr>', page)
    assert match, f"no {label} row"
    return re.findall(r"<td>([^<]*)</td>", match.group(1))


def test_dashboard_shows_today_and_the_last_seven_days(as_manager, week_of_payments):
    page = as_manager.get("/admin/").content.decode()

    assert row(page, "Today") == ["5", "350", "67%"]
    # Week: 7 payments, KES 1350, 3 of 5 finished pushes paid.
    assert row(page, "Last 7 days") == ["7", "1350", "60%"]


def test_dashboard_shows_no_rate_when_no_push_has_finished(as_manager):
    made(STK, S.PENDING, 20)

    page = as_manager.get("/admin/").content.decode()

    assert row(page, "Today") == ["1", "0", "—"]


def test_dashboard_chart_has_a_bar_per_day_tallest_for_the_biggest_day(
    as_manager, week_of_payments
):
    page = as_manager.get("/admin/").content.decode()

    svg = re.search(r'<svg[^>]*id="payments-volume-chart".*?</svg>', page, re.DOTALL)
    assert svg, "no chart"
    bars = re.findall(r'<rect [^>]*height="(\d+)"[^>]*><title>([^<]*)</title></rect>', svg.group(0))
    assert len(bars) == 7
    assert svg.group(0).count("<rect") == 7
    heights = [int(height) for height, _ in bars]
    titles = [title for _, title in bars]
    today = timezone.now().astimezone(NAIROBI).date()
    biggest_day = (today - timedelta(days=2)).strftime("%a %d")
    assert titles[heights.index(max(heights))] == f"{biggest_day}: KES 1000"
    assert heights[4] == max(heights)  # days run oldest to newest: today is the last bar
    assert titles[6] == f"{today:%a %d}: KES 350"
    assert heights[6] == round(heights[4] * 350 / 1000)
    assert heights.count(0) == 5

"""The ledger's list page at any size: as many SQL statements for 30 rows as for 3, searches by
whole values or their start, a date drilldown without queries over the list, capped counts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import AuditRecord, Transaction
from payments.pagination import LedgerPaginator

from .helpers import CHANGELIST

pytestmark = pytest.mark.django_db

NAIROBI = dt.timezone(dt.timedelta(hours=3))
# Rows from 20 Dec 2024 to early 2025, one a day: two years, several months.
FIRST_DAY = dt.datetime(2024, 12, 20, 10, 0, tzinfo=NAIROBI)


def add_rows(count: int, *, start: int = 0) -> list[Transaction]:
    """``count`` transactions, one a day from FIRST_DAY, from one phone."""
    linked_to = ContentType.objects.get_for_model(AuditRecord)
    rows = []
    for n in range(start, start + count):
        row = Transaction.objects.create(
            transaction_type="STK_PUSH" if n % 3 else "C2B",
            status="failed" if n % 2 else "success",
            amount=10 + n,
            phone_number="254708374149",
            mpesa_receipt_number=f"NLJ{n:07d}",
            account_reference=f"INV{n:05d}",
            checkout_request_id=f"ws_CO_{n:012d}",
            environment="sandbox",
            needs_review=n % 5 == 0,
            for_content_type=linked_to if n % 4 == 0 else None,
            for_object_id=str(n) if n % 4 == 0 else "",
        )
        row.created_at = FIRST_DAY + dt.timedelta(days=n)
        Transaction.objects.filter(pk=row.pk).update(created_at=row.created_at)
        rows.append(row)
    return rows


def statements(client, query: str) -> int:
    """The SQL statements of one changelist request, caches (permissions, sessions) warm."""
    assert client.get(f"{CHANGELIST}?{query}").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    assert response.context["cl"].result_list, query
    return len(queries)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "q=0708374149",
        "q=nlj00000",
        "status__exact=failed",
        "created_at__year=2025",
        "created_at__month=1&created_at__year=2025",
        "created_at__day=2&created_at__month=1&created_at__year=2025",
        "status__exact=success&q=0708374149&created_at__year=2025",
        "needs_review__exact=1",
        f"for_content_type__id__exact={'{ct}'}",
    ],
)
def test_a_page_takes_as_many_statements_with_30_rows_as_with_3(as_clerk, query):
    query = query.format(ct=ContentType.objects.get_for_model(AuditRecord).pk)
    add_rows(3, start=13)  # 2 to 4 January 2025
    few = statements(as_clerk, query)
    add_rows(27, start=14 + 3)

    assert statements(as_clerk, query) == few


def listed(client, query: str) -> set:
    response = client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    return {t.mpesa_receipt_number for t in response.context["cl"].result_list}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("NLJ0000007", {"NLJ0000007"}),  # a receipt, whole
        ("nlj0000007", {"NLJ0000007"}),  # in any case
        ("NLJ000000", {f"NLJ000000{n}" for n in range(10)}),  # its start
        ("0000007", set()),  # its end
        ("LJ000000", set()),  # its middle
        ("INV00007", {"NLJ0000007"}),  # an account reference, whole
        ("inv00007", {"NLJ0000007"}),
        ("NV00007", set()),
        ("ws_CO_000000000007", {"NLJ0000007"}),  # a CheckoutRequestID, whole
        ("000000000007", set()),
    ],
)
def test_search_matches_a_whole_value_or_its_start_never_its_middle(as_clerk, term, expected):
    add_rows(12)

    assert listed(as_clerk, f"q={term}") == expected


def test_a_phone_in_07_form_finds_the_2547_row_and_a_part_of_it_finds_nothing(as_clerk):
    add_rows(2)
    Transaction.objects.create(
        transaction_type="C2B",
        status="success",
        amount=5,
        phone_number="254711000222",
        mpesa_receipt_number="OTHER00001",
        environment="sandbox",
    )

    assert listed(as_clerk, "q=0711000222") == {"OTHER00001"}
    assert listed(as_clerk, "q=%2B254+711+000+222") == {"OTHER00001"}
    assert listed(as_clerk, "q=000222") == set()


def test_the_search_box_says_what_it_matches(as_clerk):
    page = as_clerk.get(CHANGELIST).content.decode()

    help_text = re.search(r'id="searchbar_helptext">([^<]+)<', page).group(1)
    assert "receipt" in help_text
    assert "phone number in any form" in help_text
    assert "never a match in the middle" in help_text


def test_the_drilldown_offers_the_ledgers_years_then_months_then_days(as_clerk):
    add_rows(45)  # 20 December 2024 to 2 February 2025

    top = as_clerk.get(CHANGELIST).content.decode()
    year = as_clerk.get(f"{CHANGELIST}?created_at__year=2025").content.decode()
    month = as_clerk.get(f"{CHANGELIST}?created_at__month=1&created_at__year=2025").content
    days = re.findall(r"created_at__day=(\d+)", month.decode())

    assert "?created_at__year=2024" in top and "?created_at__year=2025" in top
    assert re.findall(r"created_at__month=(\d+)", year) == ["1", "2"]
    assert days == [str(n) for n in range(1, 32)]
    assert listed(as_clerk, "created_at__day=2&created_at__month=1&created_at__year=2025") == {
        "NLJ0000013"
    }


def test_a_list_longer_than_the_exact_limit_shows_an_estimate_and_pages_to_the_end(
    as_clerk, monkeypatch
):
    monkeypatch.setattr(LedgerPaginator, "exact_limit", 3)
    monkeypatch.setattr("payments.admin.ledger.TransactionAdmin.list_per_page", 2)
    add_rows(7)

    page = as_clerk.get(CHANGELIST).content.decode()
    last = listed(as_clerk, "p=4")

    assert re.search(r"(about [\d,]+|more than 3) transactions", page)
    assert last == {"NLJ0000000"}  # the oldest, on the fourth page of two


def test_the_for_filter_offers_only_the_kinds_payments_are_linked_to(as_clerk):
    add_rows(2)

    filters = as_clerk.get(CHANGELIST).context["cl"].filter_specs
    linked = next(f for f in filters if getattr(f, "field_path", "") == "for_content_type")

    assert [pk for pk, _ in linked.lookup_choices] == [
        ContentType.objects.get_for_model(AuditRecord).pk
    ]

"""The transaction history API at any size: a constant number of SQL statements per page,
searches by whole values or their start (what an index serves), and counts that stop counting."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import Transaction
from payments.pagination import LedgerPaginator

from .conftest import TRANSACTIONS_PATH, api_client_for
from .money_out import grant

pytestmark = pytest.mark.django_db

PHONE = "254708374149"
EPOCH = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def add_rows(user, count: int, *, start: int = 0) -> list[Transaction]:
    """``count`` paid pushes of ``user`` from one phone, each linked to a host object."""
    linked_to = ContentType.objects.get_for_model(Transaction)
    rows = [
        Transaction.objects.create(
            transaction_type="STK_PUSH",
            status="success" if n % 2 else "failed",
            amount=10 + n,
            phone_number=PHONE,
            mpesa_receipt_number=f"QK{n:08d}",
            account_reference=f"INV-{n}",
            checkout_request_id=f"ws_CO_{n:012d}",
            environment="sandbox",
            user=user,
            for_content_type=linked_to,
            for_object_id=str(n),
        )
        for n in range(start, start + count)
    ]
    for row, n in zip(rows, range(start, start + count), strict=True):
        # One minute apart, in the order made: the list's newest-first order is certain.
        row.created_at = EPOCH + dt.timedelta(minutes=n)
        Transaction.objects.filter(pk=row.pk).update(created_at=row.created_at)
    return rows


def statements(client, params: dict) -> int:
    """The SQL statements of one list request, caches (permissions, content types) warm."""
    assert client.get(TRANSACTIONS_PATH, params).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(TRANSACTIONS_PATH, params)
    assert response.status_code == 200, response.content
    assert response.json()["results"]
    return len(queries)


@pytest.mark.parametrize(
    ("who", "params"),
    [
        ("staff", {}),
        ("own", {}),
        ("staff", {"status": "failed"}),
        ("own", {"status": "failed", "transaction_type": "STK_PUSH"}),
        ("staff", {"search": "0708374149"}),
        ("staff", {"search": "QK0000"}),
        ("own", {"search": "inv-1"}),
    ],
)
def test_a_page_takes_as_many_statements_with_30_rows_as_with_3(user, staff_user, who, params):
    client = api_client_for(grant(staff_user, "view_transaction") if who == "staff" else user)
    add_rows(user, 3)
    few = statements(client, params)
    add_rows(user, 27, start=3)

    assert statements(client, params) == few


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("QK00000007", True),  # a receipt, whole
        ("qk00000007", True),  # in any case
        ("QK000000", True),  # its start
        ("00000007", False),  # its end
        ("K0000000", False),  # its middle
        ("QK0", False),  # too short a start: most of the ledger
        ("INV-7", True),  # an account reference, whole
        ("inv-7", True),
        ("NV-7", False),
        ("INV-", False),
        ("ws_CO_000000000007", True),  # a CheckoutRequestID, whole
        ("000000000007", False),
        ("0708374149", True),  # the phone, any accepted form
        ("+254 708 374 149", True),
        ("374149", False),
    ],
)
def test_search_matches_a_whole_value_or_its_start_never_its_middle(user, term, found):
    rows = add_rows(user, 8)
    wanted = str(rows[7].pk)

    listed = ids(api_client_for(user).get(TRANSACTIONS_PATH, {"search": term}))

    assert (wanted in listed) is found


def test_a_receipt_start_finds_only_the_receipts_starting_so(user):
    rows = add_rows(user, 12)

    listed = ids(api_client_for(user).get(TRANSACTIONS_PATH, {"search": "QK0000001"}))

    assert set(listed) == {str(rows[10].pk), str(rows[11].pk)}


def test_beyond_the_exact_limit_the_count_is_an_estimate_and_paging_reaches_every_row(
    user, monkeypatch
):
    monkeypatch.setattr(LedgerPaginator, "exact_limit", 3)
    rows = add_rows(user, 7)
    client = api_client_for(user)

    first = client.get(TRANSACTIONS_PATH, {"page_size": 2}).json()
    seen, page = [], first
    while True:
        seen += [row["id"] for row in page["results"]]
        if page["next"] is None:
            break
        page = client.get(page["next"]).json()

    assert first["count"] >= 4  # at least one more than counted; PostgreSQL's estimate
    assert seen == [str(row.pk) for row in reversed(rows)]
    assert client.get(TRANSACTIONS_PATH, {"page_size": 2, "page": 5}).status_code == 404


def test_within_the_exact_limit_the_count_is_exact(user):
    add_rows(user, 3)

    body = api_client_for(user).get(TRANSACTIONS_PATH, {"page_size": 2}).json()

    assert body["count"] == 3


def test_a_page_past_the_rows_but_within_a_too_high_estimate_is_empty_not_an_error(
    user, monkeypatch
):
    monkeypatch.setattr(LedgerPaginator, "exact_limit", 3)
    monkeypatch.setattr("payments.pagination.estimated_count", lambda queryset: 40)
    add_rows(user, 7)
    client = api_client_for(user)

    last = client.get(TRANSACTIONS_PATH, {"page_size": 2, "page": 4}).json()
    past = client.get(TRANSACTIONS_PATH, {"page_size": 2, "page": 20}).json()

    assert (last["count"], len(last["results"]), last["next"]) == (40, 1, None)
    assert (past["results"], past["next"]) == ([], None)
    assert client.get(TRANSACTIONS_PATH, {"page_size": 2, "page": 21}).status_code == 404

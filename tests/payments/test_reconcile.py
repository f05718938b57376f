"""Reconciliation: stuck transactions are settled by asking Daraja, never by guessing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.conf import payments_settings
from payments.models import DarajaInquiry, Transaction
from payments.services.reconcile import transactions_reconcile

from .conftest import SANDBOX, STK_QUERY_URL, calls_to, load_fixture, stk_transaction

pytestmark = pytest.mark.django_db

STATUS_URL = f"{SANDBOX}/mpesa/transactionstatus/v1/query"
CHECKOUT = "ws_CO_27072017151044001"  # the published cancelled answer's CheckoutRequestID
STALE = 10 * 60
CANCELLED = "stk/stk_query_response_cancelled_1032.2017.php-mpesa.json"
BEING_PROCESSED = (
    "errors/error_500.001.1001_stk_query_transaction_being_processed"
    ".issue-LNMOnlineAndroidSample-13.json"
)
# What Daraja acknowledged a reversal request with (reversal_response_accepted.portal.json).
REVERSAL_ID = "f1e2-4b95-a71d-b30d3cdbb7a7735297"
STATUS_ACCEPTED = "transaction_status/transaction_status_response_accepted.portal.json"


def throttled(code: str) -> dict:
    return {
        "requestId": "11728-2929992-1",
        "errorCode": code,
        "errorMessage": "Spike arrest violation" if code == "500.003.02" else "Quota violation",
    }


def money_out_row(
    transaction_type: str = "B2C", *, status: str = "unknown", age_seconds: int = STALE, **fields
) -> Transaction:
    """A B2C payout or reversal awaiting its result, as its service leaves it."""
    row = Transaction.objects.create(
        transaction_type=transaction_type,
        status=status,
        amount=500,
        phone_number="254708374149",
        environment="sandbox",
        shortcode="600992",
        **fields,
    )
    Transaction.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    row.refresh_from_db()
    return row


def queried_checkouts(daraja) -> list[str]:
    return [
        json.loads(c.request.body)["CheckoutRequestID"] for c in calls_to(daraja, STK_QUERY_URL)
    ]


@pytest.fixture
def no_transport_retries(settings):
    """Rate-limited answers reach the reconciliation service instead of the transport's retry."""
    settings.PAYMENTS = {**settings.PAYMENTS, "HTTP_MAX_RETRIES": 0}


@pytest.fixture
def sleeps() -> list[float]:
    return []


def reconcile(sleeps: list[float] | None = None, **kwargs):
    lines: list[str] = []
    report = transactions_reconcile(
        sleep=(sleeps if sleeps is not None else []).append, progress=lines.append, **kwargs
    )
    return report, lines


# --- Each kind of transaction -----------------------------------------------------------------


def test_a_stale_pending_push_is_settled_by_an_stk_query(daraja):
    row = stk_transaction(checkout_request_id=CHECKOUT, age_seconds=STALE)
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))

    report, lines = reconcile()

    assert queried_checkouts(daraja) == [CHECKOUT]
    row.refresh_from_db()
    assert (row.status, row.result_code) == ("cancelled", "1032")
    assert row.last_queried_at is not None
    assert (report.claimed, report.settled, report.still_pending) == (1, 1, 0)
    assert lines == [f"STK {row.pk}: pending -> cancelled"]


def test_a_push_still_being_processed_stays_pending(daraja):
    row = stk_transaction(checkout_request_id=CHECKOUT, age_seconds=STALE)
    daraja.post(STK_QUERY_URL, status=500, json=load_fixture(BEING_PROCESSED))

    report, _ = reconcile()

    assert queried_checkouts(daraja) == [CHECKOUT]
    row.refresh_from_db()
    assert row.status == "pending"
    assert row.result_code == ""
    assert (report.settled, report.still_pending, report.errors) == (0, 1, 0)


def test_a_push_without_checkout_id_expires_to_timeout_after_stk_expire_after(daraja):
    expire_after = payments_settings.STK_EXPIRE_AFTER
    old = stk_transaction(checkout_request_id=None, status="unknown", age_seconds=expire_after + 60)
    young = stk_transaction(
        checkout_request_id=None, status="unknown", age_seconds=expire_after - 120
    )

    report, _ = reconcile(older_than=60)

    old.refresh_from_db()
    young.refresh_from_db()
    assert old.status == "timeout"
    assert young.status == "unknown"
    assert (report.claimed, report.expired, report.still_pending) == (2, 1, 1)
    # Nothing to ask about: Daraja never gave these a CheckoutRequestID.
    assert len(daraja.calls) == 0


@pytest.mark.parametrize("status", ["pending", "unknown"])
def test_a_stuck_b2c_payout_is_asked_about_by_its_originator_conversation_id(daraja, status):
    originator = f"b2c-{uuid.uuid4()}"
    row = money_out_row("B2C", status=status, originator_conversation_id=originator)
    daraja.post(STATUS_URL, json=load_fixture(STATUS_ACCEPTED))

    report, _ = reconcile()

    (call,) = calls_to(daraja, STATUS_URL)
    sent = json.loads(call.request.body)
    assert sent["CommandID"] == "TransactionStatusQuery"
    assert sent["OriginalConversationID"] == originator
    assert "TransactionID" not in sent
    inquiry = DarajaInquiry.objects.get(transaction=row)
    assert (inquiry.kind, inquiry.status) == ("status", "pending")
    assert sent["ResultURL"].endswith(f"/callbacks/status/{inquiry.token}/result")
    # The answer comes later, as a result callback: the payout itself is not settled yet.
    row.refresh_from_db()
    assert row.status == status
    assert report.status_queries == 1


@pytest.mark.parametrize(
    ("fields", "sent_key", "sent_value"),
    [
        ({"originator_conversation_id": REVERSAL_ID}, "OriginalConversationID", REVERSAL_ID),
        ({"mpesa_receipt_number": "OEI2AK4Q16"}, "TransactionID", "OEI2AK4Q16"),
    ],
    ids=["by-originator-id", "by-receipt"],
)
def test_a_stuck_reversal_is_asked_about_by_transaction_status(
    daraja, fields, sent_key, sent_value
):
    row = money_out_row("REVERSAL", status="pending", **fields)
    daraja.post(STATUS_URL, json=load_fixture(STATUS_ACCEPTED))

    reconcile()

    (call,) = calls_to(daraja, STATUS_URL)
    assert json.loads(call.request.body)[sent_key] == sent_value
    assert DarajaInquiry.objects.get(transaction=row).status == "pending"


# --- What is selected -------------------------------------------------------------------------


def test_a_success_is_never_selected_so_never_downgraded(daraja):
    row = stk_transaction(
        checkout_request_id=CHECKOUT, status="success", age_seconds=STALE, result_code="0"
    )
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))

    report, _ = reconcile()

    assert report.claimed == 0
    assert len(daraja.calls) == 0
    row.refresh_from_db()
    assert (row.status, row.last_queried_at) == ("success", None)


def test_rows_younger_than_older_than_are_skipped(daraja):
    young = stk_transaction(checkout_request_id="ws_CO_young", age_seconds=30)
    old = stk_transaction(checkout_request_id=CHECKOUT, age_seconds=300)
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))

    report, _ = reconcile(older_than=120)

    assert report.claimed == 1
    assert queried_checkouts(daraja) == [CHECKOUT]
    young.refresh_from_db()
    old.refresh_from_db()
    assert (young.status, young.last_queried_at) == ("pending", None)
    assert old.status == "cancelled"


def test_at_most_limit_rows_are_checked_oldest_first(daraja):
    rows = [
        stk_transaction(checkout_request_id=f"ws_CO_{n}", age_seconds=STALE - n) for n in range(3)
    ]
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))

    report, _ = reconcile(limit=2)

    assert report.claimed == 2
    assert queried_checkouts(daraja) == ["ws_CO_0", "ws_CO_1"]
    rows[2].refresh_from_db()
    assert (rows[2].status, rows[2].last_queried_at) == ("pending", None)


def test_dry_run_asks_daraja_nothing_and_changes_nothing(daraja):
    push = stk_transaction(checkout_request_id=CHECKOUT, age_seconds=STALE)
    payout = money_out_row("B2C", originator_conversation_id=f"b2c-{uuid.uuid4()}")
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))
    daraja.post(STATUS_URL, json=load_fixture(STATUS_ACCEPTED))

    report, lines = reconcile(dry_run=True)

    assert len(daraja.calls) == 0
    assert report.claimed == 2
    assert len(lines) == 2
    assert all(line.startswith("would check") for line in lines)
    for row, status in ((push, "pending"), (payout, "unknown")):
        row.refresh_from_db()
        assert (row.status, row.last_queried_at) == (status, None)
    assert DarajaInquiry.objects.count() == 0


# --- The command ------------------------------------------------------------------------------


def test_reconcile_command_prints_progress_and_a_summary(daraja):
    row = stk_transaction(checkout_request_id=CHECKOUT, age_seconds=STALE)
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))
    out = StringIO()

    call_command("mpesa_reconcile", "--older-than", "60", "--limit", "10", stdout=out)

    text = out.getvalue()
    assert f"STK {row.pk}: pending -> cancelled" in text
    assert "1 examined: 1 settled" in text
    row.refresh_from_db()
    assert row.status == "cancelled"


def test_reconcile_command_honours_older_than_limit_and_dry_run(daraja):
    stk_transaction(checkout_request_id="ws_CO_a", age_seconds=500)
    stk_transaction(checkout_request_id="ws_CO_b", age_seconds=400)
    stk_transaction(checkout_request_id="ws_CO_c", age_seconds=100)
    out = StringIO()

    call_command("mpesa_reconcile", "--older-than", "300", "--limit", "1", "--dry-run", stdout=out)

    assert len(daraja.calls) == 0
    text = out.getvalue()
    assert text.count("would check") == 1
    assert "1 examined" in text
    assert set(Transaction.objects.values_list("status", flat=True)) == {"pending"}


# --- Throttling -------------------------------------------------------------------------------


def test_a_throttled_query_is_retried_after_a_backoff(daraja, no_transport_retries, sleeps):
    row = stk_transaction(checkout_request_id=CHECKOUT, age_seconds=STALE)
    daraja.post(STK_QUERY_URL, status=500, json=throttled("500.003.02"))
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))

    report, _ = reconcile(sleeps)

    assert len(sleeps) == 1
    assert sleeps[0] > 0
    assert queried_checkouts(daraja) == [CHECKOUT, CHECKOUT]
    row.refresh_from_db()
    assert row.status == "cancelled"
    assert (report.rate_limited, report.settled, report.stopped_early) == (1, 1, False)


def test_persistent_throttling_stops_the_run_early(daraja, no_transport_retries, sleeps):
    first = stk_transaction(checkout_request_id="ws_CO_first", age_seconds=STALE)
    second = stk_transaction(checkout_request_id="ws_CO_second", age_seconds=STALE - 60)
    daraja.post(STK_QUERY_URL, status=500, json=throttled("500.003.03"))

    report, _ = reconcile(sleeps)

    asked = queried_checkouts(daraja)
    assert set(asked) == {"ws_CO_first"}
    assert len(asked) == len(sleeps) + 1 > 1
    assert all(delay > 0 for delay in sleeps)
    assert sleeps == sorted(sleeps)
    assert report.stopped_early is True
    assert "stopped early" in report.summary()
    for row in (first, second):
        row.refresh_from_db()
        assert row.status == "pending"


def test_persistent_throttling_of_status_queries_stops_the_run_early(
    daraja, no_transport_retries, sleeps
):
    money_out_row("B2C", originator_conversation_id="b2c-first", age_seconds=STALE)
    money_out_row("B2C", originator_conversation_id="b2c-second", age_seconds=STALE - 60)
    daraja.post(STATUS_URL, status=500, json=throttled("500.003.03"))

    report, _ = reconcile(sleeps)

    asked = [
        json.loads(c.request.body)["OriginalConversationID"] for c in calls_to(daraja, STATUS_URL)
    ]
    assert set(asked) == {"b2c-first"}
    assert len(asked) == len(sleeps) + 1 > 1
    assert report.stopped_early is True
    assert "stopped early" in report.summary()


# --- Two runs ---------------------------------------------------------------------------------


def test_a_second_run_right_after_the_first_claims_nothing(daraja):
    row = stk_transaction(checkout_request_id=CHECKOUT, age_seconds=STALE)
    daraja.post(STK_QUERY_URL, status=500, json=load_fixture(BEING_PROCESSED))

    first, _ = reconcile()
    second, _ = reconcile()

    assert (first.claimed, second.claimed) == (1, 0)
    assert queried_checkouts(daraja) == [CHECKOUT]

    # Once RECONCILE_INTERVAL has passed, the row is due again.
    interval = payments_settings.RECONCILE_INTERVAL
    Transaction.objects.filter(pk=row.pk).update(
        last_queried_at=timezone.now() - timedelta(seconds=interval + 1)
    )
    third, _ = reconcile()
    assert third.claimed == 1
    assert queried_checkouts(daraja) == [CHECKOUT, CHECKOUT]


def test_a_refund_with_no_id_to_ask_about_is_handed_to_a_person(daraja):
    original = Transaction.objects.create(
        transaction_type="STK_PUSH",
        status="success",
        amount=100,
        mpesa_receipt_number="NLJ7RT61SV",
        environment="sandbox",
    )
    lost = Transaction.objects.create(
        transaction_type="REVERSAL",
        status="unknown",
        original=original,
        amount=100,
        environment="sandbox",
    )
    Transaction.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))

    transactions_reconcile(older_than=60)
    second = transactions_reconcile(older_than=0)

    lost.refresh_from_db()
    assert lost.needs_review is True
    assert "Org portal" in lost.review_reason
    assert second.claimed == 0  # flagged rows leave the reconciliation queue

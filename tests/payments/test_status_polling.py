"""The status endpoint: answered from the database at once; a stale push is asked about in the
background, and a later poll shows the answer."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from payments.conf import payments_settings
from payments.models import Transaction
from payments.services.background import background_wait
from payments.services.stk_push import stk_push_query

from .conftest import STATUS_PATH, STK_QUERY_URL, calls_to, load_fixture, stk_transaction

pytestmark = pytest.mark.django_db
# The query runs on a thread with its own connection, which sees committed rows only.
with_query_thread = pytest.mark.django_db(transaction=True)

CHECKOUT = "ws_CO_27072017151044001"
QUERY_CANCELLED = "stk/stk_query_response_cancelled_1032.2017.php-mpesa.json"
QUERY_BEING_PROCESSED = (
    "errors/error_500.001.1001_stk_query_transaction_being_processed"
    ".issue-LNMOnlineAndroidSample-13.json"
)
PENDING_MESSAGE = "Check your phone and enter your M-Pesa PIN to pay."


def query_after() -> int:
    return payments_settings.STK_QUERY_AFTER


def query_interval() -> int:
    return payments_settings.STK_QUERY_INTERVAL


def stale_push(user, **fields) -> Transaction:
    return stk_transaction(
        checkout_request_id=CHECKOUT, user=user, age_seconds=query_after() + 30, **fields
    )


def answer_cancelled(daraja) -> None:
    daraja.post(STK_QUERY_URL, json=load_fixture(QUERY_CANCELLED))


def answer_being_processed(daraja) -> None:
    daraja.post(STK_QUERY_URL, json=load_fixture(QUERY_BEING_PROCESSED), status=500)


def hold_queries(daraja, fixture: str) -> threading.Event:
    """Daraja answers STK queries with ``fixture`` only once the returned event is set."""
    release = threading.Event()

    def answer(request):
        assert release.wait(10), "the test never released the query"
        return 200, {}, json.dumps(load_fixture(fixture))

    daraja.add_callback("POST", STK_QUERY_URL, callback=answer)
    return release


def poll_and_wait(api) -> dict:
    """Poll, then wait for the background query the poll may have started."""
    body = poll(api)
    assert background_wait(timeout=10)
    return body


def poll(api) -> dict:
    response = api.get(STATUS_PATH.format(CHECKOUT))
    assert response.status_code == 200, response.content
    return response.json()


def move_last_query_back(transaction: Transaction, seconds: int) -> None:
    Transaction.objects.filter(pk=transaction.pk).update(
        last_queried_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_defaults_wait_30_seconds_then_query_at_most_every_15_on_four_threads():
    assert (query_after(), query_interval()) == (30, 15)
    assert payments_settings.STK_QUERY_THREADS == 4
    assert payments_settings.STK_QUERY_TIMEOUT == (3.0, 5.0)


def test_young_pending_push_is_answered_from_the_database_without_asking_daraja(api, user, daraja):
    answer_cancelled(daraja)
    transaction = stk_transaction(
        checkout_request_id=CHECKOUT, user=user, age_seconds=query_after() - 5
    )

    body = poll(api)

    assert (body["status"], body["message"]) == ("pending", PENDING_MESSAGE)
    assert len(daraja.calls) == 0
    transaction.refresh_from_db()
    assert transaction.last_queried_at is None


@with_query_thread
def test_stale_pending_push_is_answered_at_once_and_settled_by_a_background_query(
    api, user, daraja
):
    release = hold_queries(daraja, QUERY_CANCELLED)
    stale_push(user)

    # Daraja holds the query: the poll answers from the database all the same.
    body = poll(api)
    assert (body["status"], body["message"]) == ("pending", PENDING_MESSAGE)
    release.set()
    assert background_wait(timeout=10)

    body = poll(api)
    assert body["status"] == "cancelled"
    assert body["message"] == "You cancelled the M-Pesa prompt."
    assert body["result_code"] == "1032"
    assert body["result_desc"] == "[STK_CB - ]Request cancelled by user"
    queries = calls_to(daraja, STK_QUERY_URL)
    assert len(queries) == 1
    assert json.loads(queries[0].request.body)["CheckoutRequestID"] == CHECKOUT


@with_query_thread
def test_stale_unknown_push_with_a_checkout_id_is_queried_too(api, user, daraja):
    answer_cancelled(daraja)
    stale_push(user, status="unknown")

    poll_and_wait(api)

    assert poll(api)["status"] == "cancelled"
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1


def test_query_delay_follows_the_stk_query_after_setting(api, user, daraja):
    answer_cancelled(daraja)
    stale_push(user)  # older than the default delay, younger than the one set here

    with override_settings(PAYMENTS={**settings.PAYMENTS, "STK_QUERY_AFTER": 3600}):
        body = poll_and_wait(api)

    assert body["status"] == "pending"
    assert len(daraja.calls) == 0


@with_query_thread
def test_being_processed_answer_keeps_it_pending_and_records_the_query_time(api, user, daraja):
    answer_being_processed(daraja)
    transaction = stale_push(user)
    before = timezone.now()

    poll_and_wait(api)

    assert (poll(api)["status"], poll(api)["message"]) == ("pending", PENDING_MESSAGE)
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1  # an answer, not an error: no retry
    transaction.refresh_from_db()
    assert transaction.status == "pending"
    assert transaction.last_queried_at is not None
    assert before <= transaction.last_queried_at <= timezone.now()


@with_query_thread
def test_second_poll_within_the_query_interval_asks_daraja_nothing(api, user, daraja):
    answer_being_processed(daraja)
    transaction = stale_push(user)
    poll_and_wait(api)
    poll_and_wait(api)
    move_last_query_back(transaction, query_interval() - 5)

    assert poll_and_wait(api)["status"] == "pending"
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1


@with_query_thread
def test_poll_after_the_query_interval_asks_daraja_again(api, user, daraja):
    answer_being_processed(daraja)
    answer_cancelled(daraja)  # responses answers registrations for one URL in order
    transaction = stale_push(user)
    assert poll_and_wait(api)["status"] == "pending"
    move_last_query_back(transaction, query_interval() + 1)
    poll_and_wait(api)

    assert poll(api)["status"] == "cancelled"
    assert len(calls_to(daraja, STK_QUERY_URL)) == 2


@with_query_thread
def test_query_error_leaves_it_pending_until_the_next_interval(api, user, daraja):
    daraja.post(STK_QUERY_URL, body="Service Unavailable", status=503)
    transaction = stale_push(user)

    body = poll_and_wait(api)

    assert (body["status"], body["message"]) == ("pending", PENDING_MESSAGE)
    # Asked once: the next query, an interval later, is the retry (none hammers a slow Daraja).
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1
    transaction.refresh_from_db()
    assert transaction.status == "pending"
    # Claimed before asking: the next poll waits an interval rather than hammering Daraja.
    assert transaction.last_queried_at is not None


@with_query_thread
def test_a_process_running_its_query_threads_claims_no_more(api, user, daraja):
    release = hold_queries(daraja, QUERY_CANCELLED)
    stale_push(user)
    other = stk_transaction(checkout_request_id="ws_CO_OTHER", user=user, age_seconds=60)

    with override_settings(PAYMENTS={**settings.PAYMENTS, "STK_QUERY_THREADS": 1}):
        poll(api)  # its query is held: the one thread is busy
        body = api.get(STATUS_PATH.format("ws_CO_OTHER")).json()
        release.set()
        assert background_wait(timeout=10)

    assert body["status"] == "pending"
    other.refresh_from_db()
    assert other.last_queried_at is None  # left for a later poll or reconciliation
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1


def test_no_query_threads_means_polls_never_ask_daraja(api, user, daraja):
    answer_cancelled(daraja)
    transaction = stale_push(user)

    with override_settings(PAYMENTS={**settings.PAYMENTS, "STK_QUERY_THREADS": 0}):
        assert poll_and_wait(api)["status"] == "pending"

    assert len(daraja.calls) == 0
    transaction.refresh_from_db()
    assert transaction.last_queried_at is None


@pytest.mark.parametrize("status", ["success", "failed", "cancelled", "timeout", "reversed"])
def test_final_transaction_is_never_queried(api, user, daraja, status):
    answer_cancelled(daraja)
    transaction = stale_push(user, status=status)

    assert poll(api)["status"] == status
    assert len(daraja.calls) == 0
    transaction.refresh_from_db()
    assert transaction.last_queried_at is None


def test_query_never_downgrades_a_success(user, daraja, django_capture_on_commit_callbacks):
    answer_cancelled(daraja)
    transaction = stale_push(
        user,
        status="success",
        result_code="0",
        result_desc="The service request is processed successfully.",
        mpesa_receipt_number="NLJ7RT61SV",
    )

    with django_capture_on_commit_callbacks() as signals:
        stk_push_query(transaction=transaction)

    assert len(calls_to(daraja, STK_QUERY_URL)) == 1
    transaction.refresh_from_db()
    assert transaction.status == "success"
    assert (transaction.result_code, transaction.mpesa_receipt_number) == ("0", "NLJ7RT61SV")
    assert signals == []


@with_query_thread
def test_a_payment_under_review_is_not_settled_by_a_query(api, daraja, user):
    transaction = stk_transaction(checkout_request_id="ws_CO_REVIEW", user=user, age_seconds=60)
    Transaction.objects.filter(pk=transaction.pk).update(
        needs_review=True, review_reason="amount 1 differs from the 100 asked"
    )
    daraja.post(STK_QUERY_URL, json=load_fixture("stk/stk_query_response_success.portal.json"))

    body = api.get(STATUS_PATH.format("ws_CO_REVIEW")).json()
    assert background_wait(timeout=10)

    assert body["status"] == "pending"
    transaction.refresh_from_db()
    assert transaction.metadata["query_while_in_review"] == {"result_code": "0"}

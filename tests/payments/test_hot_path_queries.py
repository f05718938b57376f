"""The SQL statements of the hot paths, pinned: a callback's ingestion, a status poll and a
push. `make bench` (tests/perf) measures their time; these keep a regression from slipping in
unseen. Transaction control (BEGIN, COMMIT, savepoints) is left out of the counts."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import CallbackEvent, Transaction

from .conftest import (
    CALLBACK_PATH,
    PUSH_PATH,
    STATUS_PATH,
    STK_PUSH_URL,
    api_client_for,
    push_accepted,
    stk_callback,
    stk_transaction,
)

pytestmark = pytest.mark.django_db

CHECKOUT = "ws_CO_191220191020363925"
CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(CONTROL)]


def test_a_success_callback_is_stored_then_settled_in_six_statements(
    client, django_capture_on_commit_callbacks
):
    push = stk_transaction(checkout_request_id=CHECKOUT)
    body = json.dumps(stk_callback(checkout_request_id=CHECKOUT))
    path = CALLBACK_PATH.format(push.callback_token)
    with (
        CaptureQueriesContext(connection) as captured,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(path, body, content_type="application/json")
    assert response.status_code == 200
    push.refresh_from_db()
    assert push.status == "success"
    assert CallbackEvent.objects.get().outcome == "processed"
    sql = statements(captured)
    # The token checked, the body stored (committed), the event and the push locked, the
    # push settled, the event marked: nothing read twice, no column written that did not change.
    assert [s.split()[0] for s in sql] == [
        "SELECT",
        "INSERT",
        "SELECT",
        "SELECT",
        "UPDATE",
        "UPDATE",
    ]
    assert sql[0].startswith('SELECT 1 AS "a"')  # exists(), not the whole row
    assert '"body"' not in sql[2]  # the event's lock reads its outcome, not its body again
    assert "ORDER BY" not in sql[3]
    update = sql[4]
    assert update.startswith('UPDATE "mpesa_transactions"')
    assert '"amount" =' not in update and '"phone_number" =' not in update


def test_a_duplicate_callback_changes_nothing_in_as_few_statements(
    client, django_capture_on_commit_callbacks
):
    push = stk_transaction(checkout_request_id=CHECKOUT)
    body = json.dumps(stk_callback(checkout_request_id=CHECKOUT))
    path = CALLBACK_PATH.format(push.callback_token)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(path, body, content_type="application/json")
    with CaptureQueriesContext(connection) as captured:
        client.post(path, body, content_type="application/json")
    assert len(statements(captured)) == 5  # no UPDATE of the push
    assert list(CallbackEvent.objects.order_by("pk").values_list("outcome", flat=True)) == [
        "processed",
        "duplicate",
    ]


def test_an_owner_polling_a_fresh_push_costs_two_statements(user):
    push = stk_transaction(checkout_request_id=CHECKOUT, user=user)
    api = api_client_for(user)
    api.get(STATUS_PATH.format(CHECKOUT))  # the token's first use
    with CaptureQueriesContext(connection) as captured:
        response = api.get(STATUS_PATH.format(CHECKOUT))
    assert response.status_code == 200
    assert response.json()["id"] == str(push.pk)
    # The token with its user, the push: no permission lookup for its owner.
    assert len(statements(captured)) == 2


def test_polling_a_push_asked_about_lately_tries_no_claim(user):
    stk_transaction(checkout_request_id=CHECKOUT, user=user, age_seconds=600)
    Transaction.objects.update(last_queried_at=timezone.now())
    api = api_client_for(user)
    api.get(STATUS_PATH.format(CHECKOUT))
    with CaptureQueriesContext(connection) as captured:
        response = api.get(STATUS_PATH.format(CHECKOUT))
    assert response.status_code == 200
    assert len(statements(captured)) == 2


def test_someone_else_polling_needs_the_permission_and_gets_a_404(user, other_user):
    stk_transaction(checkout_request_id=CHECKOUT, user=user)
    response = api_client_for(other_user).get(STATUS_PATH.format(CHECKOUT))
    assert response.status_code == 404


def test_a_push_costs_three_statements(user, daraja, push_body):
    daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))
    api = api_client_for(user)
    with CaptureQueriesContext(connection) as captured:
        response = api.post(PUSH_PATH, push_body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    assert response.json()["checkout_request_id"] == CHECKOUT
    sql = statements(captured)
    # The token, the row committed before Daraja is called, then the acknowledgement merged
    # by one UPDATE on the row as it was inserted: the unique CheckoutRequestID is the check
    # for another holder.
    assert [s.split()[0] for s in sql] == ["SELECT", "INSERT", "UPDATE"], sql
    assert '"amount" =' not in sql[2]
    push = Transaction.objects.get()
    assert push.status == "pending"
    assert push.checkout_request_id == CHECKOUT
    assert push.metadata["customer_message"] == "Success. Request accepted for processing"
    assert push.metadata["request"]["amount"] == 1
    # A callback that comes first changes the row: the locked merge takes over then
    # (tests/payments/test_stk_push_api.py, "Daraja's callback reaches us before its answer").

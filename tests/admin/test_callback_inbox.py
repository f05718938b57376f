"""The callback inbox: read-only, filterable, the raw body readable, errored events re-processed."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from django.utils.html import escape

from payments.enums import CallbackKind, CallbackOutcome, TransactionStatus, TransactionType
from payments.models import CallbackEvent, Transaction

from .helpers import CALLBACKS, REPROCESS, action_data, messages_of, stk_event

pytestmark = pytest.mark.django_db


def pending_push(checkout_request_id: str, amount: int = 75) -> Transaction:
    return Transaction.objects.create(
        transaction_type=TransactionType.STK_PUSH,
        status=TransactionStatus.PENDING,
        checkout_request_id=checkout_request_id,
        amount=amount,
        phone_number="254708374149",
        environment="sandbox",
    )


@pytest.fixture
def errored() -> CallbackEvent:
    return stk_event(
        pending_push("ws_CO_000000000000000000001"),
        outcome=CallbackOutcome.ERROR,
        error="OperationalError: database is locked",
    )


@pytest.fixture
def processed() -> CallbackEvent:
    # Settled already: its body would pay this push if it were ever applied again.
    event = stk_event(
        pending_push("ws_CO_000000000000000000002"), outcome=CallbackOutcome.PROCESSED
    )
    event.processed_at = timezone.now()
    event.save()
    return event


def listed(client, query: str) -> set:
    response = client.get(f"{CALLBACKS}?{query}")
    assert response.status_code == 200
    return {e.pk for e in response.context["cl"].result_list}


def test_inbox_is_read_only(as_superuser, errored):
    change = f"{CALLBACKS}{errored.pk}/change/"

    assert as_superuser.get(f"{CALLBACKS}add/").status_code == 403
    assert as_superuser.get(f"{CALLBACKS}{errored.pk}/delete/").status_code == 403
    assert 'name="_save"' not in as_superuser.get(change).content.decode()
    assert as_superuser.post(change, {"outcome": "processed", "error": ""}).status_code == 403
    errored.refresh_from_db()
    assert (errored.outcome, errored.error) == (
        CallbackOutcome.ERROR,
        "OperationalError: database is locked",
    )


def test_inbox_filters_by_kind_and_outcome(as_manager, errored, processed):
    balance = CallbackEvent.objects.create(
        kind=CallbackKind.BALANCE_RESULT, token="t" * 48, body="{}", outcome=CallbackOutcome.ERROR
    )

    assert listed(as_manager, "kind__exact=stk") == {errored.pk, processed.pk}
    assert listed(as_manager, "kind__exact=balance_result") == {balance.pk}
    assert listed(as_manager, "outcome__exact=error") == {errored.pk, balance.pk}
    assert listed(as_manager, "outcome__exact=processed") == {processed.pk}
    assert listed(as_manager, "kind__exact=stk&outcome__exact=error") == {errored.pk}
    sidebar = as_manager.get(CALLBACKS).content.decode()
    assert 'href="?kind__exact=balance_result"' in sidebar
    assert 'href="?outcome__exact=error"' in sidebar


def test_event_page_pretty_prints_the_raw_body_and_hides_the_token(as_manager, errored):
    page = as_manager.get(f"{CALLBACKS}{errored.pk}/change/").content.decode()

    pretty = json.dumps(json.loads(errored.body), indent=2)
    assert "\n" not in errored.body  # stored compact, as received
    assert escape(pretty) in page
    assert "  &quot;Body&quot;: {\n    &quot;stkCallback&quot;: {" in page
    assert errored.token not in page


def test_event_page_shows_a_body_that_is_not_json_as_it_came(as_manager):
    event = CallbackEvent.objects.create(
        kind=CallbackKind.STK, token="x" * 48, body="<html>oops</html>", outcome="error"
    )

    page = as_manager.get(f"{CALLBACKS}{event.pk}/change/").content.decode()

    assert escape("<html>oops</html>") in page


def test_reprocess_action_asks_for_confirmation_first(as_manager, errored, processed):
    response = as_manager.post(CALLBACKS, action_data("reprocess_selected", errored, processed))

    assert response.status_code == 200
    page = response.content.decode()
    assert f'action="{REPROCESS}"' in page
    assert f'name="ids" value="{errored.pk}"' in page
    assert f'name="ids" value="{processed.pk}"' in page
    errored.refresh_from_db()
    assert errored.outcome == CallbackOutcome.ERROR


def test_reprocess_settles_an_errored_event_and_leaves_processed_ones_alone(
    as_manager, errored, processed
):
    settled_at = processed.processed_at

    response = as_manager.post(REPROCESS, {"ids": [str(errored.pk), str(processed.pk)]})

    assert response.status_code == 302
    errored.refresh_from_db()
    assert errored.outcome == CallbackOutcome.PROCESSED
    assert errored.error == ""
    push = Transaction.objects.get(pk=errored.transaction_id)
    assert push.status == TransactionStatus.SUCCESS
    assert push.mpesa_receipt_number
    processed.refresh_from_db()
    assert processed.outcome == CallbackOutcome.PROCESSED
    assert processed.processed_at == settled_at
    untouched = Transaction.objects.get(callback_token=processed.token)
    assert untouched.status == TransactionStatus.PENDING
    assert messages_of(response) == ["Re-processed: 2 processed."]


def test_clerk_has_no_reprocess_action(as_clerk, errored):
    page = as_clerk.get(CALLBACKS).content.decode()

    assert 'value="reprocess_selected"' not in page

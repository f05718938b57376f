"""Replaying stored callbacks: a failed one succeeds on replay, a processed one is left alone."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from payments.models import CallbackEvent
from payments.signals import payment_failed, payment_succeeded

from .conftest import CALLBACK_PATH, stk_callback, stk_transaction

pytestmark = pytest.mark.django_db

CHECKOUT = "ws_CO_191220191020363925"


@pytest.fixture
def signals():
    received: list[tuple] = []

    def record(name: str):
        def receiver(sender, transaction, **kwargs):
            received.append((name, transaction.pk, transaction.status))

        return receiver

    succeeded, failed = record("succeeded"), record("failed")
    payment_succeeded.connect(succeeded)
    payment_failed.connect(failed)
    yield received
    payment_succeeded.disconnect(succeeded)
    payment_failed.disconnect(failed)


@pytest.fixture
def replay(django_capture_on_commit_callbacks):
    """Run the command as cron would, with on-commit hooks running as a real commit would."""

    def run(*args: str) -> str:
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("mpesa_replay_callbacks", *args, stdout=out)
        return out.getvalue()

    return run


def success_body() -> str:
    return json.dumps(
        stk_callback(checkout_request_id=CHECKOUT, amount=1, phone_number="254708374149")
    )


def test_a_callback_that_failed_to_process_succeeds_on_replay(replay, signals):
    transaction = stk_transaction(checkout_request_id=CHECKOUT)
    event = CallbackEvent.objects.create(
        kind="stk",
        token=transaction.callback_token,
        body=success_body(),
        outcome="error",
        error="Traceback (most recent call last):\ndjango.db.utils.OperationalError: gone away",
    )

    output = replay("--failed")

    event.refresh_from_db()
    transaction.refresh_from_db()
    assert event.outcome == "processed"
    assert event.transaction == transaction
    assert transaction.status == "success"
    assert transaction.mpesa_receipt_number == "NLJ7RT61SV"
    assert signals == [("succeeded", transaction.pk, "success")]
    assert f"event {event.pk} (stk): processed" in output
    assert "1 event(s) replayed" in output


def test_replay_failed_leaves_settled_events_out(replay):
    transaction = stk_transaction(checkout_request_id=CHECKOUT)
    settled = CallbackEvent.objects.create(
        kind="stk", token=transaction.callback_token, body=success_body(), outcome="rejected"
    )

    output = replay("--failed")

    settled.refresh_from_db()
    transaction.refresh_from_db()
    assert settled.outcome == "rejected"
    assert transaction.status == "pending"
    assert "0 event(s) replayed" in output


def test_replaying_a_processed_callback_changes_nothing(client, replay, signals):
    transaction = stk_transaction(checkout_request_id=CHECKOUT)
    posted = client.post(
        CALLBACK_PATH.format(transaction.callback_token),
        success_body(),
        content_type="application/json",
    )
    assert posted.status_code == 200
    event = CallbackEvent.objects.get()
    assert event.outcome == "processed"
    transaction.refresh_from_db()
    before = (transaction.status, transaction.updated_at, transaction.metadata)
    processed_at = event.processed_at

    output = replay("--ids", str(event.pk))

    event.refresh_from_db()
    transaction.refresh_from_db()
    assert (event.outcome, event.processed_at, event.error) == ("processed", processed_at, "")
    assert (transaction.status, transaction.updated_at, transaction.metadata) == before
    assert transaction.needs_review is False
    assert signals == []
    assert f"event {event.pk} (stk): processed" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "one of the arguments --failed --ids is required"),
        (("--failed", "--ids", "1"), "not allowed with argument"),
    ],
    ids=["neither", "both"],
)
def test_replay_needs_exactly_one_of_failed_and_ids(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("mpesa_replay_callbacks", *args, stdout=StringIO())

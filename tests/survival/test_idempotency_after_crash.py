"""Issue 10, Found 8: a request killed mid-call never leaves its Idempotency-Key answering 409.

A worker killed with ``kill -9`` runs nothing after the kill: no ``except`` block, no
``finally`` that stores an answer. ``ServerKilled`` stands for it in-process: a BaseException
raised by the Daraja double while a request is in flight passes every ``except Exception`` and
leaves the database as the dead worker left it. tests/survival/test_crashes.py kills a real
server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import IdempotencyKey, PayoutRequest, Transaction
from payments.services.idempotency import (
    IdempotencyKeyInProgressError,
    idempotency_key_claim,
    idempotency_key_lease,
    request_fingerprint,
)
from payments.services.stk_push import stk_push_initiate
from tests.concurrency import POSTGRESQL_ONLY, run_together
from tests.payments.conftest import (
    OAUTH_URL,
    PUSH_PATH,
    STK_PUSH_URL,
    api_client_for,
    push_accepted,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    accept,
    paid_transaction,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db


class ServerKilled(BaseException):
    """The worker died here: nothing after this line of its request runs."""


def die(request):
    raise ServerKilled(request.url)


PAYOUT = {
    "phone_number": "0708374149",
    "amount": 100,
    "command_id": "BusinessPayment",
    "remarks": "Supplier invoice 17",
}
PUSH = {"phone_number": "0708374149", "amount": 10, "account_reference": "INV17"}


@pytest.fixture
def manager(django_user_model):
    return staff_user_with(django_user_model, "manager-08", "pay_out", "refund")


def post(user, path: str, body: dict, key: str = "retry-me-17"):
    return api_client_for(user).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def flows(manager):
    """(path, body, Daraja URL) of each money-moving POST, for a user allowed to make it."""
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    return {
        "stk-push": (PUSH_PATH, PUSH, STK_PUSH_URL),
        "payout": (B2C_PATH, PAYOUT, B2C_URL),
        "refund": (
            REVERSE_PATH,
            {"transaction": str(payment.pk), "remarks": "Refund"},
            REVERSAL_URL,
        ),
    }


@pytest.mark.parametrize("flow", ["stk-push", "payout", "refund"])
def test_found_08_a_request_killed_during_its_daraja_call_is_answered_by_its_retry(
    daraja, manager, flow
):
    path, body, url = flows(manager)[flow]
    daraja.add_callback("POST", url, callback=die)

    with pytest.raises(ServerKilled):
        post(manager, path, body)
    again = post(manager, path, body)

    assert again.status_code == 202, again.content
    assert again.json()["status"] == "unknown"
    assert again["Idempotent-Replayed"] == "true"
    assert len(sent(daraja, url)) == 1
    killed = Transaction.objects.exclude(status="success").get()
    assert again.json()["id"] == str(killed.pk)


def test_found_08_a_request_killed_before_the_call_is_answered_and_never_sent(daraja, manager):
    # The payout is recorded, then the worker dies fetching the OAuth token: nothing left.
    daraja.remove("GET", OAUTH_URL)
    daraja.add_callback("GET", OAUTH_URL, callback=die)

    with pytest.raises(ServerKilled):
        post(manager, B2C_PATH, PAYOUT)
    again = post(manager, B2C_PATH, PAYOUT)

    assert again.status_code == 202, again.content
    assert again.json()["status"] == "unknown"
    assert not sent(daraja, B2C_URL)


def test_found_08_the_retry_gets_the_current_state_not_a_snapshot(daraja, manager):
    daraja.add_callback("POST", B2C_URL, callback=die)
    with pytest.raises(ServerKilled):
        post(manager, B2C_PATH, PAYOUT)
    payout = Transaction.objects.get()
    Transaction.objects.filter(pk=payout.pk).update(status="success", mpesa_receipt_number="X1")

    again = post(manager, B2C_PATH, PAYOUT)

    assert again.status_code == 202, again.content
    assert (again.json()["status"], again.json()["mpesa_receipt_number"]) == ("success", "X1")


def killed_before_recording(user, path: str, body: dict, key: str, *, age: timedelta):
    """The key row a request leaves when it dies before its write-ahead commit, ``age`` ago."""
    now = timezone.now()
    return IdempotencyKey.objects.create(
        user=user,
        key=key,
        fingerprint=request_fingerprint(method="POST", path=path, data=body),
        claimed_at=now - age,
        expires_at=now + timedelta(hours=1),
    )


def test_found_08_a_key_whose_request_died_before_recording_anything_is_free_after_the_lease(
    daraja, manager
):
    accept(daraja, B2C_URL)
    lease = idempotency_key_lease()
    record = killed_before_recording(
        manager, B2C_PATH, PAYOUT, "died-early", age=lease - timedelta(seconds=5)
    )

    during = post(manager, B2C_PATH, PAYOUT, key="died-early")
    IdempotencyKey.objects.filter(pk=record.pk).update(claimed_at=timezone.now() - lease)
    after = post(manager, B2C_PATH, PAYOUT, key="died-early")
    again = post(manager, B2C_PATH, PAYOUT, key="died-early")

    assert during.status_code == 409, during.content  # it may still be running
    assert after.status_code == 202, after.content
    assert after.json()["status"] == "pending"
    assert again.json() == after.json()
    assert len(sent(daraja, B2C_URL)) == 1


def test_a_payout_request_orphaned_before_its_payout_was_recorded_is_sent_once_after_the_lease(
    daraja, manager
):
    """Killed between the payout request's commit and the B2C row's: nothing was sent."""
    accept(daraja, B2C_URL)
    lease = idempotency_key_lease()
    record = killed_before_recording(manager, B2C_PATH, PAYOUT, "orphan", age=timedelta(0))
    orphan = PayoutRequest.objects.create(
        state=PayoutRequest.State.SENT,
        maker=manager,
        phone_number="254708374149",
        amount=100,
        command_id="BusinessPayment",
        remarks="Supplier invoice 17",
    )
    IdempotencyKey.objects.filter(pk=record.pk).update(payout_request=orphan)

    during = post(manager, B2C_PATH, PAYOUT, key="orphan")
    IdempotencyKey.objects.filter(pk=record.pk).update(claimed_at=timezone.now() - lease)
    after = post(manager, B2C_PATH, PAYOUT, key="orphan")

    assert during.status_code == 409, during.content
    assert after.status_code == 202, after.content
    assert after.json()["status"] == "pending"
    assert len(sent(daraja, B2C_URL)) == 1
    (request,) = PayoutRequest.objects.all()  # the orphan gave way; it had sent nothing
    assert str(request.transaction_id) == after.json()["id"]


def test_a_slow_first_request_whose_key_was_taken_over_sends_nothing(daraja, manager):
    accept_push = push_accepted()
    daraja.post(STK_PUSH_URL, json=accept_push)
    fingerprint = request_fingerprint(method="POST", path=PUSH_PATH, data=PUSH)
    slow = idempotency_key_claim(user=manager, key="slow", fingerprint=fingerprint).record
    IdempotencyKey.objects.filter(pk=slow.pk).update(
        claimed_at=timezone.now() - idempotency_key_lease()
    )
    retried = post(manager, PUSH_PATH, PUSH, key="slow")
    assert retried.status_code == 201, retried.content

    # The first request wakes up and records its push only now: its claim is gone.
    with pytest.raises(IdempotencyKeyInProgressError):
        stk_push_initiate(user=manager, idempotency_key=slow, **PUSH)

    assert Transaction.objects.count() == 1
    assert len(sent(daraja, STK_PUSH_URL)) == 1


@pytest.mark.concurrency
@pytest.mark.parametrize(
    "left_behind",
    [pytest.param(left, marks=POSTGRESQL_ONLY) for left in ("nothing", "unsent-payout-request")],
)
def test_retries_racing_for_a_key_past_its_lease_send_the_payout_once(
    daraja, django_user_model, left_behind
):
    manager = staff_user_with(django_user_model, "manager-race", "pay_out")
    accept(daraja, B2C_URL)
    record = killed_before_recording(manager, B2C_PATH, PAYOUT, "raced", age=timedelta(days=1))
    if left_behind != "nothing":
        orphan = PayoutRequest.objects.create(
            state=PayoutRequest.State.SENT,
            maker=manager,
            phone_number="254708374149",
            amount=100,
            command_id="BusinessPayment",
            remarks="Supplier invoice 17",
        )
        IdempotencyKey.objects.filter(pk=record.pk).update(payout_request=orphan)
    threads = 10
    api_client_for(manager)  # the token, committed before the threads start
    clients = [api_client_for(manager) for _ in range(threads)]

    answers = run_together(
        threads,
        lambda index: (
            clients[index]
            .post(B2C_PATH, PAYOUT, format="json", HTTP_IDEMPOTENCY_KEY="raced")
            .status_code
        ),
    )

    assert set(answers) <= {202, 409} and 202 in answers, answers
    assert len(sent(daraja, B2C_URL)) == 1
    assert Transaction.objects.count() == PayoutRequest.objects.count() == 1

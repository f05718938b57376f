"""Crash safety (issue 10, Build 4): a gunicorn worker killed with SIGKILL mid-request loses
nothing, sends nothing twice, and the retry with the request's Idempotency-Key answers.

A real gunicorn (one worker: the master forks a new one after the kill) serves the project
against a scratch database, configured only through the environment as an operator would do
it. Daraja is a small threaded HTTP server on loopback that can hold one request open: the test
waits until the request arrives, then kills the worker that sent it. No fixed sleeps: every wait
is on an event, a port, a file or a row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from tests.payments.conftest import stk_callback
from tests.payments.money_out import result_body
from tests.survival.servers import (
    OAUTH_PATH,
    STK_PATH,
    WAIT_SECONDS,
    DarajaDouble,
    ScratchDatabase,
    Server,
    manage,
    post_in_background,
    scratch_database,
    server_env,
    wait_until,
)

pytestmark = pytest.mark.fuzz

B2C_PATH = "/mpesa/b2c/v3/paymentrequest"
STATUS_PATH = "/mpesa/transactionstatus/v1/query"
API = "/api/v1/payments/mpesa"
POSTGRESQL = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture(scope="module")
def double() -> Iterator[DarajaDouble]:
    running = DarajaDouble().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def scratch_db(tmp_path_factory) -> Iterator[ScratchDatabase]:
    database = scratch_database(settings.DATABASES["default"], tmp_path_factory.mktemp("crash"))
    yield database
    database.drop()


@pytest.fixture(scope="module")
def server(scratch_db, double, tmp_path_factory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("gunicorn"), server_env(scratch_db, double))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token(scratch_db) -> str:
    """An API token of a finance manager allowed to pay out, refund and query."""
    script = (
        "from django.contrib.auth import get_user_model;"
        "from rest_framework.authtoken.models import Token;"
        "user = get_user_model().objects.create_superuser('crash-manager', password=None);"
        "print(Token.objects.create(user=user).key)"
    )
    return manage(scratch_db, None, "shell", "--no-imports", "-c", script).strip()


@pytest.fixture
def daraja(double) -> DarajaDouble:
    double.reset()
    return double


def api(server: Server, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Token {token}", **kwargs.pop("headers", {})}
    return requests.request(
        method, f"{server.origin}{API}{path}", headers=headers, timeout=WAIT_SECONDS, **kwargs
    )


def deliver(server: Server, callback_url: str, body: dict) -> requests.Response:
    """POST a result to the path of a callback URL we gave Daraja, as Daraja would."""
    path = urlsplit(callback_url).path
    return requests.post(f"{server.origin}{path}", json=body, timeout=WAIT_SECONDS)


def payout(amount: int) -> dict:
    return {
        "phone_number": "0708374149",
        "amount": amount,
        "command_id": "BusinessPayment",
        "remarks": "Supplier invoice",
    }


def time_passes(scratch_db: ScratchDatabase, *, amount: int, hours: int) -> None:
    """Date the transactions of ``amount`` ``hours`` back, as if that much time went by."""
    past = scratch_db.timestamp(datetime.now(UTC) - timedelta(hours=hours))
    scratch_db.execute(
        "UPDATE mpesa_transactions SET created_at = %s WHERE amount = %s", past, amount
    )


# --- Crashes ---------------------------------------------------------------------------------


def test_killed_between_the_write_ahead_commit_and_the_call_nothing_is_sent_and_it_fails(
    server, token, daraja, scratch_db
):
    # A fresh worker has no OAuth token: it records the payout, then asks for one. Held there.
    key = {"Idempotency-Key": f"crash-before-call-{uuid.uuid4()}"}
    daraja.hold_next(OAUTH_PATH)
    first = post_in_background(
        f"{server.origin}{API}/b2c",
        json=payout(101),
        headers={"Authorization": f"Token {token}", **key},
    )
    daraja.wait_for(OAUTH_PATH)
    server.kill_worker()
    first.join(WAIT_SECONDS)

    retried = api(server, token, "POST", "/b2c", json=payout(101), headers=key)

    assert retried.status_code == 202, retried.text
    assert (retried.json()["status"], retried.headers["Idempotent-Replayed"]) == ("unknown", "true")
    assert not daraja.bodies(B2C_PATH)

    # Two hours on, reconciliation asks Transaction Status; M-Pesa has no such payout.
    time_passes(scratch_db, amount=101, hours=2)
    manage(scratch_db, daraja, "mpesa_reconcile", "--older-than", "3600")
    query = daraja.wait_for(STATUS_PATH)
    (acknowledgement,) = [answer for path, answer in daraja.answered if path == STATUS_PATH]
    not_found = {
        "Result": {
            "ResultType": 0,
            "ResultCode": 2032,
            "ResultDesc": "The transaction receipt number does not exist.",
            "OriginatorConversationID": acknowledgement["OriginatorConversationID"],
            "ConversationID": acknowledgement["ConversationID"],
            "TransactionID": "MBN0000000",
        }
    }
    assert deliver(server, query["ResultURL"], not_found).status_code == 200

    settled = api(server, token, "GET", f"/transactions/{retried.json()['id']}")
    assert settled.json()["status"] == "failed"
    again = api(server, token, "POST", "/b2c", json=payout(101), headers=key)
    assert again.status_code == 502, again.text  # the first request's answer, as it is now
    assert not daraja.bodies(B2C_PATH)


def test_killed_during_the_call_the_payout_is_sent_once_and_settled_by_its_result(
    server, token, daraja
):
    key = {"Idempotency-Key": f"crash-during-call-{uuid.uuid4()}"}
    daraja.hold_next(B2C_PATH)
    first = post_in_background(
        f"{server.origin}{API}/b2c",
        json=payout(102),
        headers={"Authorization": f"Token {token}", **key},
    )
    sent = daraja.wait_for(B2C_PATH)
    server.kill_worker()
    first.join(WAIT_SECONDS)

    retried = api(server, token, "POST", "/b2c", json=payout(102), headers=key)

    assert retried.status_code == 202, retried.text
    assert (retried.json()["status"], retried.headers["Idempotent-Replayed"]) == ("unknown", "true")
    assert len(daraja.bodies(B2C_PATH)) == 1

    # Daraja paid; its result reaches the restarted server.
    result = result_body(
        "b2c/b2c_result_success.portal.json",
        originator_conversation_id=sent["OriginatorConversationID"],
        TransactionAmount=102,
    )
    assert deliver(server, sent["ResultURL"], result).status_code == 200

    again = api(server, token, "POST", "/b2c", json=payout(102), headers=key)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "success"
    assert again.json()["mpesa_receipt_number"] == result["Result"]["TransactionID"]
    assert len(daraja.bodies(B2C_PATH)) == 1


@pytest.mark.skipif(not POSTGRESQL, reason="holding one row locked needs PostgreSQL")
def test_killed_between_storing_a_callback_and_processing_it_a_replay_completes_it(
    server, token, daraja, scratch_db
):
    push = {"phone_number": "0708374149", "amount": 103, "account_reference": "CRASH3"}
    started = api(server, token, "POST", "/stk-push", json=push)
    assert started.status_code == 201, started.text
    checkout = started.json()["checkout_request_id"]
    callback_url = daraja.wait_for(STK_PATH)["CallBackURL"]
    callback = stk_callback(checkout_request_id=checkout, amount=103, phone_number="254708374149")
    callback_token = urlsplit(callback_url).path.rstrip("/").rsplit("/", 1)[-1]

    # The push's row is locked: the callback is stored, then its processing waits on the lock.
    with scratch_db.connection() as locker:
        locker.execute("BEGIN")
        locker.execute(
            "SELECT id FROM mpesa_transactions WHERE checkout_request_id = %s FOR UPDATE",
            (checkout,),
        )
        delivery = post_in_background(
            f"{server.origin}{urlsplit(callback_url).path}", json=callback
        )
        wait_until(
            "the callback to be stored",
            lambda: scratch_db.rows(
                "SELECT outcome FROM payments_callbackevent WHERE token = %s", callback_token
            ),
        )
        server.kill_worker()
        locker.execute("ROLLBACK")
    delivery.join(WAIT_SECONDS)

    stored = scratch_db.rows(
        "SELECT outcome FROM payments_callbackevent WHERE token = %s", callback_token
    )
    assert stored == [("received",)]  # stored, never processed: Daraja got no answer
    assert api(server, token, "GET", f"/stk-push/status/{checkout}").json()["status"] == "pending"

    replayed = manage(scratch_db, None, "mpesa_replay_callbacks", "--failed")

    assert "processed" in replayed
    paid = api(server, token, "GET", f"/stk-push/status/{checkout}").json()
    assert (paid["status"], paid["mpesa_receipt_number"]) == ("success", "NLJ7RT61SV")

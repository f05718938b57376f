"""Injected faults: every outbound Daraja call failing every way it can (issue 10, Build 3),
and what reconciliation then settles (Found 9).

Daraja is mocked at the HTTP layer with ``responses``; a connection error is a ``body``
exception, as requests would raise it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.db.models import F
from django.utils import timezone
from urllib3.exceptions import MaxRetryError, NewConnectionError

from payments.gateway import get_daraja_client
from payments.models import DarajaInquiry, Transaction
from payments.services.reconcile import transactions_reconcile
from payments.services.stk_push import stk_push_query
from tests.payments.conftest import (
    OAUTH_URL,
    PUSH_PATH,
    SANDBOX,
    STATUS_PATH,
    STK_PUSH_URL,
    STK_QUERY_URL,
    api_client_for,
    calls_to,
    load_fixture,
    push_accepted,
    stk_transaction,
)
from tests.payments.money_out import (
    ACCEPTED_FIXTURES,
    B2C_PATH,
    B2C_URL,
    BALANCE_PATH,
    BALANCE_URL,
    REFRESH_PATH,
    REVERSAL_URL,
    REVERSE_PATH,
    STATUS_URL,
    accept,
    addressed_to,
    new_key,
    paid_transaction,
    result_body,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

STATUS_SUCCESS = "transaction_status/transaction_status_result_success.portal.json"
# What Daraja's sandbox answered a Transaction Status query about a receipt it does not know
# (reported: numeric code, ResultType 0, no ResultParameters; see payments/services/inquiries.py).
NOT_FOUND_CODE = 2032
NOT_FOUND_DESC = "The transaction receipt number does not exist."
REGISTER_PATH = "/api/v1/payments/mpesa/register-urls"
REGISTER_URL = f"{SANDBOX}/mpesa/c2b/v2/registerurl"
QUERY_CANCELLED = "stk/stk_query_response_cancelled_1032.2017.php-mpesa.json"
CHECKOUT = "ws_CO_27072017151044001"  # the published cancelled answer's CheckoutRequestID
STALE = 10 * 60
PUSH = {"phone_number": "0708374149", "amount": 10, "account_reference": "INV17"}
PAYOUT = {
    "phone_number": "0708374149",
    "amount": 100,
    "command_id": "BusinessPayment",
    "remarks": "Supplier invoice 17",
}


@pytest.fixture
def manager(django_user_model):
    return staff_user_with(django_user_model, "manager-faults", "pay_out", "refund")


def age(transaction: Transaction, seconds: float) -> None:
    Transaction.objects.filter(pk=transaction.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def time_passes(transaction: Transaction, seconds: float) -> None:
    """Move the row's clock marks ``seconds`` into the past, as if that much time went by."""
    shift = timedelta(seconds=seconds)
    Transaction.objects.filter(pk=transaction.pk).update(
        created_at=F("created_at") - shift, last_queried_at=F("last_queried_at") - shift
    )


def status_answer(inquiry: DarajaInquiry, *, code=NOT_FOUND_CODE, desc=NOT_FOUND_DESC) -> dict:
    """Transaction Status's result for ``inquiry``: by default, "no such transaction"."""
    body = result_body(
        STATUS_SUCCESS,
        originator_conversation_id=inquiry.originator_conversation_id,
        conversation_id=inquiry.conversation_id,
        result__ResultCode=code,
        result__ResultDesc=desc,
    )
    del body["Result"]["ResultParameters"]
    return body


def lost_payout(manager, daraja) -> Transaction:
    """A payout whose request never reached Daraja: the connection dropped, so it is unknown."""
    daraja.post(B2C_URL, body=requests.ReadTimeout("read timed out"))
    response = api_client_for(manager).post(B2C_PATH, PAYOUT, format="json", **new_key())
    assert response.status_code == 202, response.content
    payout = Transaction.objects.get(transaction_type="B2C")
    assert payout.status == "unknown"
    return payout


def reconcile_with_status_answer(daraja, post_result, payout, **answer) -> DarajaInquiry:
    accept(daraja, STATUS_URL)
    report = transactions_reconcile(older_than=0, sleep=lambda seconds: None)
    assert report.status_queries == 1, report.lines
    inquiry = DarajaInquiry.objects.get(transaction=payout)
    assert post_result("status", inquiry.token, status_answer(inquiry, **answer)).status_code == 200
    payout.refresh_from_db()
    return inquiry


def test_found_09_a_payout_that_never_reached_daraja_fails_after_the_grace_period(
    daraja, manager, post_result, money_signals
):
    payout = lost_payout(manager, daraja)
    age(payout, 2 * 24 * 60 * 60)

    reconcile_with_status_answer(daraja, post_result, payout)

    assert (payout.status, payout.needs_review) == ("failed", False)
    assert payout.result_code == str(NOT_FOUND_CODE)
    assert "does not exist" in payout.result_desc
    assert [name for name, _ in money_signals] == ["payout_failed"]
    assert len(sent(daraja, B2C_URL)) == 1


def test_found_09_asked_before_the_grace_period_it_stays_unknown_and_is_asked_again_after(
    daraja, manager, post_result, money_signals, settings
):
    settings.PAYMENTS = {**settings.PAYMENTS, "STATUS_NOT_FOUND_GRACE": 3600}
    payout = lost_payout(manager, daraja)
    age(payout, 600)

    reconcile_with_status_answer(daraja, post_result, payout)
    soon = transactions_reconcile(older_than=0)
    time_passes(payout, 3000)
    later = transactions_reconcile(older_than=0)

    assert (payout.status, payout.needs_review) == ("unknown", False)
    assert not money_signals
    assert (soon.claimed, later.claimed) == (0, 1)  # no question wasted inside the grace


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        pytest.param("pending", {}, id="acknowledged-by-daraja"),
        pytest.param("unknown", {"code": 2001, "desc": "The initiator information is invalid."}),
        pytest.param("unknown", {"code": 17, "desc": "Internal failure"}, id="other-code"),
    ],
)
def test_other_answers_about_a_payout_are_left_to_a_person(
    daraja, manager, post_result, money_signals, status, answer
):
    payout = lost_payout(manager, daraja)
    Transaction.objects.filter(pk=payout.pk).update(status=status)
    age(payout, 2 * 24 * 60 * 60)

    reconcile_with_status_answer(daraja, post_result, payout, **answer)

    assert (payout.status, payout.needs_review) == (status, True)
    assert "Transaction Status answered" in payout.review_reason
    assert not money_signals


def test_found_09_a_refund_lost_in_darajas_queue_fails_and_frees_its_amount(
    daraja, manager, post_result, money_signals
):
    payment = paid_transaction(amount=100)
    accept(daraja, REVERSAL_URL)
    refund = {"transaction": str(payment.pk), "remarks": "Refund"}
    api = api_client_for(manager)
    assert api.post(REVERSE_PATH, refund, format="json", **new_key()).status_code == 202
    reversal = Transaction.objects.get(transaction_type="REVERSAL")
    timeout = addressed_to("reversal/reversal_result_failure_R000002.portal.json", reversal)
    assert post_result("reversal", reversal.callback_token, timeout, "timeout").status_code == 200
    reversal.refresh_from_db()
    assert reversal.status == "unknown"
    age(reversal, 2 * 60 * 60)

    reconcile_with_status_answer(daraja, post_result, reversal)

    assert (reversal.status, reversal.result_code) == ("failed", str(NOT_FOUND_CODE))
    assert [name for name, _ in money_signals] == ["reversal_failed"]
    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == ("success", 0)
    again = api.post(REVERSE_PATH, refund, format="json", **new_key())
    assert again.status_code == 202, again.content  # the whole amount can be refunded again
    assert len(sent(daraja, REVERSAL_URL)) == 2


# --- The fault matrix: every outbound operation x every way it can fail -----------------------

# Taken into account by every row: one retry, so that a fault a query may retry is retried, and
# a money-moving request that may have left is visibly not (a sleep of at most 0.5 s each).
RETRIES = 1
NOT_SENT, AMBIGUOUS, TOKEN = "not sent", "may have been sent", "token refused once"
INVALID_TOKEN = "errors/error_404.001.03_invalid_access_token.issue-LNMOnlineAndroidSample-11.json"


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str
    # responses keyword arguments of the faulty answer, given the URL and the normal answer.
    answer: Callable[[str, str], dict]


def _refused(url: str) -> Exception:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.ConnectionError(MaxRetryError(None, url, reason))


FAULTS = [
    Fault("connection-refused", NOT_SENT, lambda url, normal: {"body": _refused(url)}),
    Fault(
        "connect-timeout",
        NOT_SENT,
        lambda url, normal: {"body": requests.ConnectTimeout("connect timed out")},
    ),
    Fault(
        "read-timeout", AMBIGUOUS, lambda url, normal: {"body": requests.ReadTimeout("timed out")}
    ),
    Fault(
        "500-envelope",
        AMBIGUOUS,
        lambda url, normal: {
            "status": 500,
            "json": {
                "requestId": "11728-2929992-1",
                "errorCode": "500.003.1001",
                "errorMessage": "Internal Server Error",
            },
        },
    ),
    Fault(
        "500-bare",
        AMBIGUOUS,
        lambda url, normal: {
            "status": 500,
            "body": "upstream failed",
            "content_type": "text/plain",
        },
    ),
    Fault(
        "200-not-json",
        AMBIGUOUS,
        lambda url, normal: {"body": "<html>Apigee SPA Proxy</html>", "content_type": "text/html"},
    ),
    Fault(
        "200-truncated",
        AMBIGUOUS,
        lambda url, normal: {
            "body": normal[: len(normal) // 2],
            "content_type": "application/json",
        },
    ),
    Fault(
        "token-expired",
        TOKEN,
        lambda url, normal: {"status": 404, "json": load_fixture(INVALID_TOKEN)},
    ),
]


@dataclass
class Case:
    """One row of the matrix being run: who asks, and what Daraja has been told to answer."""

    daraja: Any
    user: Any
    post_result: Callable

    @property
    def api(self):
        return api_client_for(self.user)


@dataclass(frozen=True)
class Operation:
    """An outbound Daraja operation, the API call that makes it, and what each kind of fault
    must leave: (HTTP status, what the ledger holds) per fault kind."""

    name: str
    method: str
    url: str
    normal: Callable[[], dict]
    call: Callable[[Case], Any]
    ledger: Callable[[Any], str]
    expected: dict[str, tuple[int, str]]
    # Money moves through this URL: it must never be sent twice.
    moves_money: bool = False


def _push(case: Case):
    return case.api.post(PUSH_PATH, PUSH, format="json", **new_key())


def _row(response) -> str:
    """The status of the transaction the API answered with (a 502 carries it under
    "transaction")."""
    body = response.json()
    return Transaction.objects.get(pk=body.get("transaction", body)["id"]).status


def _poll(case: Case):
    push = stk_transaction(checkout_request_id=CHECKOUT, user=case.user, age_seconds=STALE)
    response = case.api.get(STATUS_PATH.format(CHECKOUT))
    assert response.json()["status"] == "pending"  # answered at once, whatever Daraja does
    # What the poll's background thread runs (this test's transaction hides the row from it).
    stk_push_query(transaction=push, client=get_daraja_client(background=True))
    return response


def _pay_out(case: Case):
    return case.api.post(B2C_PATH, PAYOUT, format="json", HTTP_IDEMPOTENCY_KEY="fault-payout")


def _refund(case: Case):
    payment = paid_transaction(amount=100)
    body = {"transaction": str(payment.pk), "remarks": "Refund"}
    return case.api.post(REVERSE_PATH, body, format="json", HTTP_IDEMPOTENCY_KEY="fault-refund")


def _balance(case: Case):
    return case.api.post(BALANCE_PATH, {}, format="json")


def _inquiries(response) -> str:
    return ",".join(sorted({inquiry.status for inquiry in DarajaInquiry.objects.all()}))


def _refresh(case: Case):
    payout = Transaction.objects.create(
        transaction_type="B2C",
        status="unknown",
        amount=100,
        phone_number="254708374149",
        environment="sandbox",
        shortcode="600992",
        originator_conversation_id="b2c-fault-matrix",
    )
    return case.api.post(REFRESH_PATH.format(payout.pk))


def _register(case: Case):
    return case.api.post(REGISTER_PATH, {}, format="json")


def _nothing(response) -> str:
    return "-"


OPERATIONS = [
    Operation(
        "oauth",
        "GET",
        OAUTH_URL,
        lambda: {"access_token": "fresh-token", "expires_in": "3599"},
        _push,
        _row,
        {NOT_SENT: (502, "failed"), AMBIGUOUS: (502, "failed"), TOKEN: (201, "pending")},
    ),
    Operation(
        "stk-push",
        "POST",
        STK_PUSH_URL,
        lambda: push_accepted(CHECKOUT),
        _push,
        _row,
        {NOT_SENT: (502, "failed"), AMBIGUOUS: (202, "unknown"), TOKEN: (201, "pending")},
        moves_money=True,
    ),
    Operation(
        "stk-query",
        "POST",
        STK_QUERY_URL,
        lambda: load_fixture(QUERY_CANCELLED),
        _poll,
        _row,
        {NOT_SENT: (200, "pending"), AMBIGUOUS: (200, "pending"), TOKEN: (200, "cancelled")},
    ),
    Operation(
        "b2c",
        "POST",
        B2C_URL,
        lambda: load_fixture(ACCEPTED_FIXTURES[B2C_URL]),
        _pay_out,
        _row,
        {NOT_SENT: (502, "failed"), AMBIGUOUS: (202, "unknown"), TOKEN: (202, "pending")},
        moves_money=True,
    ),
    Operation(
        "reversal",
        "POST",
        REVERSAL_URL,
        lambda: load_fixture(ACCEPTED_FIXTURES[REVERSAL_URL]),
        _refund,
        _row,
        {NOT_SENT: (502, "failed"), AMBIGUOUS: (202, "unknown"), TOKEN: (202, "pending")},
        moves_money=True,
    ),
    Operation(
        "balance",
        "POST",
        BALANCE_URL,
        lambda: load_fixture(ACCEPTED_FIXTURES[BALANCE_URL]),
        _balance,
        _inquiries,
        {NOT_SENT: (502, "failed"), AMBIGUOUS: (202, "unknown"), TOKEN: (202, "pending")},
    ),
    Operation(
        "transaction-status",
        "POST",
        STATUS_URL,
        lambda: load_fixture(ACCEPTED_FIXTURES[STATUS_URL]),
        _refresh,
        _inquiries,
        {NOT_SENT: (502, "failed"), AMBIGUOUS: (202, "unknown"), TOKEN: (202, "pending")},
    ),
    Operation(
        "c2b-register",
        "POST",
        REGISTER_URL,
        lambda: load_fixture("c2b/c2b_register_url_response.portal.json"),
        _register,
        _nothing,
        {NOT_SENT: (502, "-"), AMBIGUOUS: (502, "-"), TOKEN: (200, "-")},
    ),
]


@pytest.fixture
def operator(django_user_model, settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "HTTP_MAX_RETRIES": RETRIES}
    return staff_user_with(
        django_user_model,
        "operator-faults",
        "pay_out",
        "refund",
        "view_balance",
        "query_status",
        "register_c2b_urls",
    )


def inject(daraja, operation: Operation, fault: Fault) -> None:
    """Daraja answers ``operation`` with ``fault`` (once for a refused token, else always)."""
    normal = operation.normal()
    if operation.method == "GET":
        daraja.remove("GET", OAUTH_URL)
    if operation.name == "oauth":
        pushes = iter(range(1, 100))
        daraja.add_callback(
            "POST",
            STK_PUSH_URL,
            callback=lambda request: (200, {}, json.dumps(push_accepted(f"ws_CO_{next(pushes)}"))),
        )
    if fault.kind == TOKEN and operation.name == "oauth":
        # A token that lives one second has expired by the next call: each call gets another.
        daraja.get(OAUTH_URL, json={**normal, "expires_in": "1"})
        return
    daraja.add(operation.method, operation.url, **fault.answer(operation.url, json.dumps(normal)))
    if fault.kind == TOKEN:
        daraja.add(operation.method, operation.url, json=normal)


def answer_normally(daraja) -> None:
    """From now on Daraja works: every operation answers as documented."""
    daraja.reset()
    daraja.get(OAUTH_URL, json={"access_token": "fresh-token", "expires_in": "3599"})
    for url in (STATUS_URL, BALANCE_URL):
        accept(daraja, url)
    daraja.post(STK_QUERY_URL, json=load_fixture(QUERY_CANCELLED))


def reconcile_everything(case: Case) -> None:
    """Reconciliation with Daraja answering normally, long after the faults: M-Pesa knows
    nothing of requests the faults stopped (the double never acted on one)."""
    answer_normally(case.daraja)
    Transaction.objects.update(created_at=timezone.now() - timedelta(days=2))
    transactions_reconcile(older_than=0, sleep=lambda seconds: None)
    for inquiry in DarajaInquiry.objects.filter(kind="status", status="pending"):
        body = status_answer(inquiry)
        assert case.post_result("status", inquiry.token, body).status_code == 200


@pytest.mark.fuzz
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.name)
def test_every_operation_under_every_fault_answers_clearly_and_reconciles(
    daraja, operator, post_result, operation, fault
):
    case = Case(daraja, operator, post_result)
    inject(daraja, operation, fault)

    response = operation.call(case)
    if fault.kind == TOKEN and operation.name == "oauth":
        assert operation.call(case).status_code == 201  # a second push, a second token
        assert len(calls_to(daraja, f"{OAUTH_URL}?grant_type=client_credentials")) == 2

    expected_status, expected_ledger = operation.expected[fault.kind]
    assert response.status_code == expected_status, response.content
    if response.status_code >= 400:
        assert {"code", "detail"} <= set(response.json())
    assert operation.ledger(response) == expected_ledger
    if operation.moves_money:
        # Sent once: a refused connection is retried (it never left), a refused token is
        # repeated once (the gateway stopped it), nothing else is.
        expected_calls = {NOT_SENT: RETRIES + 1, AMBIGUOUS: 1, TOKEN: 2}[fault.kind]
        assert len(calls_to(daraja, operation.url)) == expected_calls
    if operation.name == "oauth" and fault.kind != TOKEN:
        assert not calls_to(daraja, STK_PUSH_URL)  # no token, nothing sent

    reconcile_everything(case)

    if operation.moves_money:
        assert not calls_to(daraja, operation.url)  # reconciliation never resends
    left = Transaction.objects.filter(status="unknown")
    assert not left.filter(needs_review=False).exists(), list(left.values("transaction_type"))
    # A refund whose answer was lost carries no id Transaction Status could be asked with: a
    # person settles it from the M-Pesa Org portal, as the row says.
    for row in left:
        assert (row.transaction_type, row.needs_review) == ("REVERSAL", True)
        assert "Org portal" in row.review_reason

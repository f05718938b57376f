"""Races with real threads on PostgreSQL (`make concurrency`): duplicates of every callback kind,
a result against its own queue timeout, one Idempotency-Key used twice at once, two
reconciliation runs at once.

Each test releases its threads at one instant (tests/concurrency.py), every thread on its own
database connection, and checks what the ledger, Daraja and the signals saw.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from payments import signals as payment_signals
from payments.enums import InquiryKind, InquiryStatus, TransactionType
from payments.models import CallbackEvent, DarajaInquiry, Transaction
from tests.concurrency import POSTGRESQL_ONLY, run_together
from tests.payments.conftest import (
    STK_QUERY_URL,
    api_client_for,
    calls_to,
    load_fixture,
    stk_callback,
    stk_transaction,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    STATUS_URL,
    accept,
    addressed_to,
    paid_transaction,
    result_body,
    sent,
    staff_user_with,
)

pytestmark = [pytest.mark.concurrency, *POSTGRESQL_ONLY]

COPIES = 50
SECRET = "test-callback-secret-0123456789abcdef"
CALLBACKS = "/api/v1/payments/callbacks"
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
SIGNALS = (
    "payment_succeeded",
    "payment_failed",
    "c2b_payment_received",
    "payout_completed",
    "payout_failed",
    "reversal_completed",
    "reversal_failed",
    "balance_updated",
)


@pytest.fixture
def sent_signals():
    """The names of the payment signals sent, from any thread."""
    received: list[str] = []
    lock = threading.Lock()
    receivers = []
    for name in SIGNALS:

        def receiver(sender, _name=name, **kwargs):
            with lock:
                received.append(_name)

        receivers.append((getattr(payment_signals, name), receiver))
        getattr(payment_signals, name).connect(receiver)
    yield received
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def payout(*, status: str = "pending", amount: int = 10) -> Transaction:
    """A B2C payout as the payout service leaves it once Daraja accepted it."""
    transaction = Transaction.objects.create(
        transaction_type=TransactionType.B2C,
        status=status,
        amount=amount,
        phone_number="254708374149",
        environment="sandbox",
        shortcode="600992",
        conversation_id=f"AG_race_{Transaction.objects.count():04d}",
    )
    transaction.originator_conversation_id = f"b2c-{transaction.pk}"
    transaction.save()
    return transaction


def reversal(*, amount: int = 1) -> Transaction:
    original = paid_transaction(amount=100, receipt=f"RACE{Transaction.objects.count():06d}")
    transaction = Transaction.objects.create(
        transaction_type=TransactionType.REVERSAL,
        status="pending",
        original=original,
        amount=amount,
        phone_number=original.phone_number,
        environment="sandbox",
        shortcode="174379",
        conversation_id=f"AG_race_{Transaction.objects.count():04d}",
    )
    transaction.originator_conversation_id = f"reversal-{transaction.pk}"
    transaction.save()
    return transaction


def inquiry(kind: str, transaction: Transaction | None = None) -> DarajaInquiry:
    return DarajaInquiry.objects.create(
        kind=kind,
        status=InquiryStatus.PENDING,
        transaction=transaction,
        originator_conversation_id=f"{kind}-race",
        conversation_id=f"AG_{kind}_race",
        metadata={"shortcode": "600992"},
    )


def status_result(asked: DarajaInquiry) -> dict:
    return result_body(
        "transaction_status/transaction_status_result_success.portal.json",
        originator_conversation_id=asked.originator_conversation_id,
        conversation_id=asked.conversation_id,
        OriginatorConversationID=asked.transaction.originator_conversation_id,
        Amount=str(asked.transaction.amount),
    )


def refreshed(row):
    row.refresh_from_db()
    return row


@dataclass
class Delivery:
    """What Daraja posts where, and what the ledger must show once it has been applied once."""

    path: str
    body: dict
    token: str
    signals: list[str]
    state: Callable[[], Any]
    expected: Any
    acknowledgement: dict = field(default_factory=lambda: ACCEPTED)

    @property
    def timeout_path(self) -> str:
        """The queue-timeout URL of the same request (its body shape is undocumented: any
        Result envelope, API.md §5.3)."""
        return self.path.removesuffix("/result") + "/timeout"


def stk(fixture: str, expected: str, signal: str) -> Delivery:
    push = stk_transaction(checkout_request_id=f"ws_CO_race_{expected}")
    body = stk_callback(
        fixture,
        checkout_request_id=push.checkout_request_id,
        amount=1,
        phone_number="254708374149",
    )
    return Delivery(
        f"{CALLBACKS}/stk/{push.callback_token}",
        body,
        push.callback_token,
        [signal],
        lambda: refreshed(push).status,
        expected,
    )


def money_out(kind: str, which: str = "result") -> Delivery:
    row = payout() if kind == "b2c" else reversal()
    fixture = f"{kind}/{kind}_result_success.portal.json"
    done = which == "result"
    signal = "payout_completed" if kind == "b2c" else "reversal_completed"
    return Delivery(
        f"{CALLBACKS}/{kind}/{row.callback_token}/{which}",
        addressed_to(fixture, row),
        row.callback_token,
        [signal] if done else [],
        lambda: refreshed(row).status,
        "success" if done else "unknown",
    )


def balance(which: str = "result") -> Delivery:
    asked = inquiry(InquiryKind.BALANCE)
    body = result_body(
        "balance/account_balance_result_success.portal.json",
        originator_conversation_id=asked.originator_conversation_id,
        conversation_id=asked.conversation_id,
    )
    done = which == "result"
    return Delivery(
        f"{CALLBACKS}/balance/{asked.token}/{which}",
        body,
        asked.token,
        ["balance_updated"] if done else [],
        lambda: (refreshed(asked).status, asked.balances.count()),
        ("completed", 5) if done else ("unknown", 0),
    )


def status(which: str = "result") -> Delivery:
    row = payout(status="unknown", amount=300)
    asked = inquiry(InquiryKind.STATUS, row)
    done = which == "result"
    return Delivery(
        f"{CALLBACKS}/status/{asked.token}/{which}",
        status_result(asked),
        asked.token,
        ["payout_completed"] if done else [],
        lambda: (refreshed(asked).status, refreshed(row).status),
        ("completed", "success") if done else ("unknown", "unknown"),
    )


def c2b_confirmation() -> Delivery:
    return Delivery(
        f"{CALLBACKS}/c2b/{SECRET}/confirmation",
        load_fixture("c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"),
        "c2b",
        ["c2b_payment_received"],
        lambda: list(
            Transaction.objects.filter(transaction_type="C2B").values_list(
                "mpesa_receipt_number", "amount", "status"
            )
        ),
        [("RKL51ZDR4F", 5, "success")],
        acknowledgement={"ResultCode": 0, "ResultDesc": "Success"},
    )


DELIVERIES: dict[str, Callable[[], Delivery]] = {
    "stk success": lambda: stk(
        "stk/stk_callback_success.portal.json", "success", "payment_succeeded"
    ),
    "stk failure": lambda: stk(
        "stk/stk_callback_cancelled_1032.portal.json", "cancelled", "payment_failed"
    ),
    "b2c result": lambda: money_out("b2c"),
    "b2c timeout": lambda: money_out("b2c", "timeout"),
    "reversal result": lambda: money_out("reversal"),
    "reversal timeout": lambda: money_out("reversal", "timeout"),
    "balance result": lambda: balance(),
    "balance timeout": lambda: balance("timeout"),
    "status result": lambda: status(),
    "status timeout": lambda: status("timeout"),
    "c2b confirmation": c2b_confirmation,
}


def post(path: str, body: dict) -> tuple[int, dict]:
    response = Client().post(path, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.mark.parametrize("kind", DELIVERIES)
def test_fifty_copies_of_each_callback_at_once_change_the_ledger_once(kind, sent_signals):
    delivery = DELIVERIES[kind]()

    answers = run_together(COPIES, lambda _: post(delivery.path, delivery.body))

    assert answers == [(200, delivery.acknowledgement)] * COPIES
    outcomes = CallbackEvent.objects.filter(token=delivery.token).values_list("outcome", flat=True)
    assert Counter(outcomes) == {"processed": 1, "duplicate": COPIES - 1}
    assert delivery.state() == delivery.expected
    assert sent_signals == delivery.signals


RACED = ("b2c", "reversal", "balance", "status")
ROUNDS = 5
RACERS = 10


def result_of(kind: str) -> Delivery:
    return (
        money_out(kind)
        if kind in ("b2c", "reversal")
        else {"balance": balance, "status": status}[kind]()
    )


def race(kind: str, order: str) -> tuple[list[int], Delivery]:
    """A result and its queue timeout for one fresh request, in ``order``."""
    delivery = result_of(kind)
    paths = [delivery.path, delivery.timeout_path]
    if order == "timeout first":
        paths.reverse()
    if order == "at once":
        # Daraja may send both, each more than once: results and timeouts interleaved.
        answers = run_together(RACERS, lambda i: post(paths[i % 2], delivery.body))
    else:
        answers = [post(path, delivery.body) for path in paths]
    return [code for code, _ in answers], delivery


@pytest.mark.parametrize("order", ["result first", "timeout first", "at once"])
@pytest.mark.parametrize("kind", RACED)
def test_a_result_racing_its_queue_timeout_wins(kind, order, sent_signals):
    for _ in range(ROUNDS if order == "at once" else 1):
        sent_signals.clear()

        codes, delivery = race(kind, order)

        assert set(codes) == {200}
        assert delivery.state() == delivery.expected
        assert sent_signals == delivery.signals


# -- One Idempotency-Key, many requests at once ---------------------------------------------------

THREADS = 10


def money_request(what: str, django_user_model):
    """(Daraja URL, API path, body, the staff user) of a payout or a refund."""
    if what == "payout":
        user = staff_user_with(django_user_model, "payer", "pay_out")
        body = {"phone_number": "0708374149", "amount": 100, "remarks": "Supplier 17"}
        return B2C_URL, B2C_PATH, body, user
    user = staff_user_with(django_user_model, "refunder", "refund")
    body = {"transaction": str(paid_transaction(amount=100).pk), "amount": 40}
    return REVERSAL_URL, REVERSE_PATH, body, user


@pytest.mark.parametrize("what", ["payout", "refund"])
def test_one_idempotency_key_sent_ten_times_at_once_moves_the_money_once(
    what, daraja, django_user_model
):
    url, path, body, user = money_request(what, django_user_model)
    api_client_for(user)  # its token, committed before the threads start
    accept(daraja, url)

    def send(_: int) -> tuple[int, str | None]:
        response = api_client_for(user).post(
            path, body, format="json", HTTP_IDEMPOTENCY_KEY="race-key-17"
        )
        return response.status_code, response.get("Idempotent-Replayed")

    answers = run_together(THREADS, send)

    assert len(sent(daraja, url)) == 1
    # The first is answered; the others are told it is in progress, or get its answer again.
    assert answers.count((202, None)) == 1
    assert set(answers) <= {(202, None), (409, None), (202, "true")}
    kind = TransactionType.B2C if what == "payout" else TransactionType.REVERSAL
    assert Transaction.objects.filter(transaction_type=kind).count() == 1


@pytest.mark.parametrize("what", ["payout", "refund"])
def test_one_admin_confirmation_posted_ten_times_at_once_moves_the_money_once(
    what, daraja, django_user_model
):
    from tests.admin.helpers import PAYOUT, refund_url

    url, _, _, user = money_request(what, django_user_model)
    accept(daraja, url)
    if what == "payout":
        path = PAYOUT
        form = {
            "phone_number": "0708374149",
            "amount": "100",
            "command_id": "BusinessPayment",
            "remarks": "Supplier 17",
        }
    else:
        path = refund_url(paid_transaction(amount=100, receipt="RACEADMIN1"))
        form = {"amount": "40", "remarks": "Refund"}
    # One confirmation page, its one-time nonce, submitted by ten clicks at once.
    form = {**form, "step": "execute", "nonce": "one-confirmation-page"}
    clients = [Client() for _ in range(THREADS)]
    for client in clients:
        client.force_login(user)

    answers = run_together(THREADS, lambda i: clients[i].post(path, form).status_code)

    assert answers == [302] * THREADS
    assert len(sent(daraja, url)) == 1


# -- Two reconciliation runs at once ---------------------------------------------------------------


def aged(row: Transaction, seconds: int = 600) -> Transaction:
    Transaction.objects.filter(pk=row.pk).update(
        created_at=row.created_at - timezone.timedelta(seconds=seconds)
    )
    return row


def test_two_reconcile_commands_at_once_ask_about_each_row_once(daraja):
    pushes = [
        stk_transaction(checkout_request_id=f"ws_CO_cron_{n:02d}", age_seconds=600 - n)
        for n in range(6)
    ]
    money_out_rows = [aged(payout(status="unknown")) for _ in range(4)] + [
        aged(reversal()) for _ in range(2)
    ]

    def stk_query_answer(request):
        asked = json.loads(request.body)["CheckoutRequestID"]
        body = load_fixture("stk/stk_query_response_cancelled_1032.2017.php-mpesa.json")
        return 200, {}, json.dumps({**body, "CheckoutRequestID": asked})

    daraja.add_callback("POST", STK_QUERY_URL, callback=stk_query_answer)
    accept(daraja, STATUS_URL)

    # Each run may take half the rows: a row both claimed would be asked about twice.
    outputs = run_together(
        2,
        lambda _: call_command(
            "mpesa_reconcile", "--older-than", "60", "--limit", "6", stdout=io.StringIO()
        ),
    )

    assert outputs == [None, None]
    stk_asked = Counter(
        json.loads(c.request.body)["CheckoutRequestID"] for c in calls_to(daraja, STK_QUERY_URL)
    )
    assert stk_asked == Counter(p.checkout_request_id for p in pushes)
    status_asked = Counter(body["OriginalConversationID"] for body in sent(daraja, STATUS_URL))
    assert status_asked == Counter(row.originator_conversation_id for row in money_out_rows)
    assert DarajaInquiry.objects.filter(kind=InquiryKind.STATUS).count() == len(money_out_rows)

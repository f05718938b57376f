"""Issue 5's acceptance: every flow reaches its final state through callbacks that the
simulator's outbox worker really posts to the live server. No HTTP is mocked."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments import signals
from payments.models import CallbackEvent, DarajaInquiry, Transaction
from simulator.models import C2BRegistration, OutboxCallback, SimulatedRequest
from tests.simulator.conftest import API, CALLBACK_DELAY, LATE_DELAY, holds_for, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SUCCESS_PHONE = "0708374149"


@pytest.fixture
def succeeded():
    """The transactions payment_succeeded was sent for, in order."""
    received: list[Transaction] = []

    def receiver(sender, transaction, **kwargs):
        received.append(transaction)

    signals.payment_succeeded.connect(receiver)
    yield received
    signals.payment_succeeded.disconnect(receiver)


def settled_events(transaction_id: str, count: int) -> list[CallbackEvent] | None:
    """The transaction's stored callbacks once there are ``count``, all processed."""
    token = Transaction.objects.get(pk=transaction_id).callback_token
    events = list(CallbackEvent.objects.filter(token=token).order_by("pk"))
    if len(events) == count and all(e.outcome != "received" for e in events):
        return events
    return None


# -- STK Push ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone_number", "status", "result_code"),
    [
        (SUCCESS_PHONE, "success", "0"),
        ("0700000001", "cancelled", "1032"),
        ("0700000002", "timeout", "1037"),
        ("0700000003", "failed", "2001"),
    ],
)
def test_stk_push_reaches_its_final_status_through_the_callback(
    simulator, phone_number, status, result_code
):
    pushed = simulator.stk_push(phone_number)

    settled = simulator.wait_for_stk(pushed["checkout_request_id"], status)

    assert settled["result_code"] == result_code
    assert bool(settled["mpesa_receipt_number"]) is (status == "success")
    events = wait_for(lambda: settled_events(pushed["id"], 1), message="the stored callback")
    assert [(e.kind, e.outcome) for e in events] == [("stk", "processed")]


def test_duplicate_callback_changes_state_once(simulator, succeeded):
    pushed = simulator.stk_push("0700000011")

    simulator.wait_for_stk(pushed["checkout_request_id"], "success")
    # Both copies answered: each request, its on-commit signals included, has finished.
    wait_for(
        lambda: OutboxCallback.objects.filter(sent_at__isnull=False).count() == 2,
        message="both deliveries",
    )
    events = settled_events(pushed["id"], 2)

    assert events, "two stored and processed callbacks"
    assert sorted(e.outcome for e in events) == ["duplicate", "processed"]
    assert events[0].body == events[1].body
    assert [str(t.pk) for t in succeeded] == [pushed["id"]]


def test_late_callback_leaves_the_payment_pending_then_settles_it(simulator):
    pushed = simulator.stk_push("0700000012")
    checkout_request_id = pushed["checkout_request_id"]

    # Well past the normal delivery delay, the result has still not come.
    holds_for(
        lambda: simulator.stk_status(checkout_request_id)["status"] == "pending",
        seconds=CALLBACK_DELAY * 4,
        message="pending before the late delivery",
    )
    settled = simulator.wait_for_stk(checkout_request_id, "success")

    assert settled["mpesa_receipt_number"]
    callback = OutboxCallback.objects.get()
    assert (callback.sent_at - callback.created_at).total_seconds() >= LATE_DELAY


def test_missing_callback_is_found_paid_by_reconciliation(simulator):
    pushed = simulator.stk_push("0700000013")
    checkout_request_id = pushed["checkout_request_id"]
    holds_for(
        lambda: simulator.stk_status(checkout_request_id)["status"] == "pending",
        seconds=CALLBACK_DELAY * 3,
        message="pending while no callback comes",
    )
    # Daraja answers "being processed" until its result exists; then the query knows it.
    push = SimulatedRequest.objects.get(checkout_request_id=checkout_request_id)
    wait_for(lambda: timezone.now() > push.completes_at, message="the simulated result")

    call_command("mpesa_reconcile", "--older-than", "0")

    # A query carries no receipt: M-Pesa says paid; the ledger waits for the receipt.
    settled = simulator.stk_status(checkout_request_id)
    assert (settled["status"], settled["result_code"]) == ("awaiting_receipt", "0")
    assert not OutboxCallback.objects.exists()
    assert not CallbackEvent.objects.exists()


# -- C2B ---------------------------------------------------------------------------------------


def test_c2b_payment_is_validated_then_confirmed_and_recorded(simulator, settings):
    # Our callback origin is the live server's plain-http loopback URL, which C2B registration
    # accepts only with DEBUG on (a deployment must use https).
    settings.DEBUG = True
    registered = simulator.post(API + "/register-urls", {})
    assert registered.status_code == 200, registered.text
    registration = C2BRegistration.objects.get(shortcode="174379")
    assert registration.validation_url.endswith("/validation")
    assert registration.confirmation_url.endswith("/confirmation")

    call_command(
        "mpesa_simulate_c2b", "--phone", SUCCESS_PHONE, "--amount", "50", "--bill-ref", "INV7"
    )

    payment = wait_for(
        lambda: Transaction.objects.filter(transaction_type="C2B").first(),
        message="the C2B confirmation",
    )
    assert (payment.status, payment.amount, payment.account_reference) == ("success", 50, "INV7")
    assert payment.mpesa_receipt_number
    events = CallbackEvent.objects.order_by("pk")
    assert [(e.kind, e.outcome) for e in events] == [
        ("c2b_validation", "processed"),
        ("c2b_confirmation", "processed"),
    ]


# -- B2C and reversal --------------------------------------------------------------------------


def new_key() -> dict[str, str]:
    """Payouts and refunds need an Idempotency-Key header."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def pay_out(simulator, phone_number: str, amount: int = 100) -> dict:
    response = simulator.post(
        API + "/b2c",
        {"phone_number": phone_number, "amount": amount, "remarks": "Refund"},
        headers=new_key(),
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_b2c_payout_result_settles_it_as_success(simulator):
    payout = pay_out(simulator, SUCCESS_PHONE)

    settled = simulator.wait_for_transaction(payout["id"], "success")

    assert settled["result_code"] == "0"
    assert settled["mpesa_receipt_number"]


def test_b2c_payout_to_a_poor_account_fails(simulator):
    payout = pay_out(simulator, "0700000004")

    settled = simulator.wait_for_transaction(payout["id"], "failed")

    assert settled["result_code"] == "1"
    assert not settled["mpesa_receipt_number"]


def test_b2c_queue_timeout_makes_the_payout_unknown_until_its_result(simulator):
    payout = pay_out(simulator, "0700000014")

    simulator.wait_for_transaction(payout["id"], "unknown")
    settled = simulator.wait_for_transaction(payout["id"], "success")

    assert settled["mpesa_receipt_number"]
    kinds = CallbackEvent.objects.order_by("pk").values_list("kind", "outcome")
    assert list(kinds) == [("b2c_timeout", "processed"), ("b2c_result", "processed")]


def test_reversal_result_refunds_the_payment(simulator):
    paid = simulator.stk_push(SUCCESS_PHONE, amount=20)
    paid = simulator.wait_for_stk(paid["checkout_request_id"], "success")

    response = simulator.post(API + "/reverse", {"transaction": paid["id"]}, headers=new_key())
    assert response.status_code == 202, response.text
    reversal = simulator.wait_for_transaction(response.json()["id"], "success")

    assert (reversal["transaction_type"], reversal["amount"]) == ("REVERSAL", 20)
    assert reversal["original"] == paid["id"]
    original = simulator.transaction(paid["id"])
    assert (original["status"], original["reversed_amount"]) == ("reversed", 20)


# -- Account balance ---------------------------------------------------------------------------


def utility_available(simulator) -> Decimal:
    """Ask for the balance, wait for its result, and read the Utility Account from GET."""
    response = simulator.post(API + "/balance", {})
    assert response.status_code == 202, response.text
    [inquiry] = response.json()["inquiries"]  # one shortcode both collects and pays out
    inquiry_id = inquiry["id"]
    wait_for(
        lambda: DarajaInquiry.objects.filter(pk=inquiry_id, status="completed").exists(),
        message="the balance result",
    )
    balances = simulator.get(API + "/balance").json()
    (utility,) = [b for b in balances if b["account"] == "Utility Account"]
    return Decimal(utility["available"])


def test_payments_and_payouts_move_the_balance(simulator, settings):
    # One shortcode both collects and pays out here, so one Utility Account sees both moves.
    settings.PAYMENTS = {**settings.PAYMENTS, "B2C_SHORTCODE": settings.PAYMENTS["SHORTCODE"]}
    before = utility_available(simulator)

    paid = simulator.stk_push(SUCCESS_PHONE, amount=100)
    simulator.wait_for_stk(paid["checkout_request_id"], "success")
    payout = pay_out(simulator, SUCCESS_PHONE, amount=30)
    simulator.wait_for_transaction(payout["id"], "success")

    assert utility_available(simulator) - before == Decimal(100 - 30)


def test_the_paybill_and_the_payout_shortcode_report_their_own_balance(simulator):
    paid = simulator.stk_push(SUCCESS_PHONE, amount=100)  # into the PayBill, 174379
    simulator.wait_for_stk(paid["checkout_request_id"], "success")
    payout = pay_out(simulator, SUCCESS_PHONE, amount=30)  # from the payout shortcode, 600992
    simulator.wait_for_transaction(payout["id"], "success")

    response = simulator.post(API + "/balance", {})

    assert response.status_code == 202, response.text
    inquiries = response.json()["inquiries"]
    assert [i["label"] for i in inquiries] == ["PayBill 174379", "B2C payouts 600992"]
    ids = [i["id"] for i in inquiries]
    wait_for(
        lambda: DarajaInquiry.objects.filter(pk__in=ids, status="completed").count() == 2,
        message="both balance results",
    )
    utility = {
        row["label"]: Decimal(row["available"])
        for row in simulator.get(API + "/balance").json()
        if row["account"] == "Utility Account"
    }
    # Both started from the simulator's opening balance of KES 1,000,000.
    assert utility == {
        "PayBill 174379": Decimal(1_000_000 + 100),
        "B2C payouts 600992": Decimal(1_000_000 - 30),
    }

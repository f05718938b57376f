"""Pull Transactions end to end: the simulator loses a confirmation, Pull finds the payment and
the ledger books it once; a push whose callback never came is completed. Nothing is mocked."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from payments import signals
from payments.models import CallbackEvent, Transaction
from simulator.models import OutboxCallback, PullRegistration, SimulatedRequest
from tests.simulator.conftest import API, CALLBACK_DELAY, holds_for, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LOST_CONFIRMATION_PHONE = "0700000015"
SILENT_PHONE = "0700000013"


@pytest.fixture
def announced():
    """Every payment signal sent, as (signal name, transaction id)."""
    seen: list[tuple[str, str]] = []
    receivers = []
    for name in ("payment_succeeded", "c2b_payment_received"):

        def receiver(sender, transaction, _name=name, **kwargs):
            seen.append((_name, str(transaction.pk)))

        getattr(signals, name).connect(receiver)
        receivers.append((name, receiver))
    yield seen
    for name, receiver in receivers:
        getattr(signals, name).disconnect(receiver)


@pytest.fixture
def c2b_urls(simulator, settings):
    """C2B URLs registered with the simulator (a loopback http origin: DEBUG only)."""
    settings.DEBUG = True
    assert simulator.post(API + "/register-urls", {}).status_code == 200


def pay_c2b(phone: str, amount: int, *args: str) -> None:
    """A customer pays the shortcode (the simulator's C2B simulate)."""
    arguments = ["--phone", phone, "--amount", str(amount), *args]
    call_command("mpesa_simulate_c2b", *arguments, stdout=StringIO())


def pull(*args: str) -> str:
    out = StringIO()
    call_command("mpesa_pull_transactions", *args, stdout=out)
    return out.getvalue()


def test_a_c2b_payment_whose_confirmation_is_lost_is_found_by_pull(simulator, c2b_urls, announced):
    pay_c2b(LOST_CONFIRMATION_PHONE, 50, "--bill-ref", "INV15")
    validation = wait_for(
        lambda: OutboxCallback.objects.filter(sent_at__isnull=False).first(),
        message="the validation request",
    )
    assert validation.url.endswith("/validation")
    holds_for(
        lambda: not Transaction.objects.exists(),
        seconds=CALLBACK_DELAY * 4,
        message="no confirmation, no payment on the ledger",
    )
    assert OutboxCallback.objects.count() == 1  # the confirmation was never queued

    output = pull()

    (payment,) = Transaction.objects.all()
    paid = SimulatedRequest.objects.get(kind="c2b")
    assert (payment.transaction_type, payment.status, payment.amount) == ("C2B", "success", 50)
    assert (payment.mpesa_receipt_number, payment.account_reference) == (paid.receipt, "INV15")
    assert payment.recovered_from == "pull_transactions"
    assert payment.msisdn == "2547******15"
    assert announced == [("c2b_payment_received", str(payment.pk))]
    assert "booked 1 (1 C2B payments" in output

    again = pull()

    assert Transaction.objects.count() == 1
    assert len(announced) == 1
    assert "1 on the ledger, booked 0" in again


def test_pull_completes_a_push_whose_callback_never_came(simulator, announced):
    pushed = simulator.stk_push(SILENT_PHONE, amount=7, reference="INV13")
    paid = SimulatedRequest.objects.get(checkout_request_id=pushed["checkout_request_id"])
    wait_for(lambda: timezone.now() > paid.completes_at, message="the simulated result")
    call_command("mpesa_reconcile", "--older-than", "0", stdout=StringIO())
    assert simulator.transaction(pushed["id"])["status"] == "awaiting_receipt"

    out = StringIO()
    call_command("mpesa_reconcile", "--pull", stdout=out)

    settled = simulator.transaction(pushed["id"])
    assert (settled["status"], settled["mpesa_receipt_number"]) == ("success", paid.receipt)
    assert not Transaction.objects.filter(transaction_type="C2B").exists()
    assert Transaction.objects.get(pk=pushed["id"]).recovered_from == "pull_transactions"
    assert announced == [("payment_succeeded", pushed["id"])]
    assert "1 STK Pushes completed" in out.getvalue()
    assert not CallbackEvent.objects.exists()


def test_a_normal_payment_is_on_the_ledger_and_pull_leaves_it_alone(simulator, announced):
    pushed = simulator.stk_push("0708374149", amount=3)
    simulator.wait_for_stk(pushed["checkout_request_id"], "success")
    wait_for(lambda: len(announced) == 1, message="the payment's signal")

    output = pull()

    assert "1 rows on 1 pages; 1 on the ledger, booked 0" in output
    assert len(announced) == 1


def test_pull_reads_every_page_of_the_simulator(simulator, settings):
    settings.DARAJA_SIMULATOR = {**settings.DARAJA_SIMULATOR, "PULL_PAGE_SIZE": 2}
    # Without registered C2B URLs the simulator completes payments and tells nobody.
    for amount in (11, 12, 13, 14, 15):
        pay_c2b("0708374149", amount)

    output = pull("--since", (timezone.now() - timedelta(minutes=5)).isoformat())

    amounts = sorted(Transaction.objects.values_list("amount", flat=True))
    assert amounts == [11, 12, 13, 14, 15]
    assert "5 rows on 3 pages" in output


def test_register_pull_registers_once_then_is_already_registered(simulator, settings):
    settings.DEBUG = True  # the live server's loopback http origin
    settings.PAYMENTS = {**settings.PAYMENTS, "PULL_NOMINATED_NUMBER": "0722000000"}
    out = StringIO()

    call_command("mpesa_register_urls", "--pull", stdout=out)
    call_command("mpesa_register_urls", "--pull", stdout=out)

    assert "Registered: 1000" in out.getvalue()
    assert "Registered: 1001" in out.getvalue()
    registration = PullRegistration.objects.get()
    assert registration.nominated_number == "254722000000"
    secret = settings.PAYMENTS["CALLBACK_SECRET"]
    notices = f"{simulator.url}/api/v1/payments/callbacks/c2b/{secret}/pull"
    assert registration.callback_url == notices


def test_the_simulated_pull_answers_like_daraja(simulator):
    token = requests.get(
        simulator.daraja_url + "/oauth/v1/generate?grant_type=client_credentials",
        auth=("sim-consumer-key", "sim-consumer-secret"),
        timeout=10,
    ).json()["access_token"]
    query = simulator.daraja_url + "/pulltransactions/v1/query"
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "ShortCode": "174379",
        "StartDate": "2025-01-24 08:00:00",
        "EndDate": "2025-01-24 10:30:00",
        "OffSetValue": "0",
    }

    empty = requests.post(query, json=body, headers=headers, timeout=10)
    bad_date = requests.post(
        query, json={**body, "StartDate": "24.01.2025"}, headers=headers, timeout=10
    )

    assert empty.status_code == 200
    assert (empty.json()["ResponseCode"], empty.json()["Response"]) == ("1001", [[]])
    assert bad_date.status_code == 400
    assert bad_date.json()["errorCode"] == "400.002.02"

"""payments.testing, the helpers host projects test with: Daraja answered in-process, outcomes
delivered through the real callback path (stored event, processing, signals after the commit)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from payments import signals, testing
from payments.enums import CallbackOutcome
from payments.exceptions import PaymentsError
from payments.models import CallbackEvent, Transaction
from payments.services.b2c import b2c_payout_initiate
from payments.services.stk_push import stk_push_initiate
from shop.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    """(signal name, kwargs) of each payments signal sent during the test, in order."""
    names = ("payment_succeeded", "payment_failed", "c2b_payment_received")
    names += ("payout_completed", "payout_failed")
    received: list[tuple[str, dict]] = []

    def listener(name):
        def receiver(sender, **kwargs):
            kwargs.pop("signal", None)
            received.append((name, kwargs))

        return receiver

    receivers = {name: listener(name) for name in names}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver)
    yield received
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def push(order: Order | None = None, *, phone: str = "0708374149", reference: str = "ORDER1"):
    return stk_push_initiate(
        user=None,
        phone_number=phone,
        amount=order.total if order else 150,
        account_reference=reference,
        for_object=order,
    )


def test_the_double_accepts_a_push_and_keeps_what_was_sent(daraja_double):
    payment = push()

    assert payment.status == "pending"
    assert payment.checkout_request_id.startswith("ws_CO_double_")
    [sent] = daraja_double.requests_for("stk_push")
    assert sent["PhoneNumber"] == 254708374149
    assert sent["CallBackURL"].endswith(f"/api/v1/payments/callbacks/stk/{payment.callback_token}")


def test_completing_a_push_goes_through_the_callback_and_signals_after_the_commit(
    daraja_double, heard
):
    order = Order.objects.create(total=150)
    payment = push(order)
    assert heard == []

    testing.stk_push_complete(payment, receipt="TST0000001")

    assert payment.status == "success"
    assert payment.mpesa_receipt_number == "TST0000001"
    [event] = CallbackEvent.objects.filter(transaction=payment)
    assert (event.kind, event.outcome) == ("stk", CallbackOutcome.PROCESSED)
    [(name, kwargs)] = heard
    assert name == "payment_succeeded"
    assert kwargs["transaction"].pk == payment.pk
    assert kwargs["for_object"] == order
    order.refresh_from_db()
    assert order.paid_at is not None  # the host app's own receiver (tests/host/shop)


@pytest.mark.parametrize(
    ("deliver", "status", "result_code"),
    [
        (testing.stk_push_fail, "failed", "1"),
        (testing.stk_push_cancel, "cancelled", "1032"),
        (testing.stk_push_timeout, "timeout", "1037"),
    ],
)
def test_a_push_fails_is_cancelled_or_times_out(daraja_double, heard, deliver, status, result_code):
    order = Order.objects.create(total=150)

    payment = deliver(push(order))

    assert (payment.status, payment.result_code) == (status, result_code)
    assert [(name, kwargs["for_object"]) for name, kwargs in heard] == [("payment_failed", order)]


def test_a_second_delivery_is_a_duplicate_and_signals_nothing_more(daraja_double, heard):
    payment = push()
    testing.stk_push_complete(payment, receipt="TST0000002")

    testing.stk_push_complete(payment, receipt="TST0000002")

    outcomes = CallbackEvent.objects.filter(transaction=payment).values_list("outcome", flat=True)
    assert sorted(outcomes) == [CallbackOutcome.DUPLICATE, CallbackOutcome.PROCESSED]
    assert [name for name, _ in heard] == ["payment_succeeded"]


def test_an_outcome_the_payment_can_no_longer_take_is_an_error_not_a_silent_pass(daraja_double):
    payment = testing.stk_push_fail(push())

    with pytest.raises(testing.CallbackNotAppliedError, match="is failed, not success"):
        testing.stk_push_complete(payment)


def test_a_c2b_payment_that_fits_no_push_is_a_c2b_payment(daraja_double, heard):
    payment = testing.c2b_payment_deliver(amount=500, account_reference="INV-7")

    assert (payment.transaction_type, payment.status, payment.amount) == ("C2B", "success", 500)
    assert payment.account_reference == "INV-7"
    assert [(name, kwargs["for_object"]) for name, kwargs in heard] == [
        ("c2b_payment_received", None)
    ]


def test_a_c2b_payment_that_fits_a_push_completes_it(daraja_double, heard):
    order = Order.objects.create(total=150)
    payment = push(order, reference="ORDER9")

    booked = testing.c2b_payment_deliver(amount=150, account_reference="order9")

    assert booked.pk == payment.pk
    assert booked.status == "success"
    assert [(name, kwargs["for_object"]) for name, kwargs in heard] == [
        ("payment_succeeded", order)
    ]


def test_settling_a_payout_both_ways(daraja_double, heard):
    order = Order.objects.create(total=250)
    paid = b2c_payout_initiate(
        user=None, phone_number="0708374149", amount=250, remarks="Refund", for_object=order
    )
    refused = b2c_payout_initiate(user=None, phone_number="0708374149", amount=300, remarks="Pay")
    assert (paid.status, refused.status) == ("pending", "pending")

    paid = testing.payout_complete(paid, receipt="TST0000003")
    refused = testing.payout_fail(refused)

    assert (paid.status, paid.mpesa_receipt_number) == ("success", "TST0000003")
    assert (refused.status, refused.result_code) == ("failed", "2001")
    assert [(name, kwargs["for_object"]) for name, kwargs in heard] == [
        ("payout_completed", order),
        ("payout_failed", None),
    ]


def test_the_double_refuses_when_told_and_the_push_fails_at_once(
    daraja_double, heard, django_capture_on_commit_callbacks
):
    daraja_double.refuse("stk_push", error_code="400.002.02", error_message="Invalid Amount")

    # No callback: the service's own commit sends payment_failed, which a test's transaction
    # holds back until it is run.
    with django_capture_on_commit_callbacks(execute=True):
        payment = push()

    assert (payment.status, payment.result_code) == ("failed", "400.002.02")
    assert [name for name, _ in heard] == ["payment_failed"]
    assert push().status == "pending"  # the next one is accepted again


def test_a_host_without_daraja_settings_can_still_test(settings):
    settings.PAYMENTS = {}
    with pytest.raises(PaymentsError):
        push()

    with testing.daraja_double():
        payment = testing.stk_push_complete(push())

    assert payment.status == "success"
    assert Transaction.objects.filter(status="success").count() == 1


def test_callbacks_come_from_an_allowed_address_behind_the_trusted_proxies(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 2}
    payments = {**settings.PAYMENTS, "CALLBACK_ALLOWED_NETWORKS": ["safaricom"]}
    with override_settings(PAYMENTS=payments), testing.daraja_double():
        payment = testing.stk_push_complete(push())

    assert payment.status == "success"
    [event] = CallbackEvent.objects.filter(transaction=payment)
    assert event.source_ip == "196.201.214.200"

"""Payouts from the back office: form, confirmation, and maker-checker above the threshold."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from payments.enums import TransactionStatus, TransactionType
from payments.models import PayoutRequest, Transaction
from tests.payments.money_out import B2C_URL, accept, sent

from .helpers import PAYOUT, PAYOUT_REQUESTS, change_url, decide_url, messages_of

pytestmark = pytest.mark.django_db

State = PayoutRequest.State


def low_threshold() -> override_settings:
    """Payouts above KES 100 wait for approval."""
    return override_settings(PAYMENTS={**settings.PAYMENTS, "PAYOUT_APPROVAL_THRESHOLD": 100})


def payout_form(amount: int, *, phone: str = "0708 374 149", step: str = "execute") -> dict:
    return {
        "phone_number": phone,
        "amount": str(amount),
        "command_id": "BusinessPayment",
        "remarks": "Supplier invoice 17",
        "occasion": "",
        "step": step,
    }


def payouts() -> list[Transaction]:
    return list(Transaction.objects.filter(transaction_type=TransactionType.B2C))


def test_payout_form_names_the_accepted_phone_forms_for_a_bad_number(as_manager, daraja):
    response = as_manager.post(PAYOUT, payout_form(500, phone="0808 374 149", step="confirm"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Not a Kenyan mobile number" in page
    assert "Accepted forms: 07XXXXXXXX, 01XXXXXXXX" in page
    assert "2547XXXXXXXX" in page
    assert len(daraja.calls) == 0
    assert PayoutRequest.objects.count() == 0


def test_payout_confirmation_shows_the_normalised_phone_and_the_amount(as_manager, daraja):
    response = as_manager.post(PAYOUT, payout_form(500, phone="0708 374 149", step="confirm"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Send KES 500 to 254708374149" in page
    assert 'name="step" value="execute"' in page
    assert len(daraja.calls) == 0
    assert PayoutRequest.objects.count() == 0


@low_threshold()
def test_payout_confirmation_warns_when_approval_will_be_needed(as_manager, daraja):
    page = as_manager.post(PAYOUT, payout_form(500, step="confirm")).content.decode()

    assert "above KES 100: it will wait for another manager" in page
    assert "Submit for approval" in page


@low_threshold()
def test_payout_below_the_threshold_is_sent_at_once(as_manager, manager, daraja):
    accept(daraja, B2C_URL)

    response = as_manager.post(PAYOUT, payout_form(100))

    [request] = sent(daraja, B2C_URL)
    assert request["PartyB"] == 254708374149
    assert request["Amount"] == 100
    [payout] = PayoutRequest.objects.all()
    assert payout.state == State.SENT
    assert payout.maker == manager
    assert payout.transaction.amount == 100
    assert payout.transaction.status == TransactionStatus.PENDING
    assert response.status_code == 302
    assert response["Location"] == change_url(payout.transaction)


@low_threshold()
def test_payout_above_the_threshold_waits_for_approval_and_sends_nothing(
    as_manager, manager, daraja
):
    accept(daraja, B2C_URL)

    response = as_manager.post(PAYOUT, payout_form(101))

    assert len(daraja.calls) == 0
    assert payouts() == []
    [payout] = PayoutRequest.objects.all()
    assert payout.state == State.AWAITING_APPROVAL
    assert (payout.amount, payout.phone_number, payout.maker) == (101, "254708374149", manager)
    assert payout.transaction is None
    assert response["Location"] == PAYOUT_REQUESTS
    assert any("waiting for another manager's approval" in m for m in messages_of(response))


@pytest.fixture
def awaiting(as_manager, daraja) -> PayoutRequest:
    accept(daraja, B2C_URL)
    with low_threshold():
        as_manager.post(PAYOUT, payout_form(500))
    return PayoutRequest.objects.get()


def test_maker_cannot_approve_their_own_payout(as_manager, awaiting, daraja):
    response = as_manager.post(decide_url(awaiting), {"decision": "approve"})

    assert response.status_code == 302
    assert any("someone other than the person who made it" in m for m in messages_of(response))
    awaiting.refresh_from_db()
    assert awaiting.state == State.AWAITING_APPROVAL
    assert awaiting.checker is None
    assert len(daraja.calls) == 0
    assert payouts() == []


def test_maker_sees_no_approve_button_on_their_own_payout(as_manager, awaiting):
    page = as_manager.get(f"{PAYOUT_REQUESTS}{awaiting.pk}/change/").content.decode()

    assert "another manager must approve it" in page
    assert 'value="approve"' not in page


def test_second_manager_approval_sends_exactly_one_payout(
    as_second_manager, second_manager, awaiting, daraja
):
    page = as_second_manager.get(f"{PAYOUT_REQUESTS}{awaiting.pk}/change/").content.decode()
    assert 'value="approve"' in page

    response = as_second_manager.post(decide_url(awaiting), {"decision": "approve"})

    assert response.status_code == 302
    [request] = sent(daraja, B2C_URL)
    assert (request["PartyB"], request["Amount"]) == (254708374149, 500)
    awaiting.refresh_from_db()
    assert awaiting.state == State.SENT
    assert awaiting.checker == second_manager
    assert awaiting.decided_at is not None
    [payout] = payouts()
    assert awaiting.transaction == payout
    assert payout.amount == 500
    assert payout.status == TransactionStatus.PENDING
    assert any(m.startswith("Approved: KES 500") for m in messages_of(response))


def test_approving_twice_sends_once(as_second_manager, awaiting, daraja):
    as_second_manager.post(decide_url(awaiting), {"decision": "approve"})

    again = as_second_manager.post(decide_url(awaiting), {"decision": "approve"})

    assert len(sent(daraja, B2C_URL)) == 1
    assert len(payouts()) == 1
    assert any("already sent" in m for m in messages_of(again))


def test_rejected_payout_sends_nothing(as_second_manager, second_manager, awaiting, daraja):
    response = as_second_manager.post(decide_url(awaiting), {"decision": "reject"})

    assert "Payout rejected; nothing was sent." in messages_of(response)
    awaiting.refresh_from_db()
    assert awaiting.state == State.REJECTED
    assert awaiting.checker == second_manager
    assert len(daraja.calls) == 0
    assert payouts() == []


def test_rejected_payout_cannot_be_approved_later(as_second_manager, awaiting, daraja):
    as_second_manager.post(decide_url(awaiting), {"decision": "reject"})

    response = as_second_manager.post(decide_url(awaiting), {"decision": "approve"})

    assert any("already rejected" in m for m in messages_of(response))
    assert len(daraja.calls) == 0
    awaiting.refresh_from_db()
    assert awaiting.state == State.REJECTED

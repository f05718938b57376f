"""Every action view checks its permission itself; the buttons a clerk lacks are hidden too."""

from __future__ import annotations

import pytest

from payments.enums import CallbackOutcome, TransactionType
from payments.models import (
    AuditRecord,
    BalanceSnapshot,
    CallbackEvent,
    DarajaInquiry,
    PayoutRequest,
    Transaction,
)
from tests.payments.money_out import (
    B2C_URL,
    BALANCE_URL,
    REVERSAL_URL,
    STATUS_URL,
    accept,
    paid_transaction,
)

from .helpers import (
    BALANCE,
    CHANGELIST,
    PAYOUT,
    QUERY_STATUS,
    REFUND_BULK,
    REPROCESS,
    change_url,
    decide_url,
    refund_url,
    stk_event,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def targets(second_manager):
    payment = paid_transaction(amount=100)
    pending_push = Transaction.objects.create(
        transaction_type=TransactionType.STK_PUSH,
        status="pending",
        checkout_request_id="ws_CO_000000000000000000042",
        amount=25,
        phone_number="254708374149",
        environment="sandbox",
    )
    return {
        "payment": payment,
        "payout": PayoutRequest.objects.create(
            state=PayoutRequest.State.AWAITING_APPROVAL,
            phone_number="254708374149",
            amount=20_000,
            command_id="BusinessPayment",
            remarks="Supplier",
            maker=second_manager,
        ),
        "event": stk_event(pending_push, outcome=CallbackOutcome.ERROR, error="boom"),
    }


def _stored() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (
            Transaction,
            PayoutRequest,
            AuditRecord,
            DarajaInquiry,
            BalanceSnapshot,
            CallbackEvent,
        )
    }


FORBIDDEN_POSTS = {
    "refund": lambda t: (
        refund_url(t["payment"]),
        {"amount": "50", "remarks": "Refund", "step": "execute"},
    ),
    "refund_bulk": lambda t: (REFUND_BULK, {"ids": [str(t["payment"].pk)]}),
    "payout": lambda t: (
        PAYOUT,
        {
            "phone_number": "0708374149",
            "amount": "500",
            "command_id": "BusinessPayment",
            "remarks": "Supplier",
            "step": "execute",
        },
    ),
    "query_status": lambda t: (QUERY_STATUS, {"ids": [str(t["payment"].pk)]}),
    "balance_refresh": lambda t: (BALANCE, {}),
    "payout_approve": lambda t: (decide_url(t["payout"]), {"decision": "approve"}),
    "payout_reject": lambda t: (decide_url(t["payout"]), {"decision": "reject"}),
    "callback_reprocess": lambda t: (REPROCESS, {"ids": [str(t["event"].pk)]}),
}


@pytest.mark.parametrize("view", FORBIDDEN_POSTS)
def test_clerk_posting_directly_to_an_action_view_is_refused_and_nothing_happens(
    view, as_clerk, targets, daraja
):
    for url in (B2C_URL, REVERSAL_URL, BALANCE_URL, STATUS_URL):
        accept(daraja, url)
    before = _stored()
    url, data = FORBIDDEN_POSTS[view](targets)

    response = as_clerk.post(url, data)

    assert response.status_code == 403
    assert len(daraja.calls) == 0  # not even the OAuth token was asked for
    assert _stored() == before
    targets["payout"].refresh_from_db()
    assert targets["payout"].state == PayoutRequest.State.AWAITING_APPROVAL
    targets["event"].refresh_from_db()
    assert targets["event"].outcome == CallbackOutcome.ERROR
    targets["payment"].refresh_from_db()
    assert targets["payment"].reversed_amount == 0


@pytest.mark.parametrize(
    "url", [lambda t: refund_url(t["payment"]), lambda t: PAYOUT, lambda t: BALANCE]
)
def test_clerk_cannot_even_open_the_money_forms(url, as_clerk, targets):
    assert as_clerk.get(url(targets)).status_code == 403


def test_clerk_sees_no_refund_or_query_action_and_no_send_money_link(as_clerk):
    paid_transaction()

    page = as_clerk.get(CHANGELIST).content.decode()

    assert 'value="export_selected"' in page  # the dropdown is there, with what a clerk may do
    assert 'value="refund_selected"' not in page
    assert 'value="query_status_selected"' not in page
    assert PAYOUT not in page
    assert "Send money" not in page


def test_manager_sees_refund_and_query_actions_and_send_money_link(as_manager):
    paid_transaction()

    page = as_manager.get(CHANGELIST).content.decode()

    assert 'value="refund_selected"' in page
    assert 'value="query_status_selected"' in page
    assert 'value="export_selected"' in page
    assert f'href="{PAYOUT}"' in page
    assert "Send money" in page


def test_clerk_sees_no_refund_button_on_a_payment(as_clerk):
    payment = paid_transaction()

    response = as_clerk.get(change_url(payment))

    assert response.status_code == 200
    assert refund_url(payment) not in response.content.decode()
    assert "Refund…" not in response.content.decode()


def test_manager_sees_the_refund_button_on_a_successful_payment(as_manager):
    payment = paid_transaction()

    page = as_manager.get(change_url(payment)).content.decode()

    assert f'href="{refund_url(payment)}"' in page
    assert "Refund…" in page

"""Refunds from the back office: the bulk action and the single partial refund, both confirmed."""

from __future__ import annotations

import pytest

from payments.enums import TransactionStatus, TransactionType
from payments.models import Transaction
from tests.payments.money_out import REVERSAL_URL, accept, paid_transaction, sent

from .helpers import CHANGELIST, REFUND_BULK, action_data, change_url, messages_of, refund_url

pytestmark = pytest.mark.django_db


def reversals() -> list[Transaction]:
    return list(Transaction.objects.filter(transaction_type=TransactionType.REVERSAL))


def test_refund_action_shows_a_confirmation_page_listing_the_selection(as_manager, daraja):
    first = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    second = paid_transaction(amount=250, receipt="NLJ7RT61SW")
    not_chosen = paid_transaction(amount=999, receipt="NLJ7RT61SX")

    response = as_manager.post(CHANGELIST, action_data("refund_selected", first, second))

    assert response.status_code == 200
    page = response.content.decode()
    assert f'action="{REFUND_BULK}"' in page
    for chosen in (first, second):
        assert f'name="ids" value="{chosen.pk}"' in page
    assert "KES 100 to 2547******49" in page
    assert "KES 250 to 2547******49" in page
    assert str(not_chosen.pk) not in page
    assert len(daraja.calls) == 0  # asking is not doing
    assert reversals() == []


def test_confirming_the_refund_action_reverses_each_payment_and_reports_counts(
    as_manager, manager, daraja
):
    accept(daraja, REVERSAL_URL)
    first = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    second = paid_transaction(amount=250, receipt="NLJ7RT61SW")

    response = as_manager.post(REFUND_BULK, {"ids": [str(first.pk), str(second.pk)]})

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    requests = sent(daraja, REVERSAL_URL)
    assert sorted((r["TransactionID"], r["Amount"]) for r in requests) == [
        ("NLJ7RT61SV", 100),
        ("NLJ7RT61SW", 250),
    ]
    assert sorted((r.original_id, r.amount, r.status, r.user) for r in reversals()) == sorted(
        [
            (first.pk, 100, TransactionStatus.PENDING, manager),
            (second.pk, 250, TransactionStatus.PENDING, manager),
        ]
    )
    assert "2 refund(s) sent to M-Pesa." in messages_of(response)


def test_refund_action_counts_the_payments_it_could_not_refund(as_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    failed_push = paid_transaction(amount=50, receipt="", status=TransactionStatus.FAILED)

    response = as_manager.post(REFUND_BULK, {"ids": [str(payment.pk), str(failed_push.pk)]})

    assert len(sent(daraja, REVERSAL_URL)) == 1
    shown = messages_of(response)
    assert "1 refund(s) sent to M-Pesa." in shown
    assert "1 refund(s) failed." in shown


def test_single_partial_refund_goes_form_then_confirmation_then_reversal(as_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")

    form = as_manager.get(refund_url(payment))
    assert form.status_code == 200
    assert 'name="amount"' in form.content.decode()
    assert "<strong>KES 100</strong> can still be refunded" in form.content.decode()

    confirm = as_manager.post(
        refund_url(payment), {"amount": "40", "remarks": "Damaged goods", "step": "confirm"}
    )
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Refund KES 40" in page
    assert 'name="step" value="execute"' in page
    assert 'name="amount" value="40"' in page
    assert len(daraja.calls) == 0
    assert reversals() == []

    done = as_manager.post(
        refund_url(payment), {"amount": "40", "remarks": "Damaged goods", "step": "execute"}
    )

    assert done.status_code == 302
    assert done["Location"] == change_url(payment)
    [request] = sent(daraja, REVERSAL_URL)
    assert request["Amount"] == 40
    assert request["TransactionID"] == "NLJ7RT61SV"
    [reversal] = reversals()
    assert reversal.original_id == payment.pk
    assert reversal.amount == 40
    assert reversal.remarks == "Damaged goods"
    assert any("Refund of KES 40" in m for m in messages_of(done))


def test_over_refund_shows_an_error_and_sends_nothing(as_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")

    response = as_manager.post(
        refund_url(payment), {"amount": "101", "remarks": "Too much", "step": "execute"}
    )

    assert response.status_code == 200  # the form again, with the error next to the amount
    assert "Only KES 100 is left to refund." in response.content.decode()
    assert sent(daraja, REVERSAL_URL) == []
    assert reversals() == []


def test_refund_after_a_partial_refund_is_limited_to_what_is_left(as_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    as_manager.post(refund_url(payment), {"amount": "70", "remarks": "Part", "step": "execute"})

    response = as_manager.post(
        refund_url(payment), {"amount": "31", "remarks": "Rest", "step": "execute"}
    )

    assert len(sent(daraja, REVERSAL_URL)) == 1
    assert any("must be from 1 to 30" in m for m in messages_of(response))


def test_a_confirmation_posted_twice_refunds_once(as_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    form = {"amount": "40", "remarks": "Part", "step": "execute", "nonce": "one-click"}

    as_manager.post(refund_url(payment), form)
    second = as_manager.post(refund_url(payment), form, follow=True)

    assert len(sent(daraja, REVERSAL_URL)) == 1
    assert [r.amount for r in reversals()] == [40]
    assert "already submitted" in second.content.decode()


def test_an_execute_post_without_its_confirmation_nonce_moves_nothing(as_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")

    as_manager.post(
        refund_url(payment), {"amount": "40", "remarks": "Part", "step": "execute", "nonce": ""}
    )

    assert sent(daraja, REVERSAL_URL) == []
    assert reversals() == []


def test_malformed_ids_select_nothing_instead_of_failing(as_manager, daraja):
    response = as_manager.post("/admin/payments/transaction/refund/", {"ids": ["nope"]})

    assert response.status_code == 302
    assert sent(daraja, REVERSAL_URL) == []

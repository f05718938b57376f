"""The ledger in the admin: read-only, searchable by every id staff are given, filterable."""

from __future__ import annotations

import pytest

from payments.enums import CallbackOutcome, TransactionStatus, TransactionType
from payments.models import Transaction
from tests.payments.money_out import paid_transaction

from .helpers import CHANGELIST, change_url, stk_event

pytestmark = pytest.mark.django_db


def listed(client, query: str = "") -> set:
    response = client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    return {t.pk for t in response.context["cl"].result_list}


def test_no_one_can_add_to_the_ledger(as_superuser, as_manager):
    assert as_superuser.get(f"{CHANGELIST}add/").status_code == 403
    assert as_manager.get(f"{CHANGELIST}add/").status_code == 403
    assert as_superuser.post(f"{CHANGELIST}add/", {"amount": "5"}).status_code == 403
    assert Transaction.objects.count() == 0


def test_no_one_can_delete_from_the_ledger(as_superuser):
    payment = paid_transaction()

    assert as_superuser.get(f"{CHANGELIST}{payment.pk}/delete/").status_code == 403
    assert (
        as_superuser.post(f"{CHANGELIST}{payment.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    page = as_superuser.get(CHANGELIST).content.decode()
    assert 'value="delete_selected"' not in page
    assert Transaction.objects.filter(pk=payment.pk).exists()


def test_payment_page_has_no_save_button_and_a_post_changes_nothing(as_superuser):
    payment = paid_transaction(amount=100)

    page = as_superuser.get(change_url(payment)).content.decode()
    response = as_superuser.post(
        change_url(payment), {"amount": "1", "status": "failed", "_save": "Save"}
    )

    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page
    assert response.status_code == 403
    payment.refresh_from_db()
    assert (payment.amount, payment.status) == (100, TransactionStatus.SUCCESS)


def test_money_and_id_fields_are_not_editable(as_superuser):
    payment = paid_transaction(amount=100)

    page = as_superuser.get(change_url(payment)).content.decode()

    for field in ("amount", "reversed_amount", "id", "status", "mpesa_receipt_number"):
        assert f'name="{field}"' not in page
    assert "NLJ7RT61SV" in page  # shown, read-only


def test_payment_page_shows_its_callbacks_and_refunds_but_not_the_callback_token(as_manager):
    payment = paid_transaction(amount=100)
    event = stk_event(payment, outcome=CallbackOutcome.PROCESSED)
    Transaction.objects.create(
        transaction_type=TransactionType.REVERSAL,
        status=TransactionStatus.SUCCESS,
        original=payment,
        amount=30,
        mpesa_receipt_number="OAR1REVRSL",
        phone_number=payment.phone_number,
        environment="sandbox",
    )

    page = as_manager.get(change_url(payment)).content.decode()

    assert "Callbacks from M-Pesa" in page
    assert f"/admin/payments/callbackevent/{event.pk}/change/" in page
    assert "196.201.214.200" in page
    assert "Reversals (refunds)" in page
    assert "OAR1REVRSL" in page
    assert payment.callback_token not in page


@pytest.fixture
def ledger() -> dict[str, Transaction]:
    def make(**fields) -> Transaction:
        defaults = {
            "transaction_type": TransactionType.STK_PUSH,
            "status": TransactionStatus.SUCCESS,
            "amount": 10,
            "phone_number": "254711000001",
            "environment": "sandbox",
        }
        return Transaction.objects.create(**{**defaults, **fields})

    return {
        "receipt": make(mpesa_receipt_number="NLJ7RT61SV", checkout_request_id="ws_CO_1"),
        "phone": make(phone_number="254708374149", status=TransactionStatus.FAILED),
        "account": make(account_reference="INV00042"),
        "checkout": make(checkout_request_id="ws_CO_191220191020363925"),
        "b2c": make(
            transaction_type=TransactionType.B2C,
            conversation_id="AG_20191219_00005797af5d7d75f652",
            originator_conversation_id="b2c-16740-34861180-1",
            needs_review=True,
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("NLJ7RT61SV", "receipt"),
        ("INV00042", "account"),
        ("ws_CO_191220191020363925", "checkout"),
        ("AG_20191219_00005797af5d7d75f652", "b2c"),
        ("b2c-16740-34861180-1", "b2c"),
        ("254708374149", "phone"),
        ("0708374149", "phone"),
        ("0708 374 149", "phone"),
        ("+254708374149", "phone"),
        ("708374149", "phone"),
    ],
)
def test_search_finds_a_transaction_by_any_id_staff_are_given(as_clerk, ledger, query, expected):
    assert listed(as_clerk, f"q={query.replace('+', '%2B').replace(' ', '+')}") == {
        ledger[expected].pk
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=failed", {"phone"}),
        ("transaction_type__exact=B2C", {"b2c"}),
        ("needs_review__exact=1", {"b2c"}),
    ],
)
def test_filters_by_status_type_and_review(as_clerk, ledger, query, expected):
    page = as_clerk.get(CHANGELIST).content.decode()

    assert f'href="?{query}"' in page  # offered in the filter sidebar
    assert listed(as_clerk, query) == {ledger[name].pk for name in expected}


def test_a_phone_search_keeps_the_chosen_filters(as_clerk, ledger):
    paid_again = Transaction.objects.create(
        transaction_type=TransactionType.STK_PUSH,
        status=TransactionStatus.SUCCESS,
        amount=10,
        phone_number="254708374149",
        environment="sandbox",
    )

    assert listed(as_clerk, "status__exact=failed&q=0708374149") == {ledger["phone"].pk}
    assert listed(as_clerk, "status__exact=success&q=0708374149") == {paid_again.pk}

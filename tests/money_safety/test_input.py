"""Issue 9, input: ASCII-only phone digits (9)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from payments.daraja.errors import InvalidPhoneNumberError
from payments.daraja.phone import normalize_phone_number
from payments.models import PayoutRequest, Transaction
from payments.services.checkout import checkout_link_create
from tests.admin.conftest import ConfirmingClient
from tests.admin.helpers import PAYOUT
from tests.payments.conftest import (
    PUSH_PATH,
    STK_PUSH_URL,
    api_client_for,
    calls_to,
    push_accepted,
)
from tests.payments.money_out import BALANCE_PATH, BALANCE_URL, accept, sent, staff_user_with

pytestmark = pytest.mark.django_db


def in_script(digits: str, zero: str) -> str:
    """``digits`` written with the decimal digits of the script whose zero is ``zero``."""
    return "".join(chr(ord(zero) + int(digit)) for digit in digits)


# 0708374149 written partly or wholly with the digits of other scripts, which Python counts
# as decimal digits. The first is the example.
OTHER_SCRIPT_PHONES = {
    "arabic-indic": "07" + in_script("08374149", "\u0660"),
    "extended-arabic-indic": "07" + in_script("08374149", "\u06f0"),
    "devanagari": "07" + in_script("08374149", "\u0966"),
    "fullwidth": in_script("0708374149", "\uff10"),
    "international-arabic-indic": "+" + in_script("254708374149", "\u0660"),
}


def with_payments(**overrides) -> override_settings:
    return override_settings(PAYMENTS={**settings.PAYMENTS, **overrides})


def accept_every_push(daraja) -> None:
    """Daraja accepts each push with a CheckoutRequestID of its own (the column is unique)."""
    numbers = iter(range(1, 1000))
    daraja.add_callback(
        "POST",
        STK_PUSH_URL,
        callback=lambda request: (200, {}, json.dumps(push_accepted(f"ws_CO_{next(numbers)}"))),
        content_type="application/json",
    )


@pytest.fixture
def shopper(django_user_model):
    return api_client_for(django_user_model.objects.create_user("shopper", password="pw-shop-1"))


def stk_push(api, phone: str):
    body = {"phone_number": phone, "amount": 1, "account_reference": "INV42"}
    return api.post(PUSH_PATH, body, format="json")


def checkout_start(client: Client, phone: str):
    token = checkout_link_create(amount=10, account_reference="INV42")
    path = reverse("payments:checkout-pay", kwargs={"token": token})
    return client.post(path, {"phone_number": phone}, content_type="application/json")


def assert_400_naming_phone(response) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == ["phone_number"]
    assert "not a Kenyan mobile number" in body["errors"]["phone_number"][0]


# -- 9. phone numbers are ASCII digits only ----------------------------------------------------


@pytest.mark.parametrize("phone", OTHER_SCRIPT_PHONES.values(), ids=OTHER_SCRIPT_PHONES.keys())
def test_p09_normaliser_refuses_digits_of_other_scripts(phone):
    with pytest.raises(InvalidPhoneNumberError):
        normalize_phone_number(phone)


@pytest.mark.parametrize("phone", OTHER_SCRIPT_PHONES.values(), ids=OTHER_SCRIPT_PHONES.keys())
def test_p09_stk_push_api_refuses_other_digits_with_the_usual_400(shopper, daraja, phone):
    response = stk_push(shopper, phone)

    assert_400_naming_phone(response)
    assert Transaction.objects.count() == 0
    assert calls_to(daraja, STK_PUSH_URL) == []


def test_p09_checkout_start_refuses_other_digits_with_the_usual_400(client, daraja):
    response = checkout_start(client, OTHER_SCRIPT_PHONES["arabic-indic"])

    assert_400_naming_phone(response)
    assert Transaction.objects.count() == 0
    assert calls_to(daraja, STK_PUSH_URL) == []


@with_payments(STK_RATE_PER_PHONE="1/min")
def test_p09_per_phone_throttle_is_not_bypassed_with_other_digits(shopper, daraja):
    accept_every_push(daraja)

    first = stk_push(shopper, "0708374149")
    again = stk_push(shopper, OTHER_SCRIPT_PHONES["arabic-indic"])

    assert first.status_code == 201, first.content
    assert_400_naming_phone(again)
    assert len(calls_to(daraja, STK_PUSH_URL)) == 1


@with_payments(STK_RATE_PER_PHONE="1/min")
def test_p09_checkout_page_throttle_is_not_bypassed_with_other_digits(client, daraja):
    accept_every_push(daraja)

    first = checkout_start(client, "0708374149")
    again = checkout_start(client, OTHER_SCRIPT_PHONES["extended-arabic-indic"])

    assert first.status_code == 201, first.content
    assert_400_naming_phone(again)
    assert len(calls_to(daraja, STK_PUSH_URL)) == 1


def test_p09_admin_payout_form_refuses_other_digits(django_user_model, daraja):
    manager = staff_user_with(django_user_model, "payer", "pay_out")
    browser = ConfirmingClient()
    browser.force_login(manager)
    form = {
        "phone_number": OTHER_SCRIPT_PHONES["arabic-indic"],
        "amount": "50",
        "command_id": "BusinessPayment",
        "remarks": "Supplier invoice 17",
        "occasion": "",
    }

    confirm = browser.post(PAYOUT, {**form, "step": "confirm"})
    execute = browser.post(PAYOUT, {**form, "step": "execute"})

    for response in (confirm, execute):
        assert response.status_code == 200
        assert "Not a Kenyan mobile number" in response.content.decode()
    assert PayoutRequest.objects.count() == 0
    assert Transaction.objects.count() == 0
    assert len(daraja.calls) == 0


def test_p09_a_shortcode_in_other_digits_is_not_sent_as_another_number(officer, daraja):
    accept(daraja, BALANCE_URL)
    shortcode = in_script("600992", "\u0660")

    officer.post(BALANCE_PATH, {"shortcode": shortcode}, format="json")

    # Sent as the text it is (Daraja refuses it), never as the number 600992 while the
    # inquiry records another shortcode.
    [request] = sent(daraja, BALANCE_URL)
    assert request["PartyA"] == shortcode


@pytest.fixture
def officer(django_user_model):
    """Staff allowed every money-out and inquiry operation of the API."""
    user = staff_user_with(
        django_user_model, "officer", "pay_out", "refund", "view_balance", "query_status"
    )
    return api_client_for(user)

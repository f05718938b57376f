"""Hosted checkout over real HTTP: who may create links, and what a link lets a payer do."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from payments.exceptions import PaymentValidationError
from payments.models import Transaction
from payments.services.checkout import checkout_link_create, checkout_path
from simulator.models import SimulatedRequest
from tests.simulator.conftest import API, expired, tampered, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LINK = {"amount": 10, "account_reference": "INV42", "description": "Order 42"}


def token_for(user) -> dict[str, str]:
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def create_link(simulator, headers: dict[str, str] | None) -> requests.Response:
    return requests.post(simulator.url + API + "/checkout", json=LINK, headers=headers, timeout=10)


def start(simulator, token: str, body: dict) -> requests.Response:
    return requests.post(f"{simulator.url}/pay/{token}/start", json=body, timeout=10)


def status(simulator, token: str, transaction_id: str) -> requests.Response:
    return requests.get(f"{simulator.url}/pay/{token}/status/{transaction_id}", timeout=10)


def final(body: dict) -> dict | None:
    return body if body["final"] else None


# -- creating links ----------------------------------------------------------------------------


def test_staff_holding_the_permission_create_a_checkout_link(simulator):
    response = simulator.post(API + "/checkout", LINK)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["url"].startswith(simulator.url + "/pay/")
    assert (body["amount"], body["account_reference"], body["description"]) == (
        10,
        "INV42",
        "Order 42",
    )
    assert requests.get(body["url"], timeout=10).status_code == 200


def test_a_user_with_the_permission_creates_a_checkout_link(simulator, django_user_model):
    user = django_user_model.objects.create_user("shop-backend", password="pw-shop-1")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="payments", codename="create_checkout_link")
    )

    response = create_link(simulator, token_for(user))

    assert response.status_code == 201, response.text
    assert "/pay/" in response.json()["url"]


def test_a_plain_user_cannot_create_a_checkout_link(simulator, django_user_model):
    user = django_user_model.objects.create_user("customer", password="pw-customer-1")

    assert create_link(simulator, token_for(user)).status_code == 403


def test_an_anonymous_caller_cannot_create_a_checkout_link(simulator):
    assert create_link(simulator, None).status_code == 401


# -- paying through a link ---------------------------------------------------------------------


def test_the_payer_cannot_change_the_amount(simulator):
    token = checkout_link_create(**LINK)

    response = start(simulator, token, {"phone_number": "0708 374 149", "amount": 1})

    assert response.status_code == 201, response.text
    started = response.json()
    assert started["amount"] == 10
    # What reached (simulated) Daraja is the link's amount too.
    assert SimulatedRequest.objects.get(kind="stk").amount == 10
    settled = wait_for(
        lambda: final(status(simulator, token, started["id"]).json()),
        message="the checkout payment to settle",
    )
    assert (settled["status"], settled["amount"]) == ("success", 10)
    assert settled["mpesa_receipt_number"]


@pytest.mark.parametrize("spoil", [tampered, expired], ids=["tampered", "expired"])
def test_a_tampered_or_expired_link_is_not_found_everywhere(simulator, spoil):
    token = checkout_link_create(**LINK)
    started = start(simulator, token, {"phone_number": "0708374149"})
    assert started.status_code == 201, started.text
    bad = spoil(token)
    assert bad != token

    page = requests.get(simulator.url + checkout_path(bad), timeout=10)
    paid = start(simulator, bad, {"phone_number": "0708374149"})
    polled = status(simulator, bad, started.json()["id"])

    assert (page.status_code, paid.status_code, polled.status_code) == (404, 404, 404)
    message = "has expired" if spoil is expired else "is not valid"
    assert f"This payment link {message}." in page.text
    assert paid.json()["code"] == "checkout_link_invalid"
    assert Transaction.objects.count() == 1


def test_a_link_cannot_see_another_links_payment(simulator):
    first = checkout_link_create(**LINK)
    second = checkout_link_create(amount=20, account_reference="INV43")
    started = start(simulator, first, {"phone_number": "0708374149"})
    assert started.status_code == 201, started.text
    transaction_id = started.json()["id"]

    assert status(simulator, first, transaction_id).status_code == 200
    assert status(simulator, second, transaction_id).status_code == 404


@pytest.mark.django_db
def test_checkout_pushes_are_throttled_per_client_address(client, settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "STK_RATE_PER_USER": "2/min"}
    token = checkout_link_create(amount=10, account_reference="INV1")
    start = reverse("payments:checkout-pay", kwargs={"token": token})

    # Each attempt counts, even one refused for its phone number: nothing reaches Daraja here.
    answers = [
        client.post(start, {"phone_number": "12345"}, content_type="application/json")
        for _ in range(3)
    ]

    assert [a.status_code for a in answers] == [400, 400, 429]


@pytest.mark.django_db
def test_a_forged_forwarded_for_does_not_reset_the_client_limit(client, settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "STK_RATE_PER_USER": "2/min"}
    token = checkout_link_create(amount=10, account_reference="INV1")
    start = reverse("payments:checkout-pay", kwargs={"token": token})

    answers = [
        client.post(
            start,
            {"phone_number": "12345"},
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
        for n in range(3)
    ]

    assert [a.status_code for a in answers] == [400, 400, 429]


@pytest.mark.django_db
def test_a_link_cannot_be_made_to_live_for_ever():
    with pytest.raises(PaymentValidationError) as excinfo:
        checkout_link_create(
            amount=10, account_reference="INV1", expires_at=timezone.now() + timedelta(days=365)
        )
    assert excinfo.value.field == "expires_at"

"""A host mounts ``include("payments.urls")`` under any prefix: the callback URLs Daraja is given,
the checkout page's links and its script's calls, and the API's JSON 404 all follow it."""

from __future__ import annotations

import re

import pytest
from rest_framework.authtoken.models import Token

from payments import testing
from payments.services.b2c import b2c_payout_initiate
from payments.services.c2b import c2b_urls_register
from payments.services.checkout import checkout_link_create, checkout_path
from payments.services.stk_push import stk_push_initiate

pytestmark = pytest.mark.django_db

BASE = "https://pay.example.co.ke/shop/pay/api/v1/payments/callbacks/"


@pytest.fixture(autouse=True)
def prefixed(settings):
    settings.ROOT_URLCONF = "tests.payments.prefix_urls"


def test_callback_urls_follow_the_prefix_and_callbacks_arrive_there(daraja_double):
    payment = stk_push_initiate(
        user=None, phone_number="0708374149", amount=10, account_reference="P1"
    )
    payout = b2c_payout_initiate(user=None, phone_number="0708374149", amount=10, remarks="P2")
    c2b_urls_register()

    [push] = daraja_double.requests_for("stk_push")
    [b2c] = daraja_double.requests_for("b2c_payment")
    [register] = daraja_double.requests_for("c2b_register")
    assert push["CallBackURL"] == f"{BASE}stk/{payment.callback_token}"
    assert b2c["ResultURL"] == f"{BASE}b2c/{payout.callback_token}/result"
    assert b2c["QueueTimeOutURL"] == f"{BASE}b2c/{payout.callback_token}/timeout"
    assert register["ConfirmationURL"].startswith(f"{BASE}c2b/")
    assert testing.stk_push_complete(payment).status == "success"
    assert testing.payout_complete(payout).status == "success"


def test_the_checkout_page_and_its_calls_follow_the_prefix(daraja_double, client):
    token = checkout_link_create(amount=20, account_reference="P3")
    path = checkout_path(token)
    assert path.startswith("/shop/pay/pay/")

    page = client.get(path).content.decode()
    start = re.search(r'data-start-url="([^"]+)"', page).group(1)
    status = re.search(r'data-status-url="([^"]+)"', page).group(1)
    assert start == f"{path}/start"
    assert status.startswith(f"{path}/status/")

    started = client.post(start, {"phone_number": "0708374149"}, content_type="application/json")
    assert started.status_code == 201, started.content
    paid = client.get(status.replace("00000000-0000-0000-0000-000000000000", started.json()["id"]))
    assert paid.json()["status"] == "pending"


def test_the_api_answers_and_its_404s_are_json_under_the_prefix(client, django_user_model):
    token = Token.objects.create(user=django_user_model.objects.create_user("app-user"))
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}

    listed = client.get("/shop/pay/api/v1/payments/mpesa/transactions", **auth)
    missing = client.get("/shop/pay/api/v1/payments/mpesa/nothing-here", **auth)
    elsewhere = client.get("/shop/nothing-here")

    assert listed.status_code == 200
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert elsewhere.status_code == 404
    assert elsewhere["Content-Type"].startswith("text/html")

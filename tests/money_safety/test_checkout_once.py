"""Issue 9, point 20: a checkout link pays once. While one of its payments succeeded or may
still succeed, a second push is refused (checked under a lock) and the page shows that payment:
its receipt, or its progress."""

from __future__ import annotations

import json
import uuid

import pytest

from payments.models import Transaction
from payments.services.checkout import checkout_link_create, checkout_link_key, checkout_path
from tests.payments.conftest import STK_PUSH_URL, push_accepted

PHONE = "0708374149"


def accept_pushes(daraja) -> None:
    def answer(request):
        return 200, {}, json.dumps(push_accepted(f"ws_CO_{uuid.uuid4().hex[:20]}"))

    daraja.add_callback("POST", STK_PUSH_URL, callback=answer)


def pushes_sent(daraja) -> int:
    return len([c for c in daraja.calls if c.request.url == STK_PUSH_URL])


def start(client, token: str, phone: str = PHONE):
    return client.post(
        f"/pay/{token}/start", json.dumps({"phone_number": phone}), content_type="application/json"
    )


def link_payment(token: str, status: str, **fields) -> Transaction:
    return Transaction.objects.create(
        transaction_type="STK_PUSH",
        status=status,
        amount=10,
        phone_number="254708374149",
        account_reference="INV42",
        environment="sandbox",
        checkout_link=checkout_link_key(token),
        **fields,
    )


@pytest.fixture
def token() -> str:
    return checkout_link_create(amount=10, account_reference="INV42", description="Order 42")


@pytest.mark.django_db
def test_p20_a_paid_link_refuses_a_second_push_and_shows_the_receipt(client, daraja, token):
    accept_pushes(daraja)
    paid = link_payment(token, "success", mpesa_receipt_number="RKL51ZDR4F", result_code="0")

    response = start(client, token)

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "checkout_link_used"
    assert body["transaction"]["id"] == str(paid.pk)
    assert body["transaction"]["mpesa_receipt_number"] == "RKL51ZDR4F"
    assert body["transaction"]["final"] is True
    assert pushes_sent(daraja) == 0
    page = client.get(checkout_path(token))
    assert page.status_code == 200
    html = page.content.decode()
    assert "RKL51ZDR4F" in html
    assert '<form id="pay-form" novalidate hidden' in html


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "unknown", "awaiting_receipt"])
def test_p20_a_link_with_a_payment_under_way_refuses_a_second_push(client, daraja, token, status):
    accept_pushes(daraja)
    under_way = link_payment(token, status)

    response = start(client, token)

    assert response.status_code == 409, response.content
    assert response.json()["transaction"]["id"] == str(under_way.pk)
    assert response.json()["transaction"]["final"] is False
    assert pushes_sent(daraja) == 0
    assert f'data-payment-id="{under_way.pk}"' in client.get(checkout_path(token)).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["failed", "cancelled", "timeout"])
def test_p20_a_link_whose_payment_failed_can_be_paid_again(client, daraja, token, status):
    accept_pushes(daraja)
    link_payment(token, status)

    response = start(client, token)

    assert response.status_code == 201, response.content
    assert pushes_sent(daraja) == 1


@pytest.mark.django_db
def test_p20_two_starts_one_after_the_other_send_one_push(client, daraja, token):
    accept_pushes(daraja)

    first, second = start(client, token), start(client, token)

    assert (first.status_code, second.status_code) == (201, 409)
    assert second.json()["transaction"]["id"] == first.json()["id"]
    assert pushes_sent(daraja) == 1

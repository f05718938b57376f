"""A payment tied to the host's object (``for_object``): set through the services, kept through
checkout links, approvals and refunds, shown and filtered in the API, shown in the admin."""

from __future__ import annotations

import pytest

from payments import testing
from payments.exceptions import PaymentValidationError
from payments.selectors import transactions_for
from payments.services.checkout import checkout_link_create, checkout_path
from payments.services.payout_requests import payout_request_approve, payout_request_submit
from payments.services.reversals import reversal_initiate
from payments.services.stk_push import stk_push_initiate
from shop.models import Order

from .conftest import TRANSACTIONS_PATH, api_client_for
from .money_out import grant, staff_user_with

pytestmark = pytest.mark.django_db


def paid_order(total: int = 150) -> tuple[Order, object]:
    order = Order.objects.create(total=total)
    payment = stk_push_initiate(
        user=None,
        phone_number="0708374149",
        amount=total,
        account_reference=f"ORDER{order.pk}",
        for_object=order,
    )
    return order, testing.stk_push_complete(payment)


def test_a_payment_names_its_order_and_the_order_finds_its_payments(daraja_double):
    order, payment = paid_order()
    Order.objects.create(total=150)  # another order, not linked

    assert payment.for_object == order
    assert (payment.for_content_type.app_label, payment.for_object_id) == ("shop", str(order.pk))
    assert list(transactions_for(order)) == [payment]


@pytest.mark.parametrize("for_object", [Order(total=1), "shop.order:1"])
def test_only_a_saved_model_instance_can_be_linked(daraja_double, for_object):
    with pytest.raises(PaymentValidationError) as refused:
        stk_push_initiate(
            user=None,
            phone_number="0708374149",
            amount=1,
            account_reference="X1",
            for_object=for_object,
        )

    assert refused.value.field == "for_object"


def test_a_checkout_link_carries_its_order_to_the_payment(daraja_double, client):
    order = Order.objects.create(total=300)
    token = checkout_link_create(amount=300, account_reference="ORDER3", for_object=order)

    answer = client.post(
        checkout_path(token) + "/start",
        {"phone_number": "0708374149"},
        content_type="application/json",
    )

    assert answer.status_code == 201, answer.content
    payment = testing.stk_push_complete(transactions_for(order).get())
    order.refresh_from_db()
    assert (payment.status, order.mpesa_receipt) == ("success", payment.mpesa_receipt_number)


def test_a_checkout_link_whose_order_is_gone_pays_nothing(daraja_double, client):
    order = Order.objects.create(total=300)
    token = checkout_link_create(amount=300, account_reference="ORDER4", for_object=order)
    order.delete()

    answer = client.post(
        checkout_path(token) + "/start",
        {"phone_number": "0708374149"},
        content_type="application/json",
    )

    assert answer.status_code == 404
    assert answer.json()["detail"] == "This payment link is no longer valid."
    assert daraja_double.requests_for("stk_push") == []


def test_a_payout_waiting_for_approval_keeps_its_link(daraja_double, django_user_model):
    maker = staff_user_with(django_user_model, "maker")
    checker = staff_user_with(django_user_model, "checker")
    order = Order.objects.create(total=20_000)

    request = payout_request_submit(
        maker=maker,
        phone_number="0708374149",
        amount=20_000,
        command_id="BusinessPayment",
        remarks="Supplier 7",
        for_object=order,
    )
    assert request.state == "awaiting_approval"
    sent = payout_request_approve(payout_request_id=request.pk, checker=checker)

    assert sent.transaction.for_object == order


def test_a_refund_is_about_the_order_its_payment_was_for(daraja_double):
    order, payment = paid_order()

    refund = reversal_initiate(user=None, transaction_ref=str(payment.pk), remarks="Refund")

    assert refund.for_object == order
    assert set(transactions_for(order)) == {payment, refund}


def test_the_api_shows_the_link_and_filters_by_it(daraja_double, django_user_model):
    order, payment = paid_order()
    paid_order()  # another order's payment
    unlinked = testing.c2b_payment_deliver(amount=10, account_reference="WALKIN")
    reporter = grant(django_user_model.objects.create_user("reports"), "view_transaction")
    api = api_client_for(reporter)

    listed = api.get(
        TRANSACTIONS_PATH, {"for_object_type": "shop.order", "for_object_id": order.pk}
    )
    one = api.get(f"{TRANSACTIONS_PATH}/{unlinked.pk}")

    assert [row["id"] for row in listed.json()["results"]] == [str(payment.pk)]
    assert listed.json()["results"][0]["for_object"] == {"type": "shop.order", "id": str(order.pk)}
    assert one.json()["for_object"] is None
    by_type = api.get(TRANSACTIONS_PATH, {"for_object_type": "Shop.Order"}).json()["count"]
    assert by_type == 2
    assert api.get(TRANSACTIONS_PATH, {"for_object_type": "nothing"}).json()["count"] == 0


def test_the_admin_shows_what_a_payment_is_for_and_filters_by_it(daraja_double, admin_client):
    order, payment = paid_order()
    order_pk = order.pk
    testing.c2b_payment_deliver(amount=10, account_reference="WALKIN")

    page = admin_client.get(f"/admin/payments/transaction/{payment.pk}/change/")
    listed = admin_client.get(
        "/admin/payments/transaction/",
        {"for_content_type__id__exact": payment.for_content_type_id},
    )
    order.delete()
    gone = admin_client.get(f"/admin/payments/transaction/{payment.pk}/change/")

    assert page.status_code == 200
    assert f"Order {order_pk}" in page.content.decode()
    assert listed.context["cl"].result_count == 1
    assert f"order {payment.for_object_id} (deleted)" in gone.content.decode()

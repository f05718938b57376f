import pytest

from payments import testing
from payments.services.stk_push import stk_push_initiate
from shop.models import Order


def pay_for(order):
    return stk_push_initiate(
        user=None,
        phone_number="0708374149",
        amount=order.total,
        account_reference=f"ORDER{order.pk}",
        for_object=order,
    )


@pytest.mark.django_db
def test_an_order_is_paid_when_the_customer_pays(daraja_double):
    order = Order.objects.create(total=150)
    payment = pay_for(order)
    assert payment.status == "pending"  # M-Pesa accepted the push: nothing is paid yet

    testing.stk_push_complete(payment)  # the customer entered their PIN

    order.refresh_from_db()
    assert order.paid_at is not None
    assert order.mpesa_receipt == payment.mpesa_receipt_number


@pytest.mark.django_db
def test_a_cancelled_payment_leaves_the_order_unpaid(daraja_double):
    order = Order.objects.create(total=150)

    testing.stk_push_cancel(pay_for(order))

    order.refresh_from_db()
    assert order.paid_at is None

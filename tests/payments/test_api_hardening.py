"""Staff API endpoints need their own permission and leave an audit record; odd ids are 404."""

from __future__ import annotations

import pytest

from payments.models import AuditRecord

from .conftest import api_client_for
from .money_out import REVERSAL_URL, accept, new_key, paid_transaction, staff_user_with

pytestmark = pytest.mark.django_db

API = "/api/v1/payments/mpesa"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{API}/transactions/00000000-0000-0000-0000-000000000001/refresh", {}),
        (f"{API}/register-urls", {}),
    ],
)
def test_staff_without_the_specific_permission_get_403(django_user_model, daraja, path, body):
    plain_staff = staff_user_with(django_user_model, "plain-staff")

    response = api_client_for(plain_staff).post(path, body, format="json")

    assert response.status_code == 403
    assert len(daraja.calls) == 0


def test_an_api_refund_leaves_an_audit_record(django_user_model, daraja):
    accept(daraja, REVERSAL_URL)
    refunder = staff_user_with(django_user_model, "refunder", "refund")
    payment = paid_transaction(amount=100)

    response = api_client_for(refunder).post(
        f"{API}/reverse",
        {"transaction": str(payment.pk), "amount": 30},
        format="json",
        **new_key(),
    )

    assert response.status_code == 202
    record = AuditRecord.objects.get()
    assert (record.actor, record.action, record.transaction, record.amount) == (
        refunder,
        "refund",
        payment,
        30,
    )


def test_an_id_shaped_like_a_uuid_but_not_one_is_404(django_user_model, daraja):
    staff = staff_user_with(django_user_model, "querier", "query_status")

    response = api_client_for(staff).post(f"{API}/transactions/{'-' * 36}/refresh", {})

    assert response.status_code == 404

"""CSV export: a confirmation page, then one row per selected transaction under CSV_FIELDS."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission

from payments.admin.ledger import CSV_FIELDS
from payments.enums import TransactionStatus
from payments.models import Transaction
from tests.payments.money_out import paid_transaction

from .helpers import CHANGELIST, EXPORT, action_data

pytestmark = pytest.mark.django_db


def test_export_action_shows_a_confirmation_page_first(as_clerk):
    chosen = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    other = paid_transaction(amount=7, receipt="NLJ7RT61SW")

    response = as_clerk.post(CHANGELIST, action_data("export_selected", chosen))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f'action="{EXPORT}"' in page
    assert f'name="ids" value="{chosen.pk}"' in page
    assert str(other.pk) not in page
    assert "Download CSV" in page


def test_export_writes_a_header_and_one_row_per_selected_transaction(as_clerk):
    paid_at = datetime(2024, 7, 6, 9, 15, 42, tzinfo=UTC)
    first = paid_transaction(
        amount=100,
        receipt="NLJ7RT61SV",
        account_reference="INV-42",
        transaction_date=paid_at,
        result_desc="The service request is processed successfully.",
    )
    second = paid_transaction(
        amount=2500,
        receipt="",
        status=TransactionStatus.FAILED,
        needs_review=True,
    )
    paid_transaction(amount=9, receipt="NLJ7RT61SX")  # not selected
    Transaction.objects.filter(pk=second.pk).update(
        phone_number="254711000001", created_at=first.created_at + timedelta(seconds=5)
    )
    first.refresh_from_db()
    second.refresh_from_db()

    response = as_clerk.post(EXPORT, {"ids": [str(second.pk), str(first.pk)]})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="mpesa-transactions-')
    header, *rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert header == list(CSV_FIELDS)
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_id) == {str(first.pk), str(second.pk)}
    assert [row[0] for row in rows] == [str(first.pk), str(second.pk)]  # oldest first
    one, two = by_id[str(first.pk)], by_id[str(second.pk)]
    assert one["amount"] == "100"
    assert one["reversed_amount"] == "0"
    assert one["mpesa_receipt_number"] == "NLJ7RT61SV"
    assert one["phone_number"] == "254708374149"
    assert one["status"] == "success"
    assert one["transaction_type"] == "STK_PUSH"
    assert one["account_reference"] == "INV-42"
    assert one["result_code"] == "0"
    assert one["transaction_date"] == "2024-07-06T09:15:42+00:00"
    assert datetime.fromisoformat(one["created_at"]) == first.created_at
    assert one["created_at"] == first.created_at.isoformat()
    assert one["needs_review"] == "False"
    assert two["amount"] == "2500"
    assert two["status"] == "failed"
    assert two["phone_number"] == "254711000001"
    assert two["mpesa_receipt_number"] == ""
    assert two["transaction_date"] == ""
    assert two["needs_review"] == "True"


def test_user_without_the_export_permission_gets_403(django_user_model, client):
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1")
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="payments", codename="view_transaction")
    )
    client.force_login(viewer)
    payment = paid_transaction()

    assert client.post(EXPORT, {"ids": [str(payment.pk)]}).status_code == 403
    page = client.get(CHANGELIST).content.decode()
    assert 'value="export_selected"' not in page

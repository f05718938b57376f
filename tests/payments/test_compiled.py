"""Queries compiled once (payments/compiled.py) give what the ORM gives, on either database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db import transaction as db_transaction
from django.test.utils import CaptureQueriesContext

from payments.compiled import CompiledQuery, CompiledUpdate
from payments.models import CallbackEvent, Transaction

from .conftest import stk_transaction

pytestmark = pytest.mark.django_db

BY_TOKEN = CompiledQuery(
    lambda token: Transaction.objects.select_for_update().filter(callback_token=token).order_by()
)
TOKEN_EXISTS = CompiledQuery(
    lambda token: Transaction.objects.filter(callback_token=token), exists=True
)
OUTCOME = CompiledQuery(
    lambda pk: CallbackEvent.objects.filter(pk=pk).values_list("outcome"), probe=-1
)


def test_a_row_read_as_a_model_equals_the_orms(user):
    push = stk_transaction(
        checkout_request_id="ws_CO_1",
        user=user,
        metadata={"request": {"amount": 1}, "note": "ü"},
        transaction_date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        mpesa_receipt_number="RCPT1",
    )
    expected = Transaction.objects.get(pk=push.pk)
    with db_transaction.atomic():
        read = BY_TOKEN.first_instance(push.callback_token)
        assert BY_TOKEN.first_instance("no such token") is None
    assert type(read) is Transaction
    assert not read._state.adding
    for field in Transaction._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(expected, field.attname), field.name
    assert read.created_at.tzinfo is not None
    read.result_code = "0"
    read.save(update_fields=["result_code"])  # an instance the ORM saves as its own
    assert Transaction.objects.get(pk=push.pk).result_code == "0"


def test_a_row_and_an_exists_check_bind_their_value():
    push = stk_transaction(checkout_request_id="ws_CO_2")
    event = CallbackEvent.objects.create(kind="stk", token=push.callback_token, body="{}")
    assert TOKEN_EXISTS.first_row(push.callback_token) is not None
    assert TOKEN_EXISTS.first_row("no such token") is None
    assert OUTCOME.first_row(event.pk) == ("received",)
    assert OUTCOME.first_row(event.pk + 1) is None


def test_a_value_bound_in_two_places_is_refused():
    query = CompiledQuery(lambda text: CallbackEvent.objects.filter(token=text, kind=text))
    with pytest.raises(ValueError, match="once"):
        query.first_row("stk")


def test_an_update_writes_what_save_with_update_fields_writes():
    push = stk_transaction(checkout_request_id="ws_CO_3")
    event = CallbackEvent.objects.create(kind="stk", token=push.callback_token, body="{}")
    update = CompiledUpdate(CallbackEvent, ("outcome", "error", "processed_at", "transaction"))
    event.outcome, event.error = "processed", "ü note"
    event.processed_at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    event.transaction = push
    event.body = "not written"
    assert update.run(event) == 1
    stored = CallbackEvent.objects.get(pk=event.pk)
    assert (stored.outcome, stored.error, stored.transaction_id, stored.body) == (
        "processed",
        "ü note",
        push.pk,
        "{}",
    )
    assert stored.processed_at == event.processed_at
    event.pk += 1
    assert update.run(event) == 0


def test_an_update_of_an_auto_now_column_is_refused():
    with pytest.raises(ValueError, match="plain column"):
        CompiledUpdate(Transaction, ("updated_at",))


def test_a_row_with_its_select_related_row_equals_the_orms(user):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=user)
    query = CompiledQuery(lambda key: Token.objects.select_related("user").filter(key=key))
    read = query.first_instance(token.key)
    expected = Token.objects.select_related("user").get(key=token.key)
    assert (read.key, read.user_id, read.created) == (token.key, user.pk, expected.created)
    with CaptureQueriesContext(connection) as captured:
        read_user = read.user  # joined: no second query
    assert len(captured.captured_queries) == 0
    for field in type(user)._meta.concrete_fields:
        assert getattr(read_user, field.attname) == getattr(expected.user, field.attname)
    assert query.first_instance("no such key") is None

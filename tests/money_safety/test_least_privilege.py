"""Issue 9, least privilege (points 12-16): permissions rather than `is_staff`, money-out limits
that cannot be split, an audit record for every money action, inert CSV cells, a long secret."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator

from payments import models as payment_models
from payments.checks import check_payments_settings
from payments.conf import payments_settings
from payments.enums import TransactionStatus, TransactionType
from payments.models import AuditRecord, CallbackEvent, PayoutRequest, Transaction
from payments.services.background import background_wait
from payments.services.common import nairobi_day_start
from payments.services.roles import CLERK, MANAGER
from tests.admin.conftest import ConfirmingClient
from tests.admin.helpers import EXPORT, PAYOUT, REFUND_BULK, messages_of, refund_url
from tests.concurrency import POSTGRESQL_ONLY, run_together
from tests.payments.conftest import (
    SANDBOX,
    STATUS_PATH,
    STK_QUERY_URL,
    TRANSACTIONS_PATH,
    api_client_for,
    calls_to,
    load_fixture,
    stk_callback,
    stk_transaction,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    accept,
    grant,
    new_key,
    paid_transaction,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

State = PayoutRequest.State
CHECKOUT_PATH = "/api/v1/payments/mpesa/checkout"
REGISTER_PATH = "/api/v1/payments/mpesa/register-urls"
REGISTER_URL = f"{SANDBOX}/mpesa/c2b/v2/registerurl"
REFUND_REQUESTS = "/admin/payments/refundrequest/"
QUERY_CANCELLED = "stk/stk_query_response_cancelled_1032.2017.php-mpesa.json"
INVALID_SHORTCODE = "errors/error_400.002.02_invalid_businessshortcode.portal.json"


def postgresql_only(test):
    for mark in reversed(POSTGRESQL_ONLY):
        test = mark(test)
    return test


def staff_in(django_user_model, username: str, role: str):
    user = django_user_model.objects.create_user(
        username, password=f"pw-{username}-1", is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def manager(django_user_model):
    return staff_in(django_user_model, "manager", MANAGER)


@pytest.fixture
def second_manager(django_user_model):
    return staff_in(django_user_model, "checker", MANAGER)


def logged_in(user) -> ConfirmingClient:
    client = ConfirmingClient()
    client.force_login(user)
    return client


def pay_out(api, amount: int, *, phone: str = "0708374149"):
    body = {"phone_number": phone, "amount": amount, "remarks": "Supplier invoice"}
    return api.post(B2C_PATH, body, format="json", **new_key())


def refund(api, payment: Transaction, amount: int | None = None):
    body = {"transaction": str(payment.pk), "remarks": "Duplicate payment"}
    if amount is not None:
        body["amount"] = amount
    return api.post(REVERSE_PATH, body, format="json", **new_key())


def refund_requests():
    # Through the module: on a tree without the model, only the tests that use it fail.
    return payment_models.RefundRequest.objects


def decide_url(request) -> str:
    return f"{REFUND_REQUESTS}{request.pk}/decide/"


def listed_ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# -- 12. `is_staff` alone grants nothing ----------------------------------------------------------


def test_p12_staff_without_view_transaction_see_only_their_own_transactions(django_user_model):
    staff = django_user_model.objects.create_user("plain-staff", password="pw-1", is_staff=True)
    customer = django_user_model.objects.create_user("customer", password="pw-2")
    mine = stk_transaction(checkout_request_id="ws_CO_mine", user=staff)
    theirs = stk_transaction(checkout_request_id="ws_CO_theirs", user=customer)
    api = api_client_for(staff)

    assert listed_ids(api.get(TRANSACTIONS_PATH)) == {str(mine.pk)}
    assert api.get(f"{TRANSACTIONS_PATH}/{theirs.pk}").status_code == 404
    assert api.get(STATUS_PATH.format("ws_CO_theirs")).status_code == 404
    assert api.get(STATUS_PATH.format("ws_CO_mine")).status_code == 200


def test_p12_view_transaction_opens_everyones_history_without_staff(django_user_model):
    customer = django_user_model.objects.create_user("customer", password="pw-2")
    reporting = grant(
        django_user_model.objects.create_user("reporting", password="pw-3"), "view_transaction"
    )
    theirs = stk_transaction(checkout_request_id="ws_CO_theirs", user=customer)
    api = api_client_for(reporting)

    assert listed_ids(api.get(TRANSACTIONS_PATH)) == {str(theirs.pk)}
    assert api.get(f"{TRANSACTIONS_PATH}/{theirs.pk}").status_code == 200
    assert api.get(STATUS_PATH.format("ws_CO_theirs")).status_code == 200


# The poll's query runs on a thread with its own connection: it sees committed rows only.
@pytest.mark.django_db(transaction=True)
def test_p12_polling_someone_elses_stale_push_asks_mpesa_only_with_query_status(
    django_user_model, daraja
):
    daraja.post(STK_QUERY_URL, json=load_fixture(QUERY_CANCELLED))
    customer = django_user_model.objects.create_user("customer", password="pw-2")
    viewer = staff_user_with(django_user_model, "viewer", "view_transaction")
    querier = staff_user_with(django_user_model, "querier", "view_transaction", "query_status")
    stk_transaction(
        checkout_request_id="ws_CO_theirs",
        user=customer,
        age_seconds=payments_settings.STK_QUERY_AFTER + 30,
    )

    seen = api_client_for(viewer).get(STATUS_PATH.format("ws_CO_theirs"))
    assert background_wait(timeout=10)

    assert seen.status_code == 200
    assert seen.json()["status"] == "pending"
    assert calls_to(daraja, STK_QUERY_URL) == []

    api_client_for(querier).get(STATUS_PATH.format("ws_CO_theirs"))
    assert background_wait(timeout=10)

    assert api_client_for(viewer).get(STATUS_PATH.format("ws_CO_theirs")).json()["status"] == (
        "cancelled"
    )
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1


@pytest.mark.django_db(transaction=True)
def test_p12_the_owner_polling_their_own_stale_push_still_asks_mpesa(django_user_model, daraja):
    daraja.post(STK_QUERY_URL, json=load_fixture(QUERY_CANCELLED))
    customer = django_user_model.objects.create_user("customer", password="pw-2")
    stk_transaction(
        checkout_request_id="ws_CO_mine",
        user=customer,
        age_seconds=payments_settings.STK_QUERY_AFTER + 30,
    )

    api_client_for(customer).get(STATUS_PATH.format("ws_CO_mine"))
    assert background_wait(timeout=10)

    assert api_client_for(customer).get(STATUS_PATH.format("ws_CO_mine")).json()["status"] == (
        "cancelled"
    )
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1


def test_p12_checkout_links_need_create_checkout_link_not_staff(django_user_model):
    staff = django_user_model.objects.create_user("plain-staff", password="pw-1", is_staff=True)
    link = {"amount": 10, "account_reference": "INV42", "description": "Order 42"}

    refused = api_client_for(staff).post(CHECKOUT_PATH, link, format="json")
    allowed = api_client_for(grant(staff, "create_checkout_link")).post(
        CHECKOUT_PATH, link, format="json"
    )

    assert refused.status_code == 403
    assert allowed.status_code == 201, allowed.content


# -- 13. Money-out limits cannot be split around ----------------------------------------------


def b2c_row(*, status: str, amount: int, phone: str = "254708374149") -> Transaction:
    return Transaction.objects.create(
        transaction_type=TransactionType.B2C,
        status=status,
        amount=amount,
        phone_number=phone,
        environment="sandbox",
    )


def test_p13_one_makers_payouts_adding_up_above_the_threshold_wait_for_approval(manager, daraja):
    accept(daraja, B2C_URL)
    api = api_client_for(manager)

    first = pay_out(api, 6_000, phone="0708374149")
    second = pay_out(api, 6_000, phone="0711000001")

    assert (first.status_code, first.json()["status"]) == (202, "pending")
    assert (second.status_code, second.json()["state"]) == (202, "awaiting_approval")
    assert [body["Amount"] for body in sent(daraja, B2C_URL)] == [6_000]


def test_p13_payouts_to_one_phone_adding_up_above_the_threshold_wait_for_approval(
    manager, second_manager, daraja
):
    accept(daraja, B2C_URL)

    first = pay_out(api_client_for(manager), 6_000)
    second = pay_out(api_client_for(second_manager), 6_000)

    assert first.json()["status"] == "pending"
    assert second.json()["state"] == "awaiting_approval"
    assert len(sent(daraja, B2C_URL)) == 1


def test_p13_payout_sums_count_only_todays_unapproved_payouts_that_may_have_moved_money(
    manager, second_manager, daraja
):
    accept(daraja, B2C_URL)
    counted = {"maker": manager, "phone_number": "254708374149", "command_id": "BusinessPayment"}
    yesterday = PayoutRequest.objects.create(
        state=State.SENT, amount=9_000, remarks="Yesterday", **counted
    )
    PayoutRequest.objects.filter(pk=yesterday.pk).update(
        created_at=nairobi_day_start() - timedelta(minutes=1)
    )
    PayoutRequest.objects.create(
        state=State.SENT,
        amount=9_000,
        remarks="Refused by M-Pesa",
        transaction=b2c_row(status=TransactionStatus.FAILED, amount=9_000),
        **counted,
    )
    PayoutRequest.objects.create(
        state=State.SENT,
        amount=9_000,
        remarks="Approved",
        checker=second_manager,
        transaction=b2c_row(status=TransactionStatus.SUCCESS, amount=9_000),
        **counted,
    )
    PayoutRequest.objects.create(state=State.REJECTED, amount=9_000, remarks="No", **counted)
    PayoutRequest.objects.create(
        state=State.AWAITING_APPROVAL, amount=9_000, remarks="Later", **counted
    )
    api = api_client_for(manager)

    counted_alone = pay_out(api, 9_000)
    over = pay_out(api, 2_000, phone="0711000001")

    assert counted_alone.json()["status"] == "pending"
    assert over.json()["state"] == "awaiting_approval"


# With ten threads, an unserialised check lets several through in nearly every run.
@postgresql_only
@pytest.mark.parametrize("threads", [2, 10])
def test_p13_concurrent_payouts_by_one_maker_cannot_split_the_threshold(
    daraja, django_user_model, threads
):
    maker = staff_user_with(django_user_model, "maker", "pay_out")
    api_client_for(maker)  # the token, committed before the threads start
    clients = [api_client_for(maker) for _ in range(threads)]
    accept(daraja, B2C_URL)

    def pay(index: int) -> tuple[int, str]:
        response = pay_out(clients[index], 6_000, phone=f"071100000{index}")
        body = response.json()
        return response.status_code, body.get("state") or body.get("status")

    answers = run_together(threads, pay)

    assert sorted(answers) == [(202, "awaiting_approval")] * (threads - 1) + [(202, "pending")]
    assert len(sent(daraja, B2C_URL)) == 1
    assert PayoutRequest.objects.filter(state=State.SENT).count() == 1


def test_p13_refund_approval_threshold_is_a_setting_of_10000_by_default():
    assert payments_settings.REFUND_APPROVAL_THRESHOLD == 10_000


def test_p13_api_refund_above_the_threshold_answers_202_with_a_waiting_refund_request(
    manager, daraja
):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=20_000)

    response = refund(api_client_for(manager), payment, 15_000)

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["state"], body["amount"], body["original"]) == (
        "awaiting_approval",
        15_000,
        str(payment.pk),
    )
    assert sent(daraja, REVERSAL_URL) == []
    assert not payment.reversals.exists()
    [parked] = refund_requests().all()
    assert (parked.maker, parked.original, parked.transaction) == (manager, payment, None)
    [record] = AuditRecord.objects.filter(action="refund_requested")
    assert (record.actor, record.transaction, record.amount) == (manager, payment, 15_000)
    assert record.outcome == "awaiting approval"


def test_p13_a_second_manager_approves_a_parked_refund_and_nobody_their_own(
    manager, second_manager, daraja
):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=20_000)
    refund(api_client_for(manager), payment, 15_000)
    [parked] = refund_requests().all()

    own = logged_in(manager).post(decide_url(parked), {"decision": "approve"})

    assert any("someone other than the person who made it" in m for m in messages_of(own))
    assert sent(daraja, REVERSAL_URL) == []

    checker = logged_in(second_manager)
    page = checker.get(f"{REFUND_REQUESTS}{parked.pk}/change/").content.decode()
    assert 'value="approve"' in page
    checker.post(decide_url(parked), {"decision": "approve"})

    [reversal_sent] = sent(daraja, REVERSAL_URL)
    assert reversal_sent["Amount"] == 15_000
    parked.refresh_from_db()
    assert (parked.state, parked.checker) == (State.SENT, second_manager)
    assert (parked.transaction.original, parked.transaction.amount) == (payment, 15_000)
    assert AuditRecord.objects.filter(action="refund_approved", actor=second_manager).exists()


def test_p13_a_rejected_refund_sends_nothing_and_frees_the_amount(manager, second_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=20_000)
    refund(api_client_for(manager), payment, 15_000)
    [parked] = refund_requests().all()

    logged_in(second_manager).post(decide_url(parked), {"decision": "reject"})

    parked.refresh_from_db()
    assert parked.state == State.REJECTED
    assert sent(daraja, REVERSAL_URL) == []
    assert refund(api_client_for(manager), payment, 9_000).json()["status"] == "pending"


def test_p13_one_makers_refunds_adding_up_above_the_threshold_wait(manager, daraja):
    accept(daraja, REVERSAL_URL)
    first = paid_transaction(amount=6_000, receipt="NLJ7RT61SV")
    second = paid_transaction(amount=6_000, receipt="NLJ7RT61SW")
    api = api_client_for(manager)

    assert refund(api, first).json()["status"] == "pending"
    assert refund(api, second).json()["state"] == "awaiting_approval"
    assert len(sent(daraja, REVERSAL_URL)) == 1


def test_p13_refunds_of_one_payment_adding_up_above_the_threshold_wait(
    manager, second_manager, daraja
):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=20_000)

    first = refund(api_client_for(manager), payment, 6_000)
    second = refund(api_client_for(second_manager), payment, 6_000)

    assert first.json()["status"] == "pending"
    assert second.json()["state"] == "awaiting_approval"
    assert len(sent(daraja, REVERSAL_URL)) == 1


def test_p13_parked_refunds_count_against_what_is_left_to_refund(manager, second_manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=20_000)
    refund(api_client_for(manager), payment, 15_000)

    sent_now = refund(api_client_for(second_manager), payment, 6_000)
    parked_too = refund(api_client_for(second_manager), payment, 15_000)

    for response in (sent_now, parked_too):
        assert response.status_code == 400, response.content
        assert response.json()["errors"] == {
            "amount": ["must be from 1 to 5000, what is left to refund"]
        }
    assert refund_requests().count() == 1
    assert sent(daraja, REVERSAL_URL) == []


@postgresql_only
@pytest.mark.parametrize("threads", [2, 10])
def test_p13_concurrent_refunds_by_one_maker_cannot_split_the_threshold(
    daraja, django_user_model, threads
):
    maker = staff_user_with(django_user_model, "maker", "refund")
    api_client_for(maker)
    clients = [api_client_for(maker) for _ in range(threads)]
    payments = [paid_transaction(amount=6_000, receipt=f"NLJ7RT61S{n}") for n in range(threads)]
    accept(daraja, REVERSAL_URL)

    def pay_back(index: int) -> tuple[int, str]:
        response = refund(clients[index], payments[index])
        body = response.json()
        return response.status_code, body.get("state") or body.get("status")

    answers = run_together(threads, pay_back)

    assert sorted(answers) == [(202, "awaiting_approval")] * (threads - 1) + [(202, "pending")]
    assert len(sent(daraja, REVERSAL_URL)) == 1


def test_p13_finance_managers_approve_refunds_and_clerks_do_not(manager, django_user_model):
    clerk = staff_in(django_user_model, "clerk", CLERK)

    assert manager.has_perm("payments.approve_refund")
    assert not clerk.has_perm("payments.approve_refund")
    assert logged_in(manager).get(REFUND_REQUESTS).status_code == 200


def test_p13_back_office_refund_form_parks_a_refund_above_the_threshold(manager, daraja):
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=20_000)

    response = logged_in(manager).post(
        refund_url(payment), {"amount": "15000", "remarks": "Dispute", "step": "execute"}
    )

    assert sent(daraja, REVERSAL_URL) == []
    [parked] = refund_requests().all()
    assert (parked.state, parked.amount, parked.original) == (
        State.AWAITING_APPROVAL,
        15_000,
        payment,
    )
    assert any("waiting for another manager's approval" in m for m in messages_of(response))


def test_p13_bulk_refund_action_parks_the_refunds_above_the_threshold(manager, daraja):
    accept(daraja, REVERSAL_URL)
    small = paid_transaction(amount=500, receipt="NLJ7RT61SV")
    large = paid_transaction(amount=20_000, receipt="NLJ7RT61SW")

    logged_in(manager).post(REFUND_BULK, {"ids": [str(small.pk), str(large.pk)]})

    assert [body["TransactionID"] for body in sent(daraja, REVERSAL_URL)] == ["NLJ7RT61SV"]
    [parked] = refund_requests().filter(state=State.AWAITING_APPROVAL)
    assert (parked.original, parked.amount) == (large, 20_000)


def test_p13_confirmation_pages_warn_when_the_days_sum_needs_approval(manager, daraja):
    accept(daraja, B2C_URL)
    accept(daraja, REVERSAL_URL)
    api = api_client_for(manager)
    pay_out(api, 6_000)
    refund(api, paid_transaction(amount=6_000, receipt="NLJ7RT61SV"))
    payment = paid_transaction(amount=6_000, receipt="NLJ7RT61SW")
    page = logged_in(manager)

    payout_page = page.post(
        PAYOUT,
        {
            "phone_number": "0711000001",
            "amount": "6000",
            "command_id": "BusinessPayment",
            "remarks": "Supplier invoice",
            "step": "confirm",
        },
    ).content.decode()
    refund_page = page.post(
        refund_url(payment), {"amount": "6000", "remarks": "Dispute", "step": "confirm"}
    ).content.decode()

    for confirmation in (payout_page, refund_page):
        assert "above KES 10000: it will wait for another manager" in confirmation
        assert "Submit for approval" in confirmation


@pytest.mark.parametrize("path", [B2C_PATH, REVERSE_PATH])
def test_p13_money_out_without_an_idempotency_key_is_refused_naming_the_header(
    path, manager, daraja
):
    accept(daraja, B2C_URL)
    accept(daraja, REVERSAL_URL)
    payment = paid_transaction(amount=100)
    body = (
        {"phone_number": "0708374149", "amount": 100, "remarks": "Supplier invoice"}
        if path == B2C_PATH
        else {"transaction": str(payment.pk)}
    )

    response = api_client_for(manager).post(path, body, format="json")

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "invalid"
    assert list(answer["errors"]) == ["Idempotency-Key"]
    assert answer["detail"].startswith("Idempotency-Key: ")
    assert len(daraja.calls) == 0
    assert not PayoutRequest.objects.exists()
    assert not payment.reversals.exists()


def test_p13_openapi_marks_the_idempotency_key_required_on_money_out():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    def key_parameter(path: str) -> dict:
        parameters = schema["paths"][path]["post"]["parameters"]
        [parameter] = [p for p in parameters if p["name"] == "Idempotency-Key"]
        return parameter

    assert key_parameter(B2C_PATH)["required"] is True
    assert key_parameter(REVERSE_PATH)["required"] is True
    assert not key_parameter("/api/v1/payments/mpesa/stk-push").get("required", False)


# -- 14. Audit records --------------------------------------------------------------------------


def test_p14_an_api_refund_refusal_leaves_an_audit_record(manager, daraja):
    payment = paid_transaction(amount=100)

    response = refund(api_client_for(manager), payment, 500)

    assert response.status_code == 400
    [record] = AuditRecord.objects.filter(action="refund")
    assert (record.actor, record.transaction, record.amount) == (manager, payment, 500)
    assert record.outcome == "refused: must be from 1 to 100, what is left to refund"


def test_p14_a_failed_url_registration_through_the_api_leaves_an_audit_record(
    django_user_model, daraja
):
    registrar = staff_user_with(django_user_model, "registrar", "register_c2b_urls")
    daraja.post(REGISTER_URL, status=400, json=load_fixture(INVALID_SHORTCODE))

    response = api_client_for(registrar).post(REGISTER_PATH, {}, format="json")

    assert response.status_code == 502
    [record] = AuditRecord.objects.filter(action="register_c2b_urls")
    assert record.actor == registrar
    assert record.outcome.startswith("failed: ")
    assert record.details["via"] == "api"


def test_p14_the_register_urls_command_leaves_an_audit_record_either_way(daraja):
    daraja.post(REGISTER_URL, json=load_fixture("c2b/c2b_register_url_response.portal.json"))
    daraja.post(REGISTER_URL, status=400, json=load_fixture(INVALID_SHORTCODE))

    call_command("mpesa_register_urls", "--shortcode", "600984", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("mpesa_register_urls", stdout=io.StringIO())

    registered, failed = AuditRecord.objects.filter(action="register_c2b_urls").order_by("pk")
    assert registered.actor is None
    assert registered.outcome == "0 Success"
    assert registered.details["via"] == "command"
    assert registered.details["command"] == "mpesa_register_urls"
    assert registered.details["shortcode"] == "600984"
    assert failed.outcome.startswith("failed: ")
    assert failed.details["via"] == "command"


def test_p14_the_replay_command_leaves_an_audit_record_per_event(
    django_capture_on_commit_callbacks,
):
    transaction = stk_transaction(checkout_request_id="ws_CO_replayed")
    body = stk_callback(checkout_request_id="ws_CO_replayed", amount=1, phone_number="254708374149")
    event = CallbackEvent.objects.create(
        kind="stk", token=transaction.callback_token, body=json.dumps(body), outcome="error"
    )

    with django_capture_on_commit_callbacks(execute=True):
        call_command("mpesa_replay_callbacks", "--ids", str(event.pk), stdout=io.StringIO())

    [record] = AuditRecord.objects.filter(action="reprocess_callback")
    assert (record.actor, record.transaction, record.outcome) == (None, transaction, "processed")
    assert record.details["callback_event"] == event.pk
    assert record.details["via"] == "command"
    assert record.details["command"] == "mpesa_replay_callbacks"


def test_p14_the_csv_export_audit_lists_the_rows_exported(manager):
    first = paid_transaction(receipt="NLJ7RT61SV")
    second = paid_transaction(receipt="NLJ7RT61SW")
    paid_transaction(receipt="NLJ7RT61SX")  # not exported

    logged_in(manager).post(EXPORT, {"ids": [str(first.pk), str(second.pk)]})

    [record] = AuditRecord.objects.filter(action="export")
    assert sorted(record.details["rows"], key=lambda row: row["receipt"]) == [
        {"id": str(first.pk), "receipt": "NLJ7RT61SV"},
        {"id": str(second.pk), "receipt": "NLJ7RT61SW"},
    ]


# -- 15. CSV export neutralises formula cells -------------------------------------------------


def test_p15_csv_export_writes_formula_like_text_as_text(manager):
    typed = paid_transaction(amount=100, account_reference="=1+1", result_desc="@SUM(A1)")
    others = [
        paid_transaction(receipt=f"NLJ7RT61S{n}", account_reference=text)
        for n, text in enumerate(["+254", "-2", "\tx", "\rx", "INV-42"])
    ]

    response = logged_in(manager).post(EXPORT, {"ids": [str(t.pk) for t in [typed, *others]]})

    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert rows[str(typed.pk)]["account_reference"] == "'=1+1"
    assert rows[str(typed.pk)]["result_desc"] == "'@SUM(A1)"
    assert rows[str(typed.pk)]["amount"] == "100"
    assert [rows[str(t.pk)]["account_reference"] for t in others] == [
        "'+254",
        "'-2",
        "'\tx",
        "'\rx",
        "INV-42",
    ]


# -- 16. A short callback secret stops a deployment -------------------------------------------


def check_ids(*, debug: bool, secret: str) -> set[str]:
    with override_settings(PAYMENTS={**settings.PAYMENTS, "CALLBACK_SECRET": secret}, DEBUG=debug):
        return {message.id for message in check_payments_settings()}


def test_p16_a_callback_secret_under_32_characters_is_an_error_outside_debug():
    assert "payments.E009" in check_ids(debug=False, secret="s" * 31)
    assert "payments.E009" in check_ids(debug=False, secret="")
    assert "payments.E009" not in check_ids(debug=False, secret="s" * 32)


def test_p16_a_short_callback_secret_is_only_a_warning_in_debug():
    ids = check_ids(debug=True, secret="s" * 31)

    assert "payments.E009" not in ids
    assert "payments.W009" in ids

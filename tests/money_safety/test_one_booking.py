"""Issue 9, points 1 to 8: one M-Pesa payment is one ledger entry, whatever order its signals
arrive in, and every final state says so once.

An STK Push paid into a PayBill is announced twice: by the STK callback (or only an STK query,
which carries no receipt) and by a C2B confirmation with the same receipt. Each test names the
point of the issue it holds.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from payments.enums import TransactionStatus
from payments.models import CallbackEvent, DarajaInquiry, Transaction
from payments.selectors import payments_dashboard
from payments.services.background import background_wait
from payments.services.checkout import checkout_link_create, checkout_pay
from payments.services.reconcile import transactions_reconcile
from tests.payments.conftest import (
    STATUS_PATH,
    STK_PUSH_URL,
    STK_QUERY_URL,
    api_client_for,
    load_fixture,
    push_accepted,
    stk_callback,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    accept,
    paid_transaction,
    result_body,
    staff_user_with,
)

SECRET = "test-callback-secret-0123456789abcdef"
CONFIRMATION_PATH = f"/api/v1/payments/callbacks/c2b/{SECRET}/confirmation"
STK_CALLBACK_PATH = "/api/v1/payments/callbacks/stk/{}"
MASKED = "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"
QUERY_SUCCESS = "stk/stk_query_response_success.portal.json"
PHONE = "254708374149"
RECEIPT = "RKL51ZDR4F"
REFERENCE = "INV00042"
SHORTCODE = "174379"


def waiting_push(*, status: str = "pending", amount: int = 5, age_seconds: int = 60, **fields):
    """Our STK Push to PHONE for ``amount`` with REFERENCE, accepted by Daraja and unpaid yet."""
    fields.setdefault("checkout_request_id", f"ws_CO_{uuid.uuid4().hex[:20]}")
    push = Transaction.objects.create(
        transaction_type="STK_PUSH",
        status=status,
        amount=amount,
        phone_number=PHONE,
        account_reference=REFERENCE,
        shortcode=SHORTCODE,
        environment="sandbox",
        **fields,
    )
    Transaction.objects.filter(pk=push.pk).update(
        created_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    push.refresh_from_db()
    return push


def confirmation(**changes) -> dict:
    """Daraja's C2B confirmation of a payment of 5 to our PayBill for REFERENCE, paid now."""
    body = copy.deepcopy(load_fixture(MASKED))
    body.update(
        {
            "TransID": RECEIPT,
            "TransAmount": "5.00",
            "BusinessShortCode": SHORTCODE,
            "BillRefNumber": REFERENCE,
            "MSISDN": "2547 ***** 149",
            "TransTime": timezone.localtime(timezone.now()).strftime("%Y%m%d%H%M%S"),
        }
    )
    body.update(changes)
    return body


def post_confirmation(client, django_capture_on_commit_callbacks, body: dict):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(CONFIRMATION_PATH, json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return CallbackEvent.objects.filter(kind="c2b_confirmation").latest("pk")


def success_callback(push: Transaction, *, receipt: str = RECEIPT, amount: int | None = None):
    body = stk_callback(checkout_request_id=push.checkout_request_id, amount=amount or push.amount)
    for item in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == "MpesaReceiptNumber":
            item["Value"] = receipt
    return body


def post_stk_callback(client, django_capture_on_commit_callbacks, push: Transaction, body: dict):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            STK_CALLBACK_PATH.format(push.callback_token),
            json.dumps(body),
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    return CallbackEvent.objects.filter(kind="stk").latest("pk")


def paid_rows() -> list[Transaction]:
    """Incoming payments the ledger counts as money received."""
    return list(
        Transaction.objects.filter(
            transaction_type__in=("STK_PUSH", "C2B"), status="success", booked_as__isnull=True
        )
    )


def query_says_paid(daraja, push: Transaction) -> None:
    body = load_fixture(QUERY_SUCCESS)
    body["CheckoutRequestID"] = push.checkout_request_id
    daraja.post(STK_QUERY_URL, json=body)


# -- point 1: a receipt is unique across STK and C2B ------------------------------------------


@pytest.mark.django_db
def test_p01_the_database_refuses_a_c2b_row_with_the_receipt_of_an_stk_payment():
    waiting_push(status="success", mpesa_receipt_number=RECEIPT)

    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.create(
            transaction_type="C2B",
            status="success",
            amount=5,
            mpesa_receipt_number=RECEIPT,
            environment="sandbox",
        )


@pytest.mark.django_db
def test_p01_the_database_refuses_two_stk_rows_with_one_receipt():
    waiting_push(status="success", mpesa_receipt_number=RECEIPT)

    with pytest.raises(IntegrityError), transaction.atomic():
        waiting_push(status="success", mpesa_receipt_number=RECEIPT)


@pytest.mark.django_db
def test_p01_c2b_first_then_the_stk_callback_is_one_payment(
    client, django_capture_on_commit_callbacks, sent_signals
):
    # The customer typed another account number, so the confirmation matches no push.
    push = waiting_push()
    post_confirmation(client, django_capture_on_commit_callbacks, confirmation(BillRefNumber="X"))

    post_stk_callback(client, django_capture_on_commit_callbacks, push, success_callback(push))

    (paid,) = paid_rows()
    assert (paid.transaction_type, paid.mpesa_receipt_number) == ("C2B", RECEIPT)
    assert [name for name, _ in sent_signals] == ["c2b_payment_received"]
    assert payments_dashboard()["today"].amount == 5


@pytest.mark.django_db
def test_p01_query_success_without_receipt_then_c2b_is_one_payment(
    client, django_capture_on_commit_callbacks, sent_signals, daraja, user
):
    push = waiting_push(user=user, age_seconds=120)
    query_says_paid(daraja, push)
    with django_capture_on_commit_callbacks(execute=True):
        api_client_for(user).get(STATUS_PATH.format(push.checkout_request_id))

    post_confirmation(client, django_capture_on_commit_callbacks, confirmation())

    (paid,) = paid_rows()
    assert (paid.pk, paid.mpesa_receipt_number) == (push.pk, RECEIPT)
    assert sent_signals == [("payment_succeeded", push.pk)]
    assert payments_dashboard()["today"].amount == 5


@pytest.mark.django_db
def test_p01_a_payment_booked_twice_cannot_be_refunded_twice(
    client, django_capture_on_commit_callbacks, daraja, django_user_model
):
    push = waiting_push()
    post_confirmation(client, django_capture_on_commit_callbacks, confirmation(BillRefNumber="X"))
    post_stk_callback(client, django_capture_on_commit_callbacks, push, success_callback(push))
    accept(daraja, REVERSAL_URL)
    api = api_client_for(staff_user_with(django_user_model, "refunder-p01", "refund"))

    answers = [
        api.post(
            REVERSE_PATH,
            {"transaction": str(row.pk), "remarks": "Refund"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        ).status_code
        for row in Transaction.objects.filter(transaction_type__in=("STK_PUSH", "C2B"))
    ]

    assert sorted(answers) == [202, 400]
    assert Transaction.objects.filter(transaction_type="REVERSAL").count() == 1


# -- point 2: a C2B confirmation completes the push it pays --------------------------------------


@pytest.mark.django_db
def test_p02_c2b_confirmation_completes_the_waiting_push_instead_of_a_new_payment(
    client, django_capture_on_commit_callbacks, sent_signals
):
    push = waiting_push(status="unknown")

    event = post_confirmation(client, django_capture_on_commit_callbacks, confirmation())

    push.refresh_from_db()
    assert (push.status, push.mpesa_receipt_number) == ("success", RECEIPT)
    assert not Transaction.objects.filter(transaction_type="C2B").exists()
    assert (event.outcome, event.transaction_id) == ("processed", push.pk)
    assert sent_signals == [("payment_succeeded", push.pk)]


@pytest.mark.django_db
def test_p02_then_the_stk_callback_of_that_payment_changes_nothing(
    client, django_capture_on_commit_callbacks, sent_signals
):
    push = waiting_push()
    post_confirmation(client, django_capture_on_commit_callbacks, confirmation())

    event = post_stk_callback(
        client, django_capture_on_commit_callbacks, push, success_callback(push)
    )

    assert event.outcome == "duplicate"
    assert [row.pk for row in paid_rows()] == [push.pk]
    assert sent_signals == [("payment_succeeded", push.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "msisdn",
    ["254708374149", "2547 ***** 149", "25470****149", "hashed"],
    ids=["plain", "masked-v2", "masked-short", "sha256"],
)
def test_p02_a_phone_that_fits_the_push_completes_it(
    client, django_capture_on_commit_callbacks, msisdn
):
    import hashlib

    if msisdn == "hashed":
        msisdn = hashlib.sha256(PHONE.encode()).hexdigest()
    push = waiting_push()

    post_confirmation(client, django_capture_on_commit_callbacks, confirmation(MSISDN=msisdn))

    push.refresh_from_db()
    assert push.status == "success"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"MSISDN": "254711000111"},
        {"MSISDN": "2547 ***** 126"},
        {"TransAmount": "6.00"},
        {"BusinessShortCode": "600000"},
        {"BillRefNumber": "INV00043"},
    ],
    ids=["other-phone", "other-masked-phone", "other-amount", "other-shortcode", "other-ref"],
)
def test_p02_a_confirmation_that_does_not_fit_the_push_is_a_payment_of_its_own(
    client, django_capture_on_commit_callbacks, sent_signals, changes
):
    push = waiting_push()

    post_confirmation(client, django_capture_on_commit_callbacks, confirmation(**changes))

    push.refresh_from_db()
    assert push.status == "pending"
    c2b = Transaction.objects.get(transaction_type="C2B")
    assert sent_signals == [("c2b_payment_received", c2b.pk)]


@pytest.mark.django_db
def test_p02_the_account_reference_is_matched_without_case_or_spaces(
    client, django_capture_on_commit_callbacks
):
    push = waiting_push()

    post_confirmation(
        client, django_capture_on_commit_callbacks, confirmation(BillRefNumber=" inv00042 ")
    )

    push.refresh_from_db()
    assert push.status == "success"


@pytest.mark.django_db
def test_p02_a_push_older_than_the_window_is_not_completed(
    client, django_capture_on_commit_callbacks
):
    push = waiting_push(age_seconds=3 * 60 * 60)

    post_confirmation(client, django_capture_on_commit_callbacks, confirmation())

    push.refresh_from_db()
    assert push.status == "pending"
    assert Transaction.objects.filter(transaction_type="C2B").count() == 1


@pytest.mark.django_db
def test_p02_two_pushes_that_fit_are_not_guessed_between(
    client, django_capture_on_commit_callbacks, sent_signals
):
    first, second = waiting_push(), waiting_push()

    post_confirmation(client, django_capture_on_commit_callbacks, confirmation())

    assert {p.status for p in Transaction.objects.filter(pk__in=(first.pk, second.pk))} == {
        "pending"
    }
    c2b = Transaction.objects.get(transaction_type="C2B")
    assert sent_signals == [("c2b_payment_received", c2b.pk)]


@pytest.mark.django_db
def test_p02_an_stk_callback_whose_receipt_sits_on_a_c2b_row_links_to_it(
    client, django_capture_on_commit_callbacks, sent_signals, user
):
    push = waiting_push(user=user)
    post_confirmation(client, django_capture_on_commit_callbacks, confirmation(BillRefNumber="X"))
    c2b = Transaction.objects.get(transaction_type="C2B")

    event = post_stk_callback(
        client, django_capture_on_commit_callbacks, push, success_callback(push)
    )

    push.refresh_from_db()
    assert (push.status, push.booked_as_id, push.mpesa_receipt_number) == ("success", c2b.pk, "")
    assert (event.outcome, event.transaction_id) == ("processed", push.pk)
    assert sent_signals == [("c2b_payment_received", c2b.pk)]
    # The app polling its push learns it is paid, and under which receipt.
    body = api_client_for(user).get(STATUS_PATH.format(push.checkout_request_id)).json()
    assert (body["status"], body["mpesa_receipt_number"], body["booked_as"]) == (
        "success",
        RECEIPT,
        str(c2b.pk),
    )


@pytest.mark.django_db
def test_p02_an_stk_callback_with_the_receipt_of_another_push_is_flagged(
    client, django_capture_on_commit_callbacks, sent_signals
):
    waiting_push(status="success", mpesa_receipt_number=RECEIPT)
    push = waiting_push()

    event = post_stk_callback(
        client, django_capture_on_commit_callbacks, push, success_callback(push)
    )

    push.refresh_from_db()
    assert push.status == "pending" and push.needs_review
    assert RECEIPT in push.review_reason
    assert event.outcome == "rejected"
    assert sent_signals == []


# -- point 3: a success known only from an STK query is not paid yet -----------------------------


# The poll's query runs on a thread with its own connection: it sees committed rows only.
@pytest.mark.django_db(transaction=True)
def test_p03_a_query_success_awaits_its_receipt_and_is_not_paid(daraja, sent_signals, user):
    push = waiting_push(user=user, age_seconds=120)
    query_says_paid(daraja, push)
    status_path = STATUS_PATH.format(push.checkout_request_id)

    assert api_client_for(user).get(status_path).json()["status"] == "pending"
    assert background_wait(timeout=10)
    body = api_client_for(user).get(status_path).json()

    assert body["status"] == "awaiting_receipt"
    assert "receipt" in body["message"]
    assert sent_signals == []
    assert payments_dashboard()["today"].amount == 0
    push.refresh_from_db()
    assert not push.is_final


@pytest.mark.django_db
def test_p03_awaiting_receipt_cannot_be_refunded(daraja, django_user_model):
    push = waiting_push(status=TransactionStatus.AWAITING_RECEIPT)
    api = api_client_for(staff_user_with(django_user_model, "refunder-p03", "refund"))

    response = api.post(
        REVERSE_PATH,
        {"transaction": str(push.pk), "remarks": "Refund"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="p03",
    )

    assert response.status_code == 400, response.content


@pytest.mark.django_db
def test_p03_the_late_callback_completes_it_and_says_paid_once(
    client, django_capture_on_commit_callbacks, sent_signals
):
    push = waiting_push(status=TransactionStatus.AWAITING_RECEIPT, result_code="0")

    post_stk_callback(client, django_capture_on_commit_callbacks, push, success_callback(push))

    push.refresh_from_db()
    assert (push.status, push.mpesa_receipt_number) == ("success", RECEIPT)
    assert sent_signals == [("payment_succeeded", push.pk)]


@pytest.mark.django_db
def test_p03_a_late_callback_for_another_amount_is_flagged_not_paid(
    client, django_capture_on_commit_callbacks, sent_signals
):
    push = waiting_push(status=TransactionStatus.AWAITING_RECEIPT, result_code="0")

    post_stk_callback(
        client, django_capture_on_commit_callbacks, push, success_callback(push, amount=1)
    )

    push.refresh_from_db()
    assert push.status == "awaiting_receipt" and push.needs_review
    assert sent_signals == []


@pytest.mark.django_db
def test_p03_the_admin_lists_payments_awaiting_their_receipt(client, django_user_model):
    push = waiting_push(status=TransactionStatus.AWAITING_RECEIPT)
    waiting_push(status="success", mpesa_receipt_number="OTHER00001")
    clerk = staff_user_with(django_user_model, "clerk-p03", "view_transaction")
    client.force_login(clerk)

    page = client.get("/admin/payments/transaction/", {"status__exact": "awaiting_receipt"})

    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [push]
    assert "Paid, awaiting receipt" in page.content.decode()


# -- point 4: fractional C2B amounts ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["10.50", "0.99", "100.01"])
def test_p04_a_fractional_c2b_amount_is_kept_exact_flagged_and_not_signalled(
    client, django_capture_on_commit_callbacks, sent_signals, amount
):
    post_confirmation(
        client,
        django_capture_on_commit_callbacks,
        confirmation(TransAmount=amount, BillRefNumber="X"),
    )

    row = Transaction.objects.get(transaction_type="C2B")
    assert row.needs_review
    assert amount in row.review_reason
    assert row.metadata["trans_amount"] == amount
    assert row.amount == 0  # nothing is booked in whole shillings: a person decides
    assert sent_signals == []
    assert payments_dashboard()["today"].amount == 0


@pytest.mark.django_db
def test_p04_a_fractional_amount_does_not_complete_a_push(
    client, django_capture_on_commit_callbacks
):
    push = waiting_push(amount=10)

    post_confirmation(client, django_capture_on_commit_callbacks, confirmation(TransAmount="10.5"))

    push.refresh_from_db()
    assert push.status == "pending"


# -- point 5: a callback at a route of another kind ------------------------------------------


B2C_SUCCESS = "b2c/b2c_result_success.portal.json"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", ["b2c/{}/result", "reversal/{}/result", "b2c/{}/timeout", "reversal/{}/timeout"]
)
def test_p05_an_stk_token_posted_to_a_money_out_route_is_stored_and_refused(
    client, django_capture_on_commit_callbacks, sent_signals, route
):
    push = waiting_push()
    body = result_body(B2C_SUCCESS, TransactionAmount=push.amount)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/payments/callbacks/" + route.format(push.callback_token),
            json.dumps(body),
            content_type="application/json",
        )

    assert response.status_code == 200
    event = CallbackEvent.objects.get()
    assert event.outcome == "rejected"
    assert "STK Push" in event.error
    push.refresh_from_db()
    assert (push.status, push.result_code, push.needs_review) == ("pending", "", False)
    assert sent_signals == []


@pytest.mark.django_db
def test_p05_a_payout_token_posted_to_the_stk_route_is_stored_and_refused(client, sent_signals):
    payout = Transaction.objects.create(
        transaction_type="B2C", status="pending", amount=5, environment="sandbox"
    )
    body = success_callback(waiting_push())

    response = client.post(
        STK_CALLBACK_PATH.format(payout.callback_token),
        json.dumps(body),
        content_type="application/json",
    )

    assert response.status_code == 200
    event = CallbackEvent.objects.get()
    assert event.outcome == "rejected"
    payout.refresh_from_db()
    assert payout.status == "pending"


@pytest.mark.django_db
def test_p05_an_inquiry_token_posted_to_a_transaction_route_is_stored_and_refused(client):
    inquiry = DarajaInquiry.objects.create(kind="balance", status="pending")

    response = client.post(
        f"/api/v1/payments/callbacks/b2c/{inquiry.token}/result",
        json.dumps(result_body(B2C_SUCCESS)),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert CallbackEvent.objects.get().outcome == "rejected"


@pytest.mark.django_db
def test_p05_a_balance_token_posted_to_the_status_route_is_stored_and_refused(client):
    inquiry = DarajaInquiry.objects.create(kind="balance", status="pending")
    body = result_body("transaction_status/transaction_status_result_success.portal.json")

    response = client.post(
        f"/api/v1/payments/callbacks/status/{inquiry.token}/result",
        json.dumps(body),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert CallbackEvent.objects.get().outcome == "rejected"
    inquiry.refresh_from_db()
    assert inquiry.status == "pending"


# -- point 6: a status result that contradicts a final state ---------------------------------


STATUS_SUCCESS = "transaction_status/transaction_status_result_success.portal.json"


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["B2C", "REVERSAL"])
def test_p06_completed_status_for_a_failed_money_out_flags_it(post_result, kind):
    original = paid_transaction(amount=100) if kind == "REVERSAL" else None
    row = Transaction.objects.create(
        transaction_type=kind,
        status="failed",
        amount=100,
        environment="sandbox",
        originator_conversation_id=f"oc-{uuid.uuid4()}",
        result_code="2001",
        original=original,
    )
    inquiry = DarajaInquiry.objects.create(kind="status", status="pending", transaction=row)
    body = result_body(STATUS_SUCCESS, Amount=100)

    post_result("status", inquiry.token, body)

    row.refresh_from_db()
    assert row.status == "failed"
    assert row.needs_review
    assert "Completed" in row.review_reason


# -- point 7: every final state sends its signal --------------------------------------------


@pytest.mark.django_db
def test_p07_a_push_expired_by_reconciliation_sends_payment_failed(
    daraja, sent_signals, django_capture_on_commit_callbacks
):
    push = waiting_push(status="unknown", checkout_request_id=None, age_seconds=3600)

    with django_capture_on_commit_callbacks(execute=True):
        transactions_reconcile(older_than=60)

    push.refresh_from_db()
    assert push.status == "timeout"
    assert sent_signals == [("payment_failed", push.pk)]


@pytest.mark.django_db
def test_p07_a_push_refused_synchronously_sends_payment_failed(
    daraja, user, sent_signals, django_capture_on_commit_callbacks
):
    refusal = {"requestId": "r", "errorCode": "400.002.02", "errorMessage": "Invalid"}
    daraja.post(STK_PUSH_URL, status=400, json=refusal)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(user).post(
            "/api/v1/payments/mpesa/stk-push",
            {"phone_number": "0708374149", "amount": 5, "account_reference": REFERENCE},
            format="json",
        )

    assert response.status_code == 502
    push = Transaction.objects.get()
    assert sent_signals == [("payment_failed", push.pk)]


@pytest.mark.django_db
def test_p07_a_payout_refused_synchronously_sends_payout_failed(
    daraja, django_user_model, sent_signals, django_capture_on_commit_callbacks
):
    refusal = {"requestId": "r", "errorCode": "400.002.02", "errorMessage": "Invalid PartyB"}
    daraja.post(B2C_URL, status=400, json=refusal)
    api = api_client_for(staff_user_with(django_user_model, "payer-p07", "pay_out"))

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            B2C_PATH,
            {"phone_number": "0708374149", "amount": 100, "remarks": "Advance"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="p07-payout",
        )

    assert response.status_code == 502
    payout = Transaction.objects.get(transaction_type="B2C")
    assert sent_signals == [("payout_failed", payout.pk)]


@pytest.mark.django_db
def test_p07_a_reversal_refused_synchronously_sends_reversal_failed(
    daraja, django_user_model, sent_signals, django_capture_on_commit_callbacks
):
    payment = paid_transaction(amount=100)
    refusal = {"requestId": "r", "errorCode": "400.002.02", "errorMessage": "Invalid"}
    daraja.post(REVERSAL_URL, status=400, json=refusal)
    api = api_client_for(staff_user_with(django_user_model, "refunder-p07", "refund"))

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            REVERSE_PATH,
            {"transaction": str(payment.pk), "remarks": "Refund"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="p07-refund",
        )

    assert response.status_code == 502
    reversal = Transaction.objects.get(transaction_type="REVERSAL")
    assert sent_signals == [("reversal_failed", reversal.pk)]


# -- point 8: the checkout flow never overwrites a callback's metadata -----------------------


@pytest.mark.django_db
def test_p08_checkout_keeps_what_a_callback_wrote_during_the_push(daraja):
    """The result arrives while the push's HTTP call is still open: nothing may undo it."""
    token = checkout_link_create(amount=5, account_reference=REFERENCE)

    def daraja_answers_after_delivering_the_result(request):
        sent = json.loads(request.body)
        callback_token = sent["CallBackURL"].rstrip("/").rsplit("/", 1)[-1]
        push = Transaction.objects.get(callback_token=callback_token)
        body = success_callback(
            Transaction(checkout_request_id="ws_CO_P08", amount=5), receipt="RKL51ZDP08"
        )
        Client().post(
            STK_CALLBACK_PATH.format(push.callback_token),
            json.dumps(body),
            content_type="application/json",
        )
        return 200, {}, json.dumps(push_accepted("ws_CO_P08"))

    daraja.add_callback("POST", STK_PUSH_URL, callback=daraja_answers_after_delivering_the_result)

    result = checkout_pay(token=token, phone_number="0708374149")

    result.refresh_from_db()
    assert (result.status, result.mpesa_receipt_number) == ("success", "RKL51ZDP08")
    assert result.metadata["result"]["mpesa_receipt_number"] == "RKL51ZDP08"
    assert result.checkout_link


@pytest.mark.django_db(transaction=True)
def test_p01_the_migration_links_a_payment_an_earlier_build_booked_twice():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("payments", "0005_register_urls_permission")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("payments", "Transaction")
    push = old.objects.create(
        transaction_type="STK_PUSH", status="success", amount=5, mpesa_receipt_number=RECEIPT
    )
    c2b = old.objects.create(
        transaction_type="C2B", status="success", amount=5, mpesa_receipt_number=RECEIPT
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    push, c2b = Transaction.objects.get(pk=push.pk), Transaction.objects.get(pk=c2b.pk)
    assert (push.mpesa_receipt_number, push.booked_as_id) == ("", c2b.pk)
    assert c2b.mpesa_receipt_number == RECEIPT
    assert push.needs_review and c2b.needs_review
    assert [row.pk for row in paid_rows()] == [c2b.pk]

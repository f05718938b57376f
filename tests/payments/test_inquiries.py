"""Account balance and Transaction Status: asked through the API, answered at our result URLs."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from payments.daraja.dates import NAIROBI
from payments.enums import TransactionType
from payments.models import CallbackEvent, DarajaInquiry, Transaction

from .conftest import STK_QUERY_URL, api_client_for, calls_to, load_fixture, stk_transaction
from .money_out import (
    BALANCE_PATH,
    BALANCE_URL,
    REFRESH_PATH,
    REVERSAL_URL,
    STATUS_URL,
    accept,
    paid_transaction,
    result_body,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

BALANCE = "balance/account_balance_result_success.portal.json"
BALANCE_2017 = "balance/account_balance_result_success.2017.php-mpesa.json"
STATUS = "transaction_status/transaction_status_result_success.portal.json"
ACCOUNTS = [
    "Charges Paid Account",
    "Float Account",
    "Organization Settlement Account",
    "Utility Account",
    "Working Account",
]


@pytest.fixture
def accountant(django_user_model):
    return staff_user_with(django_user_model, "accountant", "view_balance", "query_status")


@pytest.fixture
def api(accountant) -> APIClient:
    return api_client_for(accountant)


def by_account(rows: list[dict]) -> dict[str, dict]:
    return {row["account"]: row for row in rows}


# --- Account balance --------------------------------------------------------------------------


def ask_balance(api, daraja) -> DarajaInquiry:
    """Ask for the PayBill's balance only."""
    accept(daraja, BALANCE_URL)
    response = api.post(BALANCE_PATH, {"shortcode": "174379"}, format="json")
    assert response.status_code == 202, response.content
    [inquiry] = response.json()["inquiries"]
    return DarajaInquiry.objects.get(pk=inquiry["id"])


def test_balance_request_asks_daraja_and_answers_202_with_the_inquiries(api, daraja):
    accept(daraja, BALANCE_URL)

    response = api.post(BALANCE_PATH, {}, format="json")

    assert response.status_code == 202, response.content
    paybill, payouts = response.json()["inquiries"]
    assert (paybill["kind"], paybill["status"]) == ("balance", "pending")
    assert (paybill["label"], payouts["label"]) == ("PayBill 174379", "B2C payouts 600992")
    assert paybill["conversation_id"].startswith("AG_")
    inquiry = DarajaInquiry.objects.get(pk=paybill["id"])
    request, _ = sent(daraja, BALANCE_URL)
    assert request["CommandID"] == "AccountBalance"
    assert (request["Initiator"], request["PartyA"], request["IdentifierType"]) == (
        "testapi",
        174379,
        "4",
    )
    callbacks = f"https://pay.example.co.ke/api/v1/payments/callbacks/balance/{inquiry.token}"
    assert request["ResultURL"] == f"{callbacks}/result"
    assert request["QueueTimeOutURL"] == f"{callbacks}/timeout"


def test_balance_result_is_what_get_lists(api, daraja, post_result, money_signals):
    inquiry = ask_balance(api, daraja)

    response = post_result("balance", inquiry.token, load_fixture(BALANCE))

    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    listed = api.get(BALANCE_PATH)
    assert listed.status_code == 200
    accounts = by_account(listed.json())
    assert sorted(accounts) == ACCOUNTS
    assert accounts["Utility Account"]["available"] == "228037.00"
    assert accounts["Utility Account"]["current"] == "228037.00"
    assert accounts["Charges Paid Account"]["current"] == "-1540.00"
    assert accounts["Working Account"]["available"] == "700000.00"
    assert accounts["Float Account"]["reserved"] == "0.00"
    assert {row["currency"] for row in accounts.values()} == {"KES"}
    assert {dt.datetime.fromisoformat(row["reported_at"]) for row in accounts.values()} == {
        dt.datetime(2020, 1, 9, 12, 57, 10, tzinfo=NAIROBI)
    }
    inquiry.refresh_from_db()
    assert (inquiry.status, inquiry.result_code) == ("completed", "0")
    ((name, kwargs),) = money_signals
    assert name == "balance_updated"
    assert sorted(s.account for s in kwargs["snapshots"]) == ACCOUNTS
    assert {s.inquiry_id for s in kwargs["snapshots"]} == {inquiry.pk}


def test_a_later_balance_result_replaces_what_get_lists(api, daraja, post_result):
    post_result("balance", ask_balance(api, daraja).token, load_fixture(BALANCE))
    later = load_fixture(BALANCE)
    parameters = later["Result"]["ResultParameters"]["ResultParameter"]
    parameters[0]["Value"] = parameters[0]["Value"].replace(
        "Utility Account|KES|228037.00|228037.00", "Utility Account|KES|230000.00|229000.50"
    )
    parameters[1]["Value"] = "20200109140000"

    post_result("balance", ask_balance(api, daraja).token, later)

    accounts = by_account(api.get(BALANCE_PATH).json())
    assert sorted(accounts) == ACCOUNTS
    assert (accounts["Utility Account"]["current"], accounts["Utility Account"]["available"]) == (
        "230000.00",
        "229000.50",
    )
    assert dt.datetime.fromisoformat(accounts["Utility Account"]["reported_at"]) == dt.datetime(
        2020, 1, 9, 14, 0, tzinfo=NAIROBI
    )


def test_the_2017_balance_sample_parses(api, daraja, post_result):
    inquiry = ask_balance(api, daraja)

    post_result("balance", inquiry.token, load_fixture(BALANCE_2017))

    accounts = by_account(api.get(BALANCE_PATH).json())
    assert sorted(accounts) == ACCOUNTS
    assert accounts["Utility Account"]["available"] == "49217.00"
    assert accounts["Charges Paid Account"]["current"] == "-220.00"
    assert dt.datetime.fromisoformat(accounts["Working Account"]["reported_at"]) == dt.datetime(
        2017, 7, 28, 9, 56, 42, tzinfo=NAIROBI
    )


def test_the_same_balance_result_twice_is_stored_once(api, daraja, post_result):
    inquiry = ask_balance(api, daraja)

    post_result("balance", inquiry.token, load_fixture(BALANCE))
    post_result("balance", inquiry.token, load_fixture(BALANCE))

    assert inquiry.balances.count() == 5
    outcomes = list(
        CallbackEvent.objects.filter(inquiry=inquiry)
        .order_by("received_at", "pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["processed", "duplicate"]


def test_balance_queue_timeout_leaves_the_inquiry_unknown(api, daraja, post_result):
    inquiry = ask_balance(api, daraja)

    post_result("balance", inquiry.token, load_fixture(BALANCE), "timeout")

    inquiry.refresh_from_db()
    assert inquiry.status == "unknown"
    assert api.get(BALANCE_PATH).json() == []


def test_the_same_queue_timeout_twice_is_recorded_once_and_a_duplicate(api, daraja, post_result):
    inquiry = ask_balance(api, daraja)
    post_result("balance", inquiry.token, load_fixture(BALANCE), "timeout")
    inquiry.refresh_from_db()
    first = (inquiry.status, inquiry.completed_at)

    post_result("balance", inquiry.token, load_fixture(BALANCE), "timeout")

    inquiry.refresh_from_db()
    assert (inquiry.status, inquiry.completed_at) == first
    outcomes = CallbackEvent.objects.filter(inquiry=inquiry).order_by("pk")
    assert list(outcomes.values_list("outcome", flat=True)) == ["processed", "duplicate"]


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("anonymous", 401),
        ("customer", 403),
        ("staff without view_balance", 403),
        ("accountant", None),
    ],
)
def test_only_staff_holding_view_balance_may_see_or_refresh_the_balance(
    method, who, allowed, daraja, user, accountant, django_user_model
):
    accept(daraja, BALANCE_URL)
    payer = staff_user_with(django_user_model, "payer", "pay_out", "refund")
    clients = {
        "anonymous": APIClient(),
        "customer": api_client_for(user),
        "staff without view_balance": api_client_for(payer),
        "accountant": api_client_for(accountant),
    }
    expected = allowed or {"get": 200, "post": 202}[method]

    response = getattr(clients[who], method)(BALANCE_PATH, {}, format="json")

    assert response.status_code == expected, response.content
    # The PayBill and the shortcode that funds payouts.
    assert len(sent(daraja, BALANCE_URL)) == (2 if expected == 202 else 0)


# --- Transaction status -----------------------------------------------------------------------


def payout_row(*, status: str = "unknown", receipt: str = "", amount: int = 300) -> Transaction:
    """A B2C payout as the payout service leaves it, Daraja's answer lost or settled."""
    transaction = Transaction.objects.create(
        transaction_type=TransactionType.B2C,
        status=status,
        amount=amount,
        phone_number="254708374149",
        environment="sandbox",
        shortcode="600992",
        mpesa_receipt_number=receipt,
        result_code="0" if status == "success" else "",
        conversation_id="AG_20240706_20106e9209f64bebd05b",
    )
    transaction.originator_conversation_id = f"b2c-{transaction.pk}"
    transaction.save()
    return transaction


def ask_status(api, daraja, transaction: Transaction) -> DarajaInquiry:
    accept(daraja, STATUS_URL)
    response = api.post(REFRESH_PATH.format(transaction.pk))
    assert response.status_code == 202, response.content
    return DarajaInquiry.objects.get(pk=response.json()["inquiry"]["id"])


def status_result(inquiry: DarajaInquiry, **parameters) -> dict:
    """The published status result, re-addressed to ``inquiry`` and its transaction."""
    transaction = inquiry.transaction
    parameters = {
        "OriginatorConversationID": transaction.originator_conversation_id,
        "Amount": str(transaction.amount),
        **parameters,
    }
    return result_body(
        STATUS,
        originator_conversation_id=inquiry.originator_conversation_id,
        conversation_id=inquiry.conversation_id,
        **parameters,
    )


def test_status_query_of_a_receipted_transaction_asks_by_receipt(api, daraja):
    transaction = payout_row(status="success", receipt="SG632NMUAB")

    inquiry = ask_status(api, daraja, transaction)

    (query,) = sent(daraja, STATUS_URL)
    assert query["TransactionID"] == "SG632NMUAB"
    assert "OriginalConversationID" not in query
    callbacks = f"https://pay.example.co.ke/api/v1/payments/callbacks/status/{inquiry.token}"
    assert query["ResultURL"] == f"{callbacks}/result"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"TransactionStatus": "Failed"}, id="not completed"),
        pytest.param(
            {"result__ResultCode": "SFC_IC0003", "result__ResultDesc": "Operator does not exist"},
            id="non-zero result",
        ),
    ],
)
def test_status_result_other_than_completed_flags_for_review_and_changes_no_status(
    api, daraja, post_result, money_signals, answer
):
    transaction = payout_row(status="unknown")
    inquiry = ask_status(api, daraja, transaction)

    post_result("status", inquiry.token, status_result(inquiry, **answer))

    transaction.refresh_from_db()
    assert (transaction.status, transaction.needs_review) == ("unknown", True)
    assert transaction.mpesa_receipt_number == ""
    assert "Transaction Status answered" in transaction.review_reason
    assert not money_signals


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"TransactionStatus": "Failed"}, id="not completed"),
        pytest.param({"result__ResultCode": 2001}, id="non-zero result"),
        pytest.param({"ReceiptNo": "MBN31H462N"}, id="completed again"),
    ],
)
def test_status_result_never_downgrades_a_success(api, daraja, post_result, money_signals, answer):
    transaction = payout_row(status="success", receipt="SG632NMUAB")
    inquiry = ask_status(api, daraja, transaction)

    post_result("status", inquiry.token, status_result(inquiry, **answer))

    transaction.refresh_from_db()
    assert (transaction.status, transaction.mpesa_receipt_number) == ("success", "SG632NMUAB")
    assert not money_signals


def test_completed_status_result_for_another_amount_is_flagged_not_settled(
    api, daraja, post_result
):
    transaction = payout_row(status="unknown", amount=300)
    inquiry = ask_status(api, daraja, transaction)

    post_result("status", inquiry.token, status_result(inquiry, Amount="3000"))

    transaction.refresh_from_db()
    assert (transaction.status, transaction.needs_review) == ("unknown", True)


def test_the_same_status_result_twice_settles_once(api, daraja, post_result, money_signals):
    transaction = payout_row(status="unknown")
    inquiry = ask_status(api, daraja, transaction)
    body = status_result(inquiry)

    post_result("status", inquiry.token, body)
    post_result("status", inquiry.token, body)

    transaction.refresh_from_db()
    assert (transaction.status, transaction.mpesa_receipt_number) == ("success", "MBN31H462N")
    outcomes = list(
        CallbackEvent.objects.filter(inquiry=inquiry)
        .order_by("received_at", "pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["processed", "duplicate"]
    assert [name for name, _ in money_signals] == ["payout_completed"]


def test_status_result_settles_a_reversal_of_unknown_fate_and_its_payment(
    api, daraja, post_result, money_signals
):
    payment = paid_transaction(amount=100)
    reversal = Transaction.objects.create(
        transaction_type=TransactionType.REVERSAL,
        status="unknown",
        original=payment,
        amount=100,
        environment="sandbox",
        shortcode="174379",
        originator_conversation_id="f1e2-4b95-a71d-b30d3cdbb7a7735297",
    )
    inquiry = ask_status(api, daraja, reversal)
    assert sent(daraja, STATUS_URL)[0]["OriginalConversationID"] == (
        "f1e2-4b95-a71d-b30d3cdbb7a7735297"
    )
    assert not sent(daraja, REVERSAL_URL)

    post_result("status", inquiry.token, status_result(inquiry))

    reversal.refresh_from_db()
    payment.refresh_from_db()
    assert (reversal.status, reversal.mpesa_receipt_number) == ("success", "MBN31H462N")
    assert (payment.status, payment.reversed_amount) == ("reversed", 100)
    assert [name for name, _ in money_signals] == ["reversal_completed"]


def test_status_result_naming_another_requests_ids_is_rejected_and_flagged(
    api, daraja, post_result, money_signals
):
    transaction = payout_row(status="unknown")
    inquiry = ask_status(api, daraja, transaction)
    # Completed, with the right amount, but addressed to some other status query.
    body = result_body(STATUS, Amount=str(transaction.amount))

    post_result("status", inquiry.token, body)

    transaction.refresh_from_db()
    assert (transaction.status, transaction.needs_review) == ("unknown", True)
    assert transaction.mpesa_receipt_number == ""
    assert CallbackEvent.objects.get(inquiry=inquiry).outcome == "rejected"
    inquiry.refresh_from_db()
    assert inquiry.status == "pending"
    assert not money_signals


def test_refresh_of_an_stk_push_runs_an_stk_query_and_answers_200(api, daraja):
    checkout = "ws_CO_13012021093521236557"
    transaction = stk_transaction(checkout_request_id=checkout)
    daraja.post(STK_QUERY_URL, json=load_fixture("stk/stk_query_response_success.portal.json"))

    response = api.post(REFRESH_PATH.format(transaction.pk))

    assert response.status_code == 200, response.content
    assert response.json()["inquiry"] is None
    # A query carries no receipt: paid, awaiting the receipt the callback brings.
    assert response.json()["transaction"]["status"] == "awaiting_receipt"
    assert len(calls_to(daraja, STK_QUERY_URL)) == 1
    assert not sent(daraja, STATUS_URL)
    assert not DarajaInquiry.objects.exists()


@pytest.mark.parametrize(("who", "expected"), [("anonymous", 401), ("customer", 403)])
def test_refresh_is_for_staff_only(who, expected, daraja, user):
    transaction = payout_row(status="unknown")
    accept(daraja, STATUS_URL)
    client = APIClient() if who == "anonymous" else api_client_for(user)

    response = client.post(REFRESH_PATH.format(transaction.pk))

    assert response.status_code == expected
    assert not sent(daraja, STATUS_URL)

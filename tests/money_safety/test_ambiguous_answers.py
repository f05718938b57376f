"""Issue 9, point 22: a 5xx answer to a money-moving request is outcome-unknown unless Daraja
documents its errorCode as a refusal that acted on nothing.

A gateway that times out after Daraja has paid (504 with an unknown code) must never make the
payout look refused: the client would send it again and pay twice.
"""

from __future__ import annotations

import uuid

import pytest

from payments.daraja.errors import SERVER_REFUSAL_CODES
from payments.models import Transaction
from tests.payments.conftest import PUSH_PATH, STK_PUSH_URL, api_client_for
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    REVERSAL_URL,
    REVERSE_PATH,
    paid_transaction,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db

# Answers that may come after Daraja acted: no envelope, a code nobody documents, the generic
# internal error, a duplicate OriginatorConversationID (an earlier copy arrived).
AMBIGUOUS_ANSWERS = [
    pytest.param(504, None, id="504-no-envelope"),
    pytest.param(504, "504.001.01", id="504-unknown-code"),
    pytest.param(500, "500.999.9999", id="500-unknown-code"),
    pytest.param(502, None, id="502-no-envelope"),
    pytest.param(500, "500.003.1001", id="500-internal-error"),
    pytest.param(500, "500.002.1001", id="500-duplicate-originator-id"),
]


def _answer(daraja, url: str, http_status: int, code: str | None) -> None:
    if code is None:
        daraja.post(url, status=http_status, body="<html>Gateway Timeout</html>")
    else:
        envelope = {"requestId": "req-1", "errorCode": code, "errorMessage": "Something"}
        daraja.post(url, status=http_status, json=envelope)


def _refusal_params(operation: str) -> list:
    return [pytest.param(code, id=code) for code in sorted(SERVER_REFUSAL_CODES[operation])]


@pytest.fixture
def payer(django_user_model):
    return staff_user_with(django_user_model, "payer-22", "pay_out")


@pytest.fixture
def refunder(django_user_model):
    return staff_user_with(django_user_model, "refunder-22", "refund")


def _pay_out(user):
    return api_client_for(user).post(
        B2C_PATH,
        {
            "phone_number": "0708374149",
            "amount": 100,
            "remarks": "Salary advance",
            "command_id": "BusinessPayment",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )


def _refund(user, payment):
    return api_client_for(user).post(
        REVERSE_PATH,
        {"transaction": str(payment.pk), "remarks": "Refund"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )


def _push(user):
    return api_client_for(user).post(
        PUSH_PATH,
        {"phone_number": "0708374149", "amount": 10, "account_reference": "INV22"},
        format="json",
    )


@pytest.mark.parametrize(("http_status", "code"), AMBIGUOUS_ANSWERS)
def test_p22_ambiguous_5xx_to_a_payout_leaves_it_unknown_and_answers_202(
    daraja, payer, http_status, code
):
    _answer(daraja, B2C_URL, http_status, code)

    response = _pay_out(payer)

    assert response.status_code == 202, response.content
    payout = Transaction.objects.get(transaction_type="B2C")
    assert payout.status == "unknown"
    assert len(sent(daraja, B2C_URL)) == 1


@pytest.mark.parametrize(("http_status", "code"), AMBIGUOUS_ANSWERS)
def test_p22_ambiguous_5xx_to_a_reversal_leaves_it_unknown_and_answers_202(
    daraja, refunder, http_status, code
):
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    _answer(daraja, REVERSAL_URL, http_status, code)

    response = _refund(refunder, payment)

    assert response.status_code == 202, response.content
    reversal = Transaction.objects.get(transaction_type="REVERSAL")
    assert reversal.status == "unknown"
    assert len(sent(daraja, REVERSAL_URL)) == 1


@pytest.mark.parametrize(("http_status", "code"), AMBIGUOUS_ANSWERS)
def test_p22_ambiguous_5xx_to_an_stk_push_leaves_it_unknown_and_answers_202(
    daraja, user, http_status, code
):
    _answer(daraja, STK_PUSH_URL, http_status, code)

    response = _push(user)

    assert response.status_code == 202, response.content
    assert Transaction.objects.get().status == "unknown"
    assert len(sent(daraja, STK_PUSH_URL)) == 1


@pytest.mark.parametrize("code", _refusal_params("b2c_payment"))
def test_p22_documented_refusal_of_a_payout_fails_it_with_502(daraja, payer, code):
    _answer(daraja, B2C_URL, 500, code)

    response = _pay_out(payer)

    assert response.status_code == 502, response.content
    assert response.json()["code"] == code
    assert Transaction.objects.get(transaction_type="B2C").status == "failed"


@pytest.mark.parametrize("code", _refusal_params("reversal"))
def test_p22_documented_refusal_of_a_reversal_fails_it_with_502(daraja, refunder, code):
    payment = paid_transaction(amount=100, receipt="NLJ7RT61SV")
    _answer(daraja, REVERSAL_URL, 500, code)

    response = _refund(refunder, payment)

    assert response.status_code == 502, response.content
    assert Transaction.objects.get(transaction_type="REVERSAL").status == "failed"


@pytest.mark.parametrize("code", _refusal_params("stk_push"))
def test_p22_documented_refusal_of_an_stk_push_fails_it_with_502(daraja, user, code):
    _answer(daraja, STK_PUSH_URL, 500, code)

    response = _push(user)

    assert response.status_code == 502, response.content
    assert response.json()["code"] == code
    assert Transaction.objects.get().status == "failed"


def test_p22_stk_refusal_codes_do_not_make_a_payout_refused(daraja, payer):
    # 500.001.1001 is documented for STK Push only: on a payout nobody knows what it means.
    _answer(daraja, B2C_URL, 500, "500.001.1001")

    response = _pay_out(payer)

    assert response.status_code == 202, response.content
    assert Transaction.objects.get(transaction_type="B2C").status == "unknown"

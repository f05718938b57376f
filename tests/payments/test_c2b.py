"""C2B: validation and confirmation callbacks, URL registration and the sandbox simulation."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from payments.daraja.dates import NAIROBI
from payments.models import CallbackEvent, Transaction
from payments.signals import c2b_payment_received

from .conftest import SANDBOX, api_client_for, calls_to, load_fixture
from .money_out import grant

pytestmark = pytest.mark.django_db

SECRET = "test-callback-secret-0123456789abcdef"
VALIDATION_PATH = "/api/v1/payments/callbacks/c2b/{}/validation"
CONFIRMATION_PATH = "/api/v1/payments/callbacks/c2b/{}/confirmation"
REGISTER_PATH = "/api/v1/payments/mpesa/register-urls"
REGISTER_V1_URL = f"{SANDBOX}/mpesa/c2b/v1/registerurl"
REGISTER_V2_URL = f"{SANDBOX}/mpesa/c2b/v2/registerurl"
SIMULATE_URL = f"{SANDBOX}/mpesa/c2b/v1/simulate"
OUR_VALIDATION_URL = f"https://pay.example.co.ke{VALIDATION_PATH.format(SECRET)}"
OUR_CONFIRMATION_URL = f"https://pay.example.co.ke{CONFIRMATION_PATH.format(SECRET)}"

MASKED = "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"
CONFIRMATION_2017 = "c2b/c2b_confirmation_request.2017.php-mpesa.json"
VALIDATION_2017 = "c2b/c2b_validation_request.2017.php-mpesa.json"
CONFIRMED = {"ResultCode": 0, "ResultDesc": "Success"}
OTHER_ERROR = {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}


def payments_with(**changes) -> dict:
    return {**settings.PAYMENTS, **changes}


def c2b_body(name: str = MASKED, **changes) -> dict:
    body = copy.deepcopy(load_fixture(name))
    body.update(changes)
    return body


@pytest.fixture
def received():
    """The c2b_payment_received signals sent, as (transaction id, receipt)."""
    seen: list[tuple] = []

    def receiver(sender, transaction, **kwargs):
        seen.append((transaction.pk, transaction.mpesa_receipt_number))

    c2b_payment_received.connect(receiver)
    yield seen
    c2b_payment_received.disconnect(receiver)


@pytest.fixture
def post_c2b(client, django_capture_on_commit_callbacks):
    """POST a body as Daraja would, running on-commit hooks as a real commit would."""

    def post(path: str, body, *, secret: str = SECRET):
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path.format(secret), raw, content_type="application/json")

    return post


def assert_secret_not_stored(event: CallbackEvent) -> None:
    stored = [event.kind, event.token, event.body, event.error, json.dumps(event.headers)]
    assert all(SECRET not in value for value in stored)


# --- The URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [VALIDATION_PATH, CONFIRMATION_PATH])
@pytest.mark.parametrize("slash", ["", "/"])
def test_c2b_urls_answer_with_and_without_trailing_slash(post_c2b, path, slash):
    response = post_c2b(path + slash, c2b_body())
    assert response.status_code == 200
    assert CallbackEvent.objects.count() == 1


@pytest.mark.parametrize("path", [VALIDATION_PATH, CONFIRMATION_PATH])
def test_wrong_secret_is_404_and_nothing_is_stored(post_c2b, path):
    response = post_c2b(path, c2b_body(), secret=SECRET[:-1] + "0")
    assert response.status_code == 404
    assert CallbackEvent.objects.count() == 0
    assert Transaction.objects.count() == 0


@pytest.mark.parametrize(
    ("configured", "in_path"),
    [("", "anything-at-all"), ("replace-me", "replace-me"), ("changeme", "changeme")],
)
@pytest.mark.parametrize("path", [VALIDATION_PATH, CONFIRMATION_PATH])
def test_c2b_urls_are_404_while_the_secret_is_empty_or_a_placeholder(
    post_c2b, path, configured, in_path
):
    with override_settings(PAYMENTS=payments_with(CALLBACK_SECRET=configured)):
        response = post_c2b(path, c2b_body(), secret=in_path)
    assert response.status_code == 404
    assert CallbackEvent.objects.count() == 0
    assert Transaction.objects.count() == 0


# --- Validation -------------------------------------------------------------------------------


def test_validation_is_stored_raw_and_accepted_by_the_default_validator(post_c2b):
    raw = json.dumps(c2b_body(VALIDATION_2017))
    response = post_c2b(VALIDATION_PATH, raw)

    assert response.status_code == 200
    assert response.json() == load_fixture("c2b/c2b_validation_response_accept.portal.json")
    event = CallbackEvent.objects.get()
    assert (event.kind, event.token, event.body, event.outcome) == (
        "c2b_validation",
        "c2b",
        raw,
        "processed",
    )
    assert_secret_not_stored(event)
    # A validation is a question, not a payment: nothing is recorded as paid.
    assert Transaction.objects.count() == 0


@override_settings(PAYMENTS=payments_with(C2B_VALIDATOR="tests.payments.validators.invoices_only"))
def test_host_validator_rejects_an_unknown_account_with_c2b00012(post_c2b):
    response = post_c2b(VALIDATION_PATH, c2b_body(BillRefNumber="xyz"))

    body = response.json()
    assert body == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    assert body.keys() == load_fixture("c2b/c2b_validation_response_reject.portal.json").keys()
    event = CallbackEvent.objects.get()
    assert event.outcome == "rejected"
    assert "C2B00012" in event.error


@override_settings(PAYMENTS=payments_with(C2B_VALIDATOR="tests.payments.validators.invoices_only"))
def test_host_validator_accepts_an_invoice_and_its_third_party_id_is_echoed(post_c2b):
    response = post_c2b(VALIDATION_PATH, c2b_body(BillRefNumber="INV00042"))

    assert response.json() == {
        "ResultCode": "0",
        "ResultDesc": "Accepted",
        "ThirdPartyTransID": "order-INV00042",
    }
    assert CallbackEvent.objects.get().outcome == "processed"


@pytest.mark.parametrize(
    "validator",
    [
        "tests.payments.validators.crashing",
        "tests.payments.validators.answers_a_dict",
        "tests.payments.validators.answers_an_unknown_code",
        "tests.payments.validators.no_such_function",
    ],
)
def test_a_validator_that_fails_or_answers_nonsense_rejects_with_other_error(post_c2b, validator):
    with override_settings(PAYMENTS=payments_with(C2B_VALIDATOR=validator)):
        response = post_c2b(VALIDATION_PATH, c2b_body(BillRefNumber="INV00042"))

    assert response.status_code == 200
    assert response.json() == OTHER_ERROR
    assert CallbackEvent.objects.get().outcome == "rejected"


def test_an_unreadable_validation_is_stored_and_rejected(post_c2b):
    response = post_c2b(VALIDATION_PATH, b"<xml>not json</xml>")

    assert response.json() == OTHER_ERROR
    event = CallbackEvent.objects.get()
    assert (event.body, event.outcome) == ("<xml>not json</xml>", "error")


# --- Confirmation -----------------------------------------------------------------------------


def test_confirmation_records_one_successful_c2b_payment(post_c2b, received):
    raw = json.dumps(c2b_body(MASKED, BillRefNumber="INV00042"))
    response = post_c2b(CONFIRMATION_PATH, raw)

    assert response.status_code == 200
    assert response.json() == CONFIRMED
    payment = Transaction.objects.get()
    assert payment.transaction_type == "C2B"
    assert payment.status == "success"
    assert payment.amount == 5
    assert payment.mpesa_receipt_number == "RKL51ZDR4F"
    # Daraja no longer sends a usable number: the masked value is kept as sent, not a phone.
    assert payment.msisdn == "2547 ***** 126"
    assert payment.phone_number == ""
    assert payment.counterparty_name == "NICHOLAS"
    assert payment.account_reference == "INV00042"
    assert payment.shortcode == "600966"
    assert payment.transaction_date == dt.datetime(2023, 11, 21, 12, 13, 25, tzinfo=NAIROBI)
    assert payment.needs_review is False
    event = CallbackEvent.objects.get()
    assert (event.kind, event.token, event.body, event.outcome) == (
        "c2b_confirmation",
        "c2b",
        raw,
        "processed",
    )
    assert event.transaction == payment
    assert_secret_not_stored(event)
    assert received == [(payment.pk, "RKL51ZDR4F")]


def test_confirmation_keeps_a_v1_hashed_msisdn_as_sent(post_c2b):
    hashed = hashlib.sha256(b"254708374149").hexdigest()
    post_c2b(CONFIRMATION_PATH, c2b_body(MSISDN=hashed))

    payment = Transaction.objects.get()
    assert payment.msisdn == hashed
    assert payment.phone_number == ""


@pytest.mark.parametrize(
    ("fixture", "receipt", "amount", "msisdn", "name", "account", "when"),
    [
        (
            MASKED,
            "RKL51ZDR4F",
            5,
            "2547 ***** 126",
            "NICHOLAS",
            "Sample Transaction",
            dt.datetime(2023, 11, 21, 12, 13, 25, tzinfo=NAIROBI),
        ),
        (
            CONFIRMATION_2017,
            "LGR219G3EY",
            10,
            "254708374149",
            "John Doe",
            "xyz",
            dt.datetime(2017, 7, 27, 10, 42, 47, tzinfo=NAIROBI),
        ),
        (
            VALIDATION_2017,
            "LGR219G3EY",
            10,
            "254708374149",
            "John Doe",
            "xyz",
            dt.datetime(2017, 7, 27, 10, 42, 47, tzinfo=NAIROBI),
        ),
    ],
)
def test_every_published_c2b_body_is_recorded_as_a_payment(
    post_c2b, received, fixture, receipt, amount, msisdn, name, account, when
):
    response = post_c2b(CONFIRMATION_PATH, load_fixture(fixture))

    assert response.json() == CONFIRMED
    payment = Transaction.objects.get(transaction_type="C2B")
    assert (
        payment.status,
        payment.mpesa_receipt_number,
        payment.amount,
        payment.msisdn,
        payment.counterparty_name,
        payment.account_reference,
        payment.transaction_date,
    ) == ("success", receipt, amount, msisdn, name, account, when)
    assert payment.transaction_date.utcoffset() is not None
    assert CallbackEvent.objects.get().outcome == "processed"
    assert len(received) == 1


def test_the_same_confirmation_twice_records_one_payment(post_c2b, received):
    body = c2b_body()
    first = post_c2b(CONFIRMATION_PATH, body)
    second = post_c2b(CONFIRMATION_PATH, body)

    assert first.json() == second.json() == CONFIRMED
    payment = Transaction.objects.get()
    outcomes = list(
        CallbackEvent.objects.order_by("received_at", "pk").values_list("outcome", "transaction")
    )
    assert outcomes == [("processed", payment.pk), ("duplicate", payment.pk)]
    assert received == [(payment.pk, "RKL51ZDR4F")]


def test_an_unreadable_confirmation_is_stored_with_its_error_and_acknowledged(post_c2b, received):
    response = post_c2b(CONFIRMATION_PATH, b"TransID=RKL51ZDR4F&TransAmount=5")

    assert response.status_code == 200
    assert response.json() == CONFIRMED
    event = CallbackEvent.objects.get()
    assert event.body == "TransID=RKL51ZDR4F&TransAmount=5"
    assert event.outcome == "error"
    assert "JSON" in event.error
    assert Transaction.objects.count() == 0
    assert received == []


# --- Registering our URLs ---------------------------------------------------------------------


def register_answer(daraja, url: str = REGISTER_V2_URL) -> None:
    daraja.post(url, json=load_fixture("c2b/c2b_register_url_response.portal.json"))


def registrar(user):
    """Staff allowed to register the C2B URLs."""
    return grant(user, "register_c2b_urls")


def test_staff_register_our_urls_with_daraja_v2_by_default(daraja, staff_user):
    register_answer(daraja)
    response = api_client_for(registrar(staff_user)).post(REGISTER_PATH, {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "response_code": "0",
        "response_description": "Success",
        "originator_conversation_id": "6e86-45dd-91ac-fd5d4178ab523408729",
    }
    (call,) = calls_to(daraja, REGISTER_V2_URL)
    sent = json.loads(call.request.body)
    assert sent == {
        "ShortCode": 174379,
        "ResponseType": "Completed",
        "ConfirmationURL": OUR_CONFIRMATION_URL,
        "ValidationURL": OUR_VALIDATION_URL,
    }
    assert sent.keys() == load_fixture("c2b/c2b_register_url_request.portal.json").keys()


def test_staff_register_with_v1_a_response_type_and_a_shortcode_on_request(daraja, staff_user):
    register_answer(daraja, REGISTER_V1_URL)
    response = api_client_for(registrar(staff_user)).post(
        REGISTER_PATH,
        {"api_version": "v1", "response_type": "Cancelled", "shortcode": "600984"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert calls_to(daraja, REGISTER_V2_URL) == []
    (call,) = calls_to(daraja, REGISTER_V1_URL)
    assert json.loads(call.request.body) == {
        "ShortCode": 600984,
        "ResponseType": "Cancelled",
        "ConfirmationURL": OUR_CONFIRMATION_URL,
        "ValidationURL": OUR_VALIDATION_URL,
    }


def test_registering_urls_needs_staff(daraja, user):
    register_answer(daraja)
    assert api_client_for(user).post(REGISTER_PATH, {}, format="json").status_code == 403
    assert APIClient().post(REGISTER_PATH, {}, format="json").status_code == 401
    assert len(daraja.calls) == 0


def test_register_command_sends_the_requested_version_type_and_shortcode(daraja):
    register_answer(daraja, REGISTER_V1_URL)
    out = StringIO()
    call_command(
        "mpesa_register_urls",
        "--api-version",
        "v1",
        "--response-type",
        "Cancelled",
        "--shortcode",
        "600984",
        stdout=out,
    )

    (call,) = calls_to(daraja, REGISTER_V1_URL)
    assert json.loads(call.request.body) == {
        "ShortCode": 600984,
        "ResponseType": "Cancelled",
        "ConfirmationURL": OUR_CONFIRMATION_URL,
        "ValidationURL": OUR_VALIDATION_URL,
    }
    assert "Registered: 0 Success" in out.getvalue()


def test_register_command_uses_v2_and_completed_by_default(daraja):
    register_answer(daraja)
    call_command("mpesa_register_urls", stdout=StringIO())

    (call,) = calls_to(daraja, REGISTER_V2_URL)
    assert json.loads(call.request.body)["ResponseType"] == "Completed"


UNUSABLE_BASES = [
    pytest.param("http://pay.example.co.ke", "https", id="plain-http"),
    pytest.param("https://mpesa.example.co.ke", "mpesa", id="banned-host"),
    pytest.param("https://x.co.ke/Query", "query", id="banned-path"),
]


@pytest.mark.parametrize(("base", "reason"), UNUSABLE_BASES)
def test_register_api_refuses_an_unusable_base_url_before_calling_daraja(
    daraja, staff_user, base, reason
):
    register_answer(daraja)
    with override_settings(DEBUG=False, PAYMENTS=payments_with(CALLBACK_BASE_URL=base)):
        response = api_client_for(registrar(staff_user)).post(REGISTER_PATH, {}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["callback_base_url"]
    assert reason in body["detail"]
    # The secret is in the URL's path: an error message never shows it.
    assert SECRET not in response.content.decode()
    assert len(daraja.calls) == 0


@pytest.mark.parametrize(("base", "reason"), UNUSABLE_BASES)
def test_register_command_refuses_an_unusable_base_url_before_calling_daraja(daraja, base, reason):
    register_answer(daraja)
    with (
        override_settings(DEBUG=False, PAYMENTS=payments_with(CALLBACK_BASE_URL=base)),
        pytest.raises(CommandError) as refused,
    ):
        call_command("mpesa_register_urls", stdout=StringIO())

    assert "callback_base_url" in str(refused.value)
    assert reason in str(refused.value)
    assert SECRET not in str(refused.value)
    assert len(daraja.calls) == 0


def test_register_allows_plain_http_in_debug(daraja):
    register_answer(daraja)
    base = "http://pay.example.co.ke"
    with override_settings(DEBUG=True, PAYMENTS=payments_with(CALLBACK_BASE_URL=base)):
        call_command("mpesa_register_urls", stdout=StringIO())

    (call,) = calls_to(daraja, REGISTER_V2_URL)
    assert json.loads(call.request.body)["ValidationURL"] == (
        f"http://pay.example.co.ke{VALIDATION_PATH.format(SECRET)}"
    )


# --- Simulating a payment in the sandbox ------------------------------------------------------


def test_simulate_command_posts_a_payment_from_the_phone_in_daraja_form(daraja):
    daraja.post(SIMULATE_URL, json=load_fixture("c2b/c2b_simulate_response.portal.json"))
    out = StringIO()
    call_command(
        "mpesa_simulate_c2b",
        "--phone",
        "0708374149",
        "--amount",
        "10",
        "--bill-ref",
        "INV1",
        stdout=out,
    )

    (call,) = calls_to(daraja, SIMULATE_URL)
    sent = json.loads(call.request.body)
    assert sent == {
        "ShortCode": 174379,
        "CommandID": "CustomerPayBillOnline",
        "Amount": 10,
        "Msisdn": 254708374149,
        "BillRefNumber": "INV1",
    }
    assert sent.keys() == load_fixture("c2b/c2b_simulate_request.portal.json").keys()
    assert "Accept the service request successfully." in out.getvalue()


def test_simulate_command_is_refused_in_production(daraja):
    with (
        override_settings(PAYMENTS=payments_with(ENVIRONMENT="production")),
        pytest.raises(CommandError, match="sandbox"),
    ):
        call_command(
            "mpesa_simulate_c2b", "--phone", "0708374149", "--amount", "10", stdout=StringIO()
        )
    assert len(daraja.calls) == 0


def test_a_c2b_confirmation_of_an_stk_payment_is_not_a_second_payment(client):
    stk = Transaction.objects.create(
        transaction_type="STK_PUSH",
        status="success",
        amount=5,
        mpesa_receipt_number="RKL51ZDR4F",
        environment="sandbox",
    )
    body = load_fixture(MASKED)
    body["TransID"] = "RKL51ZDR4F"

    response = client.post(
        CONFIRMATION_PATH.format(settings.PAYMENTS["CALLBACK_SECRET"]),
        body,
        content_type="application/json",
    )

    assert response.status_code == 200
    assert list(Transaction.objects.values_list("pk", flat=True)) == [stk.pk]
    event = CallbackEvent.objects.get()
    assert (event.outcome, event.transaction_id) == ("duplicate", stk.pk)

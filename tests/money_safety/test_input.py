"""Issue 9, input: ASCII-only phone digits (9), callback bodies any bytes (10), certificate
errors caught before a request is written (11)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from payments.checks import check_payments_settings
from payments.daraja.errors import InvalidPhoneNumberError
from payments.daraja.phone import normalize_phone_number
from payments.enums import CallbackOutcome, InquiryKind, TransactionStatus, TransactionType
from payments.models import CallbackEvent, DarajaInquiry, PayoutRequest, Transaction
from payments.services.checkout import checkout_link_create
from tests.admin.conftest import ConfirmingClient
from tests.admin.helpers import CALLBACKS, PAYOUT
from tests.payments.conftest import (
    PUSH_PATH,
    STK_PUSH_URL,
    api_client_for,
    calls_to,
    load_fixture,
    push_accepted,
    stk_callback,
    stk_transaction,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    BALANCE_PATH,
    BALANCE_URL,
    REFRESH_PATH,
    REVERSAL_URL,
    REVERSE_PATH,
    STATUS_URL,
    accept,
    paid_transaction,
    sent,
    staff_user_with,
)

pytestmark = pytest.mark.django_db


def in_script(digits: str, zero: str) -> str:
    """``digits`` written with the decimal digits of the script whose zero is ``zero``."""
    return "".join(chr(ord(zero) + int(digit)) for digit in digits)


# 0708374149 written partly or wholly with the digits of other scripts, which Python counts
# as decimal digits. The first is the example.
OTHER_SCRIPT_PHONES = {
    "arabic-indic": "07" + in_script("08374149", "\u0660"),
    "extended-arabic-indic": "07" + in_script("08374149", "\u06f0"),
    "devanagari": "07" + in_script("08374149", "\u0966"),
    "fullwidth": in_script("0708374149", "\uff10"),
    "international-arabic-indic": "+" + in_script("254708374149", "\u0660"),
}


def with_payments(**overrides) -> override_settings:
    return override_settings(PAYMENTS={**settings.PAYMENTS, **overrides})


def accept_every_push(daraja) -> None:
    """Daraja accepts each push with a CheckoutRequestID of its own (the column is unique)."""
    numbers = iter(range(1, 1000))
    daraja.add_callback(
        "POST",
        STK_PUSH_URL,
        callback=lambda request: (200, {}, json.dumps(push_accepted(f"ws_CO_{next(numbers)}"))),
        content_type="application/json",
    )


@pytest.fixture
def shopper(django_user_model):
    return api_client_for(django_user_model.objects.create_user("shopper", password="pw-shop-1"))


def stk_push(api, phone: str):
    body = {"phone_number": phone, "amount": 1, "account_reference": "INV42"}
    return api.post(PUSH_PATH, body, format="json")


def checkout_start(client: Client, phone: str):
    token = checkout_link_create(amount=10, account_reference="INV42")
    path = reverse("payments:checkout-pay", kwargs={"token": token})
    return client.post(path, {"phone_number": phone}, content_type="application/json")


def assert_400_naming_phone(response) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == ["phone_number"]
    assert "not a Kenyan mobile number" in body["errors"]["phone_number"][0]


# -- 9. phone numbers are ASCII digits only ----------------------------------------------------


@pytest.mark.parametrize("phone", OTHER_SCRIPT_PHONES.values(), ids=OTHER_SCRIPT_PHONES.keys())
def test_p09_normaliser_refuses_digits_of_other_scripts(phone):
    with pytest.raises(InvalidPhoneNumberError):
        normalize_phone_number(phone)


@pytest.mark.parametrize("phone", OTHER_SCRIPT_PHONES.values(), ids=OTHER_SCRIPT_PHONES.keys())
def test_p09_stk_push_api_refuses_other_digits_with_the_usual_400(shopper, daraja, phone):
    response = stk_push(shopper, phone)

    assert_400_naming_phone(response)
    assert Transaction.objects.count() == 0
    assert calls_to(daraja, STK_PUSH_URL) == []


def test_p09_checkout_start_refuses_other_digits_with_the_usual_400(client, daraja):
    response = checkout_start(client, OTHER_SCRIPT_PHONES["arabic-indic"])

    assert_400_naming_phone(response)
    assert Transaction.objects.count() == 0
    assert calls_to(daraja, STK_PUSH_URL) == []


@with_payments(STK_RATE_PER_PHONE="1/min")
def test_p09_per_phone_throttle_is_not_bypassed_with_other_digits(shopper, daraja):
    accept_every_push(daraja)

    first = stk_push(shopper, "0708374149")
    again = stk_push(shopper, OTHER_SCRIPT_PHONES["arabic-indic"])

    assert first.status_code == 201, first.content
    assert_400_naming_phone(again)
    assert len(calls_to(daraja, STK_PUSH_URL)) == 1


@with_payments(STK_RATE_PER_PHONE="1/min")
def test_p09_checkout_page_throttle_is_not_bypassed_with_other_digits(client, daraja):
    accept_every_push(daraja)

    first = checkout_start(client, "0708374149")
    again = checkout_start(client, OTHER_SCRIPT_PHONES["extended-arabic-indic"])

    assert first.status_code == 201, first.content
    assert_400_naming_phone(again)
    assert len(calls_to(daraja, STK_PUSH_URL)) == 1


def test_p09_admin_payout_form_refuses_other_digits(django_user_model, daraja):
    manager = staff_user_with(django_user_model, "payer", "pay_out")
    browser = ConfirmingClient()
    browser.force_login(manager)
    form = {
        "phone_number": OTHER_SCRIPT_PHONES["arabic-indic"],
        "amount": "50",
        "command_id": "BusinessPayment",
        "remarks": "Supplier invoice 17",
        "occasion": "",
    }

    confirm = browser.post(PAYOUT, {**form, "step": "confirm"})
    execute = browser.post(PAYOUT, {**form, "step": "execute"})

    for response in (confirm, execute):
        assert response.status_code == 200
        assert "Not a Kenyan mobile number" in response.content.decode()
    assert PayoutRequest.objects.count() == 0
    assert Transaction.objects.count() == 0
    assert len(daraja.calls) == 0


def test_p09_a_shortcode_in_other_digits_is_not_sent_as_another_number(officer, daraja):
    accept(daraja, BALANCE_URL)
    shortcode = in_script("600992", "\u0660")

    response = officer.post(BALANCE_PATH, {"shortcode": shortcode}, format="json")

    # Refused before Daraja (issue 10, shortcodes are ASCII digits), never sent as the number
    # 600992 while the inquiry records another shortcode.
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["shortcode"]
    assert sent(daraja, BALANCE_URL) == []


# -- 10. callback bodies with a NUL byte or invalid UTF-8 ---------------------------------------

NUL_BODY = b'{"Body": {"stkCallback": {"ResultCode": 0\x00}}}'
INVALID_UTF8_BODY = b'{"Result": {"ResultCode": 0, "ResultDesc": "\xff\xfe broken"}}'
RESULT_ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
MASKED_C2B = "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"


def _stk_token() -> str:
    return stk_transaction(checkout_request_id="ws_CO_p10").callback_token


def _money_out_token(transaction_type: str) -> str:
    return Transaction.objects.create(
        transaction_type=transaction_type,
        status=TransactionStatus.PENDING,
        amount=10,
        phone_number="254708374149",
        environment="sandbox",
        originator_conversation_id=f"p10-{transaction_type}",
    ).callback_token


def _inquiry_token(kind: str) -> str:
    transaction = None
    if kind == InquiryKind.STATUS:
        transaction = Transaction.objects.create(
            transaction_type=TransactionType.B2C,
            status=TransactionStatus.UNKNOWN,
            amount=10,
            phone_number="254708374149",
            environment="sandbox",
        )
    return DarajaInquiry.objects.create(kind=kind, transaction=transaction).token


CALLBACK_ROUTES = {
    "stk": ("/api/v1/payments/callbacks/stk/{}", _stk_token, RESULT_ACK),
    "b2c-result": (
        "/api/v1/payments/callbacks/b2c/{}/result",
        lambda: _money_out_token(TransactionType.B2C),
        RESULT_ACK,
    ),
    "b2c-timeout": (
        "/api/v1/payments/callbacks/b2c/{}/timeout",
        lambda: _money_out_token(TransactionType.B2C),
        RESULT_ACK,
    ),
    "reversal-result": (
        "/api/v1/payments/callbacks/reversal/{}/result",
        lambda: _money_out_token(TransactionType.REVERSAL),
        RESULT_ACK,
    ),
    "reversal-timeout": (
        "/api/v1/payments/callbacks/reversal/{}/timeout",
        lambda: _money_out_token(TransactionType.REVERSAL),
        RESULT_ACK,
    ),
    "balance-result": (
        "/api/v1/payments/callbacks/balance/{}/result",
        lambda: _inquiry_token(InquiryKind.BALANCE),
        RESULT_ACK,
    ),
    "balance-timeout": (
        "/api/v1/payments/callbacks/balance/{}/timeout",
        lambda: _inquiry_token(InquiryKind.BALANCE),
        RESULT_ACK,
    ),
    "status-result": (
        "/api/v1/payments/callbacks/status/{}/result",
        lambda: _inquiry_token(InquiryKind.STATUS),
        RESULT_ACK,
    ),
    "status-timeout": (
        "/api/v1/payments/callbacks/status/{}/timeout",
        lambda: _inquiry_token(InquiryKind.STATUS),
        RESULT_ACK,
    ),
    "c2b-validation": (
        "/api/v1/payments/callbacks/c2b/{}/validation",
        lambda: settings.PAYMENTS["CALLBACK_SECRET"],
        {"ResultCode": "C2B00016", "ResultDesc": "Rejected"},
    ),
    "c2b-confirmation": (
        "/api/v1/payments/callbacks/c2b/{}/confirmation",
        lambda: settings.PAYMENTS["CALLBACK_SECRET"],
        {"ResultCode": 0, "ResultDesc": "Success"},
    ),
}


@pytest.mark.parametrize("body", [NUL_BODY, INVALID_UTF8_BODY], ids=["nul", "invalid-utf8"])
@pytest.mark.parametrize("route", CALLBACK_ROUTES)
def test_p10_odd_bytes_are_stored_exactly_and_acknowledged(client, route, body):
    path, token, acknowledgement = CALLBACK_ROUTES[route]

    response = client.post(path.format(token()), body, content_type="application/json")

    assert response.status_code == 200, response.content
    assert response.json() == acknowledgement
    [event] = CallbackEvent.objects.all()
    assert event.received_bytes == body
    assert "\x00" not in event.body and "\ufffd" not in event.body
    assert "\\x00" in event.body or "\\xff\\xfe broken" in event.body
    assert event.outcome != CallbackOutcome.RECEIVED  # processed (into an error), not lost
    assert "\x00" not in event.error


def test_p10_a_confirmation_with_a_stray_byte_is_kept_exactly_and_still_books_the_payment(
    client, django_capture_on_commit_callbacks
):
    # A Latin-1 byte in the payer's name: not UTF-8, as no genuine body should be.
    notification = {**load_fixture(MASKED_C2B), "FirstName": "JOS@"}
    body = json.dumps(notification).encode().replace(b"JOS@", b"JOS\xc9")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("payments:c2b-confirmation", args=[settings.PAYMENTS["CALLBACK_SECRET"]]),
            body,
            content_type="application/json",
        )

    assert response.status_code == 200
    [event] = CallbackEvent.objects.all()
    assert event.received_bytes == body
    assert event.outcome == CallbackOutcome.PROCESSED, event.error
    [payment] = Transaction.objects.filter(transaction_type=TransactionType.C2B)
    assert payment.counterparty_name == "JOS\ufffd"
    assert payment.mpesa_receipt_number == notification["TransID"]


def test_p10_a_nul_escaped_inside_the_json_never_reaches_a_text_column(client):
    transaction = stk_transaction(checkout_request_id="ws_CO_p10_escaped")
    body = stk_callback(
        checkout_request_id="ws_CO_p10_escaped", amount=1, phone_number="254708374149"
    )
    callback = body["Body"]["stkCallback"]
    callback["ResultDesc"] = "The service request is processed successfully.\x00"

    response = client.post(
        f"/api/v1/payments/callbacks/stk/{transaction.callback_token}",
        json.dumps(body),
        content_type="application/json",
    )

    assert response.status_code == 200
    [event] = CallbackEvent.objects.all()
    assert event.outcome == CallbackOutcome.PROCESSED, event.error
    transaction.refresh_from_db()
    assert transaction.status == TransactionStatus.SUCCESS
    assert "\x00" not in transaction.result_desc
    assert "\x00" not in json.dumps(transaction.metadata)


def test_p10_a_nul_escaped_in_the_receipt_leaves_the_push_unpaid_and_flagged(client):
    # Issue 10 reads receipts by shape: "NLJ7RT61SV\ufffd" is no M-Pesa receipt, and booked
    # under it the payment would not be found again by its real one.
    transaction = stk_transaction(checkout_request_id="ws_CO_p10_receipt")
    body = stk_callback(
        checkout_request_id="ws_CO_p10_receipt", amount=1, phone_number="254708374149"
    )
    for item in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == "MpesaReceiptNumber":
            item["Value"] = "NLJ7RT61SV\x00"

    client.post(
        f"/api/v1/payments/callbacks/stk/{transaction.callback_token}",
        json.dumps(body),
        content_type="application/json",
    )

    [event] = CallbackEvent.objects.all()
    assert event.outcome == CallbackOutcome.REJECTED
    transaction.refresh_from_db()
    assert (transaction.status, transaction.needs_review) == (TransactionStatus.PENDING, True)
    assert transaction.mpesa_receipt_number == ""


def test_p10_a_header_with_a_nul_is_stored_without_it(client):
    token = _stk_token()

    response = client.post(
        f"/api/v1/payments/callbacks/stk/{token}",
        b"{}",
        content_type="application/json",
        HTTP_USER_AGENT="Daraja\x00probe",
    )

    assert response.status_code == 200
    [event] = CallbackEvent.objects.all()
    assert "\x00" not in json.dumps(event.headers)
    assert event.headers["User-Agent"].startswith("Daraja")


def test_p10_the_callback_inbox_shows_such_an_event(client, superuser_client):
    token = _stk_token()
    client.post(
        f"/api/v1/payments/callbacks/stk/{token}", NUL_BODY, content_type="application/json"
    )
    client.post(
        f"/api/v1/payments/callbacks/stk/{token}",
        INVALID_UTF8_BODY,
        content_type="application/json",
    )

    listing = superuser_client.get(CALLBACKS)
    found = superuser_client.get(CALLBACKS, {"q": "broken"})
    pages = [
        superuser_client.get(f"{CALLBACKS}{event.pk}/change/")
        for event in CallbackEvent.objects.all()
    ]

    assert listing.status_code == 200
    assert found.status_code == 200 and found.context["cl"].result_count == 1
    assert [page.status_code for page in pages] == [200, 200]
    shown = "".join(page.content.decode() for page in pages)
    assert "\\x00" in shown
    assert "\\xff\\xfe broken" in shown
    assert "exact bytes" in shown


@pytest.fixture
def superuser_client(django_user_model) -> Client:
    browser = Client()
    browser.force_login(django_user_model.objects.create_superuser("root", password="pw-root-1"))
    return browser


# -- 11. certificate and SecurityCredential errors ----------------------------------------------

INITIATOR_PASSWORD = "ip-SECRET-Pa55word"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def certificates(tmp_path, rsa_key) -> dict[str, Path]:
    """A throwaway certificate as PEM and DER, and files that are not certificates."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apicrypt.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(rsa_key, hashes.SHA256())
    )
    files = {
        "pem": certificate.public_bytes(serialization.Encoding.PEM),
        "der": certificate.public_bytes(serialization.Encoding.DER),
        "garbage": b"this is not a certificate\n",
        "truncated-pem": certificate.public_bytes(serialization.Encoding.PEM)[:300],
        "private-key": rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }
    paths = {}
    for kind, content in files.items():
        paths[kind] = tmp_path / f"{kind}.cer"
        paths[kind].write_bytes(content)
    paths["missing"] = tmp_path / "no-such.cer"
    paths["directory"] = tmp_path
    return paths


BROKEN_CERTIFICATES = ["garbage", "truncated-pem", "private-key", "missing", "directory"]


def certificate_settings(path: Path) -> override_settings:
    return with_payments(
        SECURITY_CREDENTIAL="", INITIATOR_PASSWORD=INITIATOR_PASSWORD, CERTIFICATE_PATH=str(path)
    )


@pytest.fixture
def officer(django_user_model):
    """Staff allowed every money-out and inquiry operation of the API."""
    user = staff_user_with(
        django_user_model, "officer", "pay_out", "refund", "view_balance", "query_status"
    )
    return api_client_for(user)


def _payout(api):
    return api.post(
        B2C_PATH,
        {"phone_number": "0708374149", "amount": 10, "remarks": "Refund order 42"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="p11-payout",
    )


def _reversal(api):
    payment = paid_transaction()
    return api.post(
        REVERSE_PATH,
        {"transaction": str(payment.pk), "remarks": "Refund"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="p11-reversal",
    )


def _balance(api):
    return api.post(BALANCE_PATH, {}, format="json")


def _status(api):
    payout = Transaction.objects.create(
        transaction_type=TransactionType.B2C,
        status=TransactionStatus.UNKNOWN,
        amount=10,
        phone_number="254708374149",
        environment="sandbox",
        originator_conversation_id="b2c-p11-status",
    )
    return api.post(REFRESH_PATH.format(payout.pk))


# How to ask for each operation through the API, and the Daraja URL it would reach.
OPERATIONS = {
    "b2c": (_payout, B2C_URL),
    "reversal": (_reversal, REVERSAL_URL),
    "balance": (_balance, BALANCE_URL),
    "status": (_status, STATUS_URL),
}


def rows() -> dict[str, int]:
    return {
        "money_out": Transaction.objects.filter(
            transaction_type__in=(TransactionType.B2C, TransactionType.REVERSAL)
        ).count(),
        "inquiries": DarajaInquiry.objects.count(),
        "payout_requests": PayoutRequest.objects.count(),
    }


@pytest.mark.parametrize("broken", BROKEN_CERTIFICATES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_p11_a_bad_certificate_is_a_503_before_any_row_is_written(
    officer, daraja, certificates, operation, broken
):
    request, url = OPERATIONS[operation]
    accept(daraja, url)

    with certificate_settings(certificates[broken]):
        response = request(officer)
        written = rows()

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "not_configured"
    assert str(certificates[broken]) in body["detail"]
    assert "certificate" in body["detail"]
    assert INITIATOR_PASSWORD not in body["detail"]
    # Only the row the test itself made for a status query: nothing for the request.
    assert written == {
        "money_out": 1 if operation == "status" else 0,
        "inquiries": 0,
        "payout_requests": 0,
    }
    assert sent(daraja, url) == []


@pytest.mark.parametrize("form", ["pem", "der"])
def test_p11_pem_and_der_certificates_both_make_the_credential(
    officer, daraja, certificates, rsa_key, form
):
    accept(daraja, B2C_URL)

    with certificate_settings(certificates[form]):
        response = _payout(officer)

    assert response.status_code == 202, response.content
    [request] = sent(daraja, B2C_URL)
    credential = base64.b64decode(request["SecurityCredential"])
    assert rsa_key.decrypt(credential, padding.PKCS1v15()) == INITIATOR_PASSWORD.encode()


def e008(**payments) -> list:
    with with_payments(**payments), override_settings(DEBUG=False):
        return [m for m in check_payments_settings() if m.id == "payments.E008"]


@pytest.mark.parametrize("broken", BROKEN_CERTIFICATES)
def test_p11_system_check_e008_reports_a_bad_certificate(certificates, broken):
    [error] = e008(
        SECURITY_CREDENTIAL="",
        INITIATOR_PASSWORD=INITIATOR_PASSWORD,
        CERTIFICATE_PATH=str(certificates[broken]),
    )

    assert str(certificates[broken]) in error.msg
    assert "MPESA_CERTIFICATE_PATH" in error.hint
    assert INITIATOR_PASSWORD not in f"{error.msg} {error.hint}"


@pytest.mark.parametrize(
    "payments",
    [
        pytest.param({"CERTIFICATE_PATH": "pem"}, id="pem"),
        pytest.param({"CERTIFICATE_PATH": "der"}, id="der"),
        pytest.param(
            {"CERTIFICATE_PATH": "garbage", "SECURITY_CREDENTIAL": "precomputed"},
            id="security-credential-set",
        ),
        pytest.param({"CERTIFICATE_PATH": "garbage", "INITIATOR_PASSWORD": ""}, id="no-password"),
        pytest.param({"CERTIFICATE_PATH": ""}, id="no-certificate"),
    ],
)
def test_p11_system_check_e008_is_silent_otherwise(certificates, payments):
    values = {"SECURITY_CREDENTIAL": "", "INITIATOR_PASSWORD": INITIATOR_PASSWORD, **payments}
    name = values["CERTIFICATE_PATH"]
    values["CERTIFICATE_PATH"] = str(certificates[name]) if name else ""

    assert e008(**values) == []

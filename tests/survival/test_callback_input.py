"""Issue 10, callbacks: what garbage at the callback URLs found, one regression test per point.

Found 2 (deep nesting), 5 (C2B confirmations acknowledged with nothing booked), 6 (chunked
bodies, the WSGI part; tests/survival/test_gunicorn.py sends one through a real gunicorn) and 7
(exponent amounts); and the callback body size limit.
"""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils.html import escape

from payments.daraja.callbacks import (
    parse_account_balance_result,
    parse_b2c_result,
    parse_c2b_notification,
    parse_reversal_result,
    parse_stk_callback,
    parse_transaction_status_result,
)
from payments.daraja.errors import DarajaCallbackError
from payments.enums import CallbackOutcome, TransactionStatus, TransactionType
from payments.models import CallbackEvent, Transaction
from payments.wsgi import ChunkedBodyMiddleware
from tests.survival.callback_targets import (
    AMOUNT,
    CONFIRMATION_ACK,
    ROUTES,
    VALIDATION_REJECTED,
    acknowledgement,
    columns_overflowing,
    confirmation,
    encoded,
    target,
)

pytestmark = pytest.mark.django_db

INBOX = "/admin/payments/callbackevent/"
NEEDS_A_PERSON = {"needs_person": "yes"}
# Far deeper than json's recursion limit, well inside the body size limit.
DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


@pytest.fixture
def superuser_client(django_user_model) -> Client:
    browser = Client()
    browser.force_login(django_user_model.objects.create_superuser("root", password="pw-root-1"))
    return browser


def post(client: Client, path: str, body: bytes, **extra):
    return client.post(path, body, content_type="application/json", **extra)


def needing_a_person(browser: Client) -> set[int]:
    response = browser.get(INBOX, NEEDS_A_PERSON)
    assert response.status_code == 200
    return {event.pk for event in response.context["cl"].result_list}


# -- Found 2: deeply nested JSON ---------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("route", ROUTES)
def test_found_02_deep_nesting_is_stored_and_acknowledged_at_every_callback_url(
    client, route, body
):
    aim = target(route)
    before = aim.refreshed()

    response = post(client, aim.path, body)

    assert response.status_code == 200
    assert response.json() == acknowledgement(route)
    [event] = CallbackEvent.objects.all()
    assert event.received_bytes == body
    assert "RecursionError" not in event.error
    if not route.endswith("timeout"):  # a queue timeout's URL says it all, whatever the body
        assert event.outcome == CallbackOutcome.ERROR
        assert "nested deeper than 32" in event.error
        after = aim.refreshed()
        assert getattr(after, "status", None) == getattr(before, "status", None)


def test_found_02_c2b_validation_of_a_deep_body_is_rejected_and_kept_failed(
    client, superuser_client
):
    aim = target("c2b-validation")

    response = post(client, aim.path, DEEP_ARRAY)

    assert response.json() == VALIDATION_REJECTED
    [event] = CallbackEvent.objects.all()
    assert event.outcome == CallbackOutcome.ERROR
    assert needing_a_person(superuser_client) == {event.pk}


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_found_02_the_callback_inbox_shows_a_deeply_nested_body(client, superuser_client, body):
    post(client, target("stk").path, body)
    [event] = CallbackEvent.objects.all()

    page = superuser_client.get(f"{INBOX}{event.pk}/change/")

    assert page.status_code == 200
    assert escape(body[:64].decode()) in page.content.decode()


def test_the_callback_inbox_shows_a_body_with_an_escaped_lone_surrogate(client, superuser_client):
    # Found by the fuzz: pretty-printed, "\\udfff" became a character UTF-8 cannot encode (a 500).
    body = encoded(confirmation(FirstName="\udfff"))
    post(client, target("c2b-validation").path, body)
    [event] = CallbackEvent.objects.all()

    page = superuser_client.get(f"{INBOX}{event.pk}/change/")

    assert page.status_code == 200
    assert "\\udfff" in page.content.decode()


# -- Found 5: C2B confirmations that could not be booked as sent ------------------------------

# Each would fail to book today: a DataError on PostgreSQL, an overflow, or a parse error.
UNBOOKABLE_AS_SENT = {
    "amount-over-integer-range": {"TransAmount": "3000000000"},
    "negative-amount": {"TransAmount": "-5.00"},
    "zero-amount": {"TransAmount": "0"},
    "escaped-nul-in-reference": {"BillRefNumber": "INV\u000042"},
    "lone-surrogate-in-name": {"FirstName": "\udfff"},
    "msisdn-over-128": {"MSISDN": "2547" + "*" * 200},
    "reference-over-20": {"BillRefNumber": "INV" + "0" * 40},
    "names-over-150": {"FirstName": "N" * 100, "LastName": "M" * 100},
    "shortcode-over-16": {"BusinessShortCode": "6" * 30},
    "transaction-type-over-32": {"TransactionType": "Pay Bill " * 10},
    "year-one": {"TransTime": "00010101000000"},
}
# Nothing can be booked from these: the confirmation stays failed, for a person.
UNREADABLE = {
    "transid-over-20": {"TransID": "R" * 25},
    "transid-with-a-nul": {"TransID": "RKL51ZDR4F\u0000"},
    "deep-name": {"FirstName": json.loads(b"[" * 40 + b"]" * 40)},
    "exponent-amount": {"TransAmount": "1e30"},
}


def _confirm(client, **changes):
    aim = target("c2b-confirmation")
    body = json.dumps(confirmation(**changes)).encode()
    response = post(client, aim.path, body)
    assert response.status_code == 200
    assert response.json() == CONFIRMATION_ACK
    event = CallbackEvent.objects.latest("pk")
    assert event.received_bytes == body
    return event


@pytest.mark.parametrize("changes", UNBOOKABLE_AS_SENT.values(), ids=UNBOOKABLE_AS_SENT.keys())
def test_found_05_a_confirmation_not_bookable_as_sent_is_booked_flagged_and_listed(
    client, superuser_client, changes
):
    event = _confirm(client, **changes)

    assert event.outcome == CallbackOutcome.PROCESSED, event.error
    payment = event.transaction
    assert payment is not None and payment.transaction_type == TransactionType.C2B
    assert payment.status == TransactionStatus.SUCCESS
    assert payment.needs_review and payment.review_reason
    assert event.error == payment.review_reason
    assert columns_overflowing() == []
    assert needing_a_person(superuser_client) == {event.pk}


def test_found_05_an_amount_the_ledger_cannot_hold_books_nothing_and_says_why(client):
    event = _confirm(client, TransAmount="-5.00")

    payment = event.transaction
    assert payment.amount == 0
    assert payment.metadata["trans_amount"] == "-5.00"
    assert "-5.00" in payment.review_reason
    assert "not whole shillings" not in payment.review_reason


def test_found_05_text_that_did_not_fit_books_the_amount_and_keeps_the_whole_reference(client):
    reference = "INV" + "0" * 40

    event = _confirm(client, BillRefNumber=reference, MSISDN="2547" + "*" * 200)

    payment = event.transaction
    assert payment.amount == 5
    assert payment.account_reference == reference[:20]
    assert payment.metadata["bill_ref_number"] == reference
    assert "BillRefNumber" in payment.review_reason and "MSISDN" in payment.review_reason


@pytest.mark.parametrize("changes", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_found_05_an_unreadable_confirmation_stays_failed_and_listed(
    client, superuser_client, changes
):
    event = _confirm(client, **changes)

    assert event.outcome == CallbackOutcome.ERROR
    assert event.error.startswith("unreadable C2B confirmation")
    assert Transaction.objects.count() == 0
    assert needing_a_person(superuser_client) == {event.pk}


def test_found_05_a_raw_nul_byte_in_a_confirmation_is_kept_failed_and_listed(
    client, superuser_client
):
    body = encoded(confirmation()).replace(b"NICHOLAS", b"NICH\x00LAS")

    response = post(client, target("c2b-confirmation").path, body)

    assert response.json() == CONFIRMATION_ACK
    [event] = CallbackEvent.objects.all()
    assert event.received_bytes == body
    assert event.outcome == CallbackOutcome.ERROR
    assert needing_a_person(superuser_client) == {event.pk}


def test_found_05_the_inbox_lists_only_what_needs_a_person(client, superuser_client):
    booked = _confirm(client)
    flagged = _confirm(client, TransAmount="0.50")
    failed = _confirm(client, TransID="")
    stray = post(client, f"/api/v1/payments/callbacks/stk/{'x' * 48}", b"{}")
    push = target("stk")
    post(client, push.path, encoded(push.genuine))
    paid = CallbackEvent.objects.latest("pk")

    listed = needing_a_person(superuser_client)

    assert stray.status_code == 404  # an unknown token stores nothing
    assert paid.outcome == CallbackOutcome.PROCESSED
    assert listed == {flagged.pk, failed.pk}
    assert booked.pk not in listed


# -- Found 7: exponent bombs in amounts --------------------------------------------------------

BOMB = "1e300000"  # about three seconds of Decimal -> int before the fix; "1e1000000" thirty


def _with_amount(body: dict, key: str, value) -> dict:
    for item in body["Result"]["ResultParameters"]["ResultParameter"]:
        if item["Key"] == key:
            item["Value"] = value
    return body


def test_found_07_a_c2b_exponent_amount_is_refused_by_its_shape_at_once(client):
    started = time.monotonic()

    event = _confirm(client, TransAmount=BOMB)

    assert time.monotonic() - started < 1
    assert event.outcome == CallbackOutcome.ERROR
    assert "TransAmount is not a number" in event.error


def _stk_with_amount(value) -> dict:
    body = target("stk").genuine
    for item in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == "Amount":
            item["Value"] = value
    return body


# Every amount field of every callback kind, with the parser that reads it.
AMOUNT_FIELDS = {
    "stk-amount": (parse_stk_callback, lambda v: _stk_with_amount(v)),
    "c2b-trans-amount": (parse_c2b_notification, lambda v: confirmation(TransAmount=v)),
    "b2c-amount": (
        parse_b2c_result,
        lambda v: _with_amount(target("b2c-result").genuine, "TransactionAmount", v),
    ),
    "reversal-amount": (
        parse_reversal_result,
        lambda v: _with_amount(target("reversal-result").genuine, "Amount", v),
    ),
    "status-amount": (
        parse_transaction_status_result,
        lambda v: _with_amount(target("status-result").genuine, "Amount", v),
    ),
}


@pytest.mark.parametrize("value", [BOMB, "-1e300000", "1E+999999", "12345678901234567890"])
@pytest.mark.parametrize("field", AMOUNT_FIELDS)
def test_found_07_every_callback_amount_of_a_bad_shape_is_not_a_number(field, value):
    parse, body_with = AMOUNT_FIELDS[field]

    with pytest.raises(DarajaCallbackError, match="not a number"):
        parse(encoded(body_with(value)))


@pytest.mark.parametrize("value", [BOMB, "1e-300000", "NaN", "12345678901234567890.5"])
def test_found_07_optional_amounts_of_a_bad_shape_read_as_absent(value):
    c2b = parse_c2b_notification(encoded(confirmation(OrgAccountBalance=value)))
    b2c = parse_b2c_result(
        encoded(
            _with_amount(target("b2c-result").genuine, "B2CUtilityAccountAvailableFunds", value)
        )
    )
    balance = target("balance-result").genuine
    balance = _with_amount(balance, "AccountBalance", f"Utility Account|KES|{value}|{value}|0|0")
    [account] = parse_account_balance_result(encoded(balance)).accounts

    assert c2b.org_account_balance is None
    assert b2c.utility_account_balance is None
    assert (account.current, account.available) == (None, None)


def test_found_07_daraja_s_own_amounts_still_read(client):
    assert parse_c2b_notification(encoded(confirmation(TransAmount="5.00"))).trans_amount == 5
    assert parse_stk_callback(encoded(_stk_with_amount(1.00))).amount == 1
    assert parse_stk_callback(encoded(_stk_with_amount(10500))).amount == 10500
    funds = _with_amount(
        target("b2c-result").genuine, "B2CChargesPaidAccountAvailableFunds", -1980.0
    )
    assert parse_b2c_result(encoded(funds)).charges_paid_account_balance == -1980


# -- Found 6: a chunked body is read whole (the WSGI part) -------------------------------------


def _wsgi_call(app, environ: dict) -> tuple[str, bytes, dict]:
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return answer["status"], body, environ


def _chunked_environ(body: bytes) -> dict:
    # As gunicorn builds it for "Transfer-Encoding: chunked": no CONTENT_LENGTH, and an input
    # that ends where the body ends.
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
    }


def _echo(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [environ["wsgi.input"].read(length)]


def test_found_06_a_chunked_body_reaches_django_whole():
    body = encoded(confirmation())

    status, echoed, environ = _wsgi_call(ChunkedBodyMiddleware(_echo), _chunked_environ(body))

    assert status == "200 OK"
    assert echoed == body
    assert environ["CONTENT_LENGTH"] == str(len(body))


def test_found_06_a_chunked_body_over_the_bound_is_refused_unread(caplog):
    stream = io.BytesIO(b"x" * 10_000)
    environ = {**_chunked_environ(b""), "wsgi.input": stream}

    with caplog.at_level(logging.WARNING, logger="payments.wsgi"):
        status, _, _ = _wsgi_call(ChunkedBodyMiddleware(_echo, max_body_size=1_000), environ)

    assert status.startswith("413")
    assert stream.tell() <= 1_001  # never more than the bound and one byte
    assert "413" in caplog.text


def test_found_06_requests_with_a_length_pass_through_untouched():
    stream = io.BytesIO(b"abc")
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": "3",
        "wsgi.input": stream,
        "wsgi.input_terminated": True,
    }

    status, echoed, environ = _wsgi_call(ChunkedBodyMiddleware(_echo), environ)

    assert (status, echoed) == ("200 OK", b"abc")
    assert environ["wsgi.input"] is stream


def test_found_06_the_project_serves_through_the_middleware():
    from mpesa_site.wsgi import application

    assert isinstance(application, ChunkedBodyMiddleware)


# -- The callback body size limit --------------------------------------------------------------


def with_payments(**overrides) -> override_settings:
    return override_settings(PAYMENTS={**settings.PAYMENTS, **overrides})


class UnreadableInput(io.BytesIO):
    """A request stream that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize("route", ["stk", "c2b-confirmation", "c2b-validation"])
def test_a_callback_body_over_the_limit_is_refused_with_413_before_it_is_read(
    client, caplog, superuser_client, route
):
    aim = target(route)
    size = 64 * 1024 + 1

    with caplog.at_level(logging.WARNING, logger="payments.views.callbacks"):
        response = client.post(
            aim.path,
            b"",
            content_type="application/json",
            CONTENT_LENGTH=str(size),
            **{"wsgi.input": UnreadableInput()},
        )

    assert response.status_code == 413
    assert str(size) in caplog.text
    [event] = CallbackEvent.objects.all()
    assert (event.outcome, event.received_bytes) == (CallbackOutcome.REJECTED, b"")
    assert str(size) in event.error
    assert needing_a_person(superuser_client) == {event.pk}


@with_payments(CALLBACK_MAX_BODY_SIZE=1_000)
def test_the_callback_body_limit_is_a_setting(client):
    aim = target("b2c-result")
    body = encoded(aim.genuine)

    refused = post(client, aim.path, body + b" " * 1_000)
    accepted = post(client, aim.path, body)

    assert (refused.status_code, accepted.status_code) == (413, 200)
    assert aim.refreshed().status == TransactionStatus.SUCCESS
    assert aim.refreshed().amount == AMOUNT


def test_an_unknown_token_is_404_before_its_size_is_looked_at(client):
    response = client.post(
        f"/api/v1/payments/callbacks/stk/{'x' * 48}",
        b"",
        content_type="application/json",
        CONTENT_LENGTH=str(10**9),
        **{"wsgi.input": UnreadableInput()},
    )

    assert response.status_code == 404
    assert CallbackEvent.objects.count() == 0

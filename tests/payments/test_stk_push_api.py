"""The STK Push API as the mobile app sees it: starting a push, idempotency, throttling,
authentication, the transaction history and CORS. Daraja is mocked at the HTTP layer only."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid

import pytest
import requests
import responses
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from payments.models import Transaction

from .conftest import (
    CALLBACK_PATH,
    FIXTURES,
    PUSH_PATH,
    STATUS_PATH,
    STK_PUSH_URL,
    TRANSACTIONS_PATH,
    api_client_for,
    calls_to,
    push_accepted,
    stk_callback,
)
from .money_out import grant

pytestmark = pytest.mark.django_db

CHECKOUT = "ws_CO_191220191020363925"
PHONE = "254708374149"
NAIROBI_TZ = dt.timezone(dt.timedelta(hours=3))
TRANSACTION_FIELDS = {
    "id",
    "transaction_type",
    "mpesa_receipt_number",
    "phone_number",
    "amount",
    "account_reference",
    "transaction_desc",
    "merchant_request_id",
    "checkout_request_id",
    "result_code",
    "result_desc",
    "status",
    "transaction_date",
    "created_at",
    "metadata",
    "message",
}
INVALID_PHONE = "errors/error_400.002.02_invalid_phonenumber.issue-osen-wc-mpesa-65.json"
WRONG_CREDENTIALS = "errors/error_500.001.1001_wrong_credentials.issue-django-daraja-3.json"


# -- helpers --------------------------------------------------------------------------------------


def payments_settings(**overrides):
    """override_settings for a few PAYMENTS values, keeping the test settings' others."""
    return override_settings(PAYMENTS={**settings.PAYMENTS, **overrides})


def accept_pushes(daraja: responses.RequestsMock) -> None:
    """Daraja accepts every push, each with its own CheckoutRequestID (the column is unique)."""
    numbers = itertools.count(1)

    def answer(request):
        return 200, {}, json.dumps(push_accepted(f"ws_CO_{next(numbers):022d}"))

    daraja.add_callback(
        responses.POST, STK_PUSH_URL, callback=answer, content_type="application/json"
    )


def push_count(daraja: responses.RequestsMock) -> int:
    return len(calls_to(daraja, STK_PUSH_URL))


def raw_fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def push(client: APIClient, body: dict, *, key: str | None = None, path: str = PUSH_PATH):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(path, body, format="json", **extra)


def post_stk_callback(transaction: Transaction, body: dict, *, client: Client | None = None):
    """Post a result to the transaction's callback URL as Daraja would."""
    response = (client or Client()).post(
        CALLBACK_PATH.format(transaction.callback_token),
        json.dumps(body),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response


def success_callback(checkout_request_id: str = CHECKOUT) -> dict:
    return stk_callback(checkout_request_id=checkout_request_id, amount=1, phone_number=PHONE)


def make_transaction(user, **fields) -> Transaction:
    values = {
        "transaction_type": "STK_PUSH",
        "amount": 100,
        "phone_number": PHONE,
        "environment": "sandbox",
        "user": user,
        "status": "success",
        **fields,
    }
    return Transaction.objects.create(**values)


def set_created_at(transaction: Transaction, when: dt.datetime) -> None:
    Transaction.objects.filter(pk=transaction.pk).update(created_at=when)


def detail_path(transaction_id) -> str:
    return f"{TRANSACTIONS_PATH}/{transaction_id}"


def listed_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def post_callback(client, django_capture_on_commit_callbacks):
    """Post a callback, running on-commit hooks as a real commit would."""

    def post(transaction: Transaction, body: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return post_stk_callback(transaction, body, client=client)

    return post


# -- POST stk-push --------------------------------------------------------------------------------


class TestStartPush:
    @pytest.mark.parametrize("path", [PUSH_PATH, PUSH_PATH + "/"])
    def test_accepted_push_is_201_with_checkout_id_and_customer_message(
        self, api, daraja, push_body, user, path
    ):
        daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))

        response = push(api, push_body, path=path)

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] == "pending"
        assert body["checkout_request_id"] == CHECKOUT
        assert body["customer_message"] == "Success. Request accepted for processing"
        assert body["phone_number"] == PHONE
        assert body["amount"] == 1
        assert body["account_reference"] == "INV00042"
        stored = Transaction.objects.get(pk=body["id"])
        assert (stored.user, stored.status, stored.checkout_request_id) == (
            user,
            "pending",
            CHECKOUT,
        )
        assert push_count(daraja) == 1

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("phone_number", "0608374149"),
            ("phone_number", "07083741"),
            ("phone_number", "+1 202 555 0100"),
            ("amount", 0),
            ("amount", 250001),
            ("amount", 10.5),
            ("amount", "ten"),
            ("amount", True),
            ("account_reference", "INV0000000042"),  # 13 characters
            ("account_reference", "INV#42"),
            ("account_reference", ""),
        ],
    )
    def test_invalid_field_is_400_naming_it_and_nothing_is_stored_or_sent(
        self, api, daraja, push_body, field, value
    ):
        response = push(api, {**push_body, field: value})

        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "invalid"
        assert body["detail"].startswith(f"{field}: ")
        assert list(body["errors"]) == [field]
        assert body["errors"][field]
        assert Transaction.objects.count() == 0
        assert len(daraja.calls) == 0

    @pytest.mark.parametrize("field", ["phone_number", "amount", "account_reference"])
    def test_missing_field_is_400_naming_it_and_nothing_is_stored_or_sent(
        self, api, daraja, push_body, field
    ):
        del push_body[field]

        response = push(api, push_body)

        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "invalid"
        assert body["detail"] == f"{field}: This field is required."
        assert body["errors"] == {field: ["This field is required."]}
        assert Transaction.objects.count() == 0
        assert len(daraja.calls) == 0

    def test_malformed_json_is_400_and_nothing_is_stored_or_sent(self, api, daraja):
        response = api.post(
            PUSH_PATH, '{"phone_number": "0708374149",', content_type="application/json"
        )

        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "parse_error"
        assert "JSON" in body["detail"]
        assert Transaction.objects.count() == 0
        assert len(daraja.calls) == 0

    @pytest.mark.parametrize(
        ("fixture", "http_status", "code", "detail"),
        [
            (INVALID_PHONE, 400, "400.002.02", "Bad Request - Invalid PhoneNumber"),
            (WRONG_CREDENTIALS, 500, "500.001.1001", "Wrong credentials"),
        ],
        ids=["400-invalid-phone", "500-wrong-credentials"],
    )
    def test_daraja_refusal_is_502_with_its_error_code_and_a_failed_transaction(
        self, api, daraja, push_body, fixture, http_status, code, detail
    ):
        daraja.post(
            STK_PUSH_URL,
            body=raw_fixture(fixture),
            status=http_status,
            content_type="application/json",
        )

        response = push(api, push_body)

        assert response.status_code == 502, response.content
        body = response.json()
        assert (body["code"], body["detail"]) == (code, detail)
        assert body["transaction"]["status"] == "failed"
        stored = Transaction.objects.get()
        assert str(stored.pk) == body["transaction"]["id"]
        assert (stored.status, stored.result_code) == ("failed", code)
        assert push_count(daraja) == 1

    @pytest.mark.parametrize(
        "answer",
        [
            {"body": requests.ReadTimeout("read timed out")},
            {
                "status": 503,
                "body": "<html>Service Unavailable</html>",
                "content_type": "text/html",
            },
        ],
        ids=["read-timeout", "503-not-json"],
    )
    def test_ambiguous_outcome_is_202_unknown_sent_once_then_a_callback_settles_it(
        self, api, daraja, push_body, post_callback, answer
    ):
        daraja.post(STK_PUSH_URL, **answer)

        response = push(api, push_body)

        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == "unknown"
        assert body["checkout_request_id"] is None
        assert set(body) >= TRANSACTION_FIELDS
        assert push_count(daraja) == 1

        transaction = Transaction.objects.get(pk=body["id"])
        post_callback(transaction, success_callback(CHECKOUT))

        settled = api.get(detail_path(body["id"]))
        assert settled.status_code == 200
        assert settled.json()["status"] == "success"
        assert settled.json()["checkout_request_id"] == CHECKOUT
        assert settled.json()["mpesa_receipt_number"] == "NLJ7RT61SV"
        assert push_count(daraja) == 1

    def test_callback_arriving_before_the_push_answer_still_settles_it(
        self, api, daraja, push_body
    ):
        callback_acks = []

        def daraja_answers_after_the_callback(request):
            # The push is "in flight": Daraja's callback reaches us before its answer does.
            in_flight = Transaction.objects.latest("created_at")
            callback_acks.append(post_stk_callback(in_flight, success_callback(CHECKOUT)).json())
            return 200, {}, json.dumps(push_accepted(CHECKOUT))

        daraja.add_callback(
            responses.POST,
            STK_PUSH_URL,
            callback=daraja_answers_after_the_callback,
            content_type="application/json",
        )

        response = push(api, push_body)

        assert callback_acks == [{"ResultCode": 0, "ResultDesc": "Accepted"}]
        assert response.status_code in (201, 202), response.content
        transaction = Transaction.objects.get(pk=response.json()["id"])
        # The acknowledgement, saved last, did not downgrade the settled result to pending.
        assert transaction.status == "success"
        assert transaction.checkout_request_id == CHECKOUT
        assert transaction.mpesa_receipt_number == "NLJ7RT61SV"
        assert api.get(detail_path(transaction.pk)).json()["status"] == "success"

    def test_missing_consumer_key_is_503_not_configured_and_nothing_is_stored(
        self, api, daraja, push_body
    ):
        with payments_settings(CONSUMER_KEY=""):
            response = push(api, push_body)

        assert response.status_code == 503, response.content
        assert response.json()["code"] == "not_configured"
        assert Transaction.objects.count() == 0
        assert len(daraja.calls) == 0


# -- Idempotency-Key ------------------------------------------------------------------------------


class TestIdempotencyKey:
    def test_same_key_and_body_replays_the_first_response_without_a_second_push(
        self, api, daraja, push_body
    ):
        daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))

        first = push(api, push_body, key="order-42")
        again = push(api, push_body, key="order-42")

        assert first.status_code == 201, first.content
        assert "Idempotent-Replayed" not in first
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert push_count(daraja) == 1
        assert Transaction.objects.count() == 1

    def test_same_key_with_another_body_is_422_key_reused(self, api, daraja, push_body):
        daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))
        assert push(api, push_body, key="order-42").status_code == 201

        response = push(api, {**push_body, "amount": 2}, key="order-42")

        assert response.status_code == 422, response.content
        assert response.json()["code"] == "idempotency_key_reused"
        assert push_count(daraja) == 1
        assert Transaction.objects.count() == 1

    def test_key_whose_first_use_was_invalid_can_be_reused_with_a_corrected_body(
        self, api, daraja, push_body
    ):
        daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))

        refused = push(api, {**push_body, "amount": 0}, key="order-42")
        corrected = push(api, push_body, key="order-42")

        assert refused.status_code == 400, refused.content
        assert corrected.status_code == 201, corrected.content
        assert "Idempotent-Replayed" not in corrected
        assert push_count(daraja) == 1

    def test_ambiguous_push_repeated_with_the_same_key_replays_202_and_sends_once(
        self, api, daraja, push_body
    ):
        daraja.post(STK_PUSH_URL, body=requests.ReadTimeout("read timed out"))

        first = push(api, push_body, key="order-42")
        again = push(api, push_body, key="order-42")

        assert first.status_code == 202, first.content
        assert first.json()["status"] == "unknown"
        assert again.status_code == 202
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert push_count(daraja) == 1
        assert Transaction.objects.count() == 1

    def test_keys_are_per_user(self, api, daraja, push_body, other_user):
        accept_pushes(daraja)

        mine = push(api, push_body, key="order-42")
        theirs = push(api_client_for(other_user), push_body, key="order-42")

        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert "Idempotent-Replayed" not in theirs
        assert theirs.json()["id"] != mine.json()["id"]
        assert push_count(daraja) == 2


# -- throttling -----------------------------------------------------------------------------------


class TestThrottling:
    def test_third_push_to_one_phone_in_any_format_is_429_even_from_another_user(
        self, api, daraja, push_body, other_user
    ):
        accept_pushes(daraja)
        with payments_settings(STK_RATE_PER_PHONE="2/min"):
            first = push(api, {**push_body, "phone_number": "+254708374149"})
            second = push(api, {**push_body, "phone_number": "0708374149"})
            third = push(
                api_client_for(other_user), {**push_body, "phone_number": "254 708 374 149"}
            )

        assert (first.status_code, second.status_code) == (201, 201)
        assert third.status_code == 429, third.content
        assert third.json()["code"] == "throttled"
        assert push_count(daraja) == 2

    def test_third_push_from_one_user_is_429_whatever_the_phone(
        self, api, daraja, push_body, other_user
    ):
        accept_pushes(daraja)
        with payments_settings(STK_RATE_PER_USER="2/min"):
            first = push(api, {**push_body, "phone_number": "0708374149"})
            second = push(api, {**push_body, "phone_number": "0712345678"})
            third = push(api, {**push_body, "phone_number": "0722000111"})
            someone_else = push(
                api_client_for(other_user), {**push_body, "phone_number": "0733000222"}
            )

        assert (first.status_code, second.status_code) == (201, 201)
        assert third.status_code == 429, third.content
        assert third.json()["code"] == "throttled"
        assert someone_else.status_code == 201
        assert push_count(daraja) == 3


# -- authentication and visibility ----------------------------------------------------------------

EVERY_ENDPOINT = [
    ("post", PUSH_PATH),
    ("get", STATUS_PATH.format(CHECKOUT)),
    ("get", TRANSACTIONS_PATH),
    ("get", detail_path(uuid.UUID(int=1))),
]


class TestAuthentication:
    @pytest.mark.parametrize(("method", "path"), EVERY_ENDPOINT)
    def test_no_credentials_is_401(self, daraja, push_body, method, path):
        response = getattr(APIClient(), method)(path, push_body if method == "post" else None)

        assert response.status_code == 401, response.content
        assert response.json()["code"] == "not_authenticated"
        assert len(daraja.calls) == 0

    @pytest.mark.parametrize(("method", "path"), EVERY_ENDPOINT)
    def test_invalid_token_is_401(self, daraja, push_body, method, path):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

        response = getattr(client, method)(path, push_body if method == "post" else None)

        assert response.status_code == 401, response.content
        assert response.json()["code"] == "authentication_failed"
        assert len(daraja.calls) == 0

    def test_session_login_works_for_push_and_history(self, daraja, push_body, user):
        daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))
        client = APIClient()
        assert client.login(username="customer", password="pw-customer-1")

        pushed = client.post(PUSH_PATH, push_body, format="json")
        history = client.get(TRANSACTIONS_PATH)

        assert pushed.status_code == 201, pushed.content
        assert listed_ids(history) == [pushed.json()["id"]]
        assert client.get(STATUS_PATH.format(CHECKOUT)).status_code == 200

    def test_another_users_transaction_is_404_on_status_and_detail(self, api, other_user):
        theirs = make_transaction(other_user, checkout_request_id=CHECKOUT)

        assert api.get(STATUS_PATH.format(CHECKOUT)).status_code == 404
        assert api.get(detail_path(theirs.pk)).status_code == 404
        owner = api_client_for(other_user)
        assert owner.get(STATUS_PATH.format(CHECKOUT)).status_code == 200
        assert owner.get(detail_path(theirs.pk)).status_code == 200

    def test_list_shows_only_own_transactions(self, api, user, other_user):
        mine = make_transaction(user)
        make_transaction(other_user)

        assert listed_ids(api.get(TRANSACTIONS_PATH)) == [str(mine.pk)]

    def test_view_transaction_holders_see_everyones_on_list_detail_and_status(
        self, user, other_user, staff_user
    ):
        mine = make_transaction(user, checkout_request_id=CHECKOUT)
        theirs = make_transaction(other_user)
        staff = api_client_for(grant(staff_user, "view_transaction"))

        assert set(listed_ids(staff.get(TRANSACTIONS_PATH))) == {str(mine.pk), str(theirs.pk)}
        assert staff.get(detail_path(theirs.pk)).json()["id"] == str(theirs.pk)
        assert staff.get(STATUS_PATH.format(CHECKOUT)).json()["id"] == str(mine.pk)


# -- transaction history --------------------------------------------------------------------------


class TestTransactionList:
    def test_list_is_paginated(self, api, user):
        for amount in (100, 200, 300):
            make_transaction(user, amount=amount)

        first = api.get(TRANSACTIONS_PATH, {"page_size": 2}).json()
        second = api.get(first["next"]).json()

        assert first["count"] == 3
        assert len(first["results"]) == 2
        assert first["previous"] is None
        assert first["next"] is not None
        assert len(second["results"]) == 1
        assert second["next"] is None
        assert second["previous"] is not None

    def test_filter_by_status(self, api, user):
        pending = make_transaction(user, status="pending")
        make_transaction(user, status="success")

        assert listed_ids(api.get(TRANSACTIONS_PATH, {"status": "pending"})) == [str(pending.pk)]

    def test_filter_by_transaction_type(self, api, user):
        stk = make_transaction(user, transaction_type="STK_PUSH")
        make_transaction(user, transaction_type="C2B")

        response = api.get(TRANSACTIONS_PATH, {"transaction_type": "STK_PUSH"})

        assert listed_ids(response) == [str(stk.pk)]

    @pytest.mark.parametrize("phone", ["0708374149", "+254 708 374 149", "254708374149"])
    def test_filter_by_phone_in_any_accepted_form(self, api, user, phone):
        ours = make_transaction(user, phone_number=PHONE)
        make_transaction(user, phone_number="254711000111")

        assert listed_ids(api.get(TRANSACTIONS_PATH, {"phone_number": phone})) == [str(ours.pk)]

    def test_filter_by_created_after_and_before(self, api, user):
        january, february, march = (make_transaction(user) for _ in range(3))
        set_created_at(january, dt.datetime(2024, 1, 10, 10, tzinfo=NAIROBI_TZ))
        set_created_at(february, dt.datetime(2024, 2, 10, 10, tzinfo=NAIROBI_TZ))
        set_created_at(march, dt.datetime(2024, 3, 10, 10, tzinfo=NAIROBI_TZ))

        def ids(**params):
            return set(listed_ids(api.get(TRANSACTIONS_PATH, params)))

        assert ids(created_after="2024-02-01T00:00:00+03:00") == {
            str(february.pk),
            str(march.pk),
        }
        assert ids(created_before="2024-02-01T00:00:00+03:00") == {str(january.pk)}
        assert ids(
            created_after="2024-02-01T00:00:00+03:00", created_before="2024-03-01T00:00:00+03:00"
        ) == {str(february.pk)}

    @pytest.mark.parametrize(
        ("term", "expected"),
        [
            ("QK12ABC345", "first"),  # receipt number
            ("SHOP 7", "second"),  # account reference
            ("0711000111", "second"),  # phone, 07… form finds the stored 2547… number
            ("254708374149", "first"),
        ],
    )
    def test_search_over_receipt_account_reference_and_phone(self, api, user, term, expected):
        rows = {
            "first": make_transaction(
                user,
                mpesa_receipt_number="QK12ABC345",
                account_reference="INV-1",
                phone_number=PHONE,
            ),
            "second": make_transaction(
                user,
                mpesa_receipt_number="QK99XYZ000",
                account_reference="SHOP 7",
                phone_number="254711000111",
            ),
        }

        assert listed_ids(api.get(TRANSACTIONS_PATH, {"search": term})) == [str(rows[expected].pk)]

    def test_ordering_by_amount_and_newest_first(self, api, user):
        rows = [make_transaction(user, amount=amount) for amount in (300, 100, 200)]
        for day, row in enumerate(rows, start=1):
            set_created_at(row, dt.datetime(2024, 1, day, tzinfo=NAIROBI_TZ))

        by_amount = api.get(TRANSACTIONS_PATH, {"ordering": "amount"}).json()["results"]
        newest_first = api.get(TRANSACTIONS_PATH, {"ordering": "-created_at"}).json()["results"]
        oldest_first = api.get(TRANSACTIONS_PATH, {"ordering": "created_at"}).json()["results"]

        assert [row["amount"] for row in by_amount] == [100, 200, 300]
        assert [row["amount"] for row in newest_first] == [200, 100, 300]
        assert [row["amount"] for row in oldest_first] == [300, 100, 200]


# -- representation -------------------------------------------------------------------------------


class TestRepresentation:
    def test_every_representation_carries_the_transaction_fields(
        self, api, daraja, push_body, user
    ):
        daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))
        created = push(api, push_body)
        assert created.status_code == 201, created.content
        transaction_id = created.json()["id"]

        representations = {
            "push": created.json(),
            "status": api.get(STATUS_PATH.format(CHECKOUT)).json(),
            "list": api.get(TRANSACTIONS_PATH).json()["results"][0],
            "detail": api.get(detail_path(transaction_id)).json(),
        }

        for name, body in representations.items():
            assert set(body) >= TRANSACTION_FIELDS, name
            assert body["id"] == transaction_id, name

    def test_failed_push_carries_the_transaction_fields(self, api, daraja, push_body):
        daraja.post(
            STK_PUSH_URL,
            body=raw_fixture(INVALID_PHONE),
            status=400,
            content_type="application/json",
        )

        body = push(api, push_body).json()

        assert set(body["transaction"]) >= TRANSACTION_FIELDS

    def test_metadata_exposes_no_callback_url_token_or_raw_request(
        self, api, daraja, push_body, post_callback
    ):
        daraja.post(STK_PUSH_URL, json=push_accepted(CHECKOUT))
        created = push(api, push_body)
        transaction = Transaction.objects.get(pk=created.json()["id"])
        post_callback(transaction, success_callback(CHECKOUT))
        transaction.refresh_from_db()
        assert "request" in transaction.metadata  # stored, but not for the API to show

        answers = [
            created,
            api.get(STATUS_PATH.format(CHECKOUT)),
            api.get(TRANSACTIONS_PATH),
            api.get(detail_path(transaction.pk)),
        ]

        for response in answers:
            text = response.content.decode()
            assert transaction.callback_token not in text
            assert "callbacks/stk" not in text
            assert "pay.example.co.ke" not in text
        metadata = answers[-1].json()["metadata"]
        assert metadata == {"customer_message": "Success. Request accepted for processing"}


# -- CORS -----------------------------------------------------------------------------------------


class TestCors:
    @pytest.fixture(autouse=True)
    def _allowed_origin(self):
        with override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.co.ke"]):
            yield

    def preflight(self, client: Client, origin: str):
        return client.options(
            PUSH_PATH,
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )

    def test_preflight_from_an_allowed_origin_is_allowed(self, client):
        response = self.preflight(client, "https://app.example.co.ke")

        assert response["Access-Control-Allow-Origin"] == "https://app.example.co.ke"

    def test_preflight_from_another_origin_gets_no_allow_origin(self, client):
        response = self.preflight(client, "https://evil.example.com")

        assert "Access-Control-Allow-Origin" not in response


def test_an_acknowledgement_naming_another_push_leaves_it_unknown_and_flagged(api, daraja):
    """Daraja answering two pushes with one CheckoutRequestID was a 500 (unique constraint)."""
    daraja.post(STK_PUSH_URL, json=push_accepted("ws_CO_SAME"))
    daraja.post(STK_PUSH_URL, json=push_accepted("ws_CO_SAME"))
    body = {"phone_number": "0708374149", "amount": 5, "account_reference": "INV1"}

    first = api.post(PUSH_PATH, body, format="json")
    second = api.post(PUSH_PATH, body, format="json")

    assert (first.status_code, second.status_code) == (201, 202)
    flagged = Transaction.objects.get(pk=second.json()["id"])
    assert (flagged.status, flagged.checkout_request_id, flagged.needs_review) == (
        "unknown",
        None,
        True,
    )
    assert "ws_CO_SAME" in flagged.review_reason

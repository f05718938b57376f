"""Issue 10, the API from outside: JSON nested deep (Found 2), lone surrogates and NUL (3), NUL
in a path (4), shortcodes (10), JSON 404s (11); what the fuzzing found besides; and malformed
requests in bulk at every JSON POST endpoint (make fuzz)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.models import IdempotencyKey
from payments.services.audit import audit_record
from payments.services.checkout import checkout_link_create
from payments.services.idempotency import idempotency_key_claim, idempotency_key_complete
from tests.payments.conftest import (
    STATUS_PATH,
    STK_PUSH_URL,
    TRANSACTIONS_PATH,
    api_client_for,
    push_accepted,
)
from tests.payments.money_out import BALANCE_URL, REFRESH_PATH, accept, paid_transaction
from tests.survival.api_requests import (
    JSON_POST_ENDPOINTS,
    RECORDED,
    VALID_BODIES,
    daraja_accepts_everything,
    error_body,
    nothing_moved,
)

pytestmark = pytest.mark.django_db

# Text fields of each endpoint, all refused with a 400 naming them when they hold what no
# database column stores.
TEXT_FIELDS = [
    ("stk-push", "phone_number"),
    ("stk-push", "account_reference"),
    ("stk-push", "transaction_desc"),
    ("b2c", "phone_number"),
    ("b2c", "command_id"),
    ("b2c", "remarks"),
    ("b2c", "occasion"),
    ("reverse", "transaction"),
    ("reverse", "remarks"),
    ("balance", "shortcode"),
    ("checkout", "account_reference"),
    ("checkout", "description"),
    ("checkout", "expires_at"),
    ("register-urls", "api_version"),
    ("register-urls", "response_type"),
    ("register-urls", "shortcode"),
    ("checkout-start", "phone_number"),
]
UNSTORABLE = {"nul": "INV\x00", "lone-surrogate": "\udfff"}


# -- 2. JSON nested a thousand deep ------------------------------------------------------------


def nested(depth: int) -> str:
    return '{"phone_number": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("endpoint", JSON_POST_ENDPOINTS)
def test_found_02_json_nested_1000_deep_is_a_400_before_parsing(post, daraja, endpoint):
    response = post(endpoint, nested(1000))

    assert response.status_code == 400
    body = error_body(response)
    assert body["code"] == "parse_error"
    assert "nested deeper than 32" in body["detail"]
    assert nothing_moved(daraja)
    assert not IdempotencyKey.objects.exists()


@override_settings(
    REST_FRAMEWORK={
        "DEFAULT_PARSER_CLASSES": [
            "rest_framework.parsers.JSONParser",
            "rest_framework.parsers.FormParser",
            "rest_framework.parsers.MultiPartParser",
        ],
        "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
    }
)
def test_found_02_nesting_stays_bounded_whatever_parsers_the_host_configures(post, daraja):
    response = post("stk-push", nested(1000))

    assert response.status_code == 400
    assert error_body(response)["code"] == "parse_error"
    assert nothing_moved(daraja)


def test_found_02_json_within_the_bound_is_read_as_before(post, daraja):
    response = post("stk-push", nested(31))

    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == ["phone_number", "amount", "account_reference"]


# -- 3. lone surrogates and NUL ----------------------------------------------------------------


def test_found_03_a_lone_surrogate_command_id_is_a_400_naming_it(post, daraja):
    raw = json.dumps({**VALID_BODIES["b2c"], "command_id": "\udfff"})

    response = post("b2c", raw)

    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == ["command_id"]
    assert nothing_moved(daraja)


@pytest.mark.parametrize("value", UNSTORABLE.values(), ids=UNSTORABLE.keys())
@pytest.mark.parametrize(("endpoint", "field"), TEXT_FIELDS)
def test_found_03_unstorable_text_is_a_400_naming_the_field(post, daraja, endpoint, field, value):
    raw = json.dumps({**VALID_BODIES[endpoint], field: value})

    response = post(endpoint, raw)

    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == [field]
    assert nothing_moved(daraja)


@pytest.mark.parametrize("key", ["key\x00one", "\udfff"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("endpoint", ["stk-push", "b2c", "reverse"])
def test_found_03_an_unstorable_idempotency_key_is_a_400_naming_it(post, daraja, endpoint, key):
    response = post(endpoint, json.dumps(VALID_BODIES[endpoint]), HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == ["Idempotency-Key"]
    assert nothing_moved(daraja)
    assert not IdempotencyKey.objects.exists()


def test_found_03_an_answer_holding_unstorable_text_is_stored_for_its_repeats(finance):
    record = idempotency_key_claim(user=finance, key="k1", fingerprint="f").record

    idempotency_key_complete(record=record, status=202, body={"detail": "a\x00b\udfffc"})

    record.refresh_from_db()
    assert record.response_body == {"detail": "a\ufffdb\ufffdc"}


@pytest.mark.parametrize("value", ["%00", "07%00"])
def test_found_03_a_nul_in_the_history_search_is_a_400_naming_it(finance, value):
    response = api_client_for(finance).get(f"{TRANSACTIONS_PATH}?search={value}")

    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == ["search"]


# -- 4. NUL in a path --------------------------------------------------------------------------


def test_found_04_nul_in_the_stk_status_path_is_a_json_404(finance):
    response = api_client_for(finance).get(STATUS_PATH.format("ws_CO_%00"))

    assert response.status_code == 404
    assert error_body(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        STATUS_PATH.format("%00"),
        f"{TRANSACTIONS_PATH}/%00",
        REFRESH_PATH.format("%00"),
        "/api/v1/payments/mpesa/%00",
        "/api/v1/payments/callbacks/stk/%00",
        "/api/v1/payments/callbacks/c2b/%00/confirmation",
    ],
)
def test_found_04_nul_in_any_api_path_segment_is_a_json_404(finance, path):
    client = api_client_for(finance)

    for response in (client.get(path), client.post(path, "{}", content_type="application/json")):
        assert response.status_code in (404, 405), (path, response.status_code)
        assert error_body(response)["code"] in ("not_found", "method_not_allowed")


@pytest.mark.parametrize(
    "path",
    ["/pay/%00/start", "/pay/{token}/status/%00", "/pay/{token}%00/status/{uuid}"],
)
def test_found_04_nul_in_a_checkout_page_call_is_a_json_404(path):
    token = checkout_link_create(amount=10, account_reference="INV42")
    path = path.format(token=token, uuid="00000000-0000-0000-0000-000000000001")

    response = Client().post(
        path, "{}", content_type="application/json", HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 404
    assert error_body(response)["code"] == "not_found"


@pytest.mark.parametrize("model", ["payoutrequest", "refundrequest", "transaction"])
@pytest.mark.parametrize("object_id", ["%00", "not-an-id"])
def test_found_04_an_admin_page_for_an_id_that_cannot_exist_is_no_500(
    client, django_user_model, model, object_id
):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-1"))

    response = client.get(f"/admin/payments/{model}/{object_id}/change/")

    # The admin's own answer to an object that does not exist: back to the list, with a note.
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("/admin/payments/transaction/?status=%00", "status"),
        ("/admin/payments/transaction/?transaction_type=%00", "transaction_type"),
        ("/admin/payments/callbackevent/?kind=%00", "kind"),
        ("/admin/payments/transaction/?q=07%00", "q"),
        ("/admin/payments/transaction/?status%00=x", "status\x00"),
    ],
)
def test_found_04_a_nul_in_an_admin_query_string_is_a_400_naming_it(
    client, django_user_model, query, parameter
):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-1"))

    response = client.get(query)

    # On PostgreSQL the admin's list filters passed the NUL to the database: a 500.
    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == [parameter]


# -- 10. shortcodes ----------------------------------------------------------------------------

BAD_SHORTCODES = ["0", "1234", "12345678", "17437a", " 174379", "\u0661\u0667\u0664\u0663\u0667"]


@pytest.mark.parametrize("endpoint", ["balance", "register-urls"])
@pytest.mark.parametrize("shortcode", BAD_SHORTCODES)
def test_found_10_a_shortcode_not_5_to_7_digits_is_refused_before_daraja(
    post, daraja, endpoint, shortcode
):
    response = post(endpoint, json.dumps({"shortcode": shortcode}))

    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == ["shortcode"]
    assert nothing_moved(daraja)


def test_found_10_balance_of_one_valid_shortcode_is_still_asked(post, daraja):
    accept(daraja, BALANCE_URL)

    response = post("balance", json.dumps({"shortcode": "60099"}))

    assert response.status_code == 202
    assert [i["shortcode"] for i in response.json()["inquiries"]] == ["60099"]


def test_found_10_register_command_refuses_a_bad_shortcode_before_daraja(daraja):
    with pytest.raises(CommandError, match="shortcode"):
        call_command("mpesa_register_urls", "--shortcode", "0", stdout=StringIO())

    assert not daraja.calls


def test_found_10_simulate_command_refuses_a_bad_shortcode_before_daraja(daraja):
    with pytest.raises(CommandError, match="shortcode"):
        call_command(
            "mpesa_simulate_c2b",
            *("--phone", "0708374149", "--amount", "10", "--shortcode", "0"),
            stdout=StringIO(),
        )

    assert not daraja.calls


# -- 11. API 404s are JSON, the admin's stay HTML ----------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/payments/mpesa/nothing-here",
        f"{TRANSACTIONS_PATH}/0.5",
        REFRESH_PATH.format("not-a-uuid"),
        "/api/v1/other",
    ],
)
def test_found_11_an_api_path_nothing_answers_is_a_json_404(finance, path):
    response = api_client_for(finance).get(path)

    assert response.status_code == 404
    assert error_body(response) == {"code": "not_found", "detail": "Not found."}


def test_found_11_the_admin_keeps_its_html_404(client, finance):
    client.force_login(finance)

    response = client.get("/admin/payments/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# -- Found by the fuzzing below and by schemathesis --------------------------------------------


@pytest.mark.parametrize("amount", [2**31, 10**30])
def test_a_refund_larger_than_any_amount_column_is_a_400_not_a_500(post, daraja, amount):
    paid_transaction(amount=100_000, receipt="NLJ7RT61SV")

    response = post("reverse", json.dumps({**VALID_BODIES["reverse"], "amount": amount}))

    assert response.status_code == 400
    assert list(error_body(response)["errors"]) == ["amount"]
    assert not daraja.calls


def test_an_amount_no_column_holds_is_audited_in_the_details(finance):
    record = audit_record(actor=finance, action="refund", outcome="refused", amount=10**30)

    record.refresh_from_db()
    assert record.amount is None
    assert record.details == {"amount_asked": str(10**30)}


@pytest.mark.parametrize(
    ("when", "status"),
    [
        ("2020-01-23T09:11:40-18:59", 200),  # ISO 8601 allows it; PostgreSQL only to ±15:59
        ("0001-01-01T00:00:00+05:00", 400),  # before year 1 in UTC
        ("9999-12-31T23:59:59-05:00", 400),  # after year 9999 in UTC
    ],
)
def test_a_history_date_is_held_in_utc_and_one_out_of_range_is_a_400(finance, when, status):
    response = api_client_for(finance).get(TRANSACTIONS_PATH, {"created_after": when})

    assert response.status_code == status
    if status == 400:
        assert list(error_body(response)["errors"]) == ["created_after"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # A NUL in Daraja's answer: stored as U+FFFD, the push answered as accepted.
        (json.dumps({**push_accepted(), "CustomerMessage": "Success\u0000"}).encode(), 201),
        # Nested past the bound: an answer that cannot be read, so the push is unknown.
        (b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}", 202),
    ],
    ids=["nul", "nested"],
)
def test_a_daraja_answer_no_database_stores_never_fails_the_push(post, daraja, raw, status):
    daraja.post(STK_PUSH_URL, body=raw, content_type="application/json")

    response = post("stk-push", json.dumps(VALID_BODIES["stk-push"]), HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == status
    # The answer stored for the key's repeats holds no NUL (json.dumps writes one as \u0000).
    assert "\\u0000" not in json.dumps(IdempotencyKey.objects.get().response_body)


# -- Malformed requests in bulk (make fuzz) ----------------------------------------------------

HUGE_TEXT = "9" * 100_000
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 10**4000]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\udfff", "INV\x00", HUGE_TEXT, "0", "1e9", "10.5"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "application/json; charset=rot13",
    "application/json; charset=no-such-charset",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "",
]
RAW_BODIES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"text"',
    b"42",
    b'{"amount": NaN}',
    b'{"amount": Infinity}',
    b"\xff\xfe{}",
    nested(1000).encode(),
    ("[" * 100_000).encode(),
    b'{"phone_number": "\xed\xbf\xbf"}',
]
KEYS = [None, "", "k" * 300, "key\x00", "ok-key"]


@st.composite
def malformed_requests(draw, endpoint: str) -> tuple[bytes, str, dict]:
    """(body, content type, extra headers): a valid body spoiled, or bytes that are no body."""
    if draw(st.booleans()):
        body = draw(st.sampled_from(RAW_BODIES))
    else:
        fields = dict(VALID_BODIES[endpoint])
        for name in draw(st.lists(st.sampled_from(sorted(fields)), unique=True)):
            if draw(st.booleans()):
                del fields[name]
            else:
                fields[name] = draw(ODD_VALUES)
        if draw(st.booleans()):
            fields[draw(st.text(max_size=8))] = draw(ODD_VALUES)
        ascii_only = draw(st.booleans())
        body = json.dumps(fields, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    key = draw(st.sampled_from(KEYS))
    return body, content_type, {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}


@pytest.mark.fuzz
@pytest.mark.parametrize("endpoint", JSON_POST_ENDPOINTS)
def test_malformed_requests_get_a_clear_4xx_and_move_nothing(post, daraja, endpoint):
    """350 generated requests per endpoint (2,450 in all): never a 5xx; a refusal reaches
    nobody (no Daraja call, no payment, payout or refund recorded)."""
    daraja_accepts_everything(daraja)
    paid_transaction(amount=100_000, receipt="NLJ7RT61SV")

    @settings(
        max_examples=350,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=malformed_requests(endpoint))
    def refused_cleanly(request):
        body, content_type, headers = request
        cache.clear()  # throttles would answer 429 before the body is read
        before = (len(daraja.calls), *(model.objects.count() for model in RECORDED))

        response = post(endpoint, body, content_type=content_type, **headers)

        assert response.status_code < 500, response.content[:300]
        if response.status_code >= 400:
            error_body(response)
            after = (len(daraja.calls), *(model.objects.count() for model in RECORDED))
            assert after == before, (response.status_code, response.content[:300])

    refused_cleanly()

"""Structured logs: one line per request and per Daraja call, ids on every line, redacted."""

from __future__ import annotations

import json
import logging
import re

import pytest

from payments.logs import JsonFormatter, LogContextFilter, log_context
from payments.redaction import REDACTED, CallbackSecretFilter
from tests.payments.conftest import (
    CALLBACK_PATH,
    PUSH_PATH,
    STK_PUSH_URL,
    TRANSACTIONS_PATH,
    load_fixture,
    push_accepted,
    stk_callback,
    stk_transaction,
)

pytestmark = pytest.mark.django_db

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class JsonLines(logging.Handler):
    """The root logger's lines as the project prints them with DJANGO_LOG_FORMAT=json."""

    def __init__(self) -> None:
        super().__init__()
        self.filters = [LogContextFilter(), CallbackSecretFilter()]
        self.setFormatter(JsonFormatter())
        self.printed: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.printed.append(self.format(record))

    def of(self, logger: str) -> list[dict]:
        return [line for line in map(json.loads, self.printed) if line["logger"] == logger]


@pytest.fixture
def lines():
    handler = JsonLines()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def request_lines(lines: JsonLines) -> list[dict]:
    return lines.of("payments.requests")


def test_each_request_is_one_line_with_route_status_duration_and_the_given_request_id(
    api, user, lines
):
    response = api.get(TRANSACTIONS_PATH, HTTP_X_REQUEST_ID="app-42.retry_1")

    assert response["X-Request-ID"] == "app-42.retry_1"
    [line] = request_lines(lines)
    assert line["message"] == "GET payments:transaction-list 200"
    assert (line["method"], line["route"], line["status"]) == (
        "GET",
        "payments:transaction-list",
        200,
    )
    assert line["request_id"] == "app-42.retry_1"
    assert line["user_id"] == user.pk  # authenticated by DRF's token, inside the view
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")


@pytest.mark.parametrize(
    "given", ["", "has space", "line\nbreak", "x" * 129, "/api/v1/payments/callbacks/stk/abc"]
)
def test_a_request_id_that_is_not_plain_is_replaced_by_our_own(client, lines, given):
    response = client.get("/api/v1/payments/mpesa/nothing", HTTP_X_REQUEST_ID=given)

    request_id = response["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    [line] = request_lines(lines)
    assert (line["request_id"], line["route"], line["status"]) == (request_id, None, 404)
    assert line["user_id"] is None


def test_a_callback_is_logged_by_its_route_name_never_by_its_path(client, lines):
    push = stk_transaction(checkout_request_id="ws_CO_LOG")
    body = stk_callback(checkout_request_id="ws_CO_LOG", amount=1, phone_number="254708374149")

    client.post(
        CALLBACK_PATH.format(push.callback_token), json.dumps(body), content_type="application/json"
    )

    [line] = request_lines(lines)
    assert (line["route"], line["status"]) == ("payments:stk-callback", 200)
    assert line["user_id"] is None
    assert all(push.callback_token not in printed for printed in lines.printed)


def test_a_daraja_call_is_one_line_with_operation_duration_status_and_our_ids(
    api, daraja, push_body, lines
):
    daraja.post(STK_PUSH_URL, json=push_accepted("ws_CO_LOGGED"))

    response = api.post(PUSH_PATH, push_body, format="json", HTTP_X_REQUEST_ID="push-1")

    [call] = [
        line for line in lines.of("payments.daraja.transport") if "stk_push" in line["message"]
    ]
    assert call["operation"] == "stk_push"
    assert call["http_status"] == 200
    assert isinstance(call["duration_ms"], int)
    assert call["transaction_id"] == response.json()["id"]
    assert call["request_id"] == "push-1"  # the request that made the call


def test_a_refused_daraja_call_names_darajas_request_id(api, daraja, push_body, lines):
    refusal = load_fixture("errors/error_400.002.02_invalid_businessshortcode.portal.json")
    daraja.post(STK_PUSH_URL, json=refusal, status=400)

    api.post(PUSH_PATH, push_body, format="json")

    [call] = [
        line for line in lines.of("payments.daraja.transport") if "stk_push" in line["message"]
    ]
    assert (call["http_status"], call["daraja_request_id"]) == (400, refusal["requestId"])


def test_a_json_line_shows_callback_secrets_redacted_in_its_message_and_fields(lines):
    secret_path = "/api/v1/payments/callbacks/b2c/0123456789abcdefSECRET/result"

    with log_context(transaction_id="t-1"):
        logging.getLogger("payments.test").warning(
            "posted to %s", secret_path, extra={"path": secret_path}
        )

    [line] = lines.of("payments.test")
    assert "0123456789abcdefSECRET" not in lines.printed[-1]
    assert line["message"] == f"posted to /api/v1/payments/callbacks/b2c/{REDACTED}/result"
    assert line["path"] == f"/api/v1/payments/callbacks/b2c/{REDACTED}/result"
    assert line["transaction_id"] == "t-1"


def test_an_exception_is_printed_inside_its_line(lines):
    try:
        raise ValueError("no such thing")
    except ValueError:
        logging.getLogger("payments.test").exception("it failed")

    [line] = lines.of("payments.test")
    assert "ValueError: no such thing" in line["exception"]

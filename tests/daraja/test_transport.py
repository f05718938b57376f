"""The retry policy: queries and OAuth retry transient failures; money is sent once."""

from __future__ import annotations

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from payments.daraja.errors import DarajaConnectionError, DarajaServerError
from payments.daraja.transport import Transport, request_was_sent, should_retry

from .conftest import SANDBOX, load_fixture

CALLBACK = "https://pay.example.co.ke/cb/abc"
PUSH_URL = f"{SANDBOX}/mpesa/stkpush/v1/processrequest"
QUERY_URL = f"{SANDBOX}/mpesa/stkpushquery/v1/query"
B2C_URL = f"{SANDBOX}/mpesa/b2c/v3/paymentrequest"
REVERSAL_URL = f"{SANDBOX}/mpesa/reversal/v1/request"


def refused_connection() -> requests.ConnectionError:
    """What requests raises when the TCP connection cannot be opened at all."""
    reason = NewConnectionError(None, "Failed to establish a new connection: refused")
    return requests.ConnectionError(MaxRetryError(None, "/x", reason=reason))


def push(client):
    return client.stk_push(
        phone_number="0708374149",
        amount=1,
        account_reference="A1",
        transaction_desc="A1",
        callback_url=CALLBACK,
    )


def payout(client):
    return client.b2c_payment(
        originator_conversation_id="b2c-1",
        phone_number="0708374149",
        amount=10,
        remarks="Payout",
        result_url=CALLBACK,
        queue_timeout_url=CALLBACK,
    )


def refund(client):
    return client.reversal(
        transaction_id="NLJ7RT61SV",
        amount=10,
        remarks="Refund",
        result_url=CALLBACK,
        queue_timeout_url=CALLBACK,
    )


MONEY_OPERATIONS = [(push, PUSH_URL), (payout, B2C_URL), (refund, REVERSAL_URL)]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # connection never opened: retried for every operation
        ({"retry_safe": False, "request_sent": False}, True),
        ({"retry_safe": True, "request_sent": False}, True),
        # may have reached Daraja: only retry-safe operations
        ({"retry_safe": False, "request_sent": True}, False),
        ({"retry_safe": True, "request_sent": True}, True),
        ({"retry_safe": False, "http_status": 503}, False),
        ({"retry_safe": True, "http_status": 503}, True),
        ({"retry_safe": True, "http_status": 429}, True),
        ({"retry_safe": True, "http_status": 500}, True),
        ({"retry_safe": True, "http_status": 500, "error_code": "500.003.02"}, True),
        ({"retry_safe": True, "http_status": 500, "error_code": "500.001.1001"}, False),
        ({"retry_safe": True, "http_status": 500, "error_code": "500.002.1001"}, False),
        ({"retry_safe": True, "http_status": 400}, False),
        ({"retry_safe": True, "http_status": 404}, False),
        # budget spent
        ({"retry_safe": True, "http_status": 503, "attempt": 2}, False),
        ({"retry_safe": False, "request_sent": False, "attempt": 2}, False),
    ],
)
def test_retry_decision_table(kwargs, expected):
    arguments = {"attempt": 0, "max_retries": 2, **kwargs}
    assert should_retry(**arguments) is expected


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (requests.ConnectTimeout("connect timed out"), False),
        (refused_connection(), False),
        (requests.ReadTimeout("read timed out"), True),
        (requests.ConnectionError("Connection aborted: RemoteDisconnected"), True),
    ],
)
def test_only_connect_phase_failures_prove_the_request_never_left(exc, sent):
    assert request_was_sent(exc) is sent


def test_backoff_grows_exponentially_is_capped_and_jittered():
    transport = Transport(base_url=SANDBOX, timeout=(1, 1), max_retries=5)
    for attempt, nominal in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        delays = {transport.backoff_seconds(attempt) for _ in range(50)}
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert len(delays) > 1  # jittered, so workers do not retry in step


def test_query_is_retried_after_503s_and_then_succeeds(client, daraja, sleeps):
    daraja.post(QUERY_URL, status=503, body="Service Unavailable")
    daraja.post(QUERY_URL, status=503, body="Service Unavailable")
    daraja.post(QUERY_URL, json=load_fixture("stk/stk_query_response_success.portal.json"))

    assert client.stk_query(checkout_request_id="ws_CO_1").result_code == "0"

    assert len([c for c in daraja.calls if c.request.url == QUERY_URL]) == 3
    assert len(sleeps) == 2


def test_query_gives_up_with_a_server_error_once_the_budget_is_spent(client, daraja):
    for _ in range(3):
        daraja.post(QUERY_URL, status=503, body="Service Unavailable")
    with pytest.raises(DarajaServerError) as excinfo:
        client.stk_query(checkout_request_id="ws_CO_1")
    assert excinfo.value.http_status == 503
    assert len([c for c in daraja.calls if c.request.url == QUERY_URL]) == 3


def test_query_is_retried_after_a_read_timeout(client, daraja):
    daraja.post(QUERY_URL, body=requests.ReadTimeout("read timed out"))
    daraja.post(QUERY_URL, json=load_fixture("stk/stk_query_response_success.portal.json"))
    assert client.stk_query(checkout_request_id="ws_CO_1").result_code == "0"


@pytest.mark.parametrize(("operation", "url"), MONEY_OPERATIONS)
def test_money_is_sent_once_after_a_read_timeout(client, daraja, operation, url):
    daraja.post(url, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(DarajaConnectionError) as excinfo:
        operation(client)
    assert excinfo.value.request_sent is True
    assert excinfo.value.outcome_unknown is True
    assert len([c for c in daraja.calls if c.request.url == url]) == 1


@pytest.mark.parametrize(("operation", "url"), MONEY_OPERATIONS)
def test_money_is_sent_once_after_a_503(client, daraja, operation, url):
    daraja.post(url, status=503, body="upstream unavailable")
    with pytest.raises(DarajaServerError) as excinfo:
        operation(client)
    assert excinfo.value.outcome_unknown is True
    assert len([c for c in daraja.calls if c.request.url == url]) == 1


@pytest.mark.parametrize(("operation", "url"), MONEY_OPERATIONS)
def test_money_is_sent_once_after_a_connection_dropped_mid_exchange(client, daraja, operation, url):
    daraja.post(url, body=requests.ConnectionError("Connection aborted: RemoteDisconnected"))
    with pytest.raises(DarajaConnectionError) as excinfo:
        operation(client)
    assert excinfo.value.outcome_unknown is True
    assert len([c for c in daraja.calls if c.request.url == url]) == 1


def test_push_is_retried_when_the_connection_could_not_be_opened(client, daraja):
    daraja.post(PUSH_URL, body=requests.ConnectTimeout("connect timed out"))
    daraja.post(PUSH_URL, body=refused_connection())
    daraja.post(PUSH_URL, json=load_fixture("stk/stk_push_response_accepted.portal.json"))

    assert push(client).checkout_request_id.startswith("ws_CO_")
    assert len([c for c in daraja.calls if c.request.url == PUSH_URL]) == 3


def test_connect_failures_beyond_the_budget_say_the_request_was_not_sent(client, daraja):
    for _ in range(3):
        daraja.post(PUSH_URL, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(DarajaConnectionError) as excinfo:
        push(client)
    assert excinfo.value.request_sent is False
    assert excinfo.value.outcome_unknown is False

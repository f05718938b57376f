"""The retry policy: queries and OAuth retry transient failures; money is sent once."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from payments.daraja.errors import DarajaConnectionError, DarajaServerError
from payments.daraja.transport import Transport, request_was_sent, should_retry

from .conftest import OAUTH_URL, SANDBOX, load_fixture

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


# -- the deadline of one operation: what a request that calls Daraja waits at most ------------


class Clock:
    """Monotonic time that moves only when the client sleeps or a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def timed_client(make_client, config, clock, deadline: float):
    return make_client(replace(config, call_deadline=deadline), sleep=clock.sleep, clock=clock)


def test_each_attempt_waits_no_longer_than_the_time_left(make_client, config, daraja, clock):
    client = timed_client(make_client, config, clock, deadline=4.0)
    timeouts = []

    def answer(request):
        timeouts.append(request.req_kwargs["timeout"])
        return 200, {}, json.dumps(load_fixture("stk/stk_push_response_accepted.portal.json"))

    daraja.add_callback("POST", PUSH_URL, callback=answer)

    push(client)

    assert timeouts == [(1.5, 4.0)]  # connect 1.5 as configured, read cut from 7 to 4


def test_no_retry_starts_that_would_end_past_the_deadline(make_client, config, daraja, clock):
    client = timed_client(make_client, config, clock, deadline=0.2)
    daraja.post(QUERY_URL, status=503, body="Service Unavailable")

    with pytest.raises(DarajaServerError):
        client.stk_query(checkout_request_id="ws_CO_1")

    # The backoff (at least 0.25 s) would pass the deadline: asked once, not three times.
    assert len([c for c in daraja.calls if c.request.url == QUERY_URL]) == 1


def test_money_is_not_sent_once_fetching_its_token_used_up_the_time(
    make_client, config, daraja, clock
):
    client = timed_client(make_client, config, clock, deadline=5.0)
    daraja.remove("GET", OAUTH_URL)

    def slow_token(request):
        clock.now += 6  # Daraja's OAuth took longer than the operation may
        return 200, {}, json.dumps({"access_token": "late-token", "expires_in": "3599"})

    daraja.add_callback("GET", OAUTH_URL, callback=slow_token)

    with pytest.raises(DarajaConnectionError) as raised:
        push(client)

    assert raised.value.request_sent is False  # a refusal to record, not an unknown outcome
    assert "not sent: its time ran out" in str(raised.value)
    assert not [c for c in daraja.calls if c.request.url == PUSH_URL]


def test_without_a_deadline_only_the_attempts_timeouts_bound_a_call(client, daraja):
    timeouts = []

    def answer(request):
        timeouts.append(request.req_kwargs["timeout"])
        return 200, {}, json.dumps(load_fixture("stk/stk_push_response_accepted.portal.json"))

    daraja.add_callback("POST", PUSH_URL, callback=answer)

    push(client)

    assert client.config.call_deadline == 0
    assert timeouts == [(1.5, 7.0)]

"""OAuth: one token shared by every call and client, refreshed at expiry or when refused."""

from __future__ import annotations

import base64

import pytest
import requests
import responses

from payments.daraja.auth import AccessTokenProvider, MemoryTokenStore
from payments.daraja.errors import DarajaAuthError
from payments.daraja.transport import Transport

from .conftest import OAUTH_URL, SANDBOX, SECRETS, load_fixture

QUERY_URL = f"{SANDBOX}/mpesa/stkpushquery/v1/query"
QUERY_OK = load_fixture("stk/stk_query_response_success.portal.json")
INVALID_TOKEN = load_fixture(
    "errors/error_404.001.03_invalid_access_token.issue-LNMOnlineAndroidSample-11.json"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def oauth_calls(mock) -> list:
    return [c for c in mock.calls if c.request.url.startswith(OAUTH_URL)]


def bearer_of(call) -> str:
    return call.request.headers["Authorization"].removeprefix("Bearer ")


def test_oauth_request_uses_basic_auth_and_the_grant_type_query(client, daraja):
    daraja.post(QUERY_URL, json=QUERY_OK)
    client.stk_query(checkout_request_id="ws_CO_1")

    (call,) = oauth_calls(daraja)
    assert call.request.method == "GET"
    assert call.request.url == f"{OAUTH_URL}?grant_type=client_credentials"
    expected = base64.b64encode(f"ck-test-key:{SECRETS['consumer_secret']}".encode()).decode()
    assert call.request.headers["Authorization"] == f"Basic {expected}"
    assert call.request.body is None


def test_many_calls_make_one_oauth_request(client, daraja):
    daraja.post(QUERY_URL, json=QUERY_OK)
    for _ in range(5):
        client.stk_query(checkout_request_id="ws_CO_1")
    assert len(oauth_calls(daraja)) == 1
    assert {bearer_of(c) for c in daraja.calls if c.request.url == QUERY_URL} == {SECRETS["token"]}


def test_two_clients_sharing_a_store_make_one_oauth_request(make_client, config, daraja):
    store = MemoryTokenStore()
    daraja.post(QUERY_URL, json=QUERY_OK)
    make_client(config, token_store=store).stk_query(checkout_request_id="ws_CO_1")
    make_client(config, token_store=store).stk_query(checkout_request_id="ws_CO_1")
    assert len(oauth_calls(daraja)) == 1


@pytest.mark.parametrize(
    "fixture",
    [
        "oauth/oauth_token_response.portal.json",
        "oauth/oauth_token_response.string_expires_in.php-mpesa.json",
    ],
)
def test_token_is_refreshed_when_expires_in_minus_the_margin_has_passed(
    make_client, config, fixture
):
    sample = load_fixture(fixture)  # expires_in 3599, as a number in one and a string in the other
    clock = FakeClock()
    client = make_client(config, token_store=MemoryTokenStore(clock=clock))
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, json={**sample, "access_token": "first"})
        mock.get(OAUTH_URL, json={**sample, "access_token": "second"})
        mock.post(QUERY_URL, json=QUERY_OK)

        client.stk_query(checkout_request_id="ws_CO_1")
        clock.now += 3599 - 120 - 1  # just inside the margin: still the first token
        client.stk_query(checkout_request_id="ws_CO_1")
        clock.now += 2  # past expires_in minus the margin
        client.stk_query(checkout_request_id="ws_CO_1")

        used = [bearer_of(c) for c in mock.calls if c.request.url == QUERY_URL]
    assert used == ["first", "first", "second"]


def test_an_invalid_token_answer_refreshes_once_and_repeats_the_call_once(make_client, config):
    client = make_client(config)
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, json={"access_token": "stale", "expires_in": "3599"})
        mock.get(OAUTH_URL, json={"access_token": "fresh", "expires_in": "3599"})
        mock.post(QUERY_URL, json=INVALID_TOKEN, status=404)
        mock.post(QUERY_URL, json=QUERY_OK)

        assert client.stk_query(checkout_request_id="ws_CO_1").result_code == "0"

        used = [bearer_of(c) for c in mock.calls if c.request.url == QUERY_URL]
        assert used == ["stale", "fresh"]
        assert len(oauth_calls(mock)) == 2


@pytest.mark.parametrize(
    "answer",
    [
        {
            "status": 401,
            "json": {
                "requestId": "r1",
                "errorCode": "401.002.01",
                "errorMessage": "Error Occurred - Invalid Access Token - abc",
            },
        },
        {
            "status": 400,
            "json": {
                "requestId": "r2",
                "errorCode": "400.003.01",
                "errorMessage": "Invalid Access Token",
            },
        },
    ],
)
def test_other_invalid_token_answers_also_trigger_one_refresh(make_client, config, answer):
    client = make_client(config)
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, json={"access_token": "stale", "expires_in": "3599"})
        mock.get(OAUTH_URL, json={"access_token": "fresh", "expires_in": "3599"})
        mock.post(QUERY_URL, **answer)
        mock.post(QUERY_URL, json=QUERY_OK)
        assert client.stk_query(checkout_request_id="ws_CO_1").result_code == "0"


def test_a_push_refused_for_its_token_is_repeated_once_with_a_fresh_token(make_client, config):
    client = make_client(config)
    push_url = f"{SANDBOX}/mpesa/stkpush/v1/processrequest"
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, json={"access_token": "stale", "expires_in": "3599"})
        mock.get(OAUTH_URL, json={"access_token": "fresh", "expires_in": "3599"})
        mock.post(push_url, json=INVALID_TOKEN, status=404)
        mock.post(push_url, json=load_fixture("stk/stk_push_response_accepted.portal.json"))
        client.stk_push(
            phone_number="0708374149",
            amount=1,
            account_reference="A",
            transaction_desc="A",
            callback_url="https://pay.example.co.ke/cb/1",
        )
        assert [bearer_of(c) for c in mock.calls if c.request.url == push_url] == [
            "stale",
            "fresh",
        ]


def test_a_second_invalid_token_answer_raises_an_auth_error(client, daraja):
    daraja.post(QUERY_URL, json=INVALID_TOKEN, status=404)
    with pytest.raises(DarajaAuthError) as excinfo:
        client.stk_query(checkout_request_id="ws_CO_1")
    assert excinfo.value.error_code == "404.001.03"
    assert len([c for c in daraja.calls if c.request.url == QUERY_URL]) == 2


def test_wrong_consumer_credentials_raise_an_auth_error(client):
    with responses.RequestsMock() as mock:
        # Daraja answers a wrong key or secret with HTTP 400 and a blank message.
        mock.get(OAUTH_URL, status=400, json={"errorMessage": ""})
        with pytest.raises(DarajaAuthError) as excinfo:
            client.stk_query(checkout_request_id="ws_CO_1")
        assert excinfo.value.http_status == 400
        assert len(mock.calls) == 1  # a 4xx is not retried


def test_oauth_is_retried_after_a_503(client, sleeps):
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, status=503, body="busy")
        mock.get(OAUTH_URL, json={"access_token": "t", "expires_in": "3599"})
        mock.post(QUERY_URL, json=QUERY_OK)
        client.stk_query(checkout_request_id="ws_CO_1")
        assert len(oauth_calls(mock)) == 2
    assert len(sleeps) == 1


def test_a_refresh_in_progress_elsewhere_is_waited_for_not_repeated():
    store = MemoryTokenStore()
    transport = Transport(base_url=SANDBOX, timeout=(1, 1), max_retries=0)

    def other_process_finishes(_seconds: float) -> None:
        store.set(provider.cache_key, "from-the-other-process", 3000)

    provider = AccessTokenProvider(
        transport=transport,
        consumer_key="ck",
        consumer_secret="cs",
        store=store,
        expiry_margin=120,
        sleep=other_process_finishes,
    )
    assert store.add(provider.lock_key, "1", 30)  # another process holds the refresh lock
    with responses.RequestsMock() as mock:
        assert provider.token() == "from-the-other-process"
        assert len(mock.calls) == 0


def test_a_refresh_lock_left_by_a_dead_process_does_not_block_forever():
    store = MemoryTokenStore()
    clock = FakeClock()

    def time_passes(seconds: float) -> None:
        clock.now += seconds * 100

    provider = AccessTokenProvider(
        transport=Transport(base_url=SANDBOX, timeout=(1, 1), max_retries=0),
        consumer_key="ck",
        consumer_secret="cs",
        store=store,
        expiry_margin=120,
        sleep=time_passes,
        clock=clock,
    )
    store.add(provider.lock_key, "1", 30)
    with responses.RequestsMock() as mock:
        mock.get(OAUTH_URL, json={"access_token": "mine", "expires_in": "3599"})
        assert provider.token() == "mine"


def test_no_token_means_the_money_request_was_never_sent(client):
    push_url = f"{SANDBOX}/mpesa/stkpush/v1/processrequest"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for _ in range(3):
            mock.get(OAUTH_URL, body=requests.ReadTimeout("read timed out"))
        mock.post(push_url, json=load_fixture("stk/stk_push_response_accepted.portal.json"))
        with pytest.raises(DarajaAuthError) as excinfo:
            client.stk_push(
                phone_number="0708374149",
                amount=1,
                account_reference="A",
                transaction_desc="A",
                callback_url="https://pay.example.co.ke/cb/1",
            )
        assert [c for c in mock.calls if c.request.url == push_url] == []
    # A timed-out token request says nothing about the push: it was never sent.
    assert excinfo.value.outcome_unknown is False

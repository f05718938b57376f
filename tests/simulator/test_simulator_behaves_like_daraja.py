"""The simulator answers like Daraja (shared/daraja/API.md): the same checks, codes, envelopes.

Spoken to over real HTTP, raw with ``requests`` where the wire format is the point, and through
our DarajaClient where the point is that the client meets the error it meets in production.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from payments.daraja.client import DarajaClient
from payments.daraja.errors import DarajaAuthError, DarajaServerError
from payments.daraja.security import stk_password, stk_timestamp
from payments.gateway import daraja_config
from simulator.models import C2BRegistration, SimulatedRequest, SimulatedToken
from tests.simulator.conftest import SIMULATOR_PASSKEY, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SHORTCODE = "174379"
STK_PUSH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY = "/mpesa/stkpushquery/v1/query"
ENVELOPE_KEYS = {"requestId", "errorCode", "errorMessage"}


def oauth(
    simulator, *, auth=("sim-consumer-key", "sim-consumer-secret"), grant="client_credentials"
):
    return requests.get(
        simulator.daraja_url + "/oauth/v1/generate",
        params={"grant_type": grant},
        auth=auth,
        timeout=10,
    )


@pytest.fixture
def bearer(simulator) -> dict[str, str]:
    response = oauth(simulator)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def post(simulator, path: str, body: dict, headers: dict[str, str]) -> requests.Response:
    return requests.post(simulator.daraja_url + path, json=body, headers=headers, timeout=10)


def sink(simulator) -> str:
    """A callback URL that answers 404: these tests look at Daraja's answers, not callbacks."""
    return simulator.url + "/callback-sink"


def stk_body(simulator, **changes) -> dict:
    timestamp = stk_timestamp()
    body = {
        "BusinessShortCode": int(SHORTCODE),
        "Password": stk_password(SHORTCODE, SIMULATOR_PASSKEY, timestamp),
        "Timestamp": timestamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 1,
        "PartyA": 254708374149,
        "PartyB": int(SHORTCODE),
        "PhoneNumber": 254708374149,
        "CallBackURL": sink(simulator),
        "AccountReference": "INV7",
        "TransactionDesc": "Order 7",
    }
    return {**body, **changes}


@pytest.fixture
def client(simulator):
    """Build our client from the simulator settings with changes: ``client(passkey="x")``."""
    sessions: list[requests.Session] = []

    def build(**changes) -> DarajaClient:
        sessions.append(requests.Session())
        return DarajaClient(dataclasses.replace(daraja_config(), **changes), session=sessions[-1])

    yield build
    for session in sessions:
        session.close()


def assert_envelope(response: requests.Response, status: int, code: str, message: str) -> None:
    body = response.json()
    assert response.status_code == status
    assert set(body) == ENVELOPE_KEYS
    assert body["requestId"]
    assert (body["errorCode"], body["errorMessage"]) == (code, message)


# -- OAuth -------------------------------------------------------------------------------------


def test_oauth_gives_a_token_for_the_right_basic_credentials(simulator):
    response = oauth(simulator)

    assert response.status_code == 200
    body = response.json()
    # Daraja sends expires_in as a string.
    assert body["expires_in"] == "3599"
    assert SimulatedToken.objects.filter(token=body["access_token"]).exists()


def test_oauth_refuses_a_wrong_consumer_secret_with_400(simulator):
    response = oauth(simulator, auth=("sim-consumer-key", "not-the-secret"))

    assert response.status_code == 400
    # Daraja's answer to wrong credentials has a blank message (API.md §1.2).
    assert response.json()["errorMessage"] == ""
    assert "access_token" not in response.json()
    assert not SimulatedToken.objects.exists()


def test_our_client_reports_wrong_consumer_credentials_as_an_auth_error(client):
    with pytest.raises(DarajaAuthError) as raised:
        client(consumer_secret="not-the-secret").stk_query(checkout_request_id="ws_CO_1")

    assert raised.value.http_status == 400


def test_oauth_refuses_another_grant_type(simulator):
    response = oauth(simulator, grant="password")

    assert_envelope(response, 400, "400.008.02", "Invalid grant type passed")


def test_oauth_refuses_a_request_without_basic_credentials(simulator):
    response = requests.get(
        simulator.daraja_url + "/oauth/v1/generate",
        params={"grant_type": "client_credentials"},
        headers={"Authorization": "Bearer sim-consumer-key"},
        timeout=10,
    )

    assert_envelope(response, 400, "400.008.01", "Invalid authentication type passed")


@pytest.mark.parametrize("expired", [False, True], ids=["unknown", "expired"])
def test_an_unknown_or_expired_bearer_token_is_refused(simulator, expired):
    token = "sim-token-that-does-not-exist"
    if expired:
        token = SimulatedToken.objects.create(
            token="sim-expired-token", expires_at=timezone.now() - timedelta(seconds=1)
        ).token

    response = post(simulator, STK_PUSH, stk_body(simulator), {"Authorization": f"Bearer {token}"})

    assert_envelope(response, 404, "404.001.03", "Invalid Access Token")
    assert not SimulatedRequest.objects.exists()


# -- STK Push ----------------------------------------------------------------------------------


def test_the_simulator_rejects_a_wrong_stk_password_with_darajas_error(simulator, client):
    with pytest.raises(DarajaServerError) as raised:
        client(passkey="not-the-passkey").stk_push(
            phone_number="0708374149",
            amount=1,
            account_reference="INV7",
            transaction_desc="Order 7",
            callback_url=sink(simulator),
        )

    error = raised.value
    assert (error.http_status, error.error_code) == (500, "500.001.1001")
    assert error.error_message == "Wrong credentials"
    assert error.request_id
    # A definite refusal: nothing was accepted, so the outcome is not in doubt.
    assert not error.outcome_unknown
    assert not SimulatedRequest.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"Timestamp": "2024-01-01 10:00"}, "Timestamp"),
        ({"Amount": 1.5}, "Amount"),
        ({"PhoneNumber": "0708374149"}, "PhoneNumber"),
        # Issue 9, point 9: Arabic-Indic digits after 2547 are digits to \d, not to Daraja.
        ({"PhoneNumber": "2547" + "".join(chr(0x660 + int(d)) for d in "08374149")}, "PhoneNumber"),
        ({"AccountReference": "INV-123456789"}, "AccountReference"),
    ],
    ids=["timestamp", "fractional-amount", "phone", "p09-phone-in-other-digits", "long-reference"],
)
def test_stk_push_refuses_an_invalid_field_like_daraja(simulator, bearer, changes, field):
    response = post(simulator, STK_PUSH, stk_body(simulator, **changes), bearer)

    assert_envelope(response, 400, "400.002.02", f"Bad Request - Invalid {field}")
    assert not SimulatedRequest.objects.exists()


def test_stk_query_says_being_processed_then_gives_a_string_result_code(simulator, bearer):
    # 0700000012 answers late, so the push stays unanswered for a while.
    pushed = post(
        simulator,
        STK_PUSH,
        stk_body(simulator, PartyA=254700000012, PhoneNumber=254700000012),
        bearer,
    )
    assert pushed.status_code == 200, pushed.text
    checkout_request_id = pushed.json()["CheckoutRequestID"]
    timestamp = stk_timestamp()
    query = {
        "BusinessShortCode": int(SHORTCODE),
        "Password": stk_password(SHORTCODE, SIMULATOR_PASSKEY, timestamp),
        "Timestamp": timestamp,
        "CheckoutRequestID": checkout_request_id,
    }

    pending = post(simulator, STK_QUERY, query, bearer)
    assert_envelope(pending, 500, "500.001.1001", "The transaction is being processed")

    push = SimulatedRequest.objects.get(checkout_request_id=checkout_request_id)
    wait_for(lambda: timezone.now() > push.completes_at, message="the simulated result")
    done = post(simulator, STK_QUERY, query, bearer)
    assert done.status_code == 200
    body = done.json()
    assert (body["ResponseCode"], body["ResultCode"]) == ("0", "0")
    assert body["CheckoutRequestID"] == checkout_request_id


# -- C2B and B2C -------------------------------------------------------------------------------


def test_c2b_register_stores_the_urls(simulator, bearer):
    urls = {
        "ValidationURL": simulator.url + "/c2b/validation",
        "ConfirmationURL": simulator.url + "/c2b/confirmation",
    }
    body = {"ShortCode": SHORTCODE, "ResponseType": "Completed", **urls}

    response = post(simulator, "/mpesa/c2b/v2/registerurl", body, bearer)

    assert response.status_code == 200
    assert response.json()["ResponseCode"] == "0"
    registration = C2BRegistration.objects.get(shortcode=SHORTCODE)
    assert (registration.validation_url, registration.confirmation_url) == tuple(urls.values())
    assert (registration.response_type, registration.api_version) == ("Completed", "v2")


def test_c2b_register_refuses_a_url_containing_mpesa(simulator, bearer):
    body = {
        "ShortCode": SHORTCODE,
        "ResponseType": "Completed",
        "ValidationURL": simulator.url + "/mpesa/validation",
        "ConfirmationURL": simulator.url + "/c2b/confirmation",
    }

    response = post(simulator, "/mpesa/c2b/v2/registerurl", body, bearer)

    assert_envelope(response, 400, "400.002.02", "Bad Request - Invalid ValidationURL")
    assert not C2BRegistration.objects.exists()


def test_b2c_refuses_a_reused_originator_conversation_id(simulator, client):
    daraja = client()
    payout = {
        "originator_conversation_id": "sim-payout-0001",
        "phone_number": "0708374149",
        "amount": 100,
        "remarks": "Refund",
        "result_url": sink(simulator),
        "queue_timeout_url": sink(simulator),
    }
    accepted = daraja.b2c_payment(**payout)
    assert accepted.originator_conversation_id == "sim-payout-0001"

    with pytest.raises(DarajaServerError) as raised:
        daraja.b2c_payment(**payout)

    assert (raised.value.http_status, raised.value.error_code) == (500, "500.002.1001")
    # Daraja saw that id before: the first copy may pay, so our side treats this as unknown.
    assert raised.value.outcome_unknown
    assert SimulatedRequest.objects.filter(kind="b2c").count() == 1


# -- Outside simulator mode --------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_the_simulator_answers_404_outside_simulator_mode(simulator, settings, environment):
    settings.PAYMENTS = {**settings.PAYMENTS, "ENVIRONMENT": environment}

    token = oauth(simulator)
    push = requests.post(simulator.daraja_url + STK_PUSH, json=stk_body(simulator), timeout=10)

    assert (token.status_code, push.status_code) == (404, 404)
    assert not SimulatedToken.objects.exists()

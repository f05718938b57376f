"""Fixtures for the Daraja client: a config with fake secrets, and Daraja mocked over HTTP."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import responses

from payments.daraja.client import DarajaClient
from payments.daraja.config import DarajaConfig
from payments.daraja.dates import NAIROBI

SANDBOX = "https://sandbox.safaricom.co.ke"
OAUTH_URL = f"{SANDBOX}/oauth/v1/generate"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "daraja"

# Distinctive fake secrets, so a test can prove none of them is ever printed.
SECRETS = {
    "consumer_secret": "cs-SECRET-f00dfacecafe",
    "passkey": "pk-SECRET-0badc0ffee",
    "initiator_password": "ip-SECRET-Pa55word",
    "security_credential": "sc-SECRET-credential==",
    "token": "tok-SECRET-0123456789abcdef",
}
# The instant of Safaricom's published password vector (API.md §2.1, timestamp 20160216165627).
FIXED_NOW = datetime(2016, 2, 16, 16, 56, 27, tzinfo=NAIROBI)


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def config() -> DarajaConfig:
    return DarajaConfig(
        consumer_key="ck-test-key",
        consumer_secret=SECRETS["consumer_secret"],
        shortcode="174379",
        passkey=SECRETS["passkey"],
        b2c_shortcode="600992",
        initiator_name="testapi",
        security_credential=SECRETS["security_credential"],
        connect_timeout=1.5,
        read_timeout=7.0,
        max_retries=2,
    )


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff delays the client asked for; nothing really sleeps."""
    return []


@pytest.fixture
def make_client(sleeps):
    def build(config: DarajaConfig, **kwargs) -> DarajaClient:
        kwargs.setdefault("sleep", sleeps.append)
        kwargs.setdefault("now", lambda: FIXED_NOW)
        return DarajaClient(config, **kwargs)

    return build


@pytest.fixture
def client(make_client, config) -> DarajaClient:
    return make_client(config)


@pytest.fixture
def daraja():
    """Daraja at the HTTP layer, with a working OAuth endpoint."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OAUTH_URL, json={"access_token": SECRETS["token"], "expires_in": "3599"})
        yield mock


def calls_to(mock: responses.RequestsMock, path: str) -> list:
    return [c for c in mock.calls if c.request.url.split("?")[0].endswith(path)]

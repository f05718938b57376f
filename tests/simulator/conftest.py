"""Fixtures for tests that run the Daraja simulator over real HTTP with pytest-django's live server.

The live server plays both Daraja (under /simulator/daraja) and our site (the callback target);
the simulator's outbox worker thread really POSTs the callbacks. Nothing is mocked.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core import signing
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from payments.gateway import reset_daraja_client
from payments.services.checkout import SALT as CHECKOUT_SALT
from simulator import outbox

API = "/api/v1/payments/mpesa"
STATUS_PATH = API + "/stk-push/status/{}"
TRANSACTION_PATH = API + "/transactions/{}"
DARAJA_PATH = "/simulator/daraja"
SIMULATOR_PASSKEY = "sim-passkey-0123456789"
CALLBACK_DELAY = 0.2
LATE_DELAY = 1.5
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.1
STAFF_PERMISSIONS = (
    "pay_out",
    "refund",
    "view_balance",
    "query_status",
    "register_c2b_urls",
    "create_checkout_link",
)


def wait_for(
    probe: Callable[[], Any], *, timeout: float = WAIT_SECONDS, message: str = "condition"
) -> Any:
    """Call ``probe`` every POLL_SECONDS until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message} (last: {last!r})")


def holds_for(probe: Callable[[], Any], *, seconds: float, message: str = "condition") -> None:
    """Check ``probe`` every POLL_SECONDS for ``seconds``: it must hold every time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe(), f"{message} stopped holding"
        time.sleep(POLL_SECONDS)


@dataclass
class Simulator:
    """The live server in simulator mode, and an API session for a staff user."""

    url: str
    api: requests.Session

    @property
    def daraja_url(self) -> str:
        return self.url + DARAJA_PATH

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.api.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, body: dict | None = None, **kwargs: Any) -> requests.Response:
        return self.api.post(self.url + path, json=body or {}, timeout=10, **kwargs)

    def stk_push(self, phone_number: str, *, amount: int = 1, reference: str = "INV7") -> dict:
        response = self.post(
            API + "/stk-push",
            {"phone_number": phone_number, "amount": amount, "account_reference": reference},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def stk_status(self, checkout_request_id: str) -> dict:
        response = self.get(STATUS_PATH.format(checkout_request_id))
        assert response.status_code == 200, response.text
        return response.json()

    def transaction(self, transaction_id: str) -> dict:
        response = self.get(TRANSACTION_PATH.format(transaction_id))
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_stk(self, checkout_request_id: str, status: str) -> dict:
        return wait_for(
            lambda: _if(self.stk_status(checkout_request_id), status),
            message=f"STK Push {checkout_request_id} to become {status}",
        )

    def wait_for_transaction(self, transaction_id: str, status: str) -> dict:
        return wait_for(
            lambda: _if(self.transaction(transaction_id), status),
            message=f"transaction {transaction_id} to become {status}",
        )


def _if(body: dict, status: str) -> dict | None:
    return body if body["status"] == status else None


def tampered(token: str) -> str:
    """The token with its last character changed: the signature no longer matches."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def expired(token: str) -> str:
    """The same link, genuinely signed, whose expiry has passed a minute ago.

    checkout_link_create refuses a past expiry, so the terms are re-signed with its salt.
    """
    terms = signing.loads(token, salt=CHECKOUT_SALT)
    terms["e"] = int(time.time()) - 60
    return signing.dumps(terms, salt=CHECKOUT_SALT, compress=True)


def simulator_payments(base: dict, url: str) -> dict:
    """PAYMENTS for a site whose Daraja is the simulator served at ``url``."""
    return {
        **base,
        "ENVIRONMENT": "simulator",
        "BASE_URL": url + DARAJA_PATH,
        "CALLBACK_BASE_URL": url,
        "CONSUMER_KEY": "sim-consumer-key",
        "CONSUMER_SECRET": "sim-consumer-secret",
        "PASSKEY": SIMULATOR_PASSKEY,
        "SHORTCODE": "174379",
        "B2C_SHORTCODE": "600992",
        "INITIATOR_NAME": "testapi",
        "SECURITY_CREDENTIAL": "sim-credential",
        "CALLBACK_SECRET": "sim-callback-secret-0123456789abcdef",
        "HTTP_MAX_RETRIES": 0,
    }


def staff_token(django_user_model, username: str = "sim-staff") -> str:
    """The API token of a staff user allowed to pay out, refund, see the balance and create
    checkout links."""
    user = django_user_model.objects.create_user(username, password="pw-sim-1", is_staff=True)
    # Looked up by app and model, not through ContentType's cache: transactional tests flush
    # and recreate content types between tests.
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="payments",
            content_type__model="transaction",
            codename__in=STAFF_PERMISSIONS,
        )
    )
    return Token.objects.create(user=user).key


@pytest.fixture
def simulator(transactional_db, live_server, settings, django_user_model):
    """The live server as Daraja and as our site; stops the outbox worker afterwards."""
    # The live server reads ROOT_URLCONF on each request; changing it clears the URL caches.
    settings.ROOT_URLCONF = "tests.simulator.urls"
    settings.PAYMENTS = simulator_payments(settings.PAYMENTS, live_server.url)
    settings.DARAJA_SIMULATOR = {
        "CALLBACK_DELAY": CALLBACK_DELAY,
        "LATE_DELAY": LATE_DELAY,
        "TOKEN_LIFETIME": 3599,
    }
    reset_daraja_client()
    cache.clear()
    session = requests.Session()
    session.headers["Authorization"] = f"Token {staff_token(django_user_model)}"
    yield Simulator(url=live_server.url, api=session)
    # Before the test database is flushed: the worker must not query a table being emptied.
    outbox.stop_worker()
    session.close()
    reset_daraja_client()
    cache.clear()
    # urllib3 closes a pooled connection only when its pool is collected, and a DarajaError's
    # traceback (kept in a reference cycle) can keep a pool alive. Its live server thread would
    # wait on that kept-alive connection past the end of the session, then fail to close a
    # database connection it shares with this thread. Collect now so those sockets close.
    gc.collect()


# -- browser tests -----------------------------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A browser test that fails leaves a screenshot, named in its report."""
    report = yield
    # Taken here, before the page fixture's teardown closes the browser context.
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', item.name)}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            note = f"saved to {path} (page was at {page.url})"
        except Exception as exc:  # the browser may be what failed
            note = f"could not be taken: {exc}"
        report.sections.append(("browser screenshot", note))
    return report


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Callbacks come 0.2 s after a request and pages poll every 2 s: 15 s is ample.
BROWSER_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright; skipped where it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, so Django's
    # async-safety guard would refuse the ORM calls of the tests and of the database flush
    # between them. No coroutine of ours touches the ORM: the guard is lifted for the module.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
        finally:
            playwright.stop()


@pytest.fixture
def page(browser, simulator):
    # Named ``page``: the report hook above screenshots it when a test fails.
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    yield page
    context.close()

"""The hosted checkout page in a real browser (Debian's Chromium, headless, via Playwright),
paying through the simulator over real HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from payments.models import Transaction
from payments.services.checkout import checkout_link_create, checkout_path
from tests.simulator.conftest import expired, tampered

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM}", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

# The page polls every 2 s and the simulator answers after 0.2 s: 15 s is ample.
SETTLE_MS = 15_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an asyncio loop running in this thread, so Django's
    # async-safety guard would refuse the ORM calls of the tests and of the database flush
    # between them. No coroutine of ours touches the ORM: the guard is lifted for this module.
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
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(SETTLE_MS)
    yield page
    context.close()


@pytest.fixture
def link() -> str:
    return checkout_link_create(amount=10, account_reference="INV42", description="Order 42")


def open_checkout(page, simulator, token: str):
    return page.goto(simulator.url + checkout_path(token))


def test_a_customer_pays_and_sees_the_receipt(page, simulator, link):
    open_checkout(page, simulator, link)
    expect(page.get_by_test_id("amount")).to_have_text("KES 10")
    expect(page.get_by_test_id("reference")).to_have_text("INV42")
    expect(page.locator("#steps")).to_contain_text("phone")
    expect(page.locator("#steps")).to_contain_text("M-Pesa PIN")

    page.fill("#phone", "0708 374 149")
    page.click("#pay-button")

    expect(page.locator("#receipt")).to_have_text(re.compile(r"^S[A-Z0-9]{9}$"), timeout=SETTLE_MS)
    expect(page.locator("#receipt")).to_be_visible()
    expect(page.locator("#status-message")).to_have_text("Payment received. Thank you.")
    expect(page.locator("#retry-button")).to_be_hidden()
    payment = Transaction.objects.get()
    assert (payment.status, payment.amount) == ("success", 10)
    expect(page.locator("#receipt")).to_have_text(payment.mpesa_receipt_number)


def test_a_bad_phone_number_is_explained_and_starts_nothing(page, simulator, link):
    sent = []
    page.on("request", lambda request: sent.append(request.url))
    open_checkout(page, simulator, link)

    page.fill("#phone", "12345")
    page.click("#pay-button")

    expect(page.locator("#phone-error")).to_contain_text("Kenyan mobile number")
    expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#status")).to_be_hidden()
    assert not [url for url in sent if url.endswith("/start")]
    assert not Transaction.objects.exists()


def test_a_cancelled_payment_offers_to_try_again(page, simulator, link):
    open_checkout(page, simulator, link)

    page.fill("#phone", "0700000001")
    page.click("#pay-button")

    expect(page.locator("#status-message")).to_have_text(
        "You cancelled the M-Pesa prompt.", timeout=SETTLE_MS
    )
    expect(page.locator("#retry-button")).to_be_visible()
    expect(page.locator("#retry-button")).to_have_text("Try again")
    expect(page.locator("#receipt-line")).to_be_hidden()


@pytest.mark.parametrize(
    ("spoil", "message"),
    [(tampered, "This payment link is not valid."), (expired, "This payment link has expired.")],
    ids=["tampered", "expired"],
)
def test_a_tampered_or_expired_link_shows_why_it_cannot_be_used(
    page, simulator, link, spoil, message
):
    response = open_checkout(page, simulator, spoil(link))

    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Payment link not available")
    expect(page.locator("body")).to_contain_text(message)
    expect(page.locator("#pay-button")).to_have_count(0)

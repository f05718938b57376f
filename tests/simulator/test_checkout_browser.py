"""The hosted checkout page in a real browser (Debian's Chromium, headless, via Playwright),
paying through the simulator over real HTTP."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from payments.models import Transaction
from payments.services.checkout import checkout_link_create, checkout_path
from tests.simulator.conftest import BROWSER_TIMEOUT_MS, expired, tampered

pytestmark = pytest.mark.django_db(transaction=True)


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

    expect(page.locator("#receipt")).to_have_text(
        re.compile(r"^S[A-Z0-9]{9}$"), timeout=BROWSER_TIMEOUT_MS
    )
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
        "You cancelled the M-Pesa prompt.", timeout=BROWSER_TIMEOUT_MS
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

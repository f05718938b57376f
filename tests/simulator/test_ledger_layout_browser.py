"""The ledger list on a 1280x800 screen (Debian's Chromium, headless, via Playwright): every
column is in view beside the filter panel, and the list needs no sideways scrolling."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from payments.models import Transaction
from payments.services.roles import CLERK
from tests.simulator.test_admin_browser import TRANSACTIONS, finance_user, log_in

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH, HEIGHT = 1280, 800


@pytest.fixture
def clerk(simulator, django_user_model):
    return finance_user(django_user_model, "carl-clerk", CLERK)


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not rendered"
    return found


def on_top(page, locator) -> bool:
    """Whether the middle of ``locator`` shows ``locator`` itself, not something drawn over it."""
    return locator.evaluate(
        """(element) => {
            const r = element.getBoundingClientRect();
            const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return top !== null && (top === element || element.contains(top));
        }"""
    )


def test_receipt_and_reference_are_in_view_beside_the_filter_panel(page, simulator, clerk):
    for n in range(3):
        Transaction.objects.create(
            transaction_type="STK_PUSH",
            status="awaiting_receipt" if n else "success",  # the widest status badge
            amount=125_000 + n,
            phone_number="254708374149",
            mpesa_receipt_number=f"NLJ7RT6{n}SV",
            account_reference=f"INVOICE-2025-{n:07d}",  # 20 characters, the most there are
            environment="sandbox",
        )
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in(page, simulator, clerk)

    page.goto(simulator.url + TRANSACTIONS)

    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    panel = box(page.locator("#changelist-filter"))
    for column in ("receipt", "reference"):
        header = page.locator(f"#result_list th.column-{column}")
        cell = page.locator(f"#result_list tbody tr td.field-{column}").first
        expect(header).to_be_visible()
        expect(cell).to_be_visible()
        for element in (header, cell):
            edges = box(element)
            assert edges["x"] >= 0
            assert edges["x"] + edges["width"] <= panel["x"], f"{column} runs under the filters"
            assert on_top(page, element), f"something is drawn over the {column}"
    expect(page.locator("#result_list tbody tr td.field-receipt").first).to_have_text(
        re.compile(r"^NLJ7RT6[0-2]SV$")
    )
    results = page.locator("#changelist .results")
    scroll_width, client_width = results.evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert scroll_width <= client_width, "the list scrolls sideways"
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    table = box(page.locator("#result_list"))
    assert table["x"] + table["width"] <= panel["x"]

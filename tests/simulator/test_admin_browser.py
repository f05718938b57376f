"""The finance back office in a real browser (Debian's Chromium, headless, via Playwright),
against the live server in simulator mode: payments and refunds settle through the simulator's
real callbacks. Staff log in through the admin's login page as members of the finance groups."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from payments.enums import TransactionType
from payments.models import PayoutRequest, Transaction
from payments.services.roles import CLERK, MANAGER
from simulator.models import SimulatedRequest
from tests.simulator.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PAYER = "0708374149"  # the simulator's happy path
CANCELLING_PAYER = "0700000001"  # the simulator's payer who cancels the prompt
PASSWORD = "pw-finance-1"  # a test user's
TRANSACTIONS = "/admin/payments/transaction/"


def finance_user(django_user_model, username: str, role: str):
    """A staff user whose only permissions come from the finance group ``role``."""
    user = django_user_model.objects.create_user(username, password=PASSWORD, is_staff=True)
    # The group is the one post_migrate creates: the test relies on it, not on a copy.
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def manager(simulator, django_user_model):
    return finance_user(django_user_model, "fiona-manager", MANAGER)


@pytest.fixture
def clerk(simulator, django_user_model):
    return finance_user(django_user_model, "carl-clerk", CLERK)


def log_in(page, simulator, user) -> None:
    page.goto(simulator.url + "/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(user.username)


def paid(simulator, phone_number: str = PAYER, *, amount: int, status: str = "success") -> dict:
    """An STK Push through the simulator, settled by its real callback."""
    pushed = simulator.stk_push(phone_number, amount=amount)
    return simulator.wait_for_stk(pushed["checkout_request_id"], status)


def reversal_row(page):
    return page.locator("#reversals-group tbody tr.form-row")


def test_a_manager_refunds_part_of_a_payment_found_by_its_receipt(page, simulator, manager):
    other = paid(simulator, amount=30)
    payment = paid(simulator, amount=100)
    receipt = payment["mpesa_receipt_number"]
    log_in(page, simulator, manager)

    page.goto(simulator.url + TRANSACTIONS)
    page.fill("#searchbar", receipt)
    page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(receipt)
    expect(page.locator("#result_list")).not_to_contain_text(other["mpesa_receipt_number"])

    rows.locator("th a").click()
    expect(page).to_have_url(re.compile(rf"{TRANSACTIONS}{payment['id']}/change/(\?|$)"))
    page.get_by_role("link", name="Refund…").click()
    expect(page).to_have_url(re.compile(rf"{TRANSACTIONS}{payment['id']}/refund/$"))
    page.fill("#id_amount", "40")
    page.get_by_role("button", name="Continue").click()

    confirmation = page.locator("#content-main")
    expect(confirmation).to_contain_text("Refund KES 40")
    expect(confirmation).to_contain_text(f"of payment {receipt}")
    page.get_by_role("button", name="Yes, refund KES 40").click()

    expect(page).to_have_url(re.compile(rf"{TRANSACTIONS}{payment['id']}/change/$"))
    expect(page.locator(".messagelist .success")).to_contain_text(
        f"Refund of KES 40 for {receipt} sent to M-Pesa"
    )

    def refunded() -> bool:
        # The page reads the payment, then its refunds: a result committed between the two
        # reads shows the refund settled beside the amount refunded before it. The next
        # reload shows both.
        page.reload()
        row = reversal_row(page)
        return (
            row.count() == 1
            and row.locator("td.field-status").inner_text() == "Success"
            and page.locator(".field-reversed_amount .readonly").inner_text() == "40"
        )

    wait_for(refunded, message="the reversal's result to show in the inline")
    row = reversal_row(page)
    expect(row.locator("td.field-amount")).to_have_text("40")
    expect(row.locator("td.field-mpesa_receipt_number")).to_have_text(re.compile(r"\S+"))
    expect(page.locator(".field-reversed_amount .readonly")).to_have_text("40")
    reversal = Transaction.objects.get(transaction_type=TransactionType.REVERSAL)
    assert (str(reversal.original_id), reversal.amount, reversal.user) == (
        payment["id"],
        40,
        manager,
    )


def test_a_clerk_is_offered_no_refund_or_payout_and_cannot_open_them(page, simulator, clerk):
    payment = paid(simulator, amount=50)
    log_in(page, simulator, clerk)

    page.goto(simulator.url + TRANSACTIONS)
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    actions = page.locator("select[name=action] option")
    # The dropdown is there, with what a clerk may do; refunding is not among it.
    expect(actions.filter(has_text="Export selected as CSV")).to_have_count(1)
    expect(page.locator("select[name=action] option[value=refund_selected]")).to_have_count(0)
    expect(actions.filter(has_text="Refund")).to_have_count(0)
    expect(page.get_by_role("link", name="Send money (B2C)")).to_have_count(0)

    page.goto(simulator.url + f"{TRANSACTIONS}{payment['id']}/change/")
    expect(page.locator("#content")).to_contain_text(payment["mpesa_receipt_number"])
    expect(page.get_by_role("link", name="Refund…")).to_have_count(0)

    for path in ("payout/", f"{payment['id']}/refund/"):
        response = page.goto(simulator.url + TRANSACTIONS + path)
        assert response.status == 403, f"{path} answered {response.status}"
    expect(page.locator("#id_phone_number")).to_have_count(0)


def test_the_payout_form_explains_a_bad_phone_number_next_to_the_field(page, simulator, manager):
    log_in(page, simulator, manager)
    page.goto(simulator.url + TRANSACTIONS)
    page.get_by_role("link", name="Send money (B2C)").click()

    page.fill("#id_phone_number", "12345")
    page.fill("#id_amount", "100")
    page.fill("#id_remarks", "Supplier refund")
    page.get_by_role("button", name="Continue").click()

    phone = page.locator("#id_phone_number")
    expect(phone).to_have_attribute("aria-invalid", "true")
    error = page.locator("#" + phone.get_attribute("aria-describedby"))
    expect(error).to_be_visible()
    expect(error).to_contain_text("Kenyan mobile number")
    expect(error).to_contain_text("07XXXXXXXX")
    # The message sits right above the phone field's paragraph, not elsewhere on the page.
    expect(page.locator(".errorlist + p #id_phone_number")).to_have_count(1)
    expect(page.locator(".errorlist")).to_have_count(1)
    expect(phone).to_have_value("12345")
    # Still the form: the confirmation step was not reached.
    confirm = page.get_by_role("button", name=re.compile("Yes, send|Submit for approval"))
    expect(confirm).to_have_count(0)
    assert not PayoutRequest.objects.exists()
    assert not Transaction.objects.filter(transaction_type=TransactionType.B2C).exists()
    assert not SimulatedRequest.objects.filter(kind="b2c").exists()


def test_the_dashboard_charts_the_week_and_counts_todays_payments(page, simulator, manager):
    paid(simulator, amount=10)
    paid(simulator, amount=20)
    paid(simulator, CANCELLING_PAYER, amount=500, status="cancelled")
    log_in(page, simulator, manager)

    dashboard = page.locator("#payments-dashboard")
    expect(dashboard).to_be_visible()
    chart = dashboard.locator("svg#payments-volume-chart")
    expect(chart).to_be_visible()
    bars = chart.locator("rect")
    expect(bars).to_have_count(7)
    box = chart.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 20, box

    today = dashboard.locator("tbody tr").filter(has=page.locator("th", has_text="Today"))
    expect(today.locator("td")).to_have_text(["3", "30", "67%"])
    # Days run oldest first: only today's bar, the last, has money in it.
    heights = [int(bars.nth(n).get_attribute("height")) for n in range(7)]
    assert heights[:6] == [0] * 6 and heights[6] > 0, heights
    expect(bars.nth(6).locator("title")).to_contain_text("KES 30")

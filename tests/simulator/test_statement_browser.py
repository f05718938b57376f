"""Closing the day in a real browser: payments go through the simulator, its org portal statement
is downloaded, and a finance manager imports it, reads the report and books what the ledger
missed. Nothing is mocked; the statement is edited only to hold each kind of mismatch."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from payments.models import AuditRecord, StatementImport, StatementLine, Transaction
from payments.services.c2b import c2b_simulate
from payments.services.statements import statement_import
from tests.simulator.test_admin_browser import log_in, manager, paid  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

STATEMENT = "/simulator/daraja/statement.csv"
STATEMENTS = "/admin/payments/statementimport/"
RECEIPT_COLUMN, PAID_IN_COLUMN = 0, 5
HEADER_ROW = 6  # the portal's preamble takes the six rows above it


def downloaded(simulator) -> tuple[str, list[list[str]]]:
    """The statement of the simulated account, today so far: its file name and its rows."""
    response = simulator.get(STATEMENT)
    assert response.status_code == 200, response.text
    name = re.search(r'filename="([^"]+)"', response.headers["Content-Disposition"]).group(1)
    return name, list(csv.reader(io.StringIO(response.text)))


def written(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def lines_of(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[RECEIPT_COLUMN]: row for row in rows[HEADER_ROW + 1 :]}


def test_the_simulators_statement_of_a_quiet_day_matches_the_ledger(simulator):
    first, second = paid(simulator, amount=120), paid(simulator, amount=80)

    name, rows = downloaded(simulator)
    result = statement_import(data=written(rows), file_name=name)

    assert name.startswith("ORG_174379_Utility Account_Completed_")
    assert rows[HEADER_ROW][:3] == ["Receipt No.", "Completion Time", "Initiation Time"]
    assert sorted(lines_of(rows)) == sorted(
        [first["mpesa_receipt_number"], second["mpesa_receipt_number"]]
    )
    assert {line.category for line in result.lines} == {"matched"}
    assert result.statement.shortcode == "174379"


def test_a_manager_imports_the_statement_reads_each_mismatch_and_books_the_missing_line(
    page,
    simulator,
    manager,  # noqa: F811 (the fixture)
):
    matched = paid(simulator, amount=100)
    differs = paid(simulator, amount=200)
    unlisted = paid(simulator, amount=400)
    # Paid to the till, but its confirmation never reaches us: no C2B URLs are registered.
    c2b_simulate(phone_number="0708374149", amount=300, bill_ref_number="INV9")
    name, rows = downloaded(simulator)
    lines = lines_of(rows)
    (lost,) = set(lines) - {p["mpesa_receipt_number"] for p in (matched, differs, unlisted)}
    lines[differs["mpesa_receipt_number"]][PAID_IN_COLUMN] = "250.00"
    rows.remove(lines[unlisted["mpesa_receipt_number"]])
    data = written(rows)

    log_in(page, simulator, manager)
    page.goto(simulator.url + STATEMENTS)
    page.get_by_role("link", name="Import a statement").click()
    page.set_input_files("#id_file", files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
    page.get_by_role("button", name="Import").click()

    expect(page.locator(".messagelist .success")).to_contain_text("Imported 3 lines.")
    summary = page.locator("#statement-summary")
    expected = {
        "matched": ("1", "100.00"),
        "amount_differs": ("1", "250.00"),
        "missing_from_ledger": ("1", "300.00"),
        "missing_from_statement": ("1", "400.00"),
        "not_ours": ("0", "0.00"),
    }
    for category, (count, total) in expected.items():
        row = summary.locator(f"tr[data-category={category}]")
        expect(row.locator("td.count")).to_have_text(count)
        expect(row.locator("td.total")).to_have_text(total)
    mismatches = page.locator("#statement-lines tbody tr")
    expect(mismatches).to_have_count(3)
    for receipt, category in (
        (differs["mpesa_receipt_number"], "amount_differs"),
        (lost, "missing_from_ledger"),
        (unlisted["mpesa_receipt_number"], "missing_from_statement"),
    ):
        expect(page.locator(f"#statement-lines tr[data-receipt={receipt}]")).to_have_class(
            f"category-{category}"
        )
    summary.get_by_role("link", name="Matched").click()
    expect(page.locator("#statement-lines tbody tr")).to_have_count(1)
    expect(page.locator("#statement-lines")).to_contain_text(matched["mpesa_receipt_number"])

    summary.get_by_role("link", name="On the statement, not on the ledger").click()
    page.locator(f"#statement-lines tr[data-receipt={lost}]").get_by_role(
        "link", name="Book…"
    ).click()
    expect(page.locator("#content-main")).to_contain_text(f"receipt {lost}")
    audits_before = AuditRecord.objects.count()
    page.get_by_role("button", name="Yes, book KES 300.00").click()

    expect(page.locator(".messagelist .success")).to_contain_text(
        f"{lost}: C2B payment of KES 300 (booked)."
    )
    booked = Transaction.objects.get(mpesa_receipt_number=lost)
    assert (booked.transaction_type, booked.status, booked.amount) == ("C2B", "success", 300)
    assert booked.account_reference == "INV9"
    assert Transaction.objects.filter(transaction_type="C2B").count() == 1
    assert AuditRecord.objects.count() == audits_before + 1
    audit = AuditRecord.objects.get(action="statement_book")
    assert (audit.actor, audit.transaction) == (manager, booked)
    expect(page.locator(f"#statement-lines tr[data-receipt={lost}] a.book-link")).to_have_count(0)
    expect(page.locator("#statement-open-count")).to_have_text("2")

    counts = (
        StatementImport.objects.count(),
        StatementLine.objects.count(),
        Transaction.objects.count(),
        AuditRecord.objects.count(),
    )
    page.goto(simulator.url + STATEMENTS + "upload/")
    page.set_input_files("#id_file", files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
    page.get_by_role("button", name="Import").click()

    expect(page.locator(".messagelist .warning")).to_contain_text("nothing was changed")
    assert (
        StatementImport.objects.count(),
        StatementLine.objects.count(),
        Transaction.objects.count(),
        AuditRecord.objects.count(),
    ) == counts

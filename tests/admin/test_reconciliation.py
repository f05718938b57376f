"""The statement pages of the back office: upload, report, export, booking and settling a line,
each behind its permission; files that are not statements answer a form error, never a 500."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from payments.models import AuditRecord, StatementImport, StatementLine, Transaction
from tests.admin.helpers import messages_of
from tests.payments.test_statements import at, line, paid, statement

pytestmark = pytest.mark.django_db

STATEMENTS = "/admin/payments/statementimport/"
UPLOAD = STATEMENTS + "upload/"
LINES = "/admin/payments/statementline/"
FORMULA = '=HYPERLINK("http://x.invalid") - EVIL'


def report_url(kept: StatementImport) -> str:
    return f"{STATEMENTS}{kept.pk}/report/"


def book_url(line: StatementLine) -> str:
    return f"{STATEMENTS}line/{line.pk}/book/"


def resolve_url(line: StatementLine) -> str:
    return f"{STATEMENTS}line/{line.pk}/resolve/"


def upload(client, data: bytes, name: str = "statement.csv"):
    return client.post(UPLOAD, {"file": SimpleUploadedFile(name, data, "text/csv")})


@pytest.fixture
def day(db) -> bytes:
    paid("TEC0000001", 100, at(9))
    paid("TEC0000002", 200, at(10))
    paid("TEC0000004", 500, at(11))
    return statement(
        line("TEC0000001", at(9), "100.00"),
        line("TEC0000002", at(10), "250.00"),
        line("TEC0000003", at(10, 30), "300.00", account="INV9", party=FORMULA),
        line("TEC0000009", at(10, 31), "", "-3.00", reason="Pay Bill Charge"),
    )


@pytest.fixture
def imported(as_manager, day) -> StatementImport:
    upload(as_manager, day)
    return StatementImport.objects.get()


def summary_cells(response) -> dict[str, tuple[str, str]]:
    html = response.content.decode()
    found = re.findall(
        r'data-category="(\w+)">.*?class="num count">(\d+)<.*?class="num total">([^<]+)<',
        html,
        re.S,
    )
    return {category: (count, total) for category, count, total in found}


def test_a_manager_uploads_a_statement_and_reads_its_report(as_manager, day, manager):
    response = upload(as_manager, day, "ORG_174379_Utility Account_Completed_1.csv")

    kept = StatementImport.objects.get()
    assert response.status_code == 302
    assert response.url == report_url(kept)
    assert messages_of(response) == ["Imported 4 lines."]
    assert kept.imported_by == manager
    report = as_manager.get(report_url(kept))
    assert report.status_code == 200
    assert summary_cells(report) == {
        "matched": ("1", "100.00"),
        "amount_differs": ("1", "250.00"),
        "missing_from_ledger": ("1", "300.00"),
        "missing_from_statement": ("1", "500.00"),
        "not_ours": ("1", "3.00"),
    }
    html = report.content.decode()
    # The mismatches are listed, the ledger's rows linked, the missing line offered for booking.
    ledger_row = Transaction.objects.get(mpesa_receipt_number="TEC0000002")
    assert f"/admin/payments/transaction/{ledger_row.pk}/change/" in html
    missing = StatementLine.objects.get(receipt="TEC0000003")
    assert book_url(missing) in html
    assert 'id="statement-open-count">3<' in html
    assert "TEC0000001" not in html  # matched: listed under its category only
    assert "TEC0000001" in as_manager.get(report_url(kept) + "?category=matched").content.decode()


def test_uploading_the_same_file_again_changes_nothing(as_manager, imported, day):
    before = (StatementLine.objects.count(), AuditRecord.objects.count())

    response = upload(as_manager, day, "renamed.csv")

    assert response.url == report_url(imported)
    assert "nothing was changed" in messages_of(response)[-1]
    assert StatementImport.objects.count() == 1
    assert (StatementLine.objects.count(), AuditRecord.objects.count()) == before


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"%PDF-1.5 binary", "This is a PDF"),
        (bytes(range(256)) * 10, "binary data"),
        (b"PK\x03\x04garbage", "not a readable XLSX"),
        (b"Receipt No.,Completion Time,Paid In\nTEC1,never,1\n", "row 2: Completion Time"),
        (b"a,b\n1,2\n", "No header row"),
    ],
)
def test_a_file_that_is_not_a_statement_is_a_form_error(as_manager, data, says):
    response = upload(as_manager, data)

    assert response.status_code == 400
    assert says in response.content.decode()
    assert not StatementImport.objects.exists()


def test_an_empty_or_missing_or_oversized_file_is_a_form_error(as_manager, settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "STATEMENT_MAX_BYTES": 50}

    empty = upload(as_manager, b"")
    missing = as_manager.post(UPLOAD, {})
    big = upload(as_manager, b"x" * 51)

    assert [r.status_code for r in (empty, missing, big)] == [400, 400, 400]
    assert "The submitted file is empty." in empty.content.decode()
    assert "This field is required." in missing.content.decode()
    assert "a statement may be at most 50" in big.content.decode()


def test_a_clerk_reads_and_exports_reports_but_neither_imports_nor_books(as_clerk, imported, day):
    missing = StatementLine.objects.get(receipt="TEC0000003")

    assert as_clerk.get(report_url(imported)).status_code == 200
    assert as_clerk.get(UPLOAD).status_code == 403
    assert upload(as_clerk, day + b"\n").status_code == 403
    assert as_clerk.get(book_url(missing)).status_code == 403
    assert as_clerk.post(book_url(missing)).status_code == 403
    assert as_clerk.post(resolve_url(missing), {"note": "seen"}).status_code == 403
    assert book_url(missing) not in as_clerk.get(report_url(imported)).content.decode()
    assert as_clerk.post(f"{STATEMENTS}{imported.pk}/export/").status_code == 200
    assert not Transaction.objects.filter(mpesa_receipt_number="TEC0000003").exists()


def test_staff_without_the_permission_see_no_report(imported, django_user_model, client):
    staff = django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    client.force_login(staff)

    assert client.get(report_url(imported)).status_code == 403
    assert client.post(f"{STATEMENTS}{imported.pk}/export/").status_code == 403


def test_the_report_exports_as_csv_with_formula_cells_neutralised(as_manager, imported, manager):
    response = as_manager.post(f"{STATEMENTS}{imported.pk}/export/")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 5
    missing = next(row for row in rows if row["receipt"] == "TEC0000003")
    assert missing["other_party"] == "'" + FORMULA
    assert missing["category"] == "missing_from_ledger"
    audit = AuditRecord.objects.get(action="statement_export")
    assert (audit.actor, audit.details["statement"]) == (manager, imported.pk)


def test_booking_a_missing_line_asks_first_then_books_it_once(as_manager, imported, manager):
    missing = StatementLine.objects.get(receipt="TEC0000003")

    confirm = as_manager.get(book_url(missing))
    html = confirm.content.decode()
    assert "Yes, book KES 300.00" in html
    nonce = re.search(r'name="nonce" value="(\w+)"', html).group(1)
    booked = as_manager.post(book_url(missing), {"nonce": nonce})
    again = as_manager.post(book_url(missing), {"nonce": nonce})

    assert booked.status_code == 302
    assert booked.url == report_url(imported) + "?category=missing_from_ledger"
    assert messages_of(booked)[-1] == "TEC0000003: C2B payment of KES 300 (booked)."
    assert "already submitted" in messages_of(again)[-1]
    c2b = Transaction.objects.get(mpesa_receipt_number="TEC0000003")
    assert c2b.transaction_type == "C2B"
    assert AuditRecord.objects.filter(action="statement_book", actor=manager).count() == 1
    # Booked: no longer offered, and its page says so.
    assert book_url(missing) not in as_manager.get(report_url(imported)).content.decode()
    assert as_manager.get(book_url(missing)).status_code == 302


def test_a_matched_line_cannot_be_booked(as_manager, imported):
    matched = StatementLine.objects.get(receipt="TEC0000001")

    response = as_manager.post(book_url(matched), {"nonce": uuid.uuid4().hex})

    assert "nothing was booked" in messages_of(response)[-1]
    assert Transaction.objects.count() == 3


def test_a_mismatch_is_settled_with_a_note(as_manager, imported):
    differs = StatementLine.objects.get(receipt="TEC0000002")

    form = as_manager.get(resolve_url(differs))
    blank = as_manager.post(resolve_url(differs), {"note": ""})
    done = as_manager.post(resolve_url(differs), {"note": "Refunded the 50 paid too much."})

    assert form.status_code == 200
    assert blank.status_code == 400
    assert messages_of(done)[-1] == "TEC0000002: resolved."
    differs.refresh_from_db()
    assert differs.resolution == "Refunded the 50 paid too much."


def test_an_import_opens_as_its_report(as_manager, imported):
    assert as_manager.get(f"{STATEMENTS}{imported.pk}/change/").url == report_url(imported)
    assert as_manager.get(f"{STATEMENTS}x%00/change/").status_code == 404
    assert as_manager.get(f"{STATEMENTS}999999/report/").status_code == 404


def test_lines_that_need_a_person_are_one_filter_away(as_manager, imported):
    listed = as_manager.get(LINES + "?needs_a_person=yes").content.decode()

    for receipt in ("TEC0000002", "TEC0000003", "TEC0000004"):
        assert receipt in listed
    assert "TEC0000001" not in listed
    assert "Import a statement" in as_manager.get(STATEMENTS).content.decode()

"""Statement imports and bookings racing each other (PostgreSQL, real threads)."""

from __future__ import annotations

from payments.exceptions import PaymentValidationError
from payments.models import AuditRecord, StatementImport, StatementLine, Transaction
from payments.services.statements import statement_import, statement_line_book
from tests.concurrency import POSTGRESQL_ONLY, run_together
from tests.payments.test_statements import at, line, paid, statement

pytestmark = POSTGRESQL_ONLY


def test_one_file_imported_ten_times_at_once_is_kept_once():
    paid("TEC0000001", 100, at(9))
    data = statement(line("TEC0000001", at(9), "100.00"), line("TEC0000003", at(10), "300.00"))

    results = run_together(10, lambda _: statement_import(data=data, file_name="day.csv"))

    assert sum(result.created for result in results) == 1
    assert {result.statement.pk for result in results} == {StatementImport.objects.get().pk}
    assert StatementLine.objects.count() == 2
    assert AuditRecord.objects.filter(action="statement_import").count() == 1


def test_one_line_booked_ten_times_at_once_is_booked_once():
    statement_import(data=statement(line("TEC0000003", at(10), "300.00")), file_name="day.csv")
    missing = StatementLine.objects.get(receipt="TEC0000003")

    def book(_):
        try:
            return statement_line_book(line=missing, user=None)[1]
        except PaymentValidationError:
            return "refused"

    outcomes = run_together(10, book)

    assert sorted(outcomes) == ["booked"] + ["refused"] * 9
    assert Transaction.objects.filter(mpesa_receipt_number="TEC0000003").count() == 1
    booked = AuditRecord.objects.filter(action="statement_book").exclude(
        outcome__startswith="failed"
    )
    assert booked.count() == 1

"""Statement import: each line held against the ledger, the report kept once, a missing line
booked through the C2B booking path, and what stays open for a person."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from payments.daraja.dates import NAIROBI
from payments.enums import StatementCategory, TransactionStatus, TransactionType
from payments.exceptions import PaymentValidationError
from payments.models import AuditRecord, StatementImport, StatementLine, Transaction
from payments.selectors import statement_mismatches_open
from payments.services.c2b import C2BBooking
from payments.services.statements import (
    statement_import,
    statement_line_book,
    statement_line_resolve,
)
from payments.signals import c2b_payment_received
from payments.statement_file import statement_csv
from tests.payments.conftest import stk_transaction

pytestmark = pytest.mark.django_db

SHORTCODE = "174379"  # tests/settings.py
DAY = (
    datetime(2026, 5, 12, 0, 0, 0, tzinfo=NAIROBI),
    datetime(2026, 5, 12, 23, 59, 59, tzinfo=NAIROBI),
)
PARTY = "254708****149 - AMINA ODHIAMBO"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, 12, hour, minute, tzinfo=NAIROBI)


def line(
    receipt,
    when,
    paid_in="",
    withdrawn="",
    *,
    reason="Pay Bill Online",
    account="INV1",
    status="Completed",
    party=PARTY,
):
    return [
        receipt,
        when,
        when,
        f"Pay Bill from {party}",
        status,
        paid_in,
        withdrawn,
        "",
        "true",
        reason,
        party,
        "",
        account,
    ]


def statement(*lines, shortcode=SHORTCODE, period=DAY) -> bytes:
    return statement_csv(
        account_holder="KIJANI SUPPLIES LIMITED", shortcode=shortcode, period=period, rows=lines
    ).encode()


def paid(receipt: str, amount: int, when: datetime, **fields) -> Transaction:
    """A payment on the ledger, as a C2B confirmation leaves it."""
    return Transaction.objects.create(
        transaction_type=fields.pop("transaction_type", TransactionType.C2B),
        status=fields.pop("status", TransactionStatus.SUCCESS),
        amount=amount,
        mpesa_receipt_number=receipt,
        transaction_date=when,
        environment="sandbox",
        shortcode=fields.pop("shortcode", SHORTCODE),
        result_code="0",
        **fields,
    )


def categories(result) -> dict[str, str]:
    return {line.receipt: line.category for line in result.lines}


def totals(result) -> dict[str, tuple[int, Decimal]]:
    return {row.category: (row.count, row.total) for row in result.summary}


@pytest.fixture
def day_statement(db):
    """The ledger of a day, and its statement: one line of each kind."""
    paid("TEC0000001", 100, at(9))
    paid("TEC0000002", 200, at(10), transaction_type=TransactionType.STK_PUSH)
    paid("TEC0000004", 500, at(11))  # never on the statement
    paid("TEC0000005", 700, at(9) - timedelta(days=1))  # the day before: another statement's
    paid("TEC0000007", 900, at(12), shortcode="600111")  # another shortcode's
    return statement(
        line("TEC0000001", at(9), "100.00"),
        line("TEC0000002", at(10), "250.00", reason="Pay Utility"),
        line("TEC0000003", at(10, 30), "300.00", account="INV9"),
        line("TEC0000009", at(10, 31), "", "-3.00", reason="Pay Bill Charge"),
        line(
            "TEC0000010",
            at(17),
            "",
            "-50.00",
            reason="Utility Account to Organization Settlement Account",
        ),
        line("TEC0000011", at(13), "40.00", status="Cancelled"),
        line("TEC0000012", at(14), "60.00", reason="Organization Settlement Account to Utility"),
    )


def test_each_line_is_held_against_the_ledger_by_receipt(day_statement):
    result = statement_import(data=day_statement, file_name="day.csv")

    assert categories(result) == {
        "TEC0000001": StatementCategory.MATCHED,
        "TEC0000002": StatementCategory.AMOUNT_DIFFERS,
        "TEC0000003": StatementCategory.MISSING_FROM_LEDGER,
        "TEC0000009": StatementCategory.NOT_OURS,
        "TEC0000010": StatementCategory.NOT_OURS,
        "TEC0000011": StatementCategory.NOT_OURS,
        "TEC0000012": StatementCategory.NOT_OURS,
        "TEC0000004": StatementCategory.MISSING_FROM_STATEMENT,
    }
    assert totals(result) == {
        "matched": (1, Decimal("100.00")),
        "amount_differs": (1, Decimal("250.00")),
        "missing_from_ledger": (1, Decimal("300.00")),
        "missing_from_statement": (1, Decimal("500.00")),
        "not_ours": (4, Decimal("153.00")),
    }
    kept = StatementLine.objects.get(receipt="TEC0000002")
    assert (kept.ledger_amount, kept.transaction.mpesa_receipt_number) == (200, "TEC0000002")
    assert kept.note == "the ledger has KES 200, the statement KES 250.00"
    assert StatementLine.objects.get(receipt="TEC0000004").row_number is None


def test_the_import_is_kept_and_audited(day_statement, django_user_model):
    manager = django_user_model.objects.create_user("fiona")

    result = statement_import(data=day_statement, file_name="day.csv", user=manager)

    kept = StatementImport.objects.get()
    assert result.created and result.statement == kept
    assert (kept.shortcode, kept.account_holder, kept.line_count, kept.imported_by) == (
        SHORTCODE,
        "KIJANI SUPPLIES LIMITED",
        7,
        manager,
    )
    assert (kept.period_start, kept.period_end) == DAY
    assert kept.lines.count() == 8
    audit = AuditRecord.objects.get()
    assert (audit.actor, audit.action) == (manager, "statement_import")
    assert "Matched: 1 line, KES 100.00" in audit.outcome
    assert audit.details["statement"] == kept.pk


def test_importing_the_same_file_again_changes_nothing(day_statement):
    first = statement_import(data=day_statement, file_name="day.csv")
    before = [
        model.objects.count()
        for model in (StatementImport, StatementLine, AuditRecord, Transaction)
    ]

    again = statement_import(data=day_statement, file_name="renamed.csv")

    assert not again.created
    assert again.statement == first.statement
    assert totals(again) == totals(first)
    after = [
        model.objects.count()
        for model in (StatementImport, StatementLine, AuditRecord, Transaction)
    ]
    assert after == before


def test_a_dry_run_reports_and_keeps_nothing(day_statement):
    result = statement_import(data=day_statement, file_name="day.csv", dry_run=True)

    assert result.statement is None
    assert totals(result)["missing_from_ledger"] == (1, Decimal("300.00"))
    assert not StatementImport.objects.exists()
    assert not StatementLine.objects.exists()
    assert not AuditRecord.objects.exists()


def test_a_file_that_is_not_a_statement_is_refused_naming_the_file_and_audited():
    with pytest.raises(PaymentValidationError) as refused:
        statement_import(data=b"%PDF-1.4", file_name="statement.pdf")

    assert refused.value.field == "file"
    assert not StatementImport.objects.exists()
    assert AuditRecord.objects.get().outcome.startswith("refused: This is a PDF")


def test_a_file_larger_than_allowed_is_refused_before_it_is_read(settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "STATEMENT_MAX_BYTES": 100}

    with pytest.raises(PaymentValidationError, match="at most 100"):
        statement_import(data=b"x" * 101, file_name="big.csv")


def test_the_command_refuses_a_file_larger_than_allowed_before_reading_it(settings, tmp_path):
    settings.PAYMENTS = {**settings.PAYMENTS, "STATEMENT_MAX_BYTES": 100}
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 101)

    with pytest.raises(CommandError, match=r"big\.csv: The file is 101 bytes; .* at most 100"):
        call_command("mpesa_import_statement", str(path))
    assert not StatementImport.objects.exists()


def test_a_statement_without_a_period_takes_it_from_its_lines():
    paid("TEC0000004", 500, at(11))  # between the first and last lines
    paid("TEC0000005", 500, at(15))  # after the last line
    data = b"Receipt No.,Completion Time,Paid In\nTEC0000001,12-05-2026 09:00:00,10\n"
    data += b"TEC0000002,12-05-2026 12:00:00,10\n"

    result = statement_import(data=data, file_name="bare.csv")

    missing = [line.receipt for line in result.lines if line.category == "missing_from_statement"]
    assert missing == ["TEC0000004"]


def test_a_till_statement_covers_the_store_numbers_payments(settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "TILL_NUMBER": "5123456"}
    paid("TEC0000004", 500, at(11))  # a push names the store number

    result = statement_import(data=statement(shortcode="5123456"), file_name="till.csv")

    assert categories(result) == {"TEC0000004": StatementCategory.MISSING_FROM_STATEMENT}


# -- booking a line the ledger missed ----------------------------------------------------------


@pytest.fixture
def announced():
    received = []

    def receiver(sender, transaction, **kwargs):
        received.append(transaction.mpesa_receipt_number)

    c2b_payment_received.connect(receiver)
    yield received
    c2b_payment_received.disconnect(receiver)


def missing_line(**kwargs) -> StatementLine:
    statement_import(
        data=statement(line("TEC0000003", at(10, 30), "300.00", account="INV9", **kwargs)),
        file_name="day.csv",
    )
    return StatementLine.objects.get(receipt="TEC0000003")


def test_booking_a_missing_line_books_one_c2b_payment(
    django_user_model, announced, django_capture_on_commit_callbacks
):
    manager = django_user_model.objects.create_user("fiona")
    line = missing_line()

    with django_capture_on_commit_callbacks(execute=True):
        transaction, booking = statement_line_book(line=line, user=manager)

    assert booking == C2BBooking.BOOKED
    booked = Transaction.objects.get(mpesa_receipt_number="TEC0000003")
    assert booked == transaction
    assert (booked.transaction_type, booked.status, booked.amount) == ("C2B", "success", 300)
    assert (booked.account_reference, booked.shortcode, booked.msisdn) == (
        "INV9",
        SHORTCODE,
        "254708****149",
    )
    assert booked.counterparty_name == "AMINA ODHIAMBO"
    assert booked.transaction_date == at(10, 30)
    assert booked.recovered_from == "statement"
    assert announced == ["TEC0000003"]
    line.refresh_from_db()
    assert (line.transaction, line.resolved_by, line.resolution) == (
        booked,
        manager,
        "booked as a C2B payment",
    )
    audit = AuditRecord.objects.get(action="statement_book")
    assert (audit.actor, audit.transaction, audit.amount) == (manager, booked, 300)
    assert not statement_mismatches_open().exists()


def test_booking_a_line_that_paid_a_waiting_push_completes_the_push():
    push = stk_transaction(
        checkout_request_id="ws_CO_12052026103000000000001",
        account_reference="INV9",
        shortcode=SHORTCODE,
        status=TransactionStatus.AWAITING_RECEIPT,
    )
    Transaction.objects.filter(pk=push.pk).update(amount=300, created_at=at(10, 29))
    line = missing_line()

    transaction, booking = statement_line_book(line=line, user=None)

    assert booking == C2BBooking.COMPLETED_PUSH
    assert transaction == push
    push.refresh_from_db()
    assert (push.status, push.mpesa_receipt_number) == ("success", "TEC0000003")
    assert not Transaction.objects.filter(transaction_type=TransactionType.C2B).exists()


def test_a_line_is_booked_once():
    line = missing_line()
    statement_line_book(line=line, user=None)

    with pytest.raises(PaymentValidationError, match="not a statement line waiting to be booked"):
        statement_line_book(line=line, user=None)

    assert Transaction.objects.count() == 1
    assert AuditRecord.objects.filter(action="statement_book").count() == 2
    assert AuditRecord.objects.filter(outcome__startswith="failed").count() == 1


def test_a_line_booked_meanwhile_by_its_confirmation_is_not_booked_again():
    line = missing_line()
    late = paid("TEC0000003", 300, at(10, 30))  # the confirmation arrived after all

    assert not statement_mismatches_open().exists()  # closed without anyone booking it
    transaction, booking = statement_line_book(line=line, user=None)

    assert (transaction, booking) == (late, C2BBooking.DUPLICATE)
    assert Transaction.objects.count() == 1


@pytest.mark.parametrize("category", ["matched", "not_ours", "missing_from_statement"])
def test_only_a_line_missing_from_the_ledger_can_be_booked(day_statement, category):
    statement_import(data=day_statement, file_name="day.csv")
    line = StatementLine.objects.filter(category=category).first()

    with pytest.raises(PaymentValidationError):
        statement_line_book(line=line, user=None)

    assert Transaction.objects.count() == 5


# -- what a person must still look at ---------------------------------------------------------


def test_open_mismatches_are_those_nobody_settled(day_statement, django_user_model):
    statement_import(data=day_statement, file_name="day.csv")
    open_receipts = set(statement_mismatches_open().values_list("receipt", flat=True))
    assert open_receipts == {"TEC0000002", "TEC0000003", "TEC0000004"}

    differs = StatementLine.objects.get(receipt="TEC0000002")
    statement_line_resolve(line=differs, user=None, note="Customer paid 50 more; refunded.")

    assert set(statement_mismatches_open().values_list("receipt", flat=True)) == {
        "TEC0000003",
        "TEC0000004",
    }
    differs.refresh_from_db()
    assert differs.resolution == "Customer paid 50 more; refunded."
    assert AuditRecord.objects.filter(action="statement_resolve").count() == 1
    with pytest.raises(PaymentValidationError):
        statement_line_resolve(line=differs, user=None, note="again")
    with pytest.raises(PaymentValidationError, match="Say what"):
        statement_line_resolve(
            line=StatementLine.objects.get(receipt="TEC0000004"), user=None, note="  "
        )


def test_a_ledger_payment_a_later_statement_shows_is_no_longer_open(day_statement):
    statement_import(data=day_statement, file_name="day.csv")
    later = statement(line("TEC0000004", at(11), "500.00"))

    statement_import(data=later, file_name="day-again.csv")

    assert "TEC0000004" not in statement_mismatches_open().values_list("receipt", flat=True)


# -- the command -------------------------------------------------------------------------------


def test_the_command_imports_and_prints_counts_and_totals(day_statement, tmp_path, capsys):
    path = tmp_path / "ORG_174379_Utility Account_Completed_20260513080217.csv"
    path.write_bytes(day_statement)

    call_command("mpesa_import_statement", str(path), "--dry-run")
    dry = capsys.readouterr().out
    call_command("mpesa_import_statement", str(path))
    done = capsys.readouterr().out
    call_command("mpesa_import_statement", str(path))
    again = capsys.readouterr().out

    assert "Dry run: nothing was kept." in dry
    assert "On the statement, not on the ledger: 1 line, KES 300.00" in dry
    assert "On the ledger, not on the statement: 1 line, KES 500.00" in done
    assert "Not ours (charges, transfers): 4 lines, KES 153.00" in done
    assert "nothing was changed" in again
    assert StatementImport.objects.count() == 1
    audit = AuditRecord.objects.get()
    assert (audit.actor, audit.details["via"], audit.details["command"]) == (
        None,
        "command",
        "mpesa_import_statement",
    )


@pytest.mark.parametrize(
    ("content", "says"), [(None, "No such file"), (b"garbage", "No header row")]
)
def test_the_command_explains_a_file_it_cannot_import(tmp_path, content, says):
    path = tmp_path / "statement.csv"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(CommandError, match=says):
        call_command("mpesa_import_statement", str(path))


def test_times_are_kenyan(day_statement):
    statement_import(data=day_statement, file_name="day.csv")

    line = StatementLine.objects.get(receipt="TEC0000001")
    assert timezone.localtime(line.completed_at, NAIROBI).hour == 9

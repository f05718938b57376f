"""Closing the day: the M-Pesa org portal statement held against the ledger line by line and kept
as a report; a payment the ledger missed booked as the C2B confirmation we never received."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments.conf import payments_settings
from payments.daraja.callbacks import C2BNotification
from payments.daraja.jsontext import storable_text
from payments.enums import STATEMENT_MISMATCHES, TransactionStatus
from payments.enums import StatementCategory as Category
from payments.exceptions import PaymentValidationError
from payments.models import INCOMING_TYPES, StatementImport, StatementLine, Transaction
from payments.services.audit import audit_failure, audit_record
from payments.services.c2b import C2BBooking, c2b_confirmation_record
from payments.services.common import column_text
from payments.statement_file import Statement, StatementFileError, StatementRow, statement_read

# What a line says it is: its Reason Type (or Transaction Type), else its Details. Charges share
# the receipt of the payment they were taken on, so they are set apart before any matching.
CHARGE = re.compile(r"\b(?:charges?|fees?|commission|levy)\b", re.I)
NOT_A_CUSTOMER_PAYMENT = re.compile(
    r"\b(?:transfer|settlement|withdrawal|reversal|interest|salary|business payment)\b", re.I
)
CUSTOMER_PAYMENT = re.compile(
    r"pay ?bill|pay utility|buy goods|merchant payment|customer|standing order", re.I
)
COMPLETED = ("", "completed", "complete", "success", "successful")
# Ledger rows looked up per query: well under SQLite's limit on query parameters.
LOOKUP_CHUNK = 500
# A workbook may unpack to this many times the largest file accepted.
XLSX_UNPACKED_FACTOR = 20
# Transaction.recovered_from of a payment booked from a statement line.
RECOVERED_FROM_STATEMENT = "statement"
BOOKING_OUTCOMES = {
    C2BBooking.BOOKED: "booked as a C2B payment",
    C2BBooking.COMPLETED_PUSH: "booked: it completed the STK Push it paid",
    C2BBooking.FLAGGED: "booked with what could be booked, flagged for review",
    C2BBooking.DUPLICATE: "already on the ledger (booked meanwhile): nothing booked",
}


@dataclass(frozen=True)
class CategoryTotal:
    category: str
    label: str
    count: int
    total: Decimal


@dataclass(frozen=True)
class StatementImportResult:
    """``statement`` is None on a dry run; ``created`` is False when the same file was
    imported before (``statement`` is that import, unchanged)."""

    statement: StatementImport | None
    lines: list[StatementLine]
    created: bool

    @property
    def summary(self) -> list[CategoryTotal]:
        return statement_summary(self.lines)


def statement_size_check(size: int) -> None:
    """Refuse a statement of ``size`` bytes over STATEMENT_MAX_BYTES: PaymentValidationError
    naming "file". Callers holding a file unread (an upload, a path) ask before reading it."""
    limit = payments_settings.STATEMENT_MAX_BYTES
    if size > limit:
        raise PaymentValidationError(
            "file", f"The file is {size:,} bytes; a statement may be at most {limit:,}."
        )


def statement_import(
    *,
    data: bytes,
    file_name: str,
    user: Any = None,
    dry_run: bool = False,
    details: dict[str, Any] | None = None,
) -> StatementImportResult:
    """Import an org portal statement (CSV or XLSX bytes) and hold each line against the ledger.

    A file imported before (the same bytes: SHA-256) changes nothing and returns that import.
    A file that cannot be read raises PaymentValidationError("file", why) and stores nothing;
    a dry run stores nothing either and returns the lines it would keep. The import and its
    lines are kept, and audited (with ``details``, e.g. how a command was run).
    """
    if not data:
        raise PaymentValidationError("file", "The file is empty.")
    statement_size_check(len(data))
    digest = hashlib.sha256(data).hexdigest()
    file_name = storable_text(file_name)
    earlier = StatementImport.objects.filter(content_hash=digest).first()
    if earlier is not None:
        return StatementImportResult(earlier, list(earlier.lines.all()), created=False)
    audit = {"file_name": file_name, "sha256": digest, **(details or {})}
    try:
        statement = statement_read(
            data,
            file_name=file_name,
            max_rows=payments_settings.STATEMENT_MAX_ROWS,
            max_unpacked=XLSX_UNPACKED_FACTOR * payments_settings.STATEMENT_MAX_BYTES,
        )
    except StatementFileError as exc:
        if not dry_run:
            audit_record(
                actor=user, action="statement_import", outcome=f"refused: {exc}", details=audit
            )
        raise PaymentValidationError("file", str(exc)) from None
    lines = statement_lines_match(statement)
    if dry_run:
        return StatementImportResult(None, lines, created=False)
    with db_transaction.atomic():
        try:
            with db_transaction.atomic():  # a savepoint: the same file may be imported at once
                kept = StatementImport.objects.create(
                    content_hash=digest,
                    file_name=column_text(StatementImport, "file_name", file_name),
                    file_format=statement.file_format,
                    account_holder=column_text(
                        StatementImport, "account_holder", statement.account_holder
                    ),
                    shortcode=statement.shortcode,
                    account=column_text(StatementImport, "account", statement.account),
                    period_start=(statement.period or (None, None))[0],
                    period_end=(statement.period or (None, None))[1],
                    line_count=len(statement.rows),
                    imported_by=user if getattr(user, "is_authenticated", False) else None,
                )
        except IntegrityError:
            earlier = StatementImport.objects.get(content_hash=digest)
            return StatementImportResult(earlier, list(earlier.lines.all()), created=False)
        for line in lines:
            line.statement = kept
        StatementLine.objects.bulk_create(lines, batch_size=1000)
        summary = statement_summary(lines)
        audit_record(
            actor=user,
            action="statement_import",
            outcome=f"imported {file_name}: " + summary_text(summary, sep="; "),
            details={**audit, "statement": kept.pk, "lines": len(statement.rows)},
        )
    return StatementImportResult(kept, lines, created=True)


def statement_lines_match(statement: Statement) -> list[StatementLine]:
    """The report's lines, unsaved: each statement line held against the ledger by receipt,
    then the ledger's payments of the statement's period that the statement lacks."""
    ledger = _ledger_by_receipt({row.receipt for row in statement.rows})
    lines = [_held(row, ledger.get(row.receipt)) for row in statement.rows]
    seen = {row.receipt for row in statement.rows}
    return lines + _missing_from_statement(statement, seen)


def statement_summary(lines: Iterable[StatementLine]) -> list[CategoryTotal]:
    """Count and total of each category, in the report's order."""
    totals = {category: [0, Decimal("0.00")] for category in Category.values}
    for line in lines:
        totals[line.category][0] += 1
        totals[line.category][1] += line.amount
    return [
        CategoryTotal(category, Category(category).label, count, total)
        for category, (count, total) in totals.items()
    ]


def summary_text(summary: list[CategoryTotal], *, sep: str = "\n") -> str:
    return sep.join(
        f"{row.label}: {row.count} line{'s' if row.count != 1 else ''}, KES {row.total:,.2f}"
        for row in summary
    )


def statement_line_book(*, line: StatementLine, user: Any) -> tuple[Transaction, C2BBooking]:
    """Book a line that is on the statement but not on the ledger, through the C2B booking
    path: the receipt is booked once across STK and C2B, and a push it paid is completed."""
    details = {"statement": line.statement_id, "line": line.pk, "receipt": line.receipt}
    with (
        audit_failure(actor=user, action="statement_book", details=details),
        db_transaction.atomic(),
    ):
        line = StatementLine.objects.select_for_update().select_related("statement").get(pk=line.pk)
        if not line.waiting_to_book:
            raise PaymentValidationError(
                "line", f"{line.receipt} is not a statement line waiting to be booked."
            )
        transaction, booking = c2b_confirmation_record(
            notification=_notification(line), source="statement"
        )
        if booking != C2BBooking.DUPLICATE:
            transaction.recovered_from = RECOVERED_FROM_STATEMENT
            transaction.save(update_fields=["recovered_from", "updated_at"])
        _resolve(line, user, BOOKING_OUTCOMES[booking], transaction=transaction)
        audit_record(
            actor=user,
            action="statement_book",
            transaction=transaction,
            outcome=BOOKING_OUTCOMES[booking],
            details=details,
        )
    return transaction, booking


def statement_line_resolve(*, line: StatementLine, user: Any, note: str) -> StatementLine:
    """Settle a mismatch a person looked into (an amount that differs, a ledger payment the
    statement lacks, a line not to be booked), with what they found."""
    note = note.strip()
    details = {"statement": line.statement_id, "line": line.pk, "receipt": line.receipt}
    with audit_failure(actor=user, action="statement_resolve", details=details):
        if not note:
            raise PaymentValidationError("note", "Say what was found or done.")
        with db_transaction.atomic():
            line = StatementLine.objects.select_for_update().get(pk=line.pk)
            if line.category not in STATEMENT_MISMATCHES or line.resolved_at is not None:
                raise PaymentValidationError("line", f"{line.receipt} is not an open mismatch.")
            _resolve(line, user, note, transaction=line.transaction)
            audit_record(
                actor=user,
                action="statement_resolve",
                transaction=line.transaction,
                outcome=f"resolved: {note}",
                details=details,
            )
    return line


# -- matching ----------------------------------------------------------------------------------


def _ledger_by_receipt(receipts: set[str]) -> dict[str, Transaction]:
    """The ledger rows carrying these receipts; a payment wins over anything else."""
    found: dict[str, Transaction] = {}
    ordered = sorted(receipts)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        for row in Transaction.objects.filter(mpesa_receipt_number__in=chunk).only(
            "id", "transaction_type", "amount", "mpesa_receipt_number", "status"
        ):
            held = found.get(row.mpesa_receipt_number)
            if held is None or (
                row.transaction_type in INCOMING_TYPES
                and held.transaction_type not in INCOMING_TYPES
            ):
                found[row.mpesa_receipt_number] = row
    return found


def _held(row: StatementRow, ledger: Transaction | None) -> StatementLine:
    line = _line_of(row)
    kind = row.reason_type or row.details
    amount = row.paid_in or row.withdrawn
    if row.status.lower() not in COMPLETED:
        return _not_ours(line, f"not completed: {row.status}")
    if CHARGE.search(kind):
        return _not_ours(line, f"charge: {kind}")
    if not amount:
        return _not_ours(line, "no amount")
    if ledger is not None:
        line.transaction, line.ledger_amount = ledger, ledger.amount
        if Decimal(ledger.amount) == amount:
            line.category = Category.MATCHED
        else:
            line.category = Category.AMOUNT_DIFFERS
            line.note = f"the ledger has KES {ledger.amount:,}, the statement KES {amount:,.2f}"
        return line
    if row.paid_in and (
        not kind or (CUSTOMER_PAYMENT.search(kind) and not NOT_A_CUSTOMER_PAYMENT.search(kind))
    ):
        line.category = Category.MISSING_FROM_LEDGER
        line.note = "paid on M-Pesa, not on the ledger"
        return line
    direction = "money in" if row.paid_in else "money out"
    return _not_ours(line, f"{direction}, not a customer payment: {kind}" if kind else direction)


def _not_ours(line: StatementLine, note: str) -> StatementLine:
    line.category = Category.NOT_OURS
    line.note = column_text(StatementLine, "note", note)
    return line


def _line_of(row: StatementRow) -> StatementLine:
    def text(field: str, value: str) -> str:
        return column_text(StatementLine, field, value)

    return StatementLine(
        row_number=row.row_number,
        receipt=row.receipt,
        completed_at=row.completed_at,
        initiated_at=row.initiated_at,
        details=text("details", row.details),
        status=text("status", row.status),
        reason_type=text("reason_type", row.reason_type),
        other_party=text("other_party", row.other_party),
        account_number=text("account_number", row.account_number),
        paid_in=row.paid_in,
        withdrawn=row.withdrawn,
        balance=row.balance,
        amount=row.paid_in or row.withdrawn or Decimal("0.00"),
    )


def _missing_from_statement(statement: Statement, seen: set[str]) -> list[StatementLine]:
    """The ledger's payments of the statement's period, on its shortcode, that it lacks."""
    period = statement.period
    if period is None:
        return []
    start, end = period
    paid = (
        Transaction.objects.filter(
            transaction_type__in=INCOMING_TYPES,
            status__in=(TransactionStatus.SUCCESS, TransactionStatus.REVERSED),
        )
        .exclude(mpesa_receipt_number="")
        .annotate(paid_at=Coalesce("transaction_date", "created_at"))
        # The period's end is a whole second: payments within that second belong to it.
        .filter(paid_at__gte=start, paid_at__lt=end + timedelta(seconds=1))
        .order_by("paid_at")
    )
    shortcodes = _shortcodes_of(statement.shortcode)
    if shortcodes:
        paid = paid.filter(Q(shortcode__in=shortcodes) | Q(shortcode=""))
    return [
        StatementLine(
            category=Category.MISSING_FROM_STATEMENT,
            receipt=payment.mpesa_receipt_number,
            completed_at=payment.paid_at,
            account_number=column_text(StatementLine, "account_number", payment.account_reference),
            amount=Decimal(payment.amount),
            ledger_amount=payment.amount,
            transaction=payment,
            note="paid on the ledger, absent from M-Pesa's statement",
        )
        for payment in paid
        if payment.mpesa_receipt_number not in seen
    ]


def _shortcodes_of(shortcode: str) -> set[str]:
    """The shortcodes a statement of ``shortcode`` covers on the ledger: a Buy Goods till's
    payments are booked under the store number its pushes name, and the other way round."""
    if not shortcode:
        return set()
    ours = {str(payments_settings.SHORTCODE or ""), str(payments_settings.TILL_NUMBER or "")}
    ours.discard("")
    return ours | {shortcode} if shortcode in ours else {shortcode}


# -- booking -----------------------------------------------------------------------------------


def _notification(line: StatementLine) -> C2BNotification:
    """The C2B confirmation this line stands for, as Daraja would have sent it."""
    msisdn, name = _party(line.other_party)
    kind = line.reason_type or line.details
    return C2BNotification(
        transaction_type="Buy Goods"
        if re.search(r"buy goods|merchant", kind, re.I)
        else "Pay Bill",
        trans_id=line.receipt,
        trans_time=line.completed_at,
        trans_amount=line.paid_in,
        business_shortcode=line.statement.shortcode or str(payments_settings.SHORTCODE),
        bill_ref_number=line.account_number,
        invoice_number="",
        org_account_balance=line.balance,
        third_party_trans_id="",
        msisdn=msisdn,
        first_name=name,
        middle_name="",
        last_name="",
        raw={"source": "statement", "statement": line.statement_id, "row": line.row_number},
    )


def _party(other_party: str) -> tuple[str, str]:
    """The (masked) number and the name in "254708****149 - JOHN DOE"."""
    number, _, name = other_party.partition(" - ")
    if re.fullmatch(r"[0-9*\s]{6,20}", number.strip()):
        return re.sub(r"\s", "", number), name.strip()
    return "", other_party.strip()


def _resolve(line: StatementLine, user: Any, resolution: str, *, transaction: Any) -> None:
    line.transaction = transaction
    line.resolved_at = timezone.now()
    line.resolved_by = user if getattr(user, "is_authenticated", False) else None
    line.resolution = column_text(StatementLine, "resolution", resolution)
    line.save(update_fields=["transaction", "resolved_at", "resolved_by", "resolution"])

"""Reading the statement the M-Pesa org portal exports (CSV or XLSX) into plain rows.

Pure Python (the standard library, and openpyxl for XLSX): no Django, no database, so that the
parsing is tested on bytes alone. Columns are found by name, in any order, under the names the
portal has used over the years:

- today's export (``ORG_<shortcode>_Utility Account_Completed_<yyyymmddhhmmss>.csv``, or the
  Excel download of the same page): six rows of preamble (``Account Holder:``, ``Short Code:``,
  ``Account:``, ``Time Period:, From, <dd-mm-yyyy HH:MM:SS>, To, <...>``, ``Operator:`` with the
  ``Date of Report:``, and the opening, closing and available balances with the totals paid in
  and withdrawn), then ``Receipt No., Completion Time, Initiation Time, Details, Transaction
  Status, Paid In, Withdrawn, Balance, Balance Confirmed, Reason Type, Other Party Info, Linked
  Transaction ID, A/C No.``, times day first in Kenyan time;
- the older layout (``Receipt, Date, Details, Status, Withdrawn, Paid In, Balance, Balance
  Confirmed, Transaction Type, Other Party Info, Transaction Party Details``);
- a statement re-saved from a spreadsheet: no preamble, ``;`` or tab separators, a BOM,
  Windows-1252 text, amounts written ``1,250.00`` or withdrawals written negative.

Anything else is refused with a sentence a finance person can act on (StatementFileError):
nothing is guessed, and a file with one unreadable line is not imported in part.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import chain
from typing import Any

from payments.daraja.dates import NAIROBI
from payments.daraja.jsontext import storable_text

# The columns we read, each under the names it has been exported with (compared after
# _column_key: lower case, punctuation and a currency suffix dropped).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "receipt": ("receipt no", "receipt", "receipt number", "transaction id", "mpesa receipt"),
    "completed_at": (
        "completion time",
        "completion date",
        "completed time",
        "date",
        "transaction date",
        "transaction time",
    ),
    "initiated_at": ("initiation time", "initiated time"),
    "details": ("details", "description", "narration"),
    "status": ("transaction status", "status"),
    "paid_in": ("paid in", "credit", "money in"),
    "withdrawn": ("withdrawn", "withdrawal", "debit", "money out", "paid out"),
    "balance": ("balance", "account balance", "running balance"),
    "reason_type": ("reason type", "transaction type", "type"),
    "other_party": ("other party info", "other party information", "other party"),
    "account_number": (
        "a/c no",
        "a/c number",
        "ac no",
        "account no",
        "account number",
        "bill ref number",
        "transaction party details",
    ),
    "linked_transaction_id": ("linked transaction id",),
}
# What the report needs: without these a file is not a statement we can hold against the ledger.
REQUIRED = ("receipt", "completed_at")
AMOUNT_COLUMNS = ("paid_in", "withdrawn")
AMOUNTS = (*AMOUNT_COLUMNS, "balance")
# The portal's own column titles, as the simulator's export writes them.
PORTAL_COLUMNS = (
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
)
TITLES = {
    "receipt": "Receipt No.",
    "completed_at": "Completion Time",
    "paid_in": "Paid In",
    "withdrawn": "Withdrawn",
    "balance": "Balance",
    "initiated_at": "Initiation Time",
}
PORTAL_TIME_FORMAT = "%d-%m-%Y %H:%M:%S"
# Day first: Kenyan statements write 03-02-2026 for the 3rd of February.
TIME_FORMATS = (
    PORTAL_TIME_FORMAT,
    "%d/%m/%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
)
_TIME_IN_TEXT = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}[ T]\d{1,2}:\d{2}(?::\d{2})?")
_RECEIPT = re.compile(r"[A-Z0-9]{1,20}")
# Whole shillings and cents, at most 15 digits: the report's columns hold 18 with 2 decimals.
_AMOUNT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,2})?")
_CURRENCY = re.compile(r"^(?:kes|ksh|kshs)\.?", re.I)
# How far down the header row may be (the portal puts it on row 7).
HEADER_SEARCH_ROWS = 30
SEPARATORS = (",", ";", "\t")
MAX_ERRORS_SHOWN = 5


class StatementFileError(ValueError):
    """The file cannot be read as a statement; the message says why, to a person."""


@dataclass(frozen=True)
class StatementRow:
    """One line of the statement, its text as written (NUL and lone surrogates replaced)."""

    row_number: int  # the line (CSV) or row (XLSX) of the file, from 1
    receipt: str
    completed_at: datetime
    initiated_at: datetime | None
    details: str
    status: str
    paid_in: Decimal | None  # positive, or None when blank
    withdrawn: Decimal | None  # positive, whichever sign the file wrote it with
    balance: Decimal | None
    reason_type: str
    other_party: str
    account_number: str
    linked_transaction_id: str


@dataclass(frozen=True)
class Statement:
    file_format: str  # "csv" or "xlsx"
    account_holder: str
    shortcode: str
    account: str
    # The period the portal says the statement covers; None when it does not say.
    period_start: datetime | None
    period_end: datetime | None
    rows: tuple[StatementRow, ...]

    @property
    def period(self) -> tuple[datetime, datetime] | None:
        """The period covered: the stated one, else from the first to the last line."""
        times = [row.completed_at for row in self.rows]
        start = self.period_start or (min(times) if times else None)
        end = self.period_end or (max(times) if times else None)
        return (start, end) if start and end else None


def statement_read(
    data: bytes, *, file_name: str = "", max_rows: int, max_unpacked: int = 50 * 1024 * 1024
) -> Statement:
    """Read an org portal statement from its bytes; raise StatementFileError if it is not one.

    ``max_rows`` bounds the lines read (a larger file is refused, not cut), ``max_unpacked``
    the bytes an XLSX may unpack to (a small zip can hold gigabytes).
    """
    if data.startswith(b"PK\x03\x04"):
        file_format, rows = "xlsx", _xlsx_rows(data, max_unpacked=max_unpacked)
    else:
        _refuse_known_binaries(data)
        file_format, rows = "csv", _csv_rows(_decoded(data))
    table = _table(rows, max_rows=max_rows)
    shortcode = table.preamble.get("shortcode", "")
    if not shortcode:
        named = re.match(r"ORG_([0-9]{5,7})_", file_name.rsplit("/", 1)[-1])
        shortcode = named.group(1) if named else ""
    period = table.preamble.get("period") or (None, None)
    return Statement(
        file_format=file_format,
        account_holder=table.preamble.get("account_holder", ""),
        shortcode=shortcode,
        account=table.preamble.get("account", ""),
        period_start=period[0],
        period_end=period[1],
        rows=tuple(table.rows),
    )


def statement_csv(
    *,
    account_holder: str,
    shortcode: str,
    period: tuple[datetime, datetime],
    rows: Iterable[Sequence[Any]],
) -> str:
    """A statement in the portal's CSV layout: the preamble, then one line per row of
    PORTAL_COLUMNS values (datetimes written as the portal writes them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    start, end = (_portal_time(moment) for moment in period)
    writer.writerow(["Account Holder:", account_holder])
    writer.writerow(["Short Code:", shortcode])
    writer.writerow(["Account:", "Utility Account"])
    writer.writerow(["Time Period:", "From", start, "To", end])
    writer.writerow(["Operator:", "", "Date of Report:", _portal_time(datetime.now(NAIROBI))])
    writer.writerow([])
    writer.writerow(PORTAL_COLUMNS)
    for row in rows:
        writer.writerow([_portal_time(v) if isinstance(v, datetime) else v for v in row])
    return out.getvalue()


def _portal_time(moment: datetime) -> str:
    return moment.astimezone(NAIROBI).strftime(PORTAL_TIME_FORMAT)


# -- bytes to rows of cells --------------------------------------------------------------------


def _refuse_known_binaries(data: bytes) -> None:
    if data.startswith(b"%PDF"):
        raise StatementFileError(
            "This is a PDF. Export the statement from the M-Pesa org portal as CSV or Excel."
        )
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise StatementFileError(
            "This is an old Excel (.xls) file. Save it as .xlsx or CSV and upload that."
        )
    if b"\x00" in data[:65536]:
        raise StatementFileError("This file is not a CSV or XLSX statement: it holds binary data.")


def _decoded(data: bytes) -> str:
    # The portal writes UTF-8; Excel on Windows re-saves as Windows-1252.
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise StatementFileError("This file is not text in UTF-8 or Windows-1252: not a CSV.")


def _csv_rows(text: str) -> Iterator[list[Any]]:
    """The rows of the CSV, with the separator that makes a header row appear."""
    if "\x00" in text:
        raise StatementFileError("This file is not a CSV or XLSX statement: it holds NUL bytes.")
    try:
        lines = text.splitlines()[:HEADER_SEARCH_ROWS]
        separator = next(
            (
                sep
                for sep in SEPARATORS
                if _header_index(list(csv.reader(lines, delimiter=sep))) is not None
            ),
            ",",
        )
        # A cell longer than csv's limit (128 KiB) is an error here: no statement has one.
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    except csv.Error as exc:
        raise StatementFileError(f"This CSV cannot be read: {exc}.") from None


def _xlsx_rows(data: bytes, *, max_unpacked: int) -> Iterator[list[Any]]:
    """The rows of the workbook's first sheet, values as Excel shows them."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            names = {member.filename for member in members}
            unpacked = sum(member.file_size for member in members)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise StatementFileError("This file is not a readable XLSX workbook.") from None
    if "xl/workbook.xml" not in names:
        raise StatementFileError("This zip file is not an XLSX workbook.")
    if unpacked > max_unpacked:
        raise StatementFileError(
            f"This workbook unpacks to {unpacked:,} bytes, more than the {max_unpacked:,} "
            "a statement may: export the statement as CSV, or split its period."
        )
    from openpyxl import load_workbook  # only XLSX uploads pay for importing it

    # openpyxl raises many kinds of error on a damaged workbook (KeyError, ValueError, XML
    # parse errors, zip errors...): every one means the same thing to the person uploading.
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise StatementFileError("This workbook cannot be read: is it damaged?") from None
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception:
                raise StatementFileError("This workbook cannot be read: is it damaged?") from None
            yield list(row)
    finally:
        workbook.close()


# -- rows of cells to a statement --------------------------------------------------------------


@dataclass
class _Table:
    preamble: dict[str, Any]
    rows: list[StatementRow]


def _table(rows: Iterator[list[Any]], *, max_rows: int) -> _Table:
    seen: list[list[Any]] = []
    for row in rows:
        seen.append(row)
        if len(seen) >= HEADER_SEARCH_ROWS:
            break
    header_at = _header_index(seen)
    if header_at is None:
        raise StatementFileError(_no_header_message(seen))
    columns = _columns(seen[header_at])
    missing = [TITLES[name] for name in REQUIRED if name not in columns]
    if missing:
        raise StatementFileError(
            f"The header row (row {header_at + 1}) has no {' or '.join(missing)} column."
        )
    preamble = _preamble(seen[:header_at])
    parsed: list[StatementRow] = []
    errors: list[str] = []
    for number, cells in enumerate(chain(seen[header_at + 1 :], rows), start=header_at + 2):
        values = {name: cells[i] if i < len(cells) else None for name, i in columns.items()}
        if not _text(values["receipt"]):
            continue  # blank lines, and the totals some exports end with
        if len(parsed) >= max_rows:
            raise StatementFileError(
                f"This statement has more than {max_rows:,} lines: import a shorter period."
            )
        try:
            parsed.append(_row(number, values))
        except StatementFileError as exc:
            errors.append(f"row {number}: {exc}")
    if errors:
        more = len(errors) - MAX_ERRORS_SHOWN
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise StatementFileError(f"Nothing was imported. {shown}.")
    if not parsed and "period" not in preamble:
        # A quiet day's statement still says which day it covers; a bare header says nothing.
        raise StatementFileError("This statement has no lines.")
    return _Table(preamble=preamble, rows=parsed)


def _header_index(rows: list[list[Any]]) -> int | None:
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns = _columns(row)
        if "receipt" in columns and any(name in columns for name in AMOUNT_COLUMNS):
            return index
    return None


def _no_header_message(rows: list[list[Any]]) -> str:
    if not any(any(_text(cell) for cell in row) for row in rows):
        return "This file is empty."
    return (
        "No header row with Receipt No. and Paid In or Withdrawn in the first "
        f"{HEADER_SEARCH_ROWS} rows: is this the statement exported from the M-Pesa org portal?"
    )


def _column_key(title: Any) -> str:
    key = re.sub(r"[^a-z0-9/]+", " ", _text(title).lower()).strip()
    return re.sub(r"\s*\b(?:kes|ksh|kshs)$", "", key)


_FIELD_OF = {title: field for field, titles in COLUMN_NAMES.items() for title in titles}


def _columns(row: list[Any]) -> dict[str, int]:
    """Which column holds each field; the first of several that could wins."""
    columns: dict[str, int] = {}
    for index, title in enumerate(row):
        field = _FIELD_OF.get(_column_key(title))
        if field and field not in columns:
            columns[field] = index
    return columns


_PREAMBLE_LABELS = {
    "account holder": "account_holder",
    "organisation name": "account_holder",
    "organization name": "account_holder",
    "short code": "shortcode",
    "shortcode": "shortcode",
    "organisation short code": "shortcode",
    "account": "account",
    "time period": "period",
}


def _preamble(rows: list[list[Any]]) -> dict[str, Any]:
    """What the rows above the header say about the statement: whose, which, when."""
    found: dict[str, Any] = {}
    for row in rows:
        cells = [cell for cell in row if _text(cell)]
        for index, cell in enumerate(cells):
            label = _PREAMBLE_LABELS.get(_column_key(cell))
            if label is None or label in found:
                continue
            if label == "period":
                moments = _moments_in(cells[index + 1 :])
                if len(moments) >= 2:
                    found["period"] = (moments[0], moments[1])
            elif index + 1 < len(cells):
                value = storable_text(_text(cells[index + 1]))
                if label != "shortcode" or re.fullmatch(r"[0-9]{5,7}", value):
                    found[label] = value
    return found


def _moments_in(cells: list[Any]) -> list[datetime]:
    moments = []
    for cell in cells:
        if isinstance(cell, datetime):
            moments.append(_aware(cell))
            continue
        for token in _TIME_IN_TEXT.findall(_text(cell)):
            moment = _time_or_none(token)
            if moment is not None:
                moments.append(moment)
    return moments


def _row(number: int, values: dict[str, Any]) -> StatementRow:
    receipt = _text(values["receipt"]).upper()
    if not _RECEIPT.fullmatch(receipt):
        raise StatementFileError(
            f"Receipt No. {_shown(values['receipt'])} is not an M-Pesa receipt (letters and digits)"
        )
    completed_at = _time_or_none(values.get("completed_at"))
    if completed_at is None:
        raise StatementFileError(
            f"Completion Time {_shown(values.get('completed_at'))} is not a date and time "
            "(dd-mm-yyyy HH:MM:SS)"
        )
    amounts = {name: _amount(values.get(name), TITLES[name]) for name in AMOUNTS}
    return StatementRow(
        row_number=number,
        receipt=receipt,
        completed_at=completed_at,
        initiated_at=_time_or_none(values.get("initiated_at")),
        details=_stored(values.get("details")),
        status=_stored(values.get("status")),
        paid_in=abs(amounts["paid_in"]) if amounts["paid_in"] is not None else None,
        withdrawn=abs(amounts["withdrawn"]) if amounts["withdrawn"] is not None else None,
        balance=amounts["balance"],
        reason_type=_stored(values.get("reason_type")),
        other_party=_stored(values.get("other_party")),
        account_number=_stored(values.get("account_number")),
        linked_transaction_id=_stored(values.get("linked_transaction_id")),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel holds an account number typed as digits as a float
    return str(value).strip()


def _stored(value: Any) -> str:
    return storable_text(_text(value))


def _shown(value: Any) -> str:
    text = _stored(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _time_or_none(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    text = _text(value)
    for time_format in TIME_FORMATS:
        try:
            moment = datetime.strptime(text, time_format)
        except ValueError:
            continue
        if 2000 <= moment.year <= 2999:
            return moment.replace(tzinfo=NAIROBI)
    return None


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=NAIROBI) if moment.tzinfo is None else moment


def _amount(value: Any, title: str) -> Decimal | None:
    """An amount in shillings and cents, or None for a blank cell."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float):
        # Excel keeps amounts as binary floats: cents are what it shows. NaN and infinities
        # format as words, which the pattern below refuses.
        text = f"{value:.2f}"
    else:
        text = re.sub(r"[\s,]", "", _text(value))
        if not text:
            return None
        negative = text.startswith("(") and text.endswith(")")
        text = _CURRENCY.sub("", text.strip("()"))
        text = "-" + text if negative and not text.startswith("-") else text
    if isinstance(value, bool) or not _AMOUNT.fullmatch(text):
        raise StatementFileError(f"{title} {_shown(value)} is not an amount")
    return Decimal(text)

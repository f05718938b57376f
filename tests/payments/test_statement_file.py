"""Reading org portal statements from bytes: the layouts the portal exports, the ways a
spreadsheet re-saves them, and files that are not statements at all."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from payments.daraja.dates import NAIROBI
from payments.statement_file import (
    PORTAL_COLUMNS,
    StatementFileError,
    statement_csv,
    statement_read,
)

STATEMENTS = Path(__file__).resolve().parent.parent / "fixtures" / "statements"
PORTAL_FILE = "ORG_174379_Utility Account_Completed_20260513080217.csv"


def read(data: bytes, *, max_rows: int = 1000, file_name: str = "statement.csv", **kwargs):
    return statement_read(data, file_name=file_name, max_rows=max_rows, **kwargs)


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=NAIROBI)


def refusal(data: bytes, **kwargs) -> str:
    with pytest.raises(StatementFileError) as caught:
        read(data, **kwargs)
    return str(caught.value)


def xlsx(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_todays_portal_export_is_read_with_its_preamble():
    statement = read((STATEMENTS / "portal_utility_account.csv").read_bytes())

    assert statement.file_format == "csv"
    assert (statement.account_holder, statement.shortcode, statement.account) == (
        "KIJANI SUPPLIES LIMITED",
        "174379",
        "Utility Account",
    )
    assert statement.period == (at("2026-05-12 00:00:00"), at("2026-05-12 23:59:59"))
    assert [row.receipt for row in statement.rows] == [f"TED7K2QX4{n}" for n in range(1, 7)]
    first, charge = statement.rows[0], statement.rows[3]
    assert first.row_number == 8
    assert first.completed_at == at("2026-05-12 09:14:03")
    assert first.initiated_at == at("2026-05-12 09:13:58")
    assert (first.paid_in, first.withdrawn, first.balance) == (
        Decimal("1250.00"),
        None,
        Decimal("11750.00"),
    )
    assert (first.reason_type, first.account_number) == ("Pay Utility", "INV1001")
    assert first.other_party == "254722****518 - AMINA ODHIAMBO"
    # Withdrawals written negative read as amounts out.
    assert (charge.withdrawn, charge.linked_transaction_id) == (Decimal("13.00"), "TED7K2QX43")
    assert statement.rows[4].status == "Cancelled"


def test_the_2010_layout_is_read_by_its_column_names():
    statement = read((STATEMENTS / "portal_2010_layout.csv").read_bytes())

    assert statement.period_start is None  # no preamble: the lines give the period
    assert statement.period == (at("2026-05-12 12:39:42"), at("2026-05-12 15:02:55"))
    row = statement.rows[0]
    assert (row.receipt, row.status, row.paid_in, row.reason_type, row.account_number) == (
        "Y29DW127",
        "Completed",
        Decimal("200.00"),
        "Pay Utility",
        "10045",
    )
    assert statement.rows[2].withdrawn == Decimal("1000.00")


def test_the_shortcode_comes_from_the_portals_file_name_when_the_preamble_lacks_it():
    data = (STATEMENTS / "portal_2010_layout.csv").read_bytes()

    assert read(data, file_name=PORTAL_FILE).shortcode == "174379"
    assert read(data, file_name="statement.csv").shortcode == ""


@pytest.mark.parametrize(
    ("encoding", "separator"),
    [("utf-8-sig", ";"), ("cp1252", "\t"), ("utf-8", ",")],
)
def test_a_statement_resaved_by_a_spreadsheet_reads_the_same(encoding, separator):
    # Thousands separators are covered by the portal's own export (quoted "1,250.00").
    lines = [
        ["Receipt No.", "Completion Time", "Details", "Paid In", "Withdrawn", "A/C No."],
        ["ted7k2qx41", "12/05/2026 09:14", "Pay Bill from Müller", "KES 1250", "", "INV1"],
        ["TED7K2QX42", "2026-05-12 10:02:41", "Pay Bill", "", "(30.00)", ""],
    ]
    data = "\r\n".join(separator.join(line) for line in lines).encode(encoding)

    rows = read(data).rows

    assert [row.receipt for row in rows] == ["TED7K2QX41", "TED7K2QX42"]
    assert rows[0].completed_at == at("2026-05-12 09:14:00")
    assert rows[0].paid_in == Decimal("1250")
    assert rows[0].details == "Pay Bill from Müller"
    assert rows[1].withdrawn == Decimal("30.00")


def test_an_xlsx_download_reads_like_the_csv():
    completed = datetime(2026, 5, 12, 9, 14, 3)
    data = xlsx(
        [
            ["Account Holder:", "KIJANI SUPPLIES LIMITED"],
            ["Short Code:", 174379],
            ["Account:", "Utility Account"],
            ["Time Period:", None, "From 12-05-2026 00:00:00", None, "To 12-05-2026 23:59:59"],
            ["Operator:", "wanjiku.finance", None, None, "Date of Report: 13-05-2026 08:02:17"],
            ["Opening Balance:", 10500, "Closing Balance:", 11750],
            list(PORTAL_COLUMNS),
            [
                "TED7K2QX41",
                completed,
                completed,
                "Pay Bill",
                "Completed",
                1250.0,
                None,
                11750.5,
                "true",
                "Pay Utility",
                "254722****518 - AMINA",
                None,
                1001.0,
            ],
            [None] * 13,
        ]
    )

    statement = read(data, file_name="statement.xlsx")

    assert statement.file_format == "xlsx"
    assert statement.shortcode == "174379"
    assert statement.period == (at("2026-05-12 00:00:00"), at("2026-05-12 23:59:59"))
    (row,) = statement.rows
    assert (row.completed_at, row.paid_in, row.balance, row.account_number) == (
        at("2026-05-12 09:14:03"),
        Decimal("1250.00"),
        Decimal("11750.50"),
        "1001",
    )


def test_formula_text_in_a_cell_is_kept_as_text_never_evaluated():
    data = (
        b"Receipt No.,Completion Time,Details,Paid In,A/C No.\n"
        b'TED7K2QX41,12-05-2026 09:14:03,"=HYPERLINK(""http://evil.invalid"",""x"")",10,@SUM(A1)\n'
    )

    (row,) = read(data).rows

    assert row.details == '=HYPERLINK("http://evil.invalid","x")'
    assert row.account_number == "@SUM(A1)"


def test_what_the_simulator_writes_is_read_back():
    period = (at("2026-05-12 00:00:00"), at("2026-05-12 23:59:59"))
    data = statement_csv(
        account_holder="SIMULATED BUSINESS",
        shortcode="174379",
        period=period,
        rows=[
            [
                "SAB1234567",
                at("2026-05-12 09:00:00"),
                at("2026-05-12 08:59:59"),
                "Pay Bill",
                "Completed",
                "100.00",
                "",
                "100.00",
                "true",
                "Pay Bill Online",
                "",
                "",
                "INV7",
            ]
        ],
    ).encode()

    statement = read(data)

    assert (statement.shortcode, statement.period) == ("174379", period)
    assert statement.rows[0].paid_in == Decimal("100.00")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old Excel"),
        (bytes(range(256)) * 4, "binary"),
        (b"\xff\xfe\x00\x00garbage", "binary"),
        (b"PK\x03\x04not really a zip", "not a readable XLSX"),
        (b"name,amount\nalice,10\n", "No header row with Receipt No."),
        (b"Receipt No.,Paid In\nTED7K2QX41,10\n", "no Completion Time column"),
        (b"Receipt No.,Completion Time,Paid In\n", "no lines"),
    ],
)
def test_a_file_that_is_not_a_statement_is_refused_with_a_reason(data, says):
    assert says in refusal(data)


def test_a_zip_that_is_not_a_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")

    assert "not an XLSX workbook" in refusal(out.getvalue())


def test_a_damaged_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not-a-workbook")

    assert "cannot be read" in refusal(out.getvalue())


def test_a_workbook_unpacking_to_more_than_allowed_is_refused_before_it_is_opened():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", " " * 3_000_000)  # ~3 KB packed

    says = refusal(out.getvalue(), max_unpacked=1_000_000)

    assert len(out.getvalue()) < 20_000
    assert "unpacks to" in says


def test_lines_that_cannot_be_read_are_named_and_nothing_is_read():
    data = (
        b"Receipt No.,Completion Time,Paid In\n"
        b"TED7K2QX41,12-05-2026 09:14:03,10\n"
        b"=cmd|' /C calc'!A0,12-05-2026 09:14:03,10\n"
        b"TED7K2QX43,yesterday,10\n"
        b"TED7K2QX44,12-05-2026 09:14:03,1e6\n"
        b"TED7K2QX45,12-05-2026 09:14:03,NaN\n"
    )

    says = refusal(data)

    assert says.startswith("Nothing was imported.")
    assert "row 3: Receipt No. \"=cmd|' /C calc'!A0\" is not an M-Pesa receipt" in says
    assert "row 4: Completion Time 'yesterday' is not a date and time" in says
    assert "row 5: Paid In '1e6' is not an amount" in says
    assert "row 6: Paid In 'NaN' is not an amount" in says


def test_more_lines_than_allowed_are_refused_not_cut():
    rows = "".join(f"TED{n:07d},12-05-2026 09:14:03,10\n" for n in range(11))
    data = ("Receipt No.,Completion Time,Paid In\n" + rows).encode()

    assert len(read(data, max_rows=11).rows) == 11
    assert "more than 10 lines" in refusal(data, max_rows=10)


def test_nul_and_lone_surrogates_never_reach_the_rows():
    data = "Receipt No.,Completion Time,Paid In,Details\nTED7K2QX41,12-05-2026 09:14:03,1,a\ud800b"
    encoded = data.encode("utf-8", "surrogatepass")  # invalid UTF-8: read as Windows-1252

    assert "\ud800" not in read(encoded).rows[0].details
    assert "binary data" in refusal(data.replace("a\ud800b", "a\x00b").encode())


def test_a_huge_cell_is_refused_not_a_crash():
    data = (
        b"Receipt No.,Completion Time,Paid In\nTED7K2QX41,12-05-2026 09:14:03," + b"9" * 2_000_000
    )

    assert "cannot be read" in refusal(data)

"""Pull Transactions in the client: the request as documented, the answers as reported.

API.md §13 documents the request and the row fields; the answer's wrapping (``"Response":
[[...]]``, an empty one as the string ``"[[]]"``), ISO ``trxDate`` and numeric ``msisdn`` are
reported by SDKs, not documented: the client reads every reported form and refuses to guess at
a row it cannot read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.daraja.dates import NAIROBI, parse_pull_datetime
from payments.daraja.errors import (
    DarajaRequestError,
    DarajaServerError,
    InvalidFieldError,
    InvalidPhoneNumberError,
)
from payments.daraja.responses import PulledTransaction

from .conftest import SANDBOX, SECRETS, calls_to

QUERY_URL = f"{SANDBOX}/pulltransactions/v1/query"
REGISTER_URL = f"{SANDBOX}/pulltransactions/v1/register"
START = datetime(2025, 1, 24, 5, 0, tzinfo=UTC)  # 08:00 in Nairobi
END = datetime(2025, 1, 24, 7, 30, tzinfo=UTC)


def row(**changes) -> dict:
    """A row as SDKs report Daraja lists it (php-mpesa's README sample, anonymised)."""
    return {
        "transactionId": "SAO7RT61SV",
        "trxDate": "2025-01-24T10:56:11+03:00",
        "msisdn": 254708374149,
        "sender": "MPESA",
        "transactiontype": "c2b-pay-bill-debit",
        "billreference": "INV42",
        "amount": "2697.0",
        "organizationname": "VENDOR",
        **changes,
    }


def found(*rows: dict, wrap=lambda rows: [list(rows)]) -> dict:
    return {
        "ResponseRefID": "8bab-42cc-bb85-5056a6c01e6915928124",
        "ResponseCode": "1000",
        "ResponseMessage": "Success",
        "Response": wrap(rows),
    }


NOTHING = {
    "ResponseRefID": "8bab-42cc-bb85-5056a6c01e69",
    "ResponseCode": "1001",
    "ResponseMessage": "No transactions found",
    "Response": "[[]]",
}


def sent(call) -> dict:
    return json.loads(call.request.body)


class TestQuery:
    def test_sends_the_documented_body_with_nairobi_dates_and_a_string_offset(self, client, daraja):
        daraja.post(QUERY_URL, json=NOTHING)

        client.pull_transactions_query(start=START, end=END, offset=200)

        (call,) = calls_to(daraja, "/pulltransactions/v1/query")
        assert call.request.method == "POST"
        assert call.request.headers["Authorization"] == f"Bearer {SECRETS['token']}"
        assert sent(call) == {
            "ShortCode": "174379",
            "StartDate": "2025-01-24 08:00:00",
            "EndDate": "2025-01-24 10:30:00",
            "OffSetValue": "200",
        }

    def test_the_window_widens_to_whole_seconds(self, client, daraja):
        daraja.post(QUERY_URL, json=NOTHING)

        client.pull_transactions_query(
            start=START.replace(microsecond=900_000), end=END.replace(microsecond=1)
        )

        body = sent(calls_to(daraja, "/pulltransactions/v1/query")[0])
        assert body["StartDate"] == "2025-01-24 08:00:00"
        assert body["EndDate"] == "2025-01-24 10:30:01"

    def test_reads_the_reported_rows(self, client, daraja):
        daraja.post(QUERY_URL, json=found(row(), row(transactionId="SAO7RT61SW", amount=150)))

        page = client.pull_transactions_query(start=START, end=END)

        assert page.response_code == "1000"
        assert page.offset == 0
        assert page.size == 2
        first, second = page.transactions
        assert first == PulledTransaction(
            transaction_id="SAO7RT61SV",
            trx_date=datetime(2025, 1, 24, 10, 56, 11, tzinfo=NAIROBI),
            amount=Decimal("2697.0"),
            transaction_type="c2b-pay-bill-debit",
            bill_reference="INV42",
            organization_name="VENDOR",
            msisdn="254708374149",
            raw=row(),
        )
        assert second.amount == 150
        assert "254708374149" not in repr(first)

    @pytest.mark.parametrize(
        "wrap",
        [
            lambda rows: [list(rows)],  # as reported
            lambda rows: list(rows),  # flat
            lambda rows: json.dumps([list(rows)]),  # as a string, like the empty answer
        ],
        ids=["list-in-list", "flat", "string"],
    )
    def test_reads_the_rows_however_they_are_wrapped(self, client, daraja, wrap):
        daraja.post(QUERY_URL, json=found(row(), wrap=wrap))

        page = client.pull_transactions_query(start=START, end=END)

        assert [t.transaction_id for t in page.transactions] == ["SAO7RT61SV"]
        assert page.malformed == ()

    @pytest.mark.parametrize(
        "body",
        [
            NOTHING,
            {**NOTHING, "Response": [[]]},
            {"ResponseCode": 1001, "ResponseMessage": "No transactions found"},
        ],
        ids=["string", "list", "no-rows-number-code"],
    )
    def test_1001_is_an_empty_page_not_an_error(self, client, daraja, body):
        daraja.post(QUERY_URL, json=body)

        page = client.pull_transactions_query(start=START, end=END)

        assert (page.response_code, page.transactions, page.malformed) == ("1001", (), ())
        assert page.size == 0

    def test_1001_sent_with_a_4xx_is_still_an_empty_page(self, client, daraja):
        daraja.post(QUERY_URL, json=NOTHING, status=404)

        page = client.pull_transactions_query(start=START, end=END)

        assert page.response_code == "1001"
        assert page.transactions == ()

    def test_another_response_code_is_a_refusal(self, client, daraja):
        daraja.post(QUERY_URL, json={"ResponseCode": "1002", "ResponseMessage": "Invalid"})

        with pytest.raises(DarajaRequestError) as excinfo:
            client.pull_transactions_query(start=START, end=END)

        assert excinfo.value.error_code == "1002"

    def test_a_query_is_retried_after_server_errors(self, client, daraja, sleeps):
        daraja.post(QUERY_URL, status=503)
        daraja.post(QUERY_URL, status=503)
        daraja.post(QUERY_URL, json=found(row()))

        page = client.pull_transactions_query(start=START, end=END)

        assert len(calls_to(daraja, "/pulltransactions/v1/query")) == 3
        assert len(page.transactions) == 1

    def test_an_html_page_is_a_server_error(self, client, daraja):
        daraja.post(QUERY_URL, body="<html>maintenance</html>", status=200)

        with pytest.raises(DarajaServerError):
            client.pull_transactions_query(start=START, end=END)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"start": START.replace(tzinfo=None)}, "start"),
            ({"end": END.replace(tzinfo=None)}, "start"),
            ({"start": END, "end": START}, "start"),
            ({"offset": -1}, "offset"),
        ],
    )
    def test_bad_windows_are_refused_before_anything_is_sent(self, client, daraja, kwargs, field):
        arguments = {"start": START, "end": END, **kwargs}

        with pytest.raises(InvalidFieldError) as excinfo:
            client.pull_transactions_query(**arguments)

        assert excinfo.value.field == field
        assert len(daraja.calls) == 0


class TestMalformedRows:
    @pytest.mark.parametrize(
        ("bad", "reason"),
        [
            ("SAO7RT61SV", "not a JSON object"),
            (None, "not a JSON object"),
            (row(transactionId=None), "no readable transactionId"),
            (row(transactionId="SAO7-RT61"), "no readable transactionId"),
            (row(transactionId="S" * 21), "no readable transactionId"),
            (row(transactionId=12.5), "no readable transactionId"),
            (row(amount="1e5"), "an amount that is not a number"),
            (row(amount="KES 10"), "an amount that is not a number"),
            (row(amount=True), "an amount that is not a number"),
            (row(amount=""), "no amount"),
            ({k: v for k, v in row().items() if k != "amount"}, "no amount"),
        ],
    )
    def test_a_row_that_cannot_be_read_is_listed_apart_never_guessed(
        self, client, daraja, bad, reason
    ):
        good = row(transactionId="SAO7RT61SX")
        daraja.post(QUERY_URL, json=found(bad, good))

        page = client.pull_transactions_query(start=START, end=END)

        assert [t.transaction_id for t in page.transactions] == ["SAO7RT61SX"]
        (malformed,) = page.malformed
        assert reason in malformed.reason
        assert page.size == 2  # the next page starts after both

    def test_an_unreadable_date_or_odd_text_does_not_lose_the_payment(self, client, daraja):
        odd = row(trxDate="yesterday", msisdn=None, billreference={"x": 1}, transactiontype=7)
        daraja.post(QUERY_URL, json=found(odd))

        (pulled,) = client.pull_transactions_query(start=START, end=END).transactions

        assert (pulled.trx_date, pulled.msisdn, pulled.bill_reference) == (None, "", "")
        assert pulled.transaction_type == "7"
        assert pulled.amount == Decimal("2697.0")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-24T10:56:11+03:00", datetime(2025, 1, 24, 10, 56, 11, tzinfo=NAIROBI)),
        ("2025-01-24T07:56:11Z", datetime(2025, 1, 24, 10, 56, 11, tzinfo=NAIROBI)),
        ("2025-01-24 10:56:11", datetime(2025, 1, 24, 10, 56, 11, tzinfo=NAIROBI)),
        ("20250124105611", datetime(2025, 1, 24, 10, 56, 11, tzinfo=NAIROBI)),
        (20250124105611, datetime(2025, 1, 24, 10, 56, 11, tzinfo=NAIROBI)),
        ("0001-01-01T00:00:00+00:00", None),
        ("2025-13-40T00:00:00", None),
        ("\uff12\uff10\uff12\uff15-01-24T10:56:11", None),  # fullwidth digits
        ("", None),
        (None, None),
        ([], None),
    ],
)
def test_pull_dates_are_read_in_every_reported_form(value, expected):
    parsed = parse_pull_datetime(value)

    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(hours=3)


class TestRegister:
    def test_sends_the_documented_body(self, client, daraja):
        daraja.post(
            REGISTER_URL,
            json={
                "ResponseRefID": "18633-7271215-1",
                "ResponseStatus": "1000",
                "ShortCode": "174379",
                "ResponseDescription": "ShortCode Registered Successfully",
            },
        )

        answer = client.pull_transactions_register(
            nominated_number="0722 000 000",
            callback_url="https://pay.example.co.ke/api/v1/payments/callbacks/c2b/s3cr3t/pull",
        )

        (call,) = calls_to(daraja, "/pulltransactions/v1/register")
        assert sent(call) == {
            "ShortCode": "174379",
            "RequestType": "Pull",
            "NominatedNumber": "254722000000",
            "CallBackURL": "https://pay.example.co.ke/api/v1/payments/callbacks/c2b/s3cr3t/pull",
        }
        assert (answer.response_status, answer.response_ref_id) == ("1000", "18633-7271215-1")

    def test_already_registered_is_a_success(self, client, daraja):
        daraja.post(
            REGISTER_URL,
            json={"ResponseStatus": 1001, "ResponseDescription": "ShortCode already Registered"},
        )

        answer = client.pull_transactions_register(
            nominated_number="254722000000", callback_url="https://a.co.ke/c", shortcode="600984"
        )

        assert answer.response_status == "1001"
        assert sent(daraja.calls[-1])["ShortCode"] == "600984"

    @pytest.mark.parametrize("code", ["1000", "1001"])
    def test_a_registration_answered_with_response_code_is_a_success(self, client, daraja, code):
        # Some answers are reported with ResponseCode in place of ResponseStatus.
        daraja.post(REGISTER_URL, json={"ResponseCode": code, "ResponseDescription": "Done"})

        answer = client.pull_transactions_register(
            nominated_number="254722000000", callback_url="https://a.co.ke/c"
        )

        assert answer.response_status == code

    def test_any_other_status_is_a_refusal(self, client, daraja):
        daraja.post(REGISTER_URL, json={"ResponseStatus": "1002", "ResponseDescription": "No"})

        with pytest.raises(DarajaRequestError) as excinfo:
            client.pull_transactions_register(
                nominated_number="254722000000", callback_url="https://a.co.ke/c"
            )

        assert excinfo.value.error_code == "1002"

    def test_a_nominated_number_that_is_no_phone_is_refused_before_sending(self, client, daraja):
        with pytest.raises(InvalidPhoneNumberError) as excinfo:
            client.pull_transactions_register(
                nominated_number="0800 000", callback_url="https://a.co.ke/c"
            )

        assert excinfo.value.field == "nominated_number"
        assert len(daraja.calls) == 0

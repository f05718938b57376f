"""Parsing Daraja's asynchronous bodies: every published sample, and each type quirk."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from payments.daraja.callbacks import (
    AccountBalance,
    parse_account_balance_result,
    parse_account_balances,
    parse_b2c_result,
    parse_c2b_notification,
    parse_queue_timeout,
    parse_result,
    parse_reversal_result,
    parse_stk_callback,
    parse_transaction_status_result,
)
from payments.daraja.dates import NAIROBI, parse_daraja_datetime
from payments.daraja.errors import DarajaCallbackError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "daraja"


def load_fixture(name: str) -> dict[str, Any]:
    """A sample body from tests/fixtures/daraja/, e.g. "stk/stk_callback_success.portal.json"."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def nairobi(*args: int) -> datetime:
    return datetime(*args, tzinfo=NAIROBI)


def assert_decimal(value: Any, expected: str) -> None:
    assert type(value) is Decimal
    assert value == Decimal(expected)


# --- Dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(20191219102115, nairobi(2019, 12, 19, 10, 21, 15), id="int-stk"),
        pytest.param("20191122063845", nairobi(2019, 11, 22, 6, 38, 45), id="str-c2b"),
        pytest.param("06.07.2024 22:48:52", nairobi(2024, 7, 6, 22, 48, 52), id="dotted-b2c"),
        pytest.param(" 20191122063845 ", nairobi(2019, 11, 22, 6, 38, 45), id="padded"),
    ],
)
def test_daraja_datetime_formats_parse_to_nairobi_time(value: Any, expected: datetime) -> None:
    parsed = parse_daraja_datetime(value)

    assert parsed == expected
    assert parsed.tzinfo is NAIROBI
    assert parsed.utcoffset().total_seconds() == 3 * 3600


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("not a date", id="junk"),
        pytest.param("2019121910211", id="13-digits"),
        pytest.param("32.01.2024 10:00:00", id="day-32"),
        pytest.param("2024-07-06T22:48:52", id="iso"),
        pytest.param(2.5, id="float"),
        pytest.param(True, id="bool"),
        pytest.param({"date": "20191122063845"}, id="object"),
    ],
)
def test_unparseable_daraja_datetime_is_none_not_an_error(value: Any) -> None:
    assert parse_daraja_datetime(value) is None


# --- STK callback --------------------------------------------------------------------------------


def test_stk_success_callback_carries_receipt_amount_date_and_phone() -> None:
    body = load_fixture("stk/stk_callback_success.portal.json")

    callback = parse_stk_callback(body)

    assert callback.merchant_request_id == "29115-34620561-1"
    assert callback.checkout_request_id == "ws_CO_191220191020363925"
    assert callback.result_code == "0"
    assert callback.is_success
    assert callback.result_desc == "The service request is processed successfully."
    assert_decimal(callback.amount, "1.00")
    assert callback.mpesa_receipt_number == "NLJ7RT61SV"
    assert callback.transaction_date == nairobi(2019, 12, 19, 10, 21, 15)
    assert callback.phone_number == "254708374149"
    assert callback.balance is None
    assert callback.raw == body


@pytest.mark.parametrize(
    ("name", "checkout_id", "receipt", "amount", "date", "phone"),
    [
        pytest.param(
            "stk/stk_callback_success_with_empty_balance_item.2017.php-mpesa.json",
            "ws_CO_27072017154747416",
            "LGR7OWQX0R",
            "1",
            nairobi(2017, 7, 27, 15, 48, 0),
            "254721566839",
            id="2017",
        ),
        pytest.param(
            "stk/stk_callback_success_with_empty_balance_item.2019.django-daraja.json",
            "ws_CO_DMZ_264695293_11032019122104433",
            "NCB9FJNAIT",
            "1.00",
            nairobi(2019, 3, 11, 12, 21, 21),
            "254719748260",
            id="2019",
        ),
    ],
)
def test_stk_balance_item_without_value_is_none(
    name: str, checkout_id: str, receipt: str, amount: str, date: datetime, phone: str
) -> None:
    callback = parse_stk_callback(load_fixture(name))

    assert callback.balance is None
    assert callback.checkout_request_id == checkout_id
    assert callback.is_success
    assert callback.mpesa_receipt_number == receipt
    assert_decimal(callback.amount, amount)
    assert callback.transaction_date == date
    assert callback.phone_number == phone


def test_stk_balance_item_with_value_is_a_decimal() -> None:
    body = load_fixture("stk/stk_callback_success_with_empty_balance_item.2017.php-mpesa.json")
    body["Body"]["stkCallback"]["CallbackMetadata"]["Item"][2]["Value"] = "150.50"

    assert_decimal(parse_stk_callback(body).balance, "150.50")


@pytest.mark.parametrize(
    ("name", "checkout_id", "code", "desc"),
    [
        pytest.param(
            "stk/stk_callback_cancelled_1032.portal.json",
            "ws_CO_21072024125243250722943992",
            "1032",
            "Request cancelled by user",
            id="cancelled-portal",
        ),
        pytest.param(
            "stk/stk_callback_cancelled_1032.2017.php-mpesa.json",
            "ws_CO_27072017151044001",
            "1032",
            "[STK_CB - ]Request cancelled by user",
            id="cancelled-2017",
        ),
        pytest.param(
            "stk/stk_callback_cancelled_1032.2019.django-daraja.json",
            "ws_CO_DMZ_401294732_11032019121308821",
            "1032",
            "[STK_CB - ]Request cancelled by user",
            id="cancelled-2019",
        ),
        pytest.param(
            "stk/stk_callback_timeout_1036_smsc_ack.2019.django-daraja.json",
            "ws_CO_DMZ_262987371_09032019203456095",
            "1036",
            "[STK_CB - ]SMSC ACK timeout.",
            id="timeout-1036",
        ),
        pytest.param(
            "stk/stk_callback_wrong_pin_2001.2019.django-daraja.json",
            "ws_CO_DMZ_264800546_11032019141837240",
            "2001",
            "[MpesaCB - ]The initiator information is invalid.",
            id="wrong-pin-2001",
        ),
    ],
)
def test_stk_failure_callback_has_string_code_and_no_payment_details(
    name: str, checkout_id: str, code: str, desc: str
) -> None:
    callback = parse_stk_callback(load_fixture(name))

    assert callback.checkout_request_id == checkout_id
    assert callback.result_code == code
    assert not callback.is_success
    assert callback.result_desc == desc
    assert callback.amount is None
    assert callback.mpesa_receipt_number is None
    assert callback.transaction_date is None
    assert callback.phone_number is None


def test_stk_lone_metadata_item_is_read_as_a_list() -> None:
    body = load_fixture("stk/stk_callback_success.portal.json")
    body["Body"]["stkCallback"]["CallbackMetadata"]["Item"] = {
        "Name": "MpesaReceiptNumber",
        "Value": "NLJ7RT61SV",
    }

    assert parse_stk_callback(body).mpesa_receipt_number == "NLJ7RT61SV"


# --- C2B validation and confirmation ------------------------------------------------------------


def test_c2b_v2_body_keeps_masked_msisdn_verbatim() -> None:
    body = load_fixture("c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json")

    notification = parse_c2b_notification(body)

    assert notification.msisdn == "2547 ***** 126"
    assert notification.transaction_type == "Pay Bill"
    assert notification.trans_id == "RKL51ZDR4F"
    assert notification.trans_time == nairobi(2023, 11, 21, 12, 13, 25)
    assert_decimal(notification.trans_amount, "5.00")
    assert notification.business_shortcode == "600966"
    assert notification.bill_ref_number == "Sample Transaction"
    assert notification.invoice_number == ""
    assert_decimal(notification.org_account_balance, "25.00")
    assert notification.third_party_trans_id == ""
    assert (notification.first_name, notification.middle_name, notification.last_name) == (
        "NICHOLAS",
        "",
        "",
    )
    assert notification.raw == body


def test_c2b_validation_with_blank_balance_has_no_balance() -> None:
    notification = parse_c2b_notification(
        load_fixture("c2b/c2b_validation_request.2017.php-mpesa.json")
    )

    assert notification.org_account_balance is None
    assert notification.transaction_type == ""
    assert notification.trans_id == "LGR219G3EY"
    assert notification.trans_time == nairobi(2017, 7, 27, 10, 42, 47)
    assert_decimal(notification.trans_amount, "10.00")
    assert notification.business_shortcode == "600134"
    assert notification.bill_ref_number == "xyz"
    assert notification.msisdn == "254708374149"
    assert (notification.first_name, notification.middle_name) == ("John", "Doe")


def test_c2b_confirmation_carries_balance_and_third_party_id() -> None:
    notification = parse_c2b_notification(
        load_fixture("c2b/c2b_confirmation_request.2017.php-mpesa.json")
    )

    assert_decimal(notification.org_account_balance, "49197.00")
    assert notification.third_party_trans_id == "1234567890"
    assert notification.trans_id == "LGR219G3EY"
    assert_decimal(notification.trans_amount, "10.00")


def test_c2b_unreadable_balance_is_none_not_an_error() -> None:
    body = load_fixture("c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json")
    body["OrgAccountBalance"] = "n/a"

    notification = parse_c2b_notification(body)

    assert notification.org_account_balance is None
    assert_decimal(notification.trans_amount, "5.00")


def test_c2b_hashed_msisdn_and_missing_names_are_kept_as_sent() -> None:
    body = load_fixture("c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json")
    hashed = "94c2c311d522da950619227b3361752a42042db7e1e699b26e628305c68a88"
    body["MSISDN"] = hashed
    del body["FirstName"], body["MiddleName"], body["LastName"]

    notification = parse_c2b_notification(body)

    assert notification.msisdn == hashed
    assert (notification.first_name, notification.middle_name, notification.last_name) == (
        "",
        "",
        "",
    )


# --- B2C results ---------------------------------------------------------------------------------


def test_b2c_success_result_carries_receipt_recipient_and_balances() -> None:
    body = load_fixture("b2c/b2c_result_success.portal.json")

    result = parse_b2c_result(body)

    assert result.is_success
    assert result.result_code == "0"
    assert result.result_type == "0"
    assert result.originator_conversation_id == "53e3-4aa8-9fe0-8fb5e4092cdd3533373"
    assert result.conversation_id == "AG_20240706_2010364430d9bbdaf872"
    assert result.transaction_id == "SG632NMUAB"
    assert result.receipt_number == "SG632NMUAB"
    assert_decimal(result.amount, "10")
    assert result.receiver_public_name == "254705912645 - NICHOLAS JOHN SONGOK"
    assert result.recipient_name == "NICHOLAS JOHN SONGOK"
    assert result.completed_at == nairobi(2024, 7, 6, 22, 48, 52)
    # Through str(): Decimal(8959269.60) would be 8959269.5999999996...
    assert_decimal(result.utility_account_balance, "8959269.60")
    assert_decimal(result.working_account_balance, "1199371.00")
    assert_decimal(result.charges_paid_account_balance, "-1980.00")
    assert result.recipient_is_registered is True
    assert result.reference_data == {
        "QueueTimeoutURL": "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit"
    }
    assert result.raw == body


def test_b2c_2017_success_result() -> None:
    result = parse_b2c_result(load_fixture("b2c/b2c_result_success.2017.php-mpesa.json"))

    assert result.is_success
    assert result.receipt_number == "LGH3197RIB"
    assert_decimal(result.amount, "8000")
    assert result.recipient_name == "John Doe"
    assert result.completed_at == nairobi(2017, 7, 17, 10, 54, 57)
    assert_decimal(result.utility_account_balance, "133568")
    assert_decimal(result.working_account_balance, "150000")
    assert_decimal(result.charges_paid_account_balance, "0")


def test_b2c_failure_result_has_no_receipt_despite_placeholder_transaction_id() -> None:
    result = parse_b2c_result(load_fixture("b2c/b2c_result_failure_2001.portal.json"))

    assert result.result_code == "2001"
    assert not result.is_success
    assert result.result_desc == "The initiator information is invalid."
    assert result.transaction_id == "SG722NMVXQ"
    assert result.receipt_number is None
    assert result.parameters == {}
    assert result.amount is None
    assert result.recipient_name is None
    assert result.completed_at is None
    assert result.recipient_is_registered is None


def test_b2c_receipt_comes_from_transaction_receipt_before_transaction_id() -> None:
    body = load_fixture("b2c/b2c_result_success.portal.json")
    body["Result"]["TransactionID"] = "SG632NMXXX"

    assert parse_b2c_result(body).receipt_number == "SG632NMUAB"


def test_b2c_success_without_transaction_receipt_falls_back_to_transaction_id() -> None:
    body = load_fixture("b2c/b2c_result_success.portal.json")
    items = body["Result"]["ResultParameters"]["ResultParameter"]
    body["Result"]["ResultParameters"]["ResultParameter"] = [
        item for item in items if item["Key"] != "TransactionReceipt"
    ]

    assert parse_b2c_result(body).receipt_number == "SG632NMUAB"


@pytest.mark.parametrize(
    ("public_name", "registered", "expected_name", "expected_registered"),
    [
        pytest.param("254708374149 - John Doe", "N", "John Doe", False, id="unregistered"),
        pytest.param("254708374149", "y", None, True, id="no-name"),
        pytest.param(None, "maybe", None, None, id="unknown"),
    ],
)
def test_b2c_recipient_name_and_registration(
    public_name: str | None,
    registered: str,
    expected_name: str | None,
    expected_registered: bool | None,
) -> None:
    body = load_fixture("b2c/b2c_result_success.portal.json")
    body["Result"]["ResultParameters"]["ResultParameter"] = [
        {"Key": "ReceiverPartyPublicName", "Value": public_name},
        {"Key": "B2CRecipientIsRegisteredCustomer", "Value": registered},
    ]

    result = parse_b2c_result(body)

    assert result.recipient_name == expected_name
    assert result.recipient_is_registered is expected_registered


# --- Reversal results ----------------------------------------------------------------------------


def test_reversal_success_result_parses_debit_account_balance() -> None:
    result = parse_reversal_result(load_fixture("reversal/reversal_result_success.portal.json"))

    assert result.is_success
    assert result.transaction_id == "SKE52PAWR9"
    assert_decimal(result.amount, "1.00")
    assert result.original_transaction_id == "SKC82PACB8"
    assert result.completed_at == nairobi(2021, 11, 14, 13, 27, 11)
    assert_decimal(result.charge, "0.00")
    assert result.credit_party_public_name == "254705912645 - NICHOLAS JOHN SONGOK"
    assert result.debit_party_public_name == "600992 - Safaricom Daraja 992"
    assert result.debit_account_balance == AccountBalance(
        name="Utility Account",
        currency="KES",
        current=Decimal("7722179.62"),
        available=Decimal("7722179.62"),
        reserved=Decimal("0.00"),
        uncleared=Decimal("0.00"),
    )


def test_reversal_failure_keeps_non_numeric_result_code() -> None:
    result = parse_reversal_result(
        load_fixture("reversal/reversal_result_failure_R000002.portal.json")
    )

    assert result.result_code == "R000002"
    assert not result.is_success
    assert result.result_desc == "The OriginalTransactionID is invalid."
    assert result.transaction_id == "SKE0000000"
    assert result.amount is None
    assert result.debit_account_balance is None


def test_reversal_2017_result_without_parameters() -> None:
    result = parse_reversal_result(
        load_fixture("reversal/reversal_result_success.2017.php-mpesa.json")
    )

    assert result.is_success
    assert result.originator_conversation_id == "10819-695089-1"
    assert result.conversation_id == "AG_20170727_00004efadacd98a01d15"
    assert result.transaction_id == "LGR019G3J2"
    assert result.parameters == {}
    assert result.original_transaction_id is None


# --- Account balance results ---------------------------------------------------------------------


def test_account_balance_result_lists_accounts_by_name() -> None:
    result = parse_account_balance_result(
        load_fixture("balance/account_balance_result_success.portal.json")
    )

    assert result.result_type == "0"
    assert result.result_code == "0"
    assert result.is_success
    assert [account.name for account in result.accounts] == [
        "Working Account",
        "Float Account",
        "Utility Account",
        "Charges Paid Account",
        "Organization Settlement Account",
    ]
    utility = result.account("utility account")
    assert utility is not None
    assert utility.currency == "KES"
    assert_decimal(utility.current, "228037.00")
    assert_decimal(utility.available, "228037.00")
    assert_decimal(result.account("Charges Paid Account").available, "-1540.00")
    assert_decimal(result.account("Working Account").current, "700000.00")
    assert result.account("Merchant Account") is None
    assert result.completed_at == nairobi(2020, 1, 9, 12, 57, 10)


def test_account_balance_2017_result_with_numeric_completed_time() -> None:
    result = parse_account_balance_result(
        load_fixture("balance/account_balance_result_success.2017.php-mpesa.json")
    )

    assert result.completed_at == nairobi(2017, 7, 28, 9, 56, 42)
    assert_decimal(result.account("Working Account").current, "46713.00")
    assert_decimal(result.account("Utility Account").available, "49217.00")
    assert_decimal(result.account("Charges Paid Account").current, "-220.00")


def test_account_balance_failure_has_no_accounts() -> None:
    body = load_fixture("balance/account_balance_result_success.portal.json")
    body["Result"]["ResultCode"] = 2001
    del body["Result"]["ResultParameters"]

    result = parse_account_balance_result(body)

    assert result.result_code == "2001"
    assert result.accounts == ()
    assert result.completed_at is None


def test_account_balance_inverted_parameter_nesting_is_accepted() -> None:
    body = load_fixture("balance/account_balance_result_success.portal.json")
    items = body["Result"].pop("ResultParameters")["ResultParameter"]
    body["Result"]["ResultParameter"] = {"ResultParameters": items}

    result = parse_account_balance_result(body)

    assert len(result.accounts) == 5
    assert result.completed_at == nairobi(2020, 1, 9, 12, 57, 10)


def test_account_balance_string_tolerates_missing_and_odd_fields() -> None:
    accounts = parse_account_balances(
        "Working Account|KES|1.50&&Merchant Account | KES | -5.25 | x | 0.00 | 0.00&|KES|1|1|0|0&"
    )

    assert accounts == (
        AccountBalance("Working Account", "KES", Decimal("1.50"), None, None, None),
        AccountBalance(
            "Merchant Account", "KES", Decimal("-5.25"), None, Decimal("0.00"), Decimal("0.00")
        ),
    )


# --- Transaction status results ------------------------------------------------------------------


def test_transaction_status_second_debit_party_name_is_the_credit_party() -> None:
    result = parse_transaction_status_result(
        load_fixture("transaction_status/transaction_status_result_success.portal.json")
    )

    assert result.debit_party_name == "600310 - Safaricom333"
    assert result.credit_party_name == "254708374149 - John Doe"
    assert result.is_success
    assert result.transaction_id == "MBN0000000"
    assert result.receipt_number == "MBN31H462N"
    assert result.transaction_status == "Completed"
    assert_decimal(result.amount, "300")
    assert result.initiated_at == nairobi(2018, 2, 23, 5, 41, 12)
    assert result.finalised_at == nairobi(2018, 2, 23, 5, 41, 12)
    assert result.debit_account_type == "Utility Account"
    assert result.debit_party_charges == "Fee For B2C Payment|KES|22.40"
    assert result.reason_type == "Business Payment to Customer via API"
    assert result.originator_conversation_id == "3213-416199-2"
    assert result.conversation_id == "AG_20180223_0000493344ae97d86f75"
    assert result.original_conversation_id == "3211-416020-3"
    assert result.original_transaction_conversation_id == "AG_20180223_000041b09c22e613d6c9"
    assert result.parameters["TransactionReason"] is None
    assert result.reference_data == {"Occasion": None}


def test_transaction_status_2017_result_with_spaced_keys() -> None:
    result = parse_transaction_status_result(
        load_fixture("transaction_status/transaction_status_result_success.2017.php-mpesa.json")
    )

    assert result.original_conversation_id == "19455-773836-1"
    assert result.original_transaction_conversation_id == "AG_20170727_00004492b1b6d0078fbe"
    assert result.parameters["ConversationID"] == "AG_20170727_00004492b1b6d0078fbe"
    assert result.conversation_id == "AG_20170727_000059c52529a8e080bd"
    assert result.receipt_number == "LGR919G2AV"
    assert result.debit_party_name == "600134 - Safaricom157"
    assert result.credit_party_name == "254708374149 - John Doe"
    assert_decimal(result.amount, "10")
    assert result.finalised_at == nairobi(2017, 7, 27, 10, 14, 15)
    assert result.initiated_at == nairobi(2017, 7, 27, 10, 14, 15)
    assert result.debit_party_charges == "Fee For B2C Payment|KES|33.00"
    assert result.reason_type == "Salary Payment via API"
    assert result.reference_data == {"Occasion": "aaaa"}


# --- Envelope shapes and type quirks -------------------------------------------------------------


def test_lone_result_parameter_object_is_read_as_a_list() -> None:
    body = load_fixture("b2c/b2c_result_failure_2001.portal.json")
    body["Result"]["ResultParameters"] = {
        "ResultParameter": {"Key": "TransactionAmount", "Value": 10}
    }

    assert parse_result(body).parameters == {"TransactionAmount": 10}
    assert_decimal(parse_b2c_result(body).amount, "10")


def test_flat_result_parameters_list_is_accepted() -> None:
    body = load_fixture("b2c/b2c_result_success.portal.json")
    body["Result"]["ResultParameters"] = body["Result"]["ResultParameters"]["ResultParameter"]

    result = parse_b2c_result(body)

    assert result.receipt_number == "SG632NMUAB"
    assert_decimal(result.charges_paid_account_balance, "-1980.00")


def test_reference_items_given_as_a_list_are_all_kept() -> None:
    body = load_fixture("b2c/b2c_result_failure_2001.portal.json")
    body["Result"]["ReferenceData"]["ReferenceItem"] = [
        {"Key": "QueueTimeoutURL", "Value": "https://example.invalid/timeout"},
        {"Key": "Occasion"},
    ]

    assert parse_result(body).reference_data == {
        "QueueTimeoutURL": "https://example.invalid/timeout",
        "Occasion": None,
    }


@pytest.mark.parametrize("code", [1032, "1032", " 1032 "])
def test_stk_result_code_is_the_same_string_whatever_its_json_type(code: Any) -> None:
    body = load_fixture("stk/stk_callback_cancelled_1032.portal.json")
    body["Body"]["stkCallback"]["ResultCode"] = code

    assert parse_stk_callback(body).result_code == "1032"


@pytest.mark.parametrize(("code", "result_type"), [(0, 0), ("0", "0")])
def test_result_code_and_type_are_the_same_string_whatever_their_json_type(
    code: Any, result_type: Any
) -> None:
    body = load_fixture("b2c/b2c_result_success.portal.json")
    body["Result"]["ResultCode"] = code
    body["Result"]["ResultType"] = result_type

    result = parse_result(body)

    assert result.result_code == "0"
    assert result.result_type == "0"
    assert result.is_success


@pytest.mark.parametrize(
    ("parse", "name"),
    [
        (parse_stk_callback, "stk/stk_callback_success.portal.json"),
        (parse_c2b_notification, "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"),
        (parse_result, "reversal/reversal_result_failure_R000002.portal.json"),
    ],
)
@pytest.mark.parametrize("encode", [str, str.encode], ids=["str", "bytes"])
def test_json_text_and_bytes_bodies_parse_like_dicts(parse: Any, name: str, encode: Any) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")

    assert parse(encode(text)) == parse(json.loads(text))


# --- Bodies that cannot be parsed ----------------------------------------------------------------


@pytest.mark.parametrize(
    "parse",
    [
        parse_stk_callback,
        parse_c2b_notification,
        parse_result,
        parse_b2c_result,
        parse_queue_timeout,
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("{not json", id="invalid-json"),
        pytest.param(b"\xff\xfe{", id="invalid-bytes"),
        pytest.param("", id="empty"),
        pytest.param("[1, 2]", id="json-array"),
        pytest.param(["Body"], id="list"),
        pytest.param("null", id="json-null"),
    ],
)
def test_non_object_bodies_raise_callback_error(parse: Any, body: Any) -> None:
    with pytest.raises(DarajaCallbackError) as excinfo:
        parse(body)

    assert excinfo.value.raw == body


def _without(name: str, *path: str) -> dict[str, Any]:
    body = load_fixture(name)
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body


def _with(name: str, value: Any, *path: str) -> dict[str, Any]:
    body = load_fixture(name)
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return body


STK = "stk/stk_callback_success.portal.json"
C2B = "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"
B2C = "b2c/b2c_result_success.portal.json"


@pytest.mark.parametrize(
    ("parse", "body", "message"),
    [
        pytest.param(
            parse_stk_callback,
            _without(STK, "Body", "stkCallback", "CheckoutRequestID"),
            "CheckoutRequestID",
            id="stk-no-checkout-id",
        ),
        pytest.param(
            parse_stk_callback,
            _with(STK, "  ", "Body", "stkCallback", "CheckoutRequestID"),
            "CheckoutRequestID",
            id="stk-blank-checkout-id",
        ),
        pytest.param(
            parse_stk_callback,
            _without(STK, "Body", "stkCallback", "ResultCode"),
            "ResultCode",
            id="stk-no-result-code",
        ),
        pytest.param(
            parse_stk_callback,
            _without(STK, "Body", "stkCallback"),
            "stkCallback",
            id="stk-no-callback",
        ),
        pytest.param(
            parse_stk_callback,
            _with(
                STK,
                {"Name": "Amount", "Value": "one"},
                "Body",
                "stkCallback",
                "CallbackMetadata",
                "Item",
            ),
            "Amount",
            id="stk-amount-not-a-number",
        ),
        pytest.param(parse_c2b_notification, _without(C2B, "TransID"), "TransID", id="c2b-no-id"),
        pytest.param(
            parse_c2b_notification, _without(C2B, "TransAmount"), "TransAmount", id="c2b-no-amount"
        ),
        pytest.param(
            parse_c2b_notification,
            _with(C2B, "five", "TransAmount"),
            "TransAmount",
            id="c2b-amount-not-a-number",
        ),
        pytest.param(
            parse_c2b_notification,
            _with(C2B, "NaN", "TransAmount"),
            "TransAmount",
            id="c2b-amount-nan",
        ),
        pytest.param(parse_result, _without(B2C, "Result"), "Result", id="no-result"),
        pytest.param(
            parse_result, _without(B2C, "Result", "ResultCode"), "ResultCode", id="no-result-code"
        ),
        pytest.param(
            parse_result,
            _with(B2C, {"code": 0}, "Result", "ResultCode"),
            "ResultCode",
            id="result-code-object",
        ),
    ],
)
def test_body_without_its_essential_values_raises_callback_error(
    parse: Any, body: dict[str, Any], message: str
) -> None:
    kept = copy.deepcopy(body)

    with pytest.raises(DarajaCallbackError, match=message) as excinfo:
        parse(body)

    assert excinfo.value.raw == kept


# --- QueueTimeOutURL bodies (shape undocumented) -------------------------------------------------


def test_queue_timeout_in_result_envelope_parses_like_a_result() -> None:
    body = load_fixture("b2c/b2c_result_failure_2001.portal.json")

    result = parse_queue_timeout(body)

    assert result.result_code == "2001"
    assert result.originator_conversation_id == "53e3-4aa8-9fe0-8fb5e4092cdd3544366"


def test_queue_timeout_without_result_code_parses_on_its_conversation_ids() -> None:
    body = {"Result": {"OriginatorConversationID": "b2c-1", "ConversationID": "AG_1"}}

    result = parse_queue_timeout(body)

    assert result.result_code == ""
    assert not result.is_success
    assert result.originator_conversation_id == "b2c-1"
    assert result.conversation_id == "AG_1"
    with pytest.raises(DarajaCallbackError):
        parse_result(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"OriginatorConversationID": "b2c-2", "Status": "timeout"}, id="no-envelope"),
        pytest.param(
            {"Result": {"ResultDesc": "timed out"}, "OriginatorConversationID": "b2c-2"},
            id="beside-envelope",
        ),
    ],
)
def test_queue_timeout_ids_at_top_level_are_found(body: dict[str, Any]) -> None:
    result = parse_queue_timeout(body)

    assert result.result_code == ""
    assert result.originator_conversation_id == "b2c-2"
    assert result.conversation_id is None


def test_queue_timeout_without_any_identifier_raises() -> None:
    with pytest.raises(DarajaCallbackError):
        parse_queue_timeout({"Result": {"ResultDesc": "timed out"}})


def test_a_stray_invalid_byte_reads_as_a_replacement_character() -> None:
    body = load_fixture("c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json")
    raw = json.dumps(body).encode().replace(b"NICHOLAS", b"NICOL\xc1S")

    notification = parse_c2b_notification(raw)

    assert notification.first_name == "NICOL\ufffdS"
    assert notification.trans_id == body["TransID"]


def test_a_json_escaped_nul_reads_as_a_replacement_character() -> None:
    body = load_fixture("stk/stk_callback_success.portal.json")
    body["Body"]["stkCallback"]["ResultDesc"] = "processed\x00"
    body["Body"]["stkCallback"]["Extra\x00"] = ["\x00"]

    callback = parse_stk_callback(json.dumps(body).encode())

    assert callback.result_desc == "processed\ufffd"
    assert "\x00" not in json.dumps(callback.raw)

"""Properties of what reads strangers' input: the phone normaliser, the amount validators and
every callback parser, over inputs hypothesis generates (issue 10, Build 1).

Derandomized and without a stored database, so a run is repeatable; the deadline is what
catches a value that makes a parser slow (an exponent amount took seconds). The parsers' random
JSON takes seconds per parser: those run in `make fuzz`, the rest in `make test`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.daraja.callbacks import (
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
from payments.daraja.dates import parse_daraja_datetime
from payments.daraja.errors import DarajaCallbackError, InvalidPhoneNumberError
from payments.daraja.jsontext import has_unstorable_text
from payments.daraja.phone import mask_phone_number, normalize_phone_number
from payments.exceptions import PaymentValidationError
from payments.services.c2b import MAX_BOOKABLE_AMOUNT, bookable_amount
from payments.services.common import validated_whole_amount

PROPERTY = settings(
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)
# Random JSON documents for every parser, in `make fuzz`.
PARSER_PROPERTY = settings(PROPERTY, max_examples=150)
MSISDN = re.compile(r"254[17][0-9]{8}")
PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]{1,15}(\.[0-9]{1,20})?")

# Exponents, huge and odd numbers: the values that cost time or overflow somewhere.
NASTY_NUMBERS = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,3}[eE][+-]?[0-9]{3,7}\Z"),
    st.sampled_from(["NaN", "-Infinity", "1_000", "٣", "0x10", " 5.00 ", "5.", ".5", "-0"]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text(max_size=30),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    NASTY_NUMBERS,
    st.text(max_size=40),
    st.just("\x00"),
    st.just("\udfff"),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=5),
    ),
    max_leaves=20,
)

STK_KEYS = ["MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc"]
ITEM_NAMES = ["Amount", "MpesaReceiptNumber", "Balance", "TransactionDate", "PhoneNumber"]
C2B_KEYS = [
    "TransactionType", "TransID", "TransTime", "TransAmount", "BusinessShortCode",
    "BillRefNumber", "InvoiceNumber", "OrgAccountBalance", "ThirdPartyTransID", "MSISDN",
    "FirstName", "MiddleName", "LastName",
]  # fmt: skip
RESULT_KEYS = [
    "ResultType", "ResultCode", "ResultDesc", "OriginatorConversationID", "ConversationID",
    "TransactionID",
]  # fmt: skip
PARAMETER_KEYS = [
    "TransactionAmount", "TransactionReceipt", "ReceiverPartyPublicName",
    "TransactionCompletedDateTime", "B2CUtilityAccountAvailableFunds",
    "B2CRecipientIsRegisteredCustomer", "Amount", "DebitAccountBalance", "Charge",
    "OriginalTransactionID", "AccountBalance", "BOCompletedTime", "ReceiptNo",
    "TransactionStatus", "DebitPartyName", "CreditPartyName", "FinalisedTime",
]  # fmt: skip


def fields_of(keys: list[str]) -> st.SearchStrategy[dict]:
    """Objects with some of Daraja's own keys (so parsing goes past the envelope), any values."""
    return st.dictionaries(st.sampled_from(keys), JSON, max_size=len(keys))


STK_BODIES = st.builds(
    lambda fields, items: {
        "Body": {"stkCallback": {**fields, "CallbackMetadata": {"Item": items}}}
    },
    fields_of(STK_KEYS),
    st.lists(st.fixed_dictionaries({"Name": st.sampled_from(ITEM_NAMES), "Value": JSON})),
)
RESULT_BODIES = st.builds(
    lambda fields, parameters: {
        "Result": {**fields, "ResultParameters": {"ResultParameter": parameters}}
    },
    fields_of(RESULT_KEYS),
    st.lists(st.fixed_dictionaries({"Key": st.sampled_from(PARAMETER_KEYS), "Value": JSON})),
)
PARSERS = {
    "stk": (parse_stk_callback, STK_BODIES),
    "c2b": (parse_c2b_notification, fields_of(C2B_KEYS)),
    "result": (parse_result, RESULT_BODIES),
    "queue-timeout": (parse_queue_timeout, RESULT_BODIES),
    "b2c": (parse_b2c_result, RESULT_BODIES),
    "reversal": (parse_reversal_result, RESULT_BODIES),
    "balance": (parse_account_balance_result, RESULT_BODIES),
    "status": (parse_transaction_status_result, RESULT_BODIES),
}


def assert_storable_and_shaped(parsed) -> None:
    """What a parser returns fits our columns: no NUL or surrogate, receipts and codes shaped."""
    for name, value in vars(parsed).items():
        if isinstance(value, str):
            assert not has_unstorable_text(value), name
    for name in ("mpesa_receipt_number", "trans_id", "receipt_number", "transaction_id"):
        value = getattr(parsed, name, None)
        assert value is None or re.fullmatch(r"[A-Za-z0-9]{1,20}", value), (name, value)
    code = getattr(parsed, "result_code", None)
    assert code is None or len(code) <= 20
    for name in ("checkout_request_id", "conversation_id", "originator_conversation_id"):
        assert len(getattr(parsed, name, None) or "") <= 64, name


# -- the phone normaliser ----------------------------------------------------------------------


@PROPERTY
@given(st.one_of(st.text(max_size=30), st.integers(), st.from_regex(r"\A\+?[0-9 ()-]{6,16}\Z")))
def test_the_phone_normaliser_returns_daraja_s_form_or_refuses(raw):
    try:
        number = normalize_phone_number(raw)
    except InvalidPhoneNumberError:
        return
    assert MSISDN.fullmatch(number)
    assert normalize_phone_number(number) == number


@PROPERTY
@given(
    st.sampled_from("17"),
    st.from_regex(r"\A[0-9]{8}\Z"),
    st.sampled_from(["0{}", "{}", "254{}", "+254{}", "+254 {}"]),
    st.sampled_from(["", " ", "-"]),
)
def test_every_accepted_form_of_a_number_normalises_to_it(prefix, digits, form, separator):
    national = prefix + digits
    written = form.format(separator.join([national[:3], national[3:6], national[6:]]))

    assert normalize_phone_number(written) == "254" + national


@PROPERTY
@given(st.from_regex(r"\A254[17][0-9]{8}\Z"))
def test_a_masked_number_shows_at_most_six_digits(number):
    masked = mask_phone_number(number)

    assert len(masked) == len(number)
    assert sum(character.isdigit() for character in masked) <= 6


# -- amounts ------------------------------------------------------------------------------------


@PROPERTY
@given(
    st.one_of(
        NASTY_NUMBERS,
        st.decimals(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.integers(min_value=-5, max_value=300_000),
    )
)
def test_the_amount_validator_returns_a_whole_amount_in_range_or_names_the_field(value):
    try:
        amount = validated_whole_amount(value, minimum=1, maximum=250_000)
    except PaymentValidationError as exc:
        assert exc.field == "amount"
        return
    assert type(amount) is int
    assert 1 <= amount <= 250_000 and amount == value


@PROPERTY
@given(NASTY_NUMBERS)
def test_a_callback_amount_is_a_plain_decimal_or_not_a_number(value):
    body = json.dumps({"TransID": "RKL51ZDR4F", "TransAmount": value}, allow_nan=True)
    try:
        amount = parse_c2b_notification(body).trans_amount
    except DarajaCallbackError as exc:
        assert "TransAmount" in exc.message
        return
    assert PLAIN_DECIMAL.fullmatch(str(value).strip())
    booked = bookable_amount(amount)
    assert booked is None or (1 <= booked <= MAX_BOOKABLE_AMOUNT and booked == amount)


@PROPERTY
@given(st.from_regex(r"\A-?[0-9]{1,15}(\.[0-9]{1,2})?\Z"))
def test_daraja_s_own_amount_texts_read_exactly(text):
    body = json.dumps({"TransID": "RKL51ZDR4F", "TransAmount": text})

    assert parse_c2b_notification(body).trans_amount == Decimal(text)


@PROPERTY
@given(st.one_of(NASTY_NUMBERS, st.text(max_size=80)))
def test_an_account_balance_string_reads_without_error(value):
    for account in parse_account_balances(f"Utility Account|KES|{value}|{value}|0|0&{value}"):
        for amount in (account.current, account.available, account.reserved, account.uncleared):
            assert amount is None or abs(amount) < 10**15


# -- dates --------------------------------------------------------------------------------------


@PROPERTY
@given(st.one_of(SCALARS, st.from_regex(r"\A[0-9]{14}\Z"), st.from_regex(r"\A\d\d\.\d\d\.\d{4} ")))
def test_a_daraja_date_is_an_aware_storable_datetime_or_absent(value):
    when = parse_daraja_datetime(value)

    if when is not None:
        assert when.tzinfo is not None
        assert 2000 <= (when + timedelta(hours=1)).astimezone(UTC).year <= 2999


# -- every callback parser ---------------------------------------------------------------------


@pytest.mark.fuzz
@pytest.mark.parametrize("name", PARSERS)
@PARSER_PROPERTY
@given(data=st.data())
def test_a_callback_parser_raises_only_its_parse_error(name, data):
    parse, bodies = PARSERS[name]
    body = data.draw(st.one_of(bodies, JSON), label="body")
    as_bytes = json.dumps(body, allow_nan=True).encode("utf-8", errors="surrogatepass")

    try:
        parsed = parse(as_bytes)
    except DarajaCallbackError:
        return
    assert_storable_and_shaped(parsed)


@pytest.mark.fuzz
@pytest.mark.parametrize("name", PARSERS)
@PARSER_PROPERTY
@given(raw=st.binary(max_size=300))
def test_a_callback_parser_reads_any_bytes_or_raises_its_parse_error(name, raw):
    parse, _ = PARSERS[name]

    try:
        parsed = parse(raw)
    except DarajaCallbackError:
        return
    assert_storable_and_shaped(parsed)

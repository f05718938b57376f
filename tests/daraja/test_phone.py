"""The one phone normaliser: every accepted form in, 2547/2541 + 8 digits out."""

from __future__ import annotations

import pytest

from payments.daraja.errors import InvalidPhoneNumberError
from payments.daraja.phone import mask_phone_number, normalize_phone_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0708374149", "254708374149"),
        ("0110374149", "254110374149"),
        ("708374149", "254708374149"),
        ("110374149", "254110374149"),
        ("254708374149", "254708374149"),
        ("254110374149", "254110374149"),
        ("+254708374149", "254708374149"),
        ("+254110374149", "254110374149"),
        ("0708 374 149", "254708374149"),
        ("0708-374-149", "254708374149"),
        ("(0708) 374149", "254708374149"),
        ("+254 (708) 374-149", "254708374149"),
        (" 254708374149 ", "254708374149"),
        (254708374149, "254708374149"),
        (708374149, "254708374149"),
    ],
)
def test_accepted_forms_normalise(raw, expected):
    assert normalize_phone_number(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "0208374149",  # a landline prefix
        "070837414",  # too short
        "07083741490",  # too long
        "25470837414",
        "2547083741490",
        "+255708374149",  # Tanzania
        "+0708374149",
        "0708374149a",
        "07O8374149",  # letter O typed for zero
        "254808374149",
        "0708.374.149x",
        "++254708374149",
        "2547 ***** 126",  # a masked C2B MSISDN is not a phone number
    ],
)
def test_anything_else_is_refused_with_the_accepted_forms(raw):
    with pytest.raises(InvalidPhoneNumberError) as excinfo:
        normalize_phone_number(raw)
    message = str(excinfo.value)
    for form in ("07XXXXXXXX", "01XXXXXXXX", "7XXXXXXXX", "1XXXXXXXX", "+2547XXXXXXXX"):
        assert form in message
    assert excinfo.value.field == "phone_number"


def test_the_refused_value_is_not_echoed_into_the_message():
    with pytest.raises(InvalidPhoneNumberError) as excinfo:
        normalize_phone_number("0799123456789")
    assert "0799123456789" not in str(excinfo.value)


def test_the_field_name_can_be_chosen():
    with pytest.raises(InvalidPhoneNumberError) as excinfo:
        normalize_phone_number("123", field="party_b")
    assert excinfo.value.field == "party_b"
    assert str(excinfo.value).startswith("party_b: ")


@pytest.mark.parametrize(
    ("value", "masked"),
    [("254708374149", "2547******49"), ("", ""), (None, ""), ("12345", "*****")],
)
def test_mask_keeps_only_the_prefix_and_last_two_digits(value, masked):
    assert mask_phone_number(value) == masked

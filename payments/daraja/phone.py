"""Kenyan mobile numbers: one normaliser to Daraja's 2547XXXXXXXX / 2541XXXXXXXX, and a mask."""

from __future__ import annotations

import hashlib
import re

from .errors import InvalidPhoneNumberError

ACCEPTED_FORMS = (
    "07XXXXXXXX, 01XXXXXXXX, 7XXXXXXXX, 1XXXXXXXX, 2547XXXXXXXX, 2541XXXXXXXX, "
    "+2547XXXXXXXX or +2541XXXXXXXX (spaces, dashes and brackets allowed)"
)
# The rejected value is not echoed back: error messages end up in logs.
INVALID_PHONE_MESSAGE = f"not a Kenyan mobile number. Accepted forms: {ACCEPTED_FORMS}."
_SEPARATORS = re.compile(r"[\s\-().]")
# [0-9], never \d or str.isdigit(): those take the digits of every script ("07" followed by
# Arabic-Indic digits), so the stored number would differ from the one Daraja reports back and
# per-phone limits would count it as another phone.
_ASCII_DIGITS = re.compile(r"[0-9]+")
_MSISDN = re.compile(r"254[17][0-9]{8}")
# What normalize_phone_number accepts, as one regular expression for the API schema (separators
# anywhere, "+" only before 254). tests/survival checks that the two agree.
_SEP = r"[\s\-().]*"
PHONE_NUMBER_PATTERN = re.compile(
    rf"\A{_SEP}(?:\+{_SEP}2{_SEP}5{_SEP}4{_SEP}|2{_SEP}5{_SEP}4{_SEP}|0{_SEP})?"
    rf"[17](?:{_SEP}[0-9]){{8}}{_SEP}\Z"
)


def normalize_phone_number(raw: str | int, *, field: str = "phone_number") -> str:
    """Return ``2547XXXXXXXX`` or ``2541XXXXXXXX``; raise InvalidPhoneNumberError otherwise.

    Only separators are stripped: letters or other symbols make the number invalid rather than
    being silently dropped, so a typo is reported instead of charging the wrong line.
    """
    text = _SEPARATORS.sub("", str(raw).strip())
    if text.startswith("+"):
        text = text[1:]
        if not text.startswith("254"):
            raise InvalidPhoneNumberError(field, INVALID_PHONE_MESSAGE)
    if not _ASCII_DIGITS.fullmatch(text):
        raise InvalidPhoneNumberError(field, INVALID_PHONE_MESSAGE)
    if len(text) == 10 and text[0] == "0":
        text = "254" + text[1:]
    elif len(text) == 9 and text[0] in "17":
        text = "254" + text
    if not _MSISDN.fullmatch(text):
        raise InvalidPhoneNumberError(field, INVALID_PHONE_MESSAGE)
    return text


def mask_phone_number(value: str | None) -> str:
    """``2547******49``: enough to tell numbers apart in logs, not enough to call them."""
    if not value:
        return ""
    text = str(value)
    if len(text) <= 6:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 6) + text[-2:]


_HASH = re.compile(r"[0-9a-fA-F]{64}")
_MASKED = re.compile(r"[0-9*]{12}")


def msisdn_matches(msisdn: str, phone_number: str) -> bool | None:
    """Whether a C2B ``MSISDN`` can be ``phone_number`` (``2547XXXXXXXX``); None if unreadable.

    Daraja sends it plain (old payloads), masked in v2 (``"2547 ***** 126"``,
    ``"25470****149"``: the shown digits must agree) or as a SHA-256 hash in v1 (API.md §4.2),
    whose input format is undocumented: a hash of the number in Daraja's form is a match, any
    other hash tells nothing.
    """
    text = re.sub(r"\s", "", msisdn or "")
    if _HASH.fullmatch(text):
        digest = hashlib.sha256(phone_number.encode()).hexdigest()
        return True if text.lower() == digest else None
    if not _MASKED.fullmatch(text) or len(phone_number) != len(text):
        return None
    return all(shown in ("*", digit) for shown, digit in zip(text, phone_number, strict=True))

"""Reading the values of Daraja's callback bodies: JSON within bounds, text, and amounts,
receipts, result codes and ids checked by their shape before anything uses them."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, TypeVar

from .errors import DarajaCallbackError
from .jsontext import loads_bounded, storable

CallbackBody = dict[str, Any] | str | bytes

_T = TypeVar("_T")
Pairs = list[tuple[str, Any]]

# Text shapes, checked before a value is used. Amounts are plain decimals ("5.00", 10500,
# -1980.0): an exponent is refused before any arithmetic ("1e1000000" as an integer held a
# worker for half a minute). Fifteen whole digits hold any balance M-Pesa reports.
_AMOUNT = re.compile(r"[+-]?[0-9]{1,15}(?:\.[0-9]{1,20})?")
# M-Pesa receipts are ten capitals and digits ("NLJ7RT61SV", API.md §2.3); 20 leaves room.
_RECEIPT = re.compile(r"[A-Za-z0-9]{1,20}")
# Result codes: numbers (0, 1032), "R000002", "SFC_IC0003".
_RESULT_CODE = re.compile(r"[A-Za-z0-9_.-]{1,20}")
# Daraja's ids are under 40 characters ("ws_CO_191220191020363925"); 64 leaves room.
MAX_ID_LENGTH = 64


# The rule these implement: a body without its essential id, or with an essential value of an
# impossible type or shape, raises DarajaCallbackError (the caller has stored the raw body and
# can replay it). Everything else is optional: missing, blank or odd values become None (or "").
# Amounts, receipts, result codes and ids are checked by shape before they are used.


def load_object(body: CallbackBody) -> dict[str, Any]:
    """The body as a JSON object with storable text; DarajaCallbackError for anything else."""
    data: Any = body
    if isinstance(body, bytes | bytearray):
        # Daraja posts UTF-8. A stray invalid byte (in a payer's name, say) must not make a
        # payment unreadable: it reads as U+FFFD, and the caller keeps the exact bytes.
        data = bytes(body).decode("utf-8", errors="replace")
    if isinstance(data, str):
        try:
            data = loads_bounded(data)
        except ValueError as exc:
            raise DarajaCallbackError(f"body is not valid JSON ({exc})", raw=body) from exc
    if not isinstance(data, dict):
        raise DarajaCallbackError("body is not a JSON object", raw=body)
    # JSON can escape a NUL or a lone surrogate ("\u0000", "\udfff"). No Daraja value holds
    # one and databases refuse them in text: they read as U+FFFD, like an invalid byte.
    return storable(data)


def key_of(name: Any) -> str:
    # Some samples spell keys with spaces ("Conversation ID", "Originator Conversation ID");
    # the real keys have none.
    return str(name).replace(" ", "")


def normalised(mapping: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in mapping.items():
        result.setdefault(key_of(name), value)
    return result


def as_list(value: Any) -> list[Any]:
    # Daraja sends a lone object where a one-item list is meant (ReferenceItem, and
    # ResultParameter in some failure samples).
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    return []


def pairs_of(items: Any, name_field: str) -> Pairs:
    """(key, value) of each {name_field, Value} item, in order, duplicates kept."""
    return [
        (key_of(item[name_field]), item.get("Value"))
        for item in as_list(items)
        if isinstance(item, dict) and item.get(name_field) is not None
    ]


def first_wins(pairs: Pairs) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        result.setdefault(name, value)
    return result


def text_of(value: Any) -> str | None:
    """A scalar as a stripped string (numbers and codes alike); None if missing, blank or nested."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def decimal_of(value: Any) -> Decimal | None:
    """A number or numeric string as Decimal; None if missing, blank or not a plain decimal
    (see _AMOUNT)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    # Through str(): Decimal(8959269.6) would carry the float's binary error.
    text = str(value).strip()
    return Decimal(text) if _AMOUNT.fullmatch(text) else None


def amount_of(value: Any, what: str, raw: Any) -> Decimal | None:
    """Like decimal_of, but a money amount that is present and not a number is an error."""
    number = decimal_of(value)
    if number is None and not is_blank(value):
        raise DarajaCallbackError(f"{what} is not a number: {value!r}", raw=raw)
    return number


def _shaped(value: Any, shape: re.Pattern[str]) -> str | None:
    """A scalar as stripped text if it has ``shape``; None otherwise (bools and floats too:
    no code or receipt is one)."""
    if isinstance(value, bool | float):
        return None
    text = text_of(value)
    return text if text is not None and shape.fullmatch(text) else None


def receipt_of(value: Any) -> str | None:
    """An M-Pesa receipt; None if missing or not letters and digits (at most 20)."""
    return _shaped(value, _RECEIPT)


def result_code_of(value: Any) -> str | None:
    """A result code as text; None if missing or not a code."""
    return _shaped(value, _RESULT_CODE)


def identifier_of(value: Any, what: str, raw: Any) -> str | None:
    """An id Daraja gave a request; one longer than any of Daraja's is an error, never ignored:
    a result naming no request would skip the check that it names ours."""
    text = text_of(value)
    if text is not None and len(text) > MAX_ID_LENGTH:
        raise DarajaCallbackError(f"{what} is longer than {MAX_ID_LENGTH} characters", raw=raw)
    return text


def required(value: _T | None, what: str, raw: Any) -> _T:
    if value is None:
        raise DarajaCallbackError(f"missing or invalid {what}", raw=raw)
    return value


def yes_no(value: Any) -> bool | None:
    return {"Y": True, "N": False}.get((text_of(value) or "").upper())

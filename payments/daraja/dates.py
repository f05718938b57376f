"""Daraja timestamps: three formats, all Kenyan local time, parsed into aware datetimes; and the
ISO 8601 times of Pull Transactions."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

NAIROBI = zoneinfo.ZoneInfo("Africa/Nairobi")

# STK TransactionDate is a JSON number, C2B TransTime / BOCompletedTime a string, both
# yyyyMMddHHmmss; B2C TransactionCompletedDateTime is dd.MM.yyyy HH:mm:ss.
_COMPACT_FORMAT = "%Y%m%d%H%M%S"
_DOTTED_FORMAT = "%d.%m.%Y %H:%M:%S"
# Years M-Pesa can have written. Outside them a date is not Daraja's, and the year 1 or 9999
# overflows as soon as it is converted to UTC or moved by a few minutes.
_YEARS = range(2000, 3000)


def parse_daraja_datetime(value: Any) -> datetime | None:
    """Parse a Daraja timestamp into an aware datetime in Africa/Nairobi.

    Accepts ``20191219102115`` (int), ``"20191122063845"`` (str) and ``"06.07.2024 22:48:52"``.
    Returns None for None, "" and anything unparseable instead of raising: a timestamp is never
    the essential part of a callback, and callers keep the raw body, so a date in a format we
    have not seen must not make us reject a payment notification.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if not text:
        return None
    if text.isascii() and text.isdigit():
        # strptime would accept fewer digits and guess where the fields split.
        if len(text) != 14:
            return None
        fmt = _COMPACT_FORMAT
    else:
        fmt = _DOTTED_FORMAT
    try:
        naive = datetime.strptime(text, fmt)
    except ValueError:
        return None
    return naive.replace(tzinfo=NAIROBI) if naive.year in _YEARS else None


# Pull Transactions' StartDate and EndDate, in Nairobi time (API.md §13).
PULL_REQUEST_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_pull_datetime(value: Any) -> datetime | None:
    """Parse a Pull Transactions ``trxDate`` into an aware datetime; None if unreadable.

    Reported as ISO 8601 with an offset (``"2025-01-24T10:56:11+03:00"``) or a ``Z``; the
    request's own ``"2020-08-04 08:36:00"`` form and Daraja's other formats are accepted too
    (unconfirmed which one it sends), a time without an offset being Nairobi time.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text.isascii() or text.isdigit():
        return parse_daraja_datetime(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return parse_daraja_datetime(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=NAIROBI)
    return moment.astimezone(NAIROBI) if moment.year in _YEARS else None

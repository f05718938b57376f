"""Daraja timestamps: three formats, all Kenyan local time, parsed into aware datetimes."""

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

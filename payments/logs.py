"""Structured logs: the ids a line belongs to (request, transaction), and one JSON object a line.

``log_context(transaction_id=...)`` names what the lines logged inside it are about; the request
middleware opens one per request with its request id and user id. ``LogContextFilter`` copies
those ids onto each record, so that every formatter can print them, and ``JsonFormatter`` prints
a record as one JSON line with its ``extra`` fields. Like redaction.py this module imports
nothing of Django: logging is configured before the apps are loaded.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from payments.redaction import redact_callback_secrets

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "payments_log_context", default=None
)
# LogRecord's own attributes; anything else on a record came in ``extra`` or from the context.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
# Only plain data is printed: objects in ``extra`` (django.request's ``request``, runserver's
# socket) are left to the handlers that know them.
_PLAIN = (str, int, float, bool, type(None))


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every line logged inside carries ``ids`` (ids only: never a phone number or a secret)."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **ids})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def log_context_ids() -> dict[str, Any]:
    """The ids of the current context (a copy)."""
    return dict(_CONTEXT.get() or {})


class LogContextFilter(logging.Filter):
    """Put the context's ids on each record, unless the call gave its own in ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_CONTEXT.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What a record carries beyond LogRecord's own attributes, where it is plain data."""
    return {
        name: value
        for name, value in vars(record).items()
        if name not in _RECORD_ATTRIBUTES and isinstance(value, _PLAIN)
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the record's ids and fields.

    The line is redacted once more as a whole: a field (not only the message, which the
    handler's CallbackSecretFilter rewrote) may hold a callback path.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return redact_callback_secrets(json.dumps(line, default=str, ensure_ascii=False))

"""Callback paths carry secrets: a logging filter that shows them redacted in every line.

Daraja signs nothing, so the token in a result path (``callbacks/b2c/<token>/result``) and
MPESA_CALLBACK_SECRET in the C2B paths (``callbacks/c2b/<secret>/confirmation``) are what make a
callback genuine. Whoever reads a log line with such a path could post a fabricated result.

Wire :class:`CallbackSecretFilter` into every handler that prints (see the README). This module
imports nothing of Django or of the app: logging is configured before the apps are loaded.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# The segments of our callback paths that are words (payments/urls.py); any other segment
# after "payments/callbacks/" is taken for a secret, wherever it stands, so a callback posted to
# a path of the wrong shape is redacted too.
PATH_WORDS = frozenset(
    {
        "stk",
        "b2c",
        "reversal",
        "balance",
        "status",
        "c2b",
        "result",
        "timeout",
        "validation",
        "confirmation",
        "pull",
    }
)
# Not anchored: a host may mount the app under a prefix, and a line may hold a full URL. The
# path ends at whitespace, a quote, a query or a fragment.
CALLBACK_PATH = re.compile(r"(?<=payments/callbacks/)[^\s?#\"'<>]+")
_TRACEBACKS = logging.Formatter()


def _redact_segments(match: re.Match) -> str:
    return "/".join(
        segment if not segment or segment in PATH_WORDS else REDACTED
        for segment in match.group().split("/")
    )


def redact_callback_secrets(text: str) -> str:
    """``text`` with every secret segment of a callback path replaced by ``[redacted]``."""
    return CALLBACK_PATH.sub(_redact_segments, text)


class CallbackSecretFilter(logging.Filter):
    """Rewrite a record so that its message, traceback and stack show callback paths redacted.

    Attach it to handlers, not loggers: a logger's filters never see the records that propagate
    to it from other loggers (django.request's reach the root logger's handlers that way).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a malformed record: its handler reports that when it formats it
        redacted = redact_callback_secrets(message)
        if redacted != message:
            # Formatted here, once: the arguments hold the secret and must not be used again.
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: the traceback is formatted here to be
            # redacted, as Formatter.format would have formatted it.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_callback_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_callback_secrets(record.stack_info)
        return True

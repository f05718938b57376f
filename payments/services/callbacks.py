"""Callback intake: store the raw body first, then process it once, whatever arrives twice."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from django.db import transaction as db_transaction
from django.utils import timezone

from payments.compiled import CompiledQuery, CompiledUpdate
from payments.enums import CallbackOutcome
from payments.models import CallbackEvent
from payments.services.callback_processing import PROCESSORS
from payments.services.common import without_nul

logger = logging.getLogger(__name__)

# Headers worth keeping with a callback: enough to trace its origin, nothing secret.
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For", "X-Real-Ip")
# What processing writes on an event.
PROCESSED_FIELDS = ("outcome", "error", "processed_at", "transaction", "inquiry")
# Outcomes after which an event is settled: replaying it changes nothing.
SETTLED_OUTCOMES = frozenset(
    {CallbackOutcome.PROCESSED, CallbackOutcome.DUPLICATE, CallbackOutcome.REJECTED}
)
# The event's lock, and the one column that can have changed since it was read: on every
# callback, so compiled once (payments/compiled.py).
_EVENT_LOCK = CompiledQuery(
    lambda pk: CallbackEvent.objects.select_for_update().filter(pk=pk).values_list("outcome"),
    probe=-1,
)

# What processing writes on an event, as save(update_fields=PROCESSED_FIELDS), built once.
_EVENT_PROCESSED = CompiledUpdate(CallbackEvent, PROCESSED_FIELDS)


def callback_event_record(
    *,
    kind: str,
    token: str,
    body: bytes,
    source_ip: str | None,
    headers: dict[str, str],
) -> CallbackEvent:
    """Store a callback exactly as received, before any parsing. Committed on return."""
    return CallbackEvent.objects.create(
        kind=kind,
        token=token,
        source_ip=source_ip,
        headers=_kept_headers(headers),
        **_body_columns(body),
    )


def callback_event_refuse(
    *, kind: str, token: str, reason: str, source_ip: str | None, headers: dict[str, str]
) -> CallbackEvent:
    """Record a callback refused before its body was read (too large): no body, for a person."""
    logger.warning("%s callback from %s refused: %s", kind, source_ip, reason)
    return CallbackEvent.objects.create(
        kind=kind,
        token=token,
        source_ip=source_ip,
        headers=_kept_headers(headers),
        outcome=CallbackOutcome.REJECTED,
        error=reason,
        processed_at=timezone.now(),
    )


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: without_nul(headers[name]) for name in KEPT_HEADERS if name in headers}


def _body_columns(body: bytes) -> dict[str, Any]:
    """The text when the body is UTF-8 without NUL (the normal case, searchable in the admin);
    otherwise the exact bytes, and a readable rendering as the text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return {"body": text}
    rendering = without_nul(body.decode("utf-8", errors="backslashreplace"))
    return {"body": rendering, "raw_body": body}


def callback_event_process(*, event: CallbackEvent) -> CallbackEvent:
    """Process a stored event once. Errors are kept on the event for a human or a replay."""
    processor = PROCESSORS[event.kind]
    try:
        with db_transaction.atomic():
            # The lock and the one column that can have changed since ``event`` was read (a
            # replay may have settled it): the body, up to 64 KiB, is in memory already.
            row = _EVENT_LOCK.first_row(event.pk)
            if row is None:
                raise CallbackEvent.DoesNotExist(f"callback event {event.pk}")
            if row[0] in SETTLED_OUTCOMES:
                return CallbackEvent.objects.get(pk=event.pk)
            processor(event)
            event.processed_at = timezone.now()
            # Never the body again: it may be 64 KiB, and it is stored already.
            if not _EVENT_PROCESSED.run(event):
                raise CallbackEvent.DoesNotExist(f"callback event {event.pk}")
        return event
    except Exception:
        logger.exception("callback event %s failed to process", event.pk)
        CallbackEvent.objects.filter(pk=event.pk).update(
            outcome=CallbackOutcome.ERROR,
            # An exception's message may quote anything, a NUL included.
            error=without_nul(traceback.format_exc()[-4000:]),
            processed_at=timezone.now(),
        )
        return CallbackEvent.objects.get(pk=event.pk)


def callback_events_replay(*, ids: list[int] | None = None, failed: bool = False) -> list:
    """Process stored callbacks again. Settled events are left as they are (a no-op)."""
    events = CallbackEvent.objects.order_by("received_at", "pk")
    if ids:
        events = events.filter(pk__in=ids)
    elif failed:
        events = events.filter(outcome__in=("error", "received", "unmatched"))
    else:
        return []
    return [callback_event_process(event=event) for event in events]

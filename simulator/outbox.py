"""Delivery of simulated callbacks: a worker thread that outlives the request that queued them.

Callbacks live in the database (OutboxCallback), so any worker process of a multi-worker server
may deliver them; a row is claimed by a conditional update, so each is sent once per claim.
The thread starts on demand in the process that queued a callback and stops when idle.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import requests
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from simulator.models import OutboxCallback

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
IDLE_STOP_SECONDS = 60.0
CLAIM_EXPIRES = timedelta(seconds=60)
MAX_ATTEMPTS = 3
SEND_TIMEOUT = (3.0, 15.0)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def schedule(
    url: str, body: dict, *, delay: float, follow_up: dict | None = None
) -> OutboxCallback:
    """Queue ``body`` for ``url`` in ``delay`` seconds and make sure a worker will send it."""
    row = OutboxCallback.objects.create(
        url=url,
        body=body,
        send_after=timezone.now() + timedelta(seconds=delay),
        follow_up=follow_up,
    )
    ensure_worker()
    return row


def ensure_worker() -> None:
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(target=_run, name="daraja-simulator-outbox", daemon=True)
        _thread.start()


def stop_worker(timeout: float = 5.0) -> None:
    """Stop the worker of this process (tests call this before their database goes away)."""
    _stop.set()
    thread = _thread
    if thread is not None:
        thread.join(timeout)


def deliver_due() -> int:
    """Send every callback that is due and unclaimed; return how many were sent."""
    sent = 0
    while not _stop.is_set():
        row = _claim_next()
        if row is None:
            return sent
        _send(row)
        sent += 1
    return sent


def _run() -> None:
    idle_since = timezone.now()
    try:
        while not _stop.is_set():
            close_old_connections()
            try:
                if deliver_due() or _pending_exists():
                    idle_since = timezone.now()
            except Exception:
                logger.exception("simulator outbox delivery failed")
            if (timezone.now() - idle_since).total_seconds() > IDLE_STOP_SECONDS and _retire():
                return
            _stop.wait(POLL_SECONDS)
    finally:
        close_old_connections()


def _retire() -> bool:
    """Stop being the worker, unless work arrived meanwhile. Under the lock, so that a callback
    queued now either finds this worker still running or starts a new one."""
    global _thread
    with _lock:
        if _pending_exists():
            return False
        _thread = None
        return True


def _pending_exists() -> bool:
    return OutboxCallback.objects.filter(sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS).exists()


def _claim_next() -> OutboxCallback | None:
    now = timezone.now()
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_EXPIRES)
    candidates = OutboxCallback.objects.filter(
        claimable, sent_at__isnull=True, send_after__lte=now, attempts__lt=MAX_ATTEMPTS
    ).order_by("send_after", "pk")
    for row in candidates[:10]:
        # Conditional update: of all workers, only the one whose update changes the row sends it.
        if (
            OutboxCallback.objects.filter(pk=row.pk)
            .filter(claimable, sent_at__isnull=True)
            .update(claimed_at=now)
        ):
            row.refresh_from_db()
            return row
    return None


def _send(row: OutboxCallback) -> None:
    row.attempts += 1
    try:
        response = requests.post(row.url, json=row.body, timeout=SEND_TIMEOUT)
    except requests.ReadTimeout as exc:
        # The receiver has the body: like Daraja, the simulator does not post it again.
        row.sent_at = timezone.now()
        row.last_error = f"ReadTimeout (treated as delivered): {exc}"[:2000]
        row.save()
        _follow_up(row, None)
        return
    except requests.RequestException as exc:
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        # Never reached the receiver: tried again later, up to MAX_ATTEMPTS, later each time.
        row.claimed_at = None
        row.send_after = timezone.now() + timedelta(seconds=2**row.attempts)
        row.save()
        if row.attempts >= MAX_ATTEMPTS:
            _follow_up(row, None)
        return
    row.sent_at = timezone.now()
    row.response_status = response.status_code
    row.response_body = response.text[:2000]
    row.save()
    _follow_up(row, response)


def _follow_up(row: OutboxCallback, response) -> None:
    """Work that waits on this delivery, e.g. the confirmation after a C2B validation;
    ``response`` is None when the receiver could not be heard."""
    if row.follow_up:
        from simulator.engine import run_follow_up  # the engine schedules into this outbox

        run_follow_up(row, response)


def callback_delay(kind: str = "normal") -> float:
    config = getattr(settings, "DARAJA_SIMULATOR", {})
    if kind == "late":
        return float(config.get("LATE_DELAY", 20.0))
    return float(config.get("CALLBACK_DELAY", 3.0))

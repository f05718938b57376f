"""Work that must not hold a request: a few daemon threads per process, off the request path.

A status poll that finds a push worth asking M-Pesa about must answer from the database at
once: a slow Daraja would otherwise hold a worker per poll, and with them every other request.
The work runs on a thread of its own, with its own database connection (closed when it ends)
and the log context of the request that started it. It starts once the caller's transaction has
committed, since the thread's connection sees only committed rows.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable

from django.db import connections
from django.db import transaction as db_transaction

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_running: set[threading.Thread] = set()


def background_busy(*, limit: int) -> bool:
    """Whether ``limit`` pieces of work already run in this process (then start no more)."""
    with _lock:
        return len(_running) >= limit


def background_run_on_commit(*, name: str, work: Callable[[], object]) -> None:
    """Run ``work`` on a daemon thread once the current transaction commits (at once outside
    one); an exception is logged, never raised to anyone."""
    context = contextvars.copy_context()

    def run() -> None:
        try:
            context.run(work)
        except Exception:
            logger.exception("background %s failed", name)
        finally:
            connections.close_all()  # this thread's own connections
            with _lock:
                _running.discard(threading.current_thread())

    def start() -> None:
        thread = threading.Thread(target=run, name=f"payments-{name}", daemon=True)
        with _lock:
            _running.add(thread)
        thread.start()

    db_transaction.on_commit(start)


def background_wait(*, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the running work to end; whether it all did.

    For a worker that shuts down (gunicorn's ``worker_exit``): work cut short is only a query
    that the next poll or reconciliation asks again.
    """
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            running = list(_running)
        if not running:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        running[0].join(remaining)

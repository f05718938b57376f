"""Helpers for race tests: threads released at once, each on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

THREAD_TIMEOUT = 60

# Row locks and concurrent commits mean nothing on SQLite: race tests run on PostgreSQL.
POSTGRESQL_ONLY = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and concurrent commits need PostgreSQL (set DATABASE_URL)",
    ),
]


def run_together(count: int, work: Callable[[int], Any], timeout: float = THREAD_TIMEOUT) -> list:
    """Run ``work(i)`` in ``count`` threads released at the same instant; re-raise any error.

    Each thread uses its own database connection and closes it at the end, so that none is
    left behind for the flush that ends the test.
    """
    barrier = threading.Barrier(count, timeout=timeout)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results

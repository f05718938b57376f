"""/healthz and /readyz, for a load balancer or an orchestrator.

``/healthz``: the process is up and answers (no database, no cache). ``/readyz``: it can serve:
the database and the cache answer and every migration is applied; 503 naming what is not.
Both are answered by the first middleware, before host validation (probes call by address),
the https redirect (they come over plain http from inside), sessions and the request log.
They say nothing a caller could use: no versions, no errors, no names of hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
_READY_CACHE_KEY = "mpesa_site:readyz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Applied migrations stay applied: once seen, the graph is not loaded again.
        self._migrated = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH:
            return _plain(200, "ok")
        if request.path_info == READY_PATH:
            problems = self.problems()
            if problems:
                return _plain(503, "not ready: " + ", ".join(problems))
            return _plain(200, "ready")
        return self.get_response(request)

    def problems(self) -> list[str]:
        """What keeps this process from serving: "database", "migrations", "cache"."""
        problems = []
        connection = connections[DEFAULT_DB_ALIAS]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not self._migrated:
                executor = MigrationExecutor(connection)
                self._migrated = not executor.migration_plan(executor.loader.graph.leaf_nodes())
                if not self._migrated:
                    problems.append("migrations")
        except Exception as exc:
            logger.warning("readiness: the database does not answer: %s", exc)
            problems.append("database")
        try:
            cache.set(_READY_CACHE_KEY, "1", timeout=10)
            if cache.get(_READY_CACHE_KEY) != "1":
                raise RuntimeError("the cache kept nothing")
        except Exception as exc:
            logger.warning("readiness: the cache does not answer: %s", exc)
            problems.append("cache")
        return problems


def _plain(status: int, text: str) -> HttpResponse:
    response = HttpResponse(f"{text}\n", status=status, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    # Probes call every few seconds: django.request would log each 503 as an error line.
    response._has_been_logged = True
    return response

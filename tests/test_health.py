"""/healthz and /readyz (mpesa_site/health.py): cheap, unauthenticated, never logged.

A stopped PostgreSQL is shown through a real server: tests/survival/test_production_server.py.
"""

from __future__ import annotations

import logging

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client, override_settings

# Nothing listens on port 9 of loopback (the discard port is not served here).
DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


@pytest.fixture
def request_lines():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    for name in ("payments.requests", "django.request"):
        logging.getLogger(name).addHandler(handler)
    yield records
    for name in ("payments.requests", "django.request"):
        logging.getLogger(name).removeHandler(handler)


@override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["pay.example.co.ke"])
def test_healthz_answers_any_host_over_plain_http_without_the_database(request_lines):
    # A probe calls by address, over http, from inside: no host check, no https redirect. No
    # django_db mark: touching the database would fail the test.
    response = Client().get("/healthz", HTTP_HOST="10.0.0.7")

    assert (response.status_code, response.content) == (200, b"ok\n")
    assert response["Cache-Control"] == "no-store"
    assert request_lines == []


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["pay.example.co.ke"])
def test_readyz_is_ready_with_the_database_the_cache_and_every_migration(request_lines):
    response = Client().get("/readyz", HTTP_HOST="10.0.0.7")

    assert (response.status_code, response.content) == (200, b"ready\n")
    assert request_lines == []


@pytest.mark.django_db
def test_readyz_loads_the_migration_graph_once_per_process(django_assert_max_num_queries):
    client = Client()
    client.get("/readyz")

    with django_assert_max_num_queries(1):  # SELECT 1; the applied migrations are remembered
        assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_is_503_while_a_migration_is_not_applied(request_lines):
    MigrationRecorder.Migration.objects.filter(app="payments").order_by("-id").first().delete()

    response = Client().get("/readyz")

    assert (response.status_code, response.content) == (503, b"not ready: migrations\n")
    assert not [r for r in request_lines if r.levelno >= logging.ERROR]  # probes are no errors


@pytest.mark.django_db
@override_settings(CACHES=DEAD_REDIS)
def test_readyz_is_503_when_the_cache_does_not_answer():
    response = Client().get("/readyz")

    assert (response.status_code, response.content) == (503, b"not ready: cache\n")

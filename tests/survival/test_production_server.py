"""The project as `make serve` runs it: gunicorn with gunicorn.conf.py, DEBUG off, against a
scratch database and a Daraja double on loopback.

- make serve's steps serve the admin with its CSS, the Swagger UI and the checkout page;
  /readyz answers 503 while PostgreSQL does not;
- a Daraja that answers STK queries after 10 s holds no worker: polls of stale pushes answer at
  once and other requests (fresh polls, pushes, callbacks) keep their throughput;
- two servers against one PostgreSQL and one Redis share one OAuth token and count the
  per-phone throttle together.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings

from tests.survival.servers import (
    OAUTH_PATH,
    STK_QUERY_PATH,
    DarajaDouble,
    ProjectServer,
    ScratchDatabase,
    manage,
    scratch_database,
    server_env,
)

pytestmark = pytest.mark.fuzz

API = "/api/v1/payments/mpesa"
ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
# A db number of its own on the machine's Redis: flushed before and after.
REDIS_URL = "redis://127.0.0.1:6379/11"
STALE_PUSHES = 8
# Makes a user with a token, STALE_PUSHES pushes pending for ten minutes and one fresh push,
# and prints what the clients need.
SETUP = f"""
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from payments.models import Transaction

user = get_user_model().objects.create_user("poller", password="pw-poller-1")
def push(checkout, age):
    row = Transaction.objects.create(
        transaction_type="STK_PUSH", status="pending", checkout_request_id=checkout, amount=1,
        phone_number="254708374149", environment="sandbox", shortcode="174379", user=user,
    )
    Transaction.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
    return row
for i in range({STALE_PUSHES}):
    push(f"ws_CO_stale_{{i}}", timedelta(minutes=10))
fresh = push("ws_CO_fresh", timedelta(0))
token = Token.objects.create(user=user).key
print(json.dumps({{"token": token, "callback": fresh.callback_token}}))
"""


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[ScratchDatabase]:
    """One migrated scratch database for the module's servers (migrating takes seconds)."""
    database = scratch_database(settings.DATABASES["default"], tmp_path_factory.mktemp("db"))
    yield database
    database.drop()


@pytest.fixture(scope="module")
def ids(database) -> dict:
    """The API token of a user with STALE_PUSHES stale pushes and a fresh one; the fresh
    push's callback token."""
    printed = manage(database, None, "shell", "--no-imports", "-c", SETUP)
    return json.loads(printed.strip().splitlines()[-1])


@pytest.fixture
def double() -> Iterator[DarajaDouble]:
    double = DarajaDouble().start()
    yield double
    double.stop()


def session(token: str) -> requests.Session:
    client = requests.Session()
    client.headers["Authorization"] = f"Token {token}"
    return client


# -- make serve's steps -------------------------------------------------------------------------


def test_make_serve_serves_the_admin_css_the_swagger_ui_and_the_checkout_page(tmp_path, database):
    static = {"DJANGO_STATIC_ROOT": str(tmp_path / "static")}
    manage(database, None, "collectstatic", "--noinput", **static)
    link = manage(
        database,
        None,
        "shell",
        "--no-imports",
        "-c",
        "from payments.services.checkout import checkout_link_create, checkout_path; "
        "print(checkout_path(checkout_link_create(amount=10, account_reference='INV1', "
        "description='Order 1')))",
    ).strip()
    env = server_env(database, None, DJANGO_LOG_LEVEL="INFO", **static)
    server = ProjectServer(tmp_path, env, GUNICORN_WORKERS="1")
    try:
        login = requests.get(server.url("/admin/login/"), timeout=10)
        docs = requests.get(server.url("/api/docs/"), timeout=10)
        checkout = requests.get(server.url(link), timeout=10)
        ready = requests.get(server.url("/readyz"), timeout=10)

        assert login.status_code == 200 and login.headers["X-Request-ID"]
        css = static_file(server, login.text, "/static/admin/css/base.")
        assert css.headers["Content-Type"].startswith("text/css")
        assert docs.status_code == 200
        static_file(
            server, docs.text, "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle."
        )
        assert checkout.status_code == 200 and "Pay KES 10" in checkout.text
        assert (ready.status_code, ready.text) == (200, "ready\n")
    finally:
        server.stop()
    # One JSON line per request, by route name: no access log of paths.
    routes = {line.get("route") for line in json_lines(server.log_path)}
    assert {"admin:login", "api-docs", "payments:checkout-page"} <= routes


def static_file(server: ProjectServer, page: str, prefix: str) -> requests.Response:
    """The first file under ``prefix`` the page links: hashed name, gzip, cached for good."""
    start = page.index(prefix)
    path = page[start : page.index('"', start)]
    assert path.rsplit(".", 2)[-2].isalnum() and len(path.rsplit(".", 2)[-2]) == 12, path
    response = requests.get(server.url(path), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200, path
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    return response


def json_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.mark.skipif(not ON_POSTGRESQL, reason="a stopped PostgreSQL needs DATABASE_URL=postgres")
def test_readyz_is_503_while_postgresql_does_not_answer(tmp_path):
    # Nothing listens on port 9 of loopback: PostgreSQL as a stopped server looks to a client.
    env = server_env(ScratchDatabase("postgres://postgres@127.0.0.1:9/mpesa", None, "format"), None)
    server = ProjectServer(tmp_path, env, GUNICORN_WORKERS="1")
    try:
        health = requests.get(server.url("/healthz"), timeout=10)
        started = time.monotonic()
        ready = requests.get(server.url("/readyz"), timeout=10)
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    assert (health.status_code, health.text) == (200, "ok\n")  # the process is up
    assert (ready.status_code, ready.text) == (503, "not ready: database\n")
    assert elapsed < 5


# -- a slow Daraja ------------------------------------------------------------------------------


class Load:
    """Clients that repeat their request until the window closes, counting 2xx answers and
    the slowest answer of each kind."""

    def __init__(self, server: ProjectServer, token: str, callback: str) -> None:
        self.server = server
        self.token = token
        self.callback = callback
        self.done: Counter[str] = Counter()
        self.slowest: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def kinds(self, pollers_path: str) -> dict[str, Callable[[requests.Session, int], int]]:
        callback_body = json.dumps(
            {
                "Body": {
                    "stkCallback": {
                        "MerchantRequestID": "29115-34620561-1",
                        "CheckoutRequestID": "ws_CO_fresh",
                        "ResultCode": 1032,
                        "ResultDesc": "Request cancelled by user",
                    }
                }
            }
        )
        push = {"amount": 1, "account_reference": "INV1", "transaction_desc": "Order 1"}
        return {
            "stale poll": lambda s, i: (
                s.get(
                    self.server.url(pollers_path.format(i % STALE_PUSHES)), timeout=30
                ).status_code
            ),
            "fresh poll": lambda s, i: (
                s.get(self.server.url(f"{API}/stk-push/status/ws_CO_fresh"), timeout=30).status_code
            ),
            "push": lambda s, i: (
                s.post(
                    self.server.url(f"{API}/stk-push"),
                    json={**push, "phone_number": f"07{i % 100:08d}"},
                    timeout=30,
                ).status_code
            ),
            "callback": lambda s, i: (
                s.post(
                    self.server.url(f"/api/v1/payments/callbacks/stk/{self.callback}"),
                    data=callback_body,
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                ).status_code
            ),
        }

    def run(self, window: float, clients: dict[str, int], pollers_path: str) -> Counter[str]:
        """``clients[kind]`` threads per kind for ``window`` seconds; the 2xx counts."""
        self.done, self.slowest = Counter(), Counter()
        kinds = self.kinds(pollers_path)
        closes = time.monotonic() + window

        def client(kind: str, index: int) -> None:
            with session(self.token) as s:
                i = index
                while time.monotonic() < closes:
                    started = time.monotonic()
                    status = kinds[kind](s, i)
                    took = time.monotonic() - started
                    with self._lock:
                        self.statuses[kind, status] += 1
                        self.slowest[kind] = max(self.slowest[kind], took)
                        if 200 <= status < 300 and time.monotonic() <= closes:
                            self.done[kind] += 1
                    i += 1

        threads = [
            threading.Thread(target=client, args=(kind, n), daemon=True)
            for kind, count in clients.items()
            for n in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return self.done


@pytest.mark.skipif(not ON_POSTGRESQL, reason="two processes writing at once need PostgreSQL")
def test_a_slow_daraja_holds_no_worker_polls_pushes_and_callbacks_keep_their_pace(
    tmp_path, database, ids, double
):
    double.slow[STK_QUERY_PATH] = 10.0
    env = server_env(
        database,
        double,
        MPESA_STK_RATE_PER_PHONE="100000/min",
        MPESA_STK_RATE_PER_USER="100000/min",
    )
    # Two sync workers: before this issue, two polls of stale pushes held both for 10 s.
    server = ProjectServer(tmp_path, env, GUNICORN_WORKERS="2", GUNICORN_THREADS="1")
    load = Load(server, ids["token"], ids["callback"])
    others = {"fresh poll": 1, "push": 1, "callback": 1}
    try:
        clients = {"stale poll": STALE_PUSHES, **others}
        fresh = f"{API}/stk-push/status/ws_CO_fresh"
        stale = f"{API}/stk-push/status/ws_CO_stale_{{}}"  # {} is the push's number
        load.run(1.5, clients, fresh)  # each worker's first requests load the code
        # The same clients twice: pollers on a fresh push, then on the stale ones.
        before = load.run(2, clients, fresh)
        during = load.run(2, clients, stale)
        slowest_poll = load.slowest["stale poll"]
        queries = [body["CheckoutRequestID"] for body in double.bodies(STK_QUERY_PATH)]
    finally:
        double.release.set()  # the held queries end now
        server.stop()

    assert {code for _, code in load.statuses} <= {200, 201}, load.statuses
    for kind in others:
        assert during[kind] >= 0.5 * before[kind] > 0, (kind, before, during)
    assert during["stale poll"] >= 0.5 * before["stale poll"], (before, during)
    assert slowest_poll < 2, slowest_poll  # never the 10 s Daraja takes
    # Each stale push asked about once (the interval is 15 s), on threads of their own.
    assert queries and len(queries) == len(set(queries)) <= STALE_PUSHES


# -- two servers, one state ---------------------------------------------------------------------


def redis_db() -> redis.Redis | None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        return None
    return client


@pytest.mark.skipif(not ON_POSTGRESQL, reason="one PostgreSQL for both needs DATABASE_URL=postgres")
def test_two_servers_share_one_oauth_token_and_one_per_phone_throttle(
    tmp_path, database, ids, double
):
    shared = redis_db()
    if shared is None:
        pytest.skip("nothing listens on 127.0.0.1:6379; start Redis to run this test")
    shared.flushdb()
    env = server_env(
        database,
        double,
        CACHE_URL=REDIS_URL,
        MPESA_STK_RATE_PER_PHONE="3/min",
        MPESA_STK_RATE_PER_USER="1000/min",
    )
    servers = [ProjectServer(tmp_path, env, GUNICORN_WORKERS="2") for _ in range(2)]
    push = {"amount": 1, "account_reference": "INV1", "transaction_desc": "Order 1"}
    try:
        with session(ids["token"]) as client:

            def push_from(server: ProjectServer, phone: str) -> int:
                return client.post(
                    server.url(f"{API}/stk-push"), json={**push, "phone_number": phone}, timeout=30
                ).status_code

            # Eight pushes to eight phones, alternating servers (and so workers).
            spread = [push_from(servers[i % 2], f"07083741{i:02d}") for i in range(8)]
            # One phone: three pushes allowed a minute, wherever they are sent.
            one_phone = [push_from(servers[i % 2], "0708374149") for i in range(5)]
    finally:
        for server in servers:
            server.stop()
        shared.flushdb()

    assert spread == [201] * 8
    assert len(double.bodies(OAUTH_PATH)) == 1  # one token served both servers
    assert one_phone == [201, 201, 201, 429, 429]

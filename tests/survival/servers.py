"""Real processes for the survival suite: a gunicorn serving the project against a scratch
database, management commands run as an operator would, and a Daraja double on loopback.

Everything is configured through the environment, explicitly, so that no .env file beside
manage.py changes what the processes do. No fixed sleeps: every wait is on an event, a port, a
file or a row.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests

from tests.payments.conftest import load_fixture

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60
CALLBACK_ORIGIN = "https://pay.example.co.ke"
OAUTH_PATH = "/oauth/v1/generate"
STK_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"

# Every setting the project reads, given explicitly so that no .env file beside manage.py can
# change what the server does.
SERVER_ENV = {
    "DJANGO_SECRET_KEY": "survival-tests-only-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_DEBUG": "false",
    "DJANGO_LOG_LEVEL": "WARNING",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_SECURE_HSTS_SECONDS": "0",
    "DJANGO_NUM_PROXIES": "0",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "false",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "",
    "CORS_ALLOWED_ORIGINS": "",
    "DATABASE_CONN_MAX_AGE": "0",
    "DJANGO_LOG_FORMAT": "json",
    "DJANGO_STATIC_ROOT": "",
    "CACHE_URL": "locmemcache://",
    "MPESA_ENVIRONMENT": "sandbox",
    "MPESA_CONSUMER_KEY": "crash-consumer-key",
    "MPESA_CONSUMER_SECRET": "crash-consumer-secret",
    "MPESA_SHORTCODE": "174379",
    "MPESA_PASSKEY": "crash-passkey-0123456789",
    "MPESA_STK_TRANSACTION_TYPE": "CustomerPayBillOnline",
    "MPESA_TILL_NUMBER": "",
    "MPESA_B2C_SHORTCODE": "600992",
    "MPESA_INITIATOR_NAME": "testapi",
    "MPESA_INITIATOR_PASSWORD": "",
    "MPESA_CERTIFICATE_PATH": "",
    "MPESA_SECURITY_CREDENTIAL": "crash-security-credential",
    "MPESA_CALLBACK_BASE_URL": CALLBACK_ORIGIN,
    "MPESA_CALLBACK_SECRET": "crash-callback-secret-0123456789abcdef",
    # Long enough that only the kill ends a held request.
    "MPESA_HTTP_TIMEOUT": "5,60",
    "MPESA_HTTP_DEADLINE": "0",
    "MPESA_STK_RATE_PER_PHONE": "100/min",
    "MPESA_STK_RATE_PER_USER": "100/min",
    "MPESA_SIMULATOR_ORIGIN": "",
    "MPESA_SIMULATOR_CALLBACK_DELAY": "",
    "MPESA_SIMULATOR_LATE_DELAY": "",
}

# Writes the listening port and each worker's pid (once it can serve) where the test reads them.
GUNICORN_CONFIG = """
import os
from pathlib import Path

def when_ready(server):
    port = server.LISTENERS[0].sock.getsockname()[1]
    Path(os.environ["GUNICORN_PORT_FILE"]).write_text(str(port))

def post_worker_init(worker):
    with open(os.environ["GUNICORN_WORKERS_FILE"], "a") as workers:
        workers.write(f"{worker.pid}\\n")
"""


def wait_until(what: str, condition: Callable[[], Any]) -> Any:
    """Poll ``condition`` until it returns something true; fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --- Daraja ----------------------------------------------------------------------------------

_NUMBERS = itertools.count(1)


class DarajaDouble(ThreadingHTTPServer):
    """Daraja on loopback: records each request and accepts it, or holds the next request to a
    path open, unanswered, until the test lets go (after it killed the server that sent it).

    ``slow`` maps paths to seconds: requests to them are answered that late (at once when the
    double stops)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), DarajaHandler)
        self.received: list[tuple[str, dict]] = []
        self.answered: list[tuple[str, dict]] = []
        self.arrived = threading.Condition()
        self.held: set[str] = set()
        self.slow: dict[str, float] = {}
        self.release = threading.Event()
        # Shared by every double of the run: ids stay unique in a database several tests use.
        self.numbers = _NUMBERS

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> DarajaDouble:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()

    def reset(self) -> None:
        """Nothing held any more, nothing recorded yet."""
        self.release.set()
        self.held.clear()
        self.received.clear()
        self.answered.clear()

    def hold_next(self, path: str) -> None:
        self.release.clear()
        self.held.add(path)

    def wait_for(self, path: str) -> dict:
        """The body of the first request to ``path``, once it has arrived."""
        with self.arrived:
            self.arrived.wait_for(lambda: self.bodies(path), WAIT_SECONDS)
        bodies = self.bodies(path)
        assert bodies, f"Daraja never received {path}"
        return bodies[0]

    def bodies(self, path: str) -> list[dict]:
        return [body for got, body in self.received if got == path]

    def answer(self, path: str, body: dict) -> dict:
        number = next(self.numbers)
        accepted = {"ResponseCode": "0", "ResponseDescription": "Accept the service request."}
        if path == OAUTH_PATH:
            return {"access_token": f"crash-token-{number}", "expires_in": "3599"}
        if path == STK_QUERY_PATH:
            return load_fixture("stk/stk_query_response_cancelled_1032.2017.php-mpesa.json")
        if path == STK_PATH:
            return {
                **load_fixture("stk/stk_push_response_accepted.portal.json"),
                "CheckoutRequestID": f"ws_CO_crash_{number}",
                "MerchantRequestID": f"crash-{number}",
            }
        return {
            **accepted,
            "ConversationID": f"AG_20261202_crash{number:012d}",
            "OriginatorConversationID": body.get("OriginatorConversationID", f"crash-{number}"),
        }


class DarajaHandler(BaseHTTPRequestHandler):
    server: DarajaDouble

    def do_GET(self) -> None:
        self._serve({})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(json.loads(self.rfile.read(length) or b"{}"))

    def _serve(self, body: dict) -> None:
        path = urlsplit(self.path).path
        double = self.server
        with double.arrived:
            double.received.append((path, body))
            double.arrived.notify_all()
        if path in double.held:
            double.held.discard(path)
            double.release.wait(WAIT_SECONDS)
            return  # never answered: the server that asked is dead by now
        if path in double.slow:
            double.release.wait(double.slow[path])
        answer = double.answer(path, body)
        double.answered.append((path, answer))
        answer = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- The scratch database --------------------------------------------------------------------


class ScratchDatabase:
    """The server's database, read and changed by the test with plain SQL (``%s`` params)."""

    def __init__(
        self,
        url: str,
        connect: Callable[[], Any],
        paramstyle: str,
        drop: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = url
        self._connect = connect
        self._paramstyle = paramstyle
        self.drop = drop

    def connection(self):
        return self._connect()

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        with self._connect() as connection:
            return list(connection.execute(self._sql(sql), params).fetchall())

    def execute(self, sql: str, *params: Any) -> None:
        with self._connect() as connection:
            connection.execute(self._sql(sql), params)

    def timestamp(self, moment: datetime) -> Any:
        """A value Django's own column format compares with (SQLite stores naive UTC text)."""
        if self._paramstyle == "qmark":
            return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self._paramstyle == "qmark" else sql


def scratch_database(database_settings: dict, directory: Path) -> ScratchDatabase:
    """A new, migrated database of its own: on the PostgreSQL server of ``database_settings``
    when the suite runs on PostgreSQL, else a SQLite file in ``directory``."""
    if database_settings["ENGINE"].endswith("postgresql"):
        server = {
            "host": database_settings["HOST"] or "127.0.0.1",
            "port": database_settings["PORT"] or 5432,
            "user": database_settings["USER"],
            "password": database_settings["PASSWORD"] or None,
        }
        name = f"{database_settings['NAME']}_scratch_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        credentials = server["user"] + (f":{server['password']}" if server["password"] else "")
        database = ScratchDatabase(
            f"postgres://{credentials}@{server['host']}:{server['port']}/{name}",
            lambda: psycopg.connect(dbname=name, autocommit=True, **server),
            "format",
            drop=lambda: _drop_postgresql(server, name),
        )
    else:
        path = directory / "db.sqlite3"
        database = ScratchDatabase(
            f"sqlite:///{path}", lambda: sqlite3.connect(path, isolation_level=None), "qmark"
        )
    manage(database, None, "migrate", "--noinput")
    return database


def _drop_postgresql(server: dict, name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database: ScratchDatabase, double: DarajaDouble | None, **extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    base_url = double.origin if double else "http://127.0.0.1:9"
    return {**env, **SERVER_ENV, "DATABASE_URL": database.url, "MPESA_BASE_URL": base_url, **extra}


def manage(database: ScratchDatabase, double: DarajaDouble | None, *args: str, **env: str) -> str:
    """Run a management command against the scratch database, as an operator would."""
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=server_env(database, double, **env),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- The server ------------------------------------------------------------------------------


class Server:
    """gunicorn with one worker; ``kill_worker`` is the kill -9 the tests are about."""

    def __init__(self, workdir: Path, env: dict) -> None:
        config = workdir / "gunicorn.conf.py"
        config.write_text(GUNICORN_CONFIG)
        self.port_file = workdir / "port"
        self.workers_file = workdir / "workers"
        self.workers_file.write_text("")
        self.log = (workdir / "gunicorn.log").open("w")
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                sys.executable,
                "-m",
                "gunicorn",
                "mpesa_site.wsgi",
                "--config",
                str(config),
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "1",
                "--timeout",
                "300",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env={
                **env,
                "GUNICORN_PORT_FILE": str(self.port_file),
                "GUNICORN_WORKERS_FILE": str(self.workers_file),
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        port = wait_until("gunicorn to listen", lambda: self._read(self.port_file))
        self.origin = f"http://127.0.0.1:{port}"
        self.worker = wait_until("a gunicorn worker", self._newest_worker)

    def kill_worker(self) -> None:
        """SIGKILL the worker, then wait for the master to fork a new one that can serve."""
        dead = self.worker
        os.kill(dead, signal.SIGKILL)
        self.worker = wait_until("a new gunicorn worker", lambda: self._newest_worker(dead))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(WAIT_SECONDS)
        self.log.close()

    def _newest_worker(self, other_than: int | None = None) -> int | None:
        pids = [int(line) for line in self.workers_file.read_text().split()]
        return pids[-1] if pids and pids[-1] != other_than else None

    @staticmethod
    def _read(path: Path) -> str | None:
        return path.read_text() if path.exists() and path.read_text() else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ProjectServer:
    """The project as `make serve` runs it: gunicorn with the repository's gunicorn.conf.py,
    configured by the environment only (GUNICORN_BIND, GUNICORN_WORKERS, ...)."""

    def __init__(self, workdir: Path, env: dict, **gunicorn: str) -> None:
        self.origin = f"http://127.0.0.1:{free_port()}"
        self.log_path = workdir / f"gunicorn-{self.origin.rsplit(':', 1)[1]}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env={**env, "GUNICORN_BIND": self.origin[7:], **gunicorn},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until("gunicorn to answer /healthz", self._healthy)
        except BaseException:
            self.stop()  # a server that never answered must not outlive its test
            raise

    def url(self, path: str) -> str:
        return self.origin + path

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
        try:
            return requests.get(self.url("/healthz"), timeout=5).status_code == 200
        except requests.RequestException:
            return False  # not listening yet, or its worker still loading

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(WAIT_SECONDS)
        self.log.close()


def post_in_background(url: str, **kwargs: Any) -> threading.Thread:
    """POST ``url`` from a thread: its worker is about to die, so no answer is awaited here."""

    def post() -> None:
        # The worker is killed before it answers: that is what the test is about.
        with contextlib.suppress(requests.RequestException):
            requests.post(url, timeout=WAIT_SECONDS, **kwargs)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread

"""Callbacks through a real gunicorn, as production serves them (Found 6: chunked bodies).

The server runs in a subprocess on a free loopback port against a scratch SQLite database
this module migrates, whatever DATABASE_URL says; the test reads that database directly.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.survival.callback_targets import CONFIRMATION_ACK, confirmation, encoded
from tests.test_settings import REPO_ROOT, clean_env, manage

pytestmark = pytest.mark.fuzz

CONFIRMATION = "/api/v1/payments/callbacks/c2b/{}/confirmation"
STARTUP_SECONDS = 30


@dataclass
class Server:
    port: int
    database: Path
    log: Path

    def rows(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql, params).fetchall()

    def last_event(self) -> tuple[bytes, str, str]:
        """The latest stored callback: its exact bytes, outcome and error."""
        [(body, raw_body, outcome, error)] = self.rows(
            "SELECT body, raw_body, outcome, error FROM payments_callbackevent "
            "ORDER BY id DESC LIMIT 1"
        )
        return (bytes(raw_body) if raw_body is not None else body.encode()), outcome, error

    def post(self, body, headers: dict[str, str]) -> tuple[int, bytes]:
        path = CONFIRMATION.format(settings.PAYMENTS["CALLBACK_SECRET"])
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def post_chunked(self, body: bytes, chunk: int = 700) -> tuple[int, bytes]:
        # An iterable body and no Content-Length: http.client sends Transfer-Encoding: chunked.
        pieces = (body[i : i + chunk] for i in range(0, len(body), chunk))
        return self.post(pieces, {"Content-Type": "application/json"})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)  # polling for the port, not waiting for an outcome
    pytest.fail(f"gunicorn did not listen within {STARTUP_SECONDS} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    scratch = tmp_path_factory.mktemp("gunicorn")
    env = {**clean_env(scratch, debug=False), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    manage("migrate", "--noinput", env=env).check_returncode()
    port, log = _free_port(), scratch / "gunicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                *(sys.executable, "-m", "gunicorn", "mpesa_site.wsgi:application"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "2"),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(port, process, log)
        yield Server(port, scratch / "db.sqlite3", log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_found_06_a_chunked_c2b_confirmation_is_stored_whole_and_booked(server):
    body = encoded(confirmation(TransID="CHUNKED001"))

    status, answer = server.post_chunked(body)

    assert (status, json.loads(answer)) == (200, CONFIRMATION_ACK)
    stored, outcome, error = server.last_event()
    assert stored == body
    assert outcome == "processed", error
    assert server.rows(
        "SELECT transaction_type, status, amount FROM mpesa_transactions "
        "WHERE mpesa_receipt_number = ?",
        "CHUNKED001",
    ) == [("C2B", "success", 5)]


def test_found_01_a_chunked_body_with_a_nul_and_invalid_utf8_is_stored_byte_exact(server):
    body = encoded(confirmation(TransID="CHUNKED002")).replace(b"NICHOLAS", b"NI\x00CH\xffOLAS")

    status, answer = server.post_chunked(body, chunk=64)

    assert (status, json.loads(answer)) == (200, CONFIRMATION_ACK)
    stored, outcome, _ = server.last_event()
    assert stored == body
    assert outcome == "error"  # a raw NUL inside a string is not JSON: kept for a person


def test_a_chunked_body_over_the_callback_limit_is_refused_with_413(server):
    body = encoded(confirmation(TransID="CHUNKED003", FirstName="N" * 70_000))

    status, _ = server.post_chunked(body, chunk=8192)

    assert status == 413
    stored, outcome, error = server.last_event()
    assert (stored, outcome) == (b"", "rejected")
    assert str(len(body)) in error
    assert server.rows(
        "SELECT count(*) FROM mpesa_transactions WHERE mpesa_receipt_number = ?", "CHUNKED003"
    ) == [(0,)]


def test_a_body_with_a_content_length_is_served_as_before(server):
    body = encoded(confirmation(TransID="LENGTH0001"))

    status, answer = server.post(body, {"Content-Type": "application/json"})

    assert (status, json.loads(answer)) == (200, CONFIRMATION_ACK)
    assert server.last_event()[0] == body

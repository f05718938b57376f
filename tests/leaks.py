"""The suite's leak scan: every log line and every 4xx/5xx body, checked for secrets and phones.

Loaded as a pytest plugin by tests/conftest.py; tests/settings.py puts its middleware first.
For the whole run it records each log record as the project's configured handlers print it
(their filters applied: callback secrets show redacted) and the body of each error response
our Django code gives, to the test client or to a client of the live server. Each is scanned
at once for the secrets of the settings in force (consumer secret, passkey, security
credential, initiator password, callback secret), the callback tokens and API tokens of the
rows the tests create, and full Kenyan phone numbers. Any hit fails the run, with the
offending line and the test that produced it.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.core.signals import setting_changed
from django.db.models.signals import post_save

from payments.conf import is_missing
from payments.logs import JsonFormatter
from payments.redaction import redact_callback_secrets

# A full number, in Daraja's form or as a customer types it, standing alone (not inside a hex
# token or a longer word); a masked one (2547******49) is what logs may hold.
PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+?254|0)[17][0-9]{8}(?![0-9A-Za-z])")
SECRET_SETTINGS = (
    "CONSUMER_SECRET",
    "PASSKEY",
    "SECURITY_CREDENTIAL",
    "INITIATOR_PASSWORD",
    "CALLBACK_SECRET",
)
# Shorter values ("", "x", a placeholder) would match ordinary text; none of ours is that short.
MIN_SECRET_LENGTH = 8
# The handlers of settings.LOGGING whose filters a line passes before it is printed.
CONFIGURED_HANDLERS = {"": "console", "django.server": "django.server"}
# LogRecord's own attributes: anything else on a record came in ``extra``, and a structured
# formatter would print it if it is plain data (ids, masked phones). Objects (django.request's
# ``request``) are left to the handlers that know them.
PLAIN_DATA = (str, int, float, dict, list, tuple)
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


@dataclass
class LeakScanner:
    """What must never be printed: named secret values, and full phone numbers."""

    secrets: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_secret(self, name: str, value: object) -> None:
        text = str(value or "")
        if len(text) >= MIN_SECRET_LENGTH and not is_missing(text):
            with self.lock:
                self.secrets.setdefault(text, name)

    def add_payments_settings(self, payments: dict) -> None:
        for name in SECRET_SETTINGS:
            self.add_secret(f"PAYMENTS['{name}']", payments.get(name))
        key, secret = payments.get("CONSUMER_KEY"), payments.get("CONSUMER_SECRET")
        if key and secret:
            basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
            self.add_secret("the Basic credentials of the consumer key and secret", basic)

    def leaks_in(self, text: str) -> list[tuple[str, str]]:
        """What ``text`` gives away: (what it is, the text given away) for each secret it
        holds and each phone number."""
        with self.lock:
            secrets = list(self.secrets.items())
        found = [(name, value) for value, name in secrets if value in text]
        found += [("a phone number", match) for match in PHONE.findall(text)]
        return found


@dataclass
class Finding:
    test: str
    where: str
    leaks: list[tuple[str, str]]
    line: str

    def __str__(self) -> str:
        names = ", ".join(sorted({name for name, _ in self.leaks}))
        return f"{self.test}: {self.where} gives away {names}:\n    {self.line}"


class LeakRecorder:
    """The run's scanner, what it found, and how much it read."""

    def __init__(self) -> None:
        self.scanner = LeakScanner()
        self.findings: list[Finding] = []
        self.scanned = {"log lines": 0, "error bodies": 0}
        self.current_test = "(outside any test)"
        self._lock = threading.Lock()
        self._diverted: list[list[Finding]] = []

    def scan(self, kind: str, where: str, text: str) -> None:
        leaks = self.scanner.leaks_in(text)
        with self._lock:
            self.scanned[kind] += 1
            if leaks:
                finding = Finding(self.current_test, where, leaks, _excerpt(text, leaks))
                (self._diverted[-1] if self._diverted else self.findings).append(finding)

    @contextmanager
    def diverted(self) -> Iterator[list[Finding]]:
        """Collect findings into a list of their own: for the tests of this plugin, whose
        leaks are deliberate."""
        found: list[Finding] = []
        with self._lock:
            self._diverted.append(found)
        try:
            yield found
        finally:
            with self._lock:
                self._diverted.remove(found)


def _excerpt(text: str, leaks: list[tuple[str, str]]) -> str:
    """The first line holding a leak, around the leak."""
    given_away = leaks[0][1]
    line = next(line for line in text.splitlines() or [text] if given_away in line)
    start = max(0, line.index(given_away) - 150)
    return line[start : start + 300]


RECORDER = LeakRecorder()


class RecordingHandler(logging.Handler):
    """Scans each record as the configured handler ``template`` would print it."""

    def __init__(self, template: logging.Handler, recorder: LeakRecorder = RECORDER) -> None:
        super().__init__(level=template.level)
        self.filters = list(template.filters)
        # A JSON line (DJANGO_LOG_FORMAT=json) is scanned exactly as printed: it holds every
        # field. A plain line is scanned with its fields added, as a structured shipper sees it.
        self.json_lines = isinstance(template.formatter, JsonFormatter)
        self.setFormatter(
            template.formatter
            if self.json_lines
            else logging.Formatter("%(levelname)s %(name)s %(message)s")
        )
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        extra = {
            k: v
            for k, v in vars(record).items()
            if k not in _RECORD_ATTRIBUTES and isinstance(v, PLAIN_DATA)
        }
        if extra and not self.json_lines:
            text += f" {extra!r}"
        self.recorder.scan("log lines", f"log line of {record.name}", text)


class ErrorBodyMiddleware:
    """Scans the body of every 4xx and 5xx answer (first in MIDDLEWARE: it sees the final one)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code >= 400 and not response.streaming:
            where = f"{response.status_code} answer to {request.method} {request.path}"
            RECORDER.scan(
                "error bodies",
                redact_callback_secrets(where),
                response.content.decode("utf-8", errors="replace"),
            )
        return response


def _remember_tokens(sender, instance, created: bool, **kwargs) -> None:
    for attribute in ("callback_token", "token", "key"):
        value = getattr(instance, attribute, None)
        if isinstance(value, str):
            RECORDER.scanner.add_secret(f"{sender.__name__}.{attribute}", value)


def _remember_settings(*, setting: str, value, enter: bool, **kwargs) -> None:
    if setting == "PAYMENTS" and enter and isinstance(value, dict):
        RECORDER.scanner.add_payments_settings(value)


def pytest_configure(config) -> None:
    from django.apps import apps

    RECORDER.scanner.add_payments_settings(settings.PAYMENTS)
    setting_changed.connect(_remember_settings, weak=False)
    for model in (
        apps.get_model("payments", "Transaction"),
        apps.get_model("payments", "DarajaInquiry"),
        apps.get_model("authtoken", "Token"),
    ):
        post_save.connect(_remember_tokens, sender=model, weak=False)
    _listen_to_configured_handlers()


def _listen_to_configured_handlers() -> None:
    """Put a RecordingHandler beside each configured handler, unless one is there already.

    Called before every test too: anything that runs django.setup() again (importing a WSGI
    module, say) reapplies settings.LOGGING, which replaces the loggers' handlers.
    """
    for logger_name, handler_name in CONFIGURED_HANDLERS.items():
        logger = logging.getLogger(logger_name or None)
        if any(isinstance(h, RecordingHandler) for h in logger.handlers):
            continue
        template = next((h for h in logger.handlers if h.name == handler_name), None)
        if template is None:
            raise pytest.UsageError(
                f"tests/leaks.py: settings.LOGGING has no handler {handler_name!r} on logger "
                f"{logger_name or 'root'!r} to copy its filters from"
            )
        logger.addHandler(RecordingHandler(template))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _listen_to_configured_handlers()
    RECORDER.current_test = item.nodeid
    yield
    RECORDER.current_test = "(outside any test)"


def pytest_sessionfinish(session, exitstatus) -> None:
    if RECORDER.findings and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    counts = ", ".join(f"{n} {kind}" for kind, n in RECORDER.scanned.items())
    if not RECORDER.findings:
        terminalreporter.write_line(f"leak scan: {counts} scanned, nothing given away")
        return
    terminalreporter.section("leak scan: secrets or phone numbers given away", red=True)
    for finding in RECORDER.findings:
        terminalreporter.write_line(str(finding))
    terminalreporter.write_line(f"{len(RECORDER.findings)} leaks in {counts} scanned", red=True)

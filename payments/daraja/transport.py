"""HTTP transport: one session, a (connect, read) timeout on every call, and the retry policy.

Daraja has no idempotency keys, so a repeated POST may move money twice. Every call therefore
says whether it is retry-safe: queries and the OAuth token may be repeated after any transient
failure; STK Push, B2C and reversal only when the request cannot have left this machine.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from .errors import RATE_LIMIT_ERROR_CODES, DarajaConnectionError
from .jsontext import loads_bounded

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Daraja's generic internal error and its throttling answers: transient, worth another try.
RETRYABLE_ERROR_CODES = frozenset({"500.003.1001"}) | RATE_LIMIT_ERROR_CODES


def request_was_sent(exc: requests.RequestException) -> bool:
    """Whether a failed request may have reached the server.

    Only a failure to open the connection (DNS, refused, connect timeout) proves it did not;
    a read timeout or a connection dropped mid-exchange leaves the outcome unknown.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        # requests wraps urllib3's MaxRetryError, whose .reason is the connect-phase failure.
        reason = getattr(reason, "reason", reason)
        return not isinstance(reason, NewConnectionError)
    return True


def should_retry(
    *,
    retry_safe: bool,
    attempt: int,
    max_retries: int,
    request_sent: bool = True,
    http_status: int | None = None,
    error_code: str | None = None,
) -> bool:
    """The retry decision, kept pure so its table can be tested on its own.

    ``attempt`` counts the attempts already failed (0 after the first). A connection error is
    described by ``request_sent``; an HTTP answer by ``http_status`` and Daraja's ``error_code``.
    """
    if attempt >= max_retries:
        return False
    if http_status is None:
        return not request_sent or retry_safe
    if not retry_safe:
        return False
    if http_status in RETRYABLE_STATUSES:
        return True
    if http_status >= 500:
        # A 500 with a definite Daraja refusal (wrong credentials, "being processed") is an
        # answer, not a transient failure; only the generic and throttling codes are retried.
        return error_code is None or error_code in RETRYABLE_ERROR_CODES
    return False


def optional_text(value: object) -> str | None:
    """An envelope field as stripped text (Daraja sends codes as numbers or strings)."""
    return None if value is None else str(value).strip()


def envelope_field(response: requests.Response, name: str) -> str | None:
    """A field of Daraja's error envelope (``errorCode``, ``requestId``), if the body is one."""
    try:
        body = loads_bounded(response.content)
    except ValueError:
        return None
    return optional_text(body.get(name)) if isinstance(body, Mapping) else None


def error_code_of(response: requests.Response) -> str | None:
    """Daraja's dotted errorCode from an error envelope, if the body is one."""
    return envelope_field(response, "errorCode")


class Transport:
    """Sends requests to one Daraja origin with the timeout and retry policy applied."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout: tuple[float, float],
        max_retries: int,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        backoff_initial: float = 0.5,
        backoff_cap: float = 4.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.session = session or requests.Session()
        if self.session.trust_env:
            # requests would read the proxy and CA-bundle variables (and ~/.netrc) again on
            # every call: a tenth of a push's time, profiled. They are read once, here; .netrc
            # is left out, as every call of ours carries its own credentials.
            found = self.session.merge_environment_settings(
                f"{self.base_url}/", {}, None, None, None
            )
            self.session.trust_env = False
            self.session.proxies.update(found["proxies"])
            self.session.verify = found["verify"]
        self._sleep = sleep
        self._clock = clock
        self._backoff_initial = backoff_initial
        self._backoff_cap = backoff_cap

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        retry_safe: bool,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        deadline: float | None = None,
    ) -> requests.Response:
        """Send one logical request, retrying as the policy allows; return the last response.

        ``deadline`` (on this transport's clock) bounds the whole of it: each attempt's
        timeouts are cut to the time left, no retry starts that its backoff would take past
        it, and none is sent once it has passed (DarajaConnectionError, not sent).
        """
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            timeout = self._attempt_timeout(operation, deadline)
            started = self._clock()
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=headers,
                    auth=auth,
                    timeout=timeout,
                )
            except requests.RequestException as exc:
                sent = request_was_sent(exc)
                logger.warning(
                    "daraja %s: %s (request %s)",
                    operation,
                    type(exc).__name__,
                    "may have reached Daraja" if sent else "not sent",
                    extra={
                        "operation": operation,
                        "attempt": attempt + 1,
                        "duration_ms": self._milliseconds_since(started),
                    },
                )
                if should_retry(
                    retry_safe=retry_safe,
                    attempt=attempt,
                    max_retries=self.max_retries,
                    request_sent=sent,
                ) and self._backoff_within(attempt, deadline):
                    attempt += 1
                    continue
                raise DarajaConnectionError(
                    f"Daraja {operation} failed: {type(exc).__name__}"
                    + (" after the request was sent" if sent else " before the request was sent"),
                    request_sent=sent,
                ) from exc
            elapsed_ms = self._milliseconds_since(started)
            call = {
                "operation": operation,
                "attempt": attempt + 1,
                "http_status": response.status_code,
                "duration_ms": elapsed_ms,
            }
            if response.status_code >= 400:
                # Daraja's id of the failed call, for a support ticket (API.md §10).
                call["daraja_request_id"] = envelope_field(response, "requestId")
            logger.info(
                "daraja %s answered HTTP %s in %d ms",
                operation,
                response.status_code,
                elapsed_ms,
                extra=call,
            )
            if (
                response.status_code >= 400
                and should_retry(
                    retry_safe=retry_safe,
                    attempt=attempt,
                    max_retries=self.max_retries,
                    http_status=response.status_code,
                    error_code=error_code_of(response),
                )
                and self._backoff_within(attempt, deadline)
            ):
                attempt += 1
                continue
            return response

    def _attempt_timeout(self, operation: str, deadline: float | None) -> tuple[float, float]:
        """(connect, read) for the next attempt: the configured ones, cut to the time left."""
        if deadline is None:
            return self.timeout
        left = deadline - self._clock()
        if left <= 0:
            raise DarajaConnectionError(
                f"Daraja {operation} not sent: its time ran out", request_sent=False
            )
        connect, read = self.timeout
        return (min(connect, left), min(read, left))

    def _backoff_within(self, attempt: int, deadline: float | None) -> bool:
        """Sleep before the next attempt, unless the backoff would end past ``deadline``."""
        delay = self.backoff_seconds(attempt)
        if deadline is not None and self._clock() + delay >= deadline:
            return False
        self._sleep(delay)
        return True

    def _milliseconds_since(self, started: float) -> int:
        return round((self._clock() - started) * 1000)

    def backoff_seconds(self, attempt: int) -> float:
        """Exponential backoff, capped, then jittered so that workers do not retry in step."""
        nominal = min(self._backoff_cap, self._backoff_initial * (2**attempt))
        return self._jitter(nominal)

    @staticmethod
    def _jitter(seconds: float) -> float:
        # Between half and all of the nominal delay.
        return seconds * random.uniform(0.5, 1.0)  # noqa: S311  (not for security)

"""WSGI middleware that hands Django a chunked request body whole.

Django reads exactly CONTENT_LENGTH bytes of a request body. A request sent with
``Transfer-Encoding: chunked`` has no Content-Length, so under gunicorn Django saw an empty body:
a C2B confirmation was stored as 0 bytes and acknowledged, its payment never booked. Servers
that end the input where the body ends say so with ``wsgi.input_terminated`` (gunicorn does):
such a body is read here, up to a bound, and passed on with its length.

Wrap the project's application with it (``mpesa_site/wsgi.py`` does).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# Django's default DATA_UPLOAD_MAX_MEMORY_SIZE, for a project that turned that limit off.
FALLBACK_MAX_BODY_SIZE = 2_621_440


def _chunked_without_length(environ: dict[str, Any]) -> bool:
    return (
        not environ.get("CONTENT_LENGTH")
        and bool(environ.get("wsgi.input_terminated"))
        and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    )


class ChunkedBodyMiddleware:
    """Read a chunked request body whole before Django sees the request.

    At most ``max_body_size`` bytes are read (by default Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
    the most Django holds in memory for a body anyway); a longer body is answered 413 and
    logged. Requests with a Content-Length pass through untouched.
    """

    def __init__(self, application: Callable, *, max_body_size: int | None = None) -> None:
        self.application = application
        self.max_body_size = max_body_size

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not _chunked_without_length(environ):
            return self.application(environ, start_response)
        limit = self.max_body_size or settings.DATA_UPLOAD_MAX_MEMORY_SIZE or FALLBACK_MAX_BODY_SIZE
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            # The path may hold a callback secret: the logging filter redacts it.
            logger.warning(
                "refused %s %s from %s with 413: a chunked body over %s bytes",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                environ.get("REMOTE_ADDR"),
                limit,
            )
            return _too_large(start_response, limit)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)


def _too_large(start_response: Callable, limit: int) -> list[bytes]:
    payload = json.dumps(
        {"code": "payload_too_large", "detail": f"The request body is over {limit} bytes."}
    ).encode()
    start_response(
        "413 Payload Too Large",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]

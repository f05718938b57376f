"""Middleware that belongs before any view: the request log and its request id, and a guard
against text no database column takes."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import SimpleLazyObject, empty

from payments.daraja.jsontext import has_unstorable_text
from payments.logs import log_context

UNSTORABLE_MESSAGE = "must not contain NUL or unpaired surrogate characters"
REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's or a client's id is kept when it is plain (a UUID, nginx's $request_id); anything
# else, a newline or a path say, is replaced by our own: it is printed in every line.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

request_logger = logging.getLogger("payments.requests")


class RequestLogMiddleware:
    """One log line per request: method, route name, status, duration, request id, user id.

    The route is the URL pattern's name (``payments:stk-callback``), never the path: callback
    paths hold secrets. The request id comes from ``X-Request-ID`` when plain, else is made
    here; it is on every line logged while the request runs and is echoed in the answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if REQUEST_ID_PATTERN.fullmatch(given) else uuid.uuid4().hex
        started = time.monotonic()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            match = request.resolver_match
            request_logger.info(
                "%s %s %s",
                request.method,
                match.view_name if match else "-",
                response.status_code,
                extra={
                    "method": request.method,
                    "route": match.view_name if match else None,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "user_id": _user_id(request),
                },
            )
        response[REQUEST_ID_HEADER] = request_id
        return response


def _user_id(request: HttpRequest) -> int | str | None:
    """The user a view authenticated (a session, or DRF's token), without loading one that
    nothing asked for: a callback must not pay a session lookup for its log line."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return user.pk if getattr(user, "is_authenticated", False) else None


class UnstorableQueryMiddleware:
    """400, naming the parameter, for a query string holding a NUL or a lone surrogate.

    PostgreSQL refuses such text in a query (a 500 from any filter that passes it on, the
    admin's list filters among them), and no lookup of ours needs it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = sorted(
            {
                name
                for name, values in request.GET.lists()
                if has_unstorable_text(name) or any(has_unstorable_text(v) for v in values)
            }
        )
        if refused:
            errors = {name: [UNSTORABLE_MESSAGE] for name in refused}
            return JsonResponse(
                {
                    "code": "invalid",
                    "detail": f"{refused[0]}: {UNSTORABLE_MESSAGE}",
                    "errors": errors,
                },
                status=400,
                json_dumps_params={"ensure_ascii": True},
            )
        return self.get_response(request)

"""One error shape for the whole API: {"code", "detail", "errors"?}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from payments.daraja.errors import DarajaError
from payments.daraja.jsontext import storable
from payments.exceptions import PaymentsError, PaymentsNotConfiguredError, PaymentValidationError
from payments.services.approvals import ApprovalRequestSentError
from payments.services.checkout import CheckoutLinkInvalidError
from payments.services.idempotency import (
    IdempotencyKeyInProgressError,
    IdempotencyKeyReusedError,
)
from payments.services.inquiries import DarajaRefusedError

# Paths under which a 404 is JSON in our shape, as the OpenAPI schema documents it: the site's
# /api/, and the app's api/ wherever the host mounted payments.urls.
API_PATH_PREFIX = "/api/"
# A route of the app, and its path below the mount point.
MOUNT_PROBE = ("payments:checkout-link", "api/v1/payments/mpesa/checkout")

STATUS_BY_ERROR: dict[type[PaymentsError], int] = {
    PaymentValidationError: status.HTTP_400_BAD_REQUEST,
    PaymentsNotConfiguredError: status.HTTP_503_SERVICE_UNAVAILABLE,
    IdempotencyKeyReusedError: status.HTTP_422_UNPROCESSABLE_ENTITY,
    IdempotencyKeyInProgressError: status.HTTP_409_CONFLICT,
    ApprovalRequestSentError: status.HTTP_409_CONFLICT,
    DarajaRefusedError: status.HTTP_502_BAD_GATEWAY,
    CheckoutLinkInvalidError: status.HTTP_404_NOT_FOUND,
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = _error_response(exc, context)
    if response is not None:
        # Messages may quote the input ('"\udfff" is not a valid choice'): a lone surrogate
        # there cannot be encoded as UTF-8, and the renderer would fail with a 500.
        response.data = storable(response.data)
    return response


def _error_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DarajaError):
        # A Daraja answer nobody turned into a domain outcome: say so, never a bare 500.
        return Response(
            {"code": exc.error_code or "daraja_error", "detail": exc.message},
            status=status.HTTP_502_BAD_GATEWAY,
        )
    if isinstance(exc, Http404 | DjangoValidationError):
        # A lookup that found nothing, or an id that cannot be one (a UUID field given "x").
        exc = exceptions.NotFound()
    if isinstance(exc, PaymentValidationError):
        exc = exceptions.ValidationError({exc.field: [exc.message]})
    if isinstance(exc, PaymentsError):
        code = STATUS_BY_ERROR.get(type(exc), status.HTTP_400_BAD_REQUEST)
        return Response({"code": exc.code, "detail": exc.message}, status=code)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        first_field, messages = next(iter(errors.items()))
        response.data = {
            "code": "invalid",
            "detail": f"{first_field}: {messages[0]}",
            "errors": errors,
        }
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = {
            "code": codes if isinstance(codes, str) else "error",
            "detail": str(getattr(exc, "detail", exc)),
        }
    return response


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(field): [str(m) for m in (messages if isinstance(messages, list) else [messages])]
            for field, messages in detail.items()
        } or {"non_field_errors": ["Invalid input."]}
    messages = detail if isinstance(detail, list) else [detail]
    return {"non_field_errors": [str(m) for m in messages]}


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The project's ``handler404``: our JSON error for API paths and for callers that ask for
    JSON (the checkout page's calls); Django's page everywhere else (the admin)."""
    wants_json = request.get_preferred_type(["text/html", "application/json"]) == (
        "application/json"
    )
    if request.path_info.startswith(API_PATH_PREFIX) or _under_app_api(request) or wants_json:
        not_found = exceptions.NotFound()
        return JsonResponse(
            {"code": not_found.default_code, "detail": str(not_found.detail)}, status=404
        )
    return defaults.page_not_found(request, exception)


def _under_app_api(request: HttpRequest) -> bool:
    name, below_mount = MOUNT_PROBE
    try:
        mount = reverse(name).removesuffix(below_mount)
    except NoReverseMatch:  # the host did not include payments.urls
        return False
    return request.path.startswith(mount + "api/")

"""One error shape for the whole API: {"code", "detail", "errors"?}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from payments.daraja.errors import DarajaError
from payments.exceptions import PaymentsError, PaymentsNotConfiguredError, PaymentValidationError
from payments.services.approvals import ApprovalRequestSentError
from payments.services.checkout import CheckoutLinkInvalidError
from payments.services.idempotency import (
    IdempotencyKeyInProgressError,
    IdempotencyKeyReusedError,
)
from payments.services.inquiries import DarajaRefusedError

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
    if isinstance(exc, DarajaError):
        # A Daraja answer nobody turned into a domain outcome: say so, never a bare 500.
        return Response(
            {"code": exc.error_code or "daraja_error", "detail": exc.message},
            status=status.HTTP_502_BAD_GATEWAY,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.NotFound("No such object.")
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

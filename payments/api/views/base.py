"""What every API view shares: the error shape, permissions, idempotent POSTs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
)
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.api.exceptions import api_exception_handler
from payments.api.parsers import BoundedJSONParser
from payments.api.serializers import (
    ErrorSerializer,
)
from payments.daraja.jsontext import has_unstorable_text
from payments.daraja.phone import mask_phone_number
from payments.enums import TransactionStatus
from payments.exceptions import PaymentValidationError
from payments.models import IdempotencyKey
from payments.services.idempotency import (
    KEY_MAX_LENGTH,
    idempotency_key_claim,
    idempotency_key_complete,
    idempotency_key_release,
    request_fingerprint,
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": KEY_MAX_LENGTH},
    OpenApiParameter.HEADER,
    description="Repeat a POST safely: the same key and body get the first answer again; the "
    "same key with another body gets 422.",
)
REQUIRED_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    # HTTP strips the spaces around a header's value: a key of spaces arrives empty.
    {"type": "string", "maxLength": KEY_MAX_LENGTH, "pattern": r"\S"},
    OpenApiParameter.HEADER,
    required=True,
    description="Required: one unique key (e.g. a UUID) per payout or refund, sent again when "
    "you retry it, so that a retry never moves the money twice. The same key and body get the "
    "first answer again; the same key with another body gets 422.",
)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input; `errors` names each offending field (code `invalid`), or a body "
        "that is not JSON or nests deeper than 32 levels (code `parse_error`).",
        401: "No or invalid credentials (send `Authorization: Token <key>`).",
        403: "Not staff, or missing the permission this action needs.",
        404: "No such transaction among yours.",
        409: "A request with this Idempotency-Key is still being processed and has recorded "
        "nothing yet; retry shortly.",
        415: "The body is not `application/json`.",
        422: "The Idempotency-Key was used with another body.",
        429: "Too many requests for this user or this phone number.",
        503: "M-Pesa is not configured on this server.",
    }
    return {c: OpenApiResponse(ErrorSerializer, description=descriptions[c]) for c in codes}


def transaction_answer(transaction, serializer_class, *, accepted: int) -> Response:
    """202 while Daraja's answer is unknown; 502 with Daraja's code when it refused."""
    body = serializer_class(transaction).data
    if transaction.status == TransactionStatus.FAILED:
        if "phone_number" in body:
            # Error bodies end up in logs (a gateway's, the app's error tracker): the phone is
            # masked there as in our own log lines. The history shows it whole.
            body["phone_number"] = mask_phone_number(body["phone_number"])
        return Response(
            {
                "code": transaction.result_code or "daraja_error",
                "detail": transaction.result_desc or "M-Pesa refused the request.",
                "transaction": body,
            },
            status=status.HTTP_502_BAD_GATEWAY,
        )
    if transaction.status == TransactionStatus.UNKNOWN:
        return Response(body, status=status.HTTP_202_ACCEPTED)
    return Response(body, status=accepted)


class HasRequiredPermission(BasePermission):
    """Staff holding the view's ``required_permission`` (e.g. "payments.pay_out")."""

    message = "You need a staff account with the permission for this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        required = getattr(view, "required_permission", None)
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and (required is None or user.has_perm(required))
        )


class PaymentsAPIPolicies:
    """Our error shape and our bounded JSON parser, whatever the host project configured."""

    parser_classes = (BoundedJSONParser,)

    def get_exception_handler(self) -> Callable:
        return api_exception_handler


class PaymentsAPIView(PaymentsAPIPolicies, APIView):
    permission_classes = (IsAuthenticated,)


class IdempotentPostMixin:
    """Answers repeats of a POST that carries an Idempotency-Key: from the stored first answer,
    or, when the first request never stored one (its worker died mid-call), from what it
    created, as that is now."""

    # True for money out, where a retry without a key could pay twice.
    idempotency_key_required = False

    def idempotency_key(self, request: Request) -> str:
        """The request's Idempotency-Key ("" without one), or a 400 naming it when it is
        missing where required or could not be stored."""
        key = request.headers.get("Idempotency-Key") or ""
        if not key and self.idempotency_key_required:
            raise PaymentValidationError(
                "Idempotency-Key",
                "is required: send a unique key with each payout or refund, and the same key "
                "when you retry it",
            )
        if len(key) > KEY_MAX_LENGTH:
            raise PaymentValidationError(
                "Idempotency-Key", f"must be at most {KEY_MAX_LENGTH} characters"
            )
        if has_unstorable_text(key):
            raise PaymentValidationError(
                "Idempotency-Key", "must not contain NUL or unpaired surrogate characters"
            )
        return key

    def idempotent(
        self, request: Request, handler: Callable[[Request, IdempotencyKey | None], Response]
    ) -> Response:
        """Answer ``request`` with ``handler(request, record)``, ``record`` being the claimed
        key, which the handler passes to the service that records what it creates."""
        key = self.idempotency_key(request)
        if not key:
            return handler(request, None)
        fingerprint = request_fingerprint(
            method=request.method, path=request.path.rstrip("/"), data=request.data
        )
        claim = idempotency_key_claim(user=request.user, key=key, fingerprint=fingerprint)
        if claim.process:
            try:
                response = handler(request, claim.record)
            except Exception:
                # Unless the key names what this request created (it does from the write-ahead
                # commit on), nothing was sent: the key is freed for a corrected retry.
                idempotency_key_release(record=claim.record)
                raise
            idempotency_key_complete(
                record=claim.record, status=response.status_code, body=response.data
            )
            return response
        if claim.stored is not None:
            response = Response(claim.stored.body, status=claim.stored.status)
        else:
            response = self.first_request_answer(claim.record)
        response["Idempotent-Replayed"] = "true"
        return response

    def first_request_answer(self, record: IdempotencyKey) -> Response:
        """The answer for what the first request with ``record``'s key created, as it is now."""
        raise NotImplementedError


class StaffAPIView(PaymentsAPIView):
    permission_classes = (IsAuthenticated, HasRequiredPermission)
    required_permission: str | None = None

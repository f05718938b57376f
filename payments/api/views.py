"""API views: validate input, call one service or selector, shape the answer. No business rules."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ReadOnlyModelViewSet

from payments.api.exceptions import api_exception_handler
from payments.api.filters import TransactionFilter, TransactionSearchFilter
from payments.api.serializers import (
    ErrorSerializer,
    StkPushFailedSerializer,
    StkPushRequestSerializer,
    StkPushResultSerializer,
    TransactionSerializer,
)
from payments.api.throttles import StkPushPhoneThrottle, StkPushUserThrottle
from payments.enums import TransactionStatus
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.models import Transaction
from payments.selectors import transaction_visible_to
from payments.services.idempotency import (
    KEY_MAX_LENGTH,
    idempotency_key_answered,
    idempotency_key_claim,
    idempotency_key_complete,
    idempotency_key_release,
    request_fingerprint,
)
from payments.services.stk_push import stk_push_initiate, stk_push_refresh_if_stale

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Repeat a POST safely: the same key and body get the first answer again; the "
    "same key with another body gets 422.",
)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input; `errors` names each offending field.",
        401: "No or invalid credentials (send `Authorization: Token <key>`).",
        404: "No such transaction among yours.",
        409: "A request with this Idempotency-Key is still being processed.",
        422: "The Idempotency-Key was used with another body.",
        429: "Too many requests for this user or this phone number.",
        503: "M-Pesa is not configured on this server.",
    }
    return {c: OpenApiResponse(ErrorSerializer, description=descriptions[c]) for c in codes}


class PaymentsAPIView(APIView):
    """Our error shape, whichever exception handler the host project configured."""

    permission_classes = (IsAuthenticated,)

    def get_exception_handler(self) -> Callable:
        return api_exception_handler


class IdempotentPostMixin:
    """Answers repeats of a POST that carries an Idempotency-Key from the stored first answer."""

    # Errors raised before anything was sent anywhere: the key is freed for a corrected retry.
    RELEASING_ERRORS = (
        exceptions.ValidationError,
        exceptions.ParseError,
        PaymentValidationError,
        PaymentsNotConfiguredError,
    )

    def idempotent(self, request: Request, handler: Callable[[Request], Response]) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return handler(request)
        if len(key) > KEY_MAX_LENGTH:
            raise PaymentValidationError(
                "Idempotency-Key", f"must be at most {KEY_MAX_LENGTH} characters"
            )
        fingerprint = request_fingerprint(
            method=request.method, path=request.path.rstrip("/"), data=request.data
        )
        record, stored = idempotency_key_claim(user=request.user, key=key, fingerprint=fingerprint)
        if stored is not None:
            response = Response(stored.body, status=stored.status)
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            response = handler(request)
        except self.RELEASING_ERRORS:
            idempotency_key_release(record=record)
            raise
        except Exception:
            # Something broke after the request may have reached Daraja: never let a retry
            # with this key start a second payment.
            idempotency_key_complete(
                record=record,
                status=500,
                body={"code": "server_error", "detail": "The first request with this key failed."},
            )
            raise
        idempotency_key_complete(record=record, status=response.status_code, body=response.data)
        return response


class StkPushView(IdempotentPostMixin, PaymentsAPIView):
    throttle_classes = (StkPushUserThrottle, StkPushPhoneThrottle)

    def check_throttles(self, request: Request) -> None:
        # A repeat answered from its stored first response starts nothing: never throttle it.
        key = request.headers.get("Idempotency-Key")
        if key and idempotency_key_answered(user=request.user, key=key):
            return
        super().check_throttles(request)

    @extend_schema(
        operation_id="stk_push_create",
        summary="Start an STK Push (M-Pesa PIN prompt on the customer's phone)",
        description="201 means Daraja accepted the request and the prompt is on its way: the "
        "payment is NOT done. Poll the status endpoint until a final status.",
        request=StkPushRequestSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: OpenApiResponse(StkPushResultSerializer, description="Prompt sent; `pending`."),
            202: OpenApiResponse(
                StkPushResultSerializer,
                description="Daraja's answer was lost (timeout or server error): status "
                "`unknown`. Never retry with a new key; poll the transaction, which the callback "
                "or reconciliation settles.",
            ),
            502: OpenApiResponse(
                StkPushFailedSerializer,
                description="Daraja refused the request; `code` is Daraja's error code. The "
                "transaction is stored as `failed`.",
            ),
            **_errors(400, 401, 409, 422, 429, 503),
        },
        tags=["STK Push"],
    )
    def post(self, request: Request) -> Response:
        return self.idempotent(request, self._start_push)

    def _start_push(self, request: Request) -> Response:
        serializer = StkPushRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        transaction = stk_push_initiate(user=request.user, **serializer.validated_data)
        body = StkPushResultSerializer(transaction).data
        if transaction.status == TransactionStatus.FAILED:
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
        return Response(body, status=status.HTTP_201_CREATED)


class StkPushStatusView(PaymentsAPIView):
    @extend_schema(
        operation_id="stk_push_status",
        summary="The status of an STK Push",
        description="Poll every 2-3 seconds until `status` is final (success, failed, "
        "cancelled, timeout, reversed). Answered from our database; a push still pending "
        "after a while is checked with M-Pesa first.",
        responses={200: TransactionSerializer, **_errors(401, 404)},
        tags=["STK Push"],
    )
    def get(self, request: Request, checkout_request_id: str) -> Response:
        transaction = get_object_or_404(
            transaction_visible_to(request.user), checkout_request_id=checkout_request_id
        )
        transaction = stk_push_refresh_if_stale(transaction=transaction)
        return Response(TransactionSerializer(transaction).data)


class TransactionPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


@extend_schema(tags=["Transactions"], responses={200: TransactionSerializer, **_errors(401, 404)})
class TransactionViewSet(ReadOnlyModelViewSet):
    """Transaction history: your own, or everyone's for staff."""

    queryset = Transaction.objects.none()  # replaced per request; names the model for the schema
    serializer_class = TransactionSerializer
    permission_classes = (IsAuthenticated,)
    pagination_class = TransactionPagination
    filterset_class = TransactionFilter
    filter_backends = (
        DjangoFilterBackend,
        TransactionSearchFilter,
        OrderingFilter,
    )
    search_fields = ("mpesa_receipt_number", "account_reference", "phone_number")
    ordering_fields = ("created_at", "amount", "status", "transaction_date")
    ordering = ("-created_at",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Transaction.objects.none()
        return transaction_visible_to(self.request.user)

    def get_exception_handler(self) -> Callable:
        return api_exception_handler

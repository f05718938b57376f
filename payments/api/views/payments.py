"""STK Push and transaction history: what the mobile app calls."""

from __future__ import annotations

from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import ReadOnlyModelViewSet

from payments.api.filters import TransactionFilter, TransactionSearchFilter
from payments.api.serializers import (
    StkPushFailedSerializer,
    StkPushRequestSerializer,
    StkPushResultSerializer,
    TransactionSerializer,
)
from payments.api.throttles import (
    StkPushPhoneThrottle,
    StkPushUserThrottle,
    throttle_waits,
)
from payments.api.views.base import (
    IDEMPOTENCY_HEADER,
    IdempotentPostMixin,
    PaymentsAPIPolicies,
    PaymentsAPIView,
    error_responses,
    transaction_answer,
)
from payments.models import IdempotencyKey, Transaction
from payments.pagination import EXACT_COUNT_LIMIT, LedgerPaginator
from payments.selectors import (
    transaction_may_query,
    transaction_visible_or_none,
    transaction_visible_to,
)
from payments.services.idempotency import (
    idempotency_key_answered,
)
from payments.services.stk_push import (
    stk_push_initiate,
    stk_push_refresh_if_stale,
)


class StkPushView(IdempotentPostMixin, PaymentsAPIView):
    throttle_classes = (StkPushUserThrottle, StkPushPhoneThrottle)

    def check_throttles(self, request: Request) -> None:
        # A repeat answered from its stored first response starts nothing: never throttle it.
        key = self.idempotency_key(request)
        if key and idempotency_key_answered(user=request.user, key=key):
            return
        # Both limits in two cache round trips (DRF's loop takes two per limit).
        waits = throttle_waits(self.get_throttles(), request, self)
        if waits:
            self.throttled(request, max((w for w in waits if w is not None), default=None))

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
            **error_responses(400, 401, 409, 415, 422, 429, 503),
        },
        tags=["STK Push"],
    )
    def post(self, request: Request) -> Response:
        return self.idempotent(request, self._start_push)

    def _start_push(self, request: Request, key: IdempotencyKey | None) -> Response:
        serializer = StkPushRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        transaction = stk_push_initiate(
            user=request.user, idempotency_key=key, **serializer.validated_data
        )
        return self._answer(transaction)

    def first_request_answer(self, record: IdempotencyKey) -> Response:
        return self._answer(record.transaction)

    def _answer(self, transaction: Transaction) -> Response:
        return transaction_answer(
            transaction, StkPushResultSerializer, accepted=status.HTTP_201_CREATED
        )


class StkPushStatusView(PaymentsAPIView):
    @extend_schema(
        operation_id="stk_push_status",
        summary="The status of an STK Push",
        description="Poll every 2-3 seconds until `status` is final (success, failed, "
        "cancelled, timeout, reversed). Answered from our database at once; a push still "
        "pending after a while is asked about with M-Pesa in the background when you started "
        "it (or hold payments.query_status), and a later poll shows the answer. Other "
        "people's pushes need payments.view_transaction.",
        responses={200: TransactionSerializer, **error_responses(401, 404)},
        tags=["STK Push"],
    )
    def get(self, request: Request, checkout_request_id: str) -> Response:
        transaction = transaction_visible_or_none(
            request.user, checkout_request_id=checkout_request_id
        )
        if transaction is None:
            raise Http404("No Transaction matches the given query.")
        if transaction_may_query(request.user, transaction):
            transaction = stk_push_refresh_if_stale(transaction=transaction)
        return Response(TransactionSerializer(transaction).data)


class TransactionPagination(PageNumberPagination):
    """Numbered pages; ``count`` is exact up to 10,000 transactions and PostgreSQL's estimate
    beyond (LedgerPaginator): counting a whole ledger costs more than the page itself."""

    django_paginator_class = LedgerPaginator
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    # Pages are numbers, as the schema says ("?page=last" would be DRF's own extra).
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int:
        """``page_size`` from 1 to 100, or a 400 naming it: DRF would quietly give 20 instead
        of "abc" or 0 and 100 instead of 500, which no schema can describe."""
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError(
                {self.page_size_query_param: [f"must be a number from 1 to {self.max_page_size}"]}
            )
        return int(raw)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["count"]["description"] = (
            f"The number of matching transactions: exact up to {EXACT_COUNT_LIMIT:,}, "
            "PostgreSQL's estimate beyond (`next` is exact either way)."
        )
        return paginated

    def get_schema_operation_parameters(self, view) -> list[dict]:
        bounds = {
            self.page_query_param: {"minimum": 1},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


@extend_schema(
    tags=["Transactions"],
    responses={200: TransactionSerializer, **error_responses(400, 401, 404)},
)
class TransactionViewSet(PaymentsAPIPolicies, ReadOnlyModelViewSet):
    """Transaction history: your own, or everyone's with payments.view_transaction."""

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
    # TransactionSearchFilter matches its own fields (selectors.transaction_search); DRF shows
    # the search box only where search_fields is set.
    search_fields = ("mpesa_receipt_number", "phone_number", "account_reference")
    ordering_fields = ("created_at", "amount", "status", "transaction_date")
    ordering = ("-created_at",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Transaction.objects.none()
        return transaction_visible_to(self.request.user)

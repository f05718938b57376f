"""API views: validate input, call one service or selector, shape the answer. No business rules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ReadOnlyModelViewSet

from payments.api.exceptions import api_exception_handler
from payments.api.filters import TransactionFilter, TransactionSearchFilter
from payments.api.serializers import (
    B2CRequestSerializer,
    BalanceRefreshSerializer,
    BalanceRequestSerializer,
    BalanceSnapshotSerializer,
    CheckoutLinkRequestSerializer,
    CheckoutLinkSerializer,
    CheckoutPayRequestSerializer,
    CheckoutStatusSerializer,
    ErrorSerializer,
    InquirySerializer,
    PayoutRequestSerializer,
    RefundRequestSerializer,
    RegisterUrlsResultSerializer,
    RegisterUrlsSerializer,
    ReversalRequestSerializer,
    StkPushFailedSerializer,
    StkPushRequestSerializer,
    StkPushResultSerializer,
    TransactionRefreshSerializer,
    TransactionSerializer,
)
from payments.api.throttles import (
    CheckoutClientThrottle,
    StkPushPhoneThrottle,
    StkPushUserThrottle,
)
from payments.enums import TransactionStatus
from payments.exceptions import PaymentsNotConfiguredError, PaymentValidationError
from payments.models import Transaction
from payments.selectors import balances_latest, transaction_may_query, transaction_visible_to
from payments.services.audit import audit_failure, audit_record
from payments.services.balances import account_balances_request
from payments.services.c2b import c2b_urls_register
from payments.services.checkout import (
    checkout_link_create,
    checkout_link_read,
    checkout_path,
    checkout_pay,
    checkout_transaction,
)
from payments.services.idempotency import (
    KEY_MAX_LENGTH,
    idempotency_key_answered,
    idempotency_key_claim,
    idempotency_key_complete,
    idempotency_key_release,
    request_fingerprint,
)
from payments.services.inquiries import transaction_refresh
from payments.services.payout_requests import payout_request_submit
from payments.services.refund_requests import refund_request_submit
from payments.services.stk_push import (
    CheckoutLinkUsedError,
    stk_push_initiate,
    stk_push_refresh_if_stale,
)

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Repeat a POST safely: the same key and body get the first answer again; the "
    "same key with another body gets 422.",
)
REQUIRED_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="Required: one unique key (e.g. a UUID) per payout or refund, sent again when "
    "you retry it, so that a retry never moves the money twice. The same key and body get the "
    "first answer again; the same key with another body gets 422.",
)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input; `errors` names each offending field.",
        401: "No or invalid credentials (send `Authorization: Token <key>`).",
        403: "Not staff, or missing the permission this action needs.",
        404: "No such transaction among yours.",
        409: "A request with this Idempotency-Key is still being processed.",
        422: "The Idempotency-Key was used with another body.",
        429: "Too many requests for this user or this phone number.",
        503: "M-Pesa is not configured on this server.",
    }
    return {c: OpenApiResponse(ErrorSerializer, description=descriptions[c]) for c in codes}


def transaction_answer(transaction, serializer_class, *, accepted: int) -> Response:
    """202 while Daraja's answer is unknown; 502 with Daraja's code when it refused."""
    body = serializer_class(transaction).data
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

    # True for money out, where a retry without a key could pay twice.
    idempotency_key_required = False

    def idempotent(self, request: Request, handler: Callable[[Request], Response]) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key and self.idempotency_key_required:
            raise PaymentValidationError(
                "Idempotency-Key",
                "is required: send a unique key with each payout or refund, and the same key "
                "when you retry it",
            )
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
        return transaction_answer(
            transaction, StkPushResultSerializer, accepted=status.HTTP_201_CREATED
        )


class StkPushStatusView(PaymentsAPIView):
    @extend_schema(
        operation_id="stk_push_status",
        summary="The status of an STK Push",
        description="Poll every 2-3 seconds until `status` is final (success, failed, "
        "cancelled, timeout, reversed). Answered from our database; a push still pending "
        "after a while is checked with M-Pesa first when you started it (or hold "
        "payments.query_status). Other people's pushes need payments.view_transaction.",
        responses={200: TransactionSerializer, **_errors(401, 404)},
        tags=["STK Push"],
    )
    def get(self, request: Request, checkout_request_id: str) -> Response:
        transaction = get_object_or_404(
            transaction_visible_to(request.user), checkout_request_id=checkout_request_id
        )
        if transaction_may_query(request.user, transaction):
            transaction = stk_push_refresh_if_stale(transaction=transaction)
        return Response(TransactionSerializer(transaction).data)


class TransactionPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


@extend_schema(tags=["Transactions"], responses={200: TransactionSerializer, **_errors(401, 404)})
class TransactionViewSet(ReadOnlyModelViewSet):
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
    search_fields = ("mpesa_receipt_number", "account_reference", "phone_number")
    ordering_fields = ("created_at", "amount", "status", "transaction_date")
    ordering = ("-created_at",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Transaction.objects.none()
        return transaction_visible_to(self.request.user)

    def get_exception_handler(self) -> Callable:
        return api_exception_handler


def money_out_schema(
    *, operation_id: str, summary: str, description: str, request: Any, waiting: Any
):
    """The documentation shared by the idempotent money-out POSTs (payout, refund).

    ``waiting`` is the serializer of the request answered while it awaits approval.
    """
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        request=request,
        parameters=[REQUIRED_IDEMPOTENCY_HEADER],
        responses={
            202: PolymorphicProxySerializer(
                component_name=waiting.__name__.removesuffix("RequestSerializer") + "Accepted",
                serializers=[TransactionSerializer, waiting],
                resource_type_field_name=None,
            ),
            502: OpenApiResponse(StkPushFailedSerializer, description="Daraja refused it."),
            **_errors(400, 401, 403, 409, 422, 503),
        },
        tags=["Money out"],
    )


class StaffAPIView(PaymentsAPIView):
    permission_classes = (IsAuthenticated, HasRequiredPermission)
    required_permission: str | None = None


def approval_answer(request: Any, waiting_serializer: Any) -> Response:
    """202 with the request while it waits for approval; else the answer for its transaction."""
    if request.transaction is None:
        return Response(waiting_serializer(request).data, status=status.HTTP_202_ACCEPTED)
    return transaction_answer(
        request.transaction, TransactionSerializer, accepted=status.HTTP_202_ACCEPTED
    )


class B2CPayoutView(IdempotentPostMixin, StaffAPIView):
    required_permission = "payments.pay_out"
    idempotency_key_required = True

    @money_out_schema(
        operation_id="b2c_payout_create",
        summary="Send money to a customer (B2C payout)",
        description="Recorded before it is sent; 202 means Daraja accepted it (status "
        "`pending`) or its answer was lost (`unknown`, never resent: reconciliation asks "
        "Transaction Status). The result arrives later. A payout that would take your "
        "payouts sent without approval today, or those to this phone number, above "
        "PAYMENTS['PAYOUT_APPROVAL_THRESHOLD'] is not sent: the 202 carries a payout request "
        "with state `awaiting_approval` for a second manager to approve in the back office. "
        "Needs the payments.pay_out permission and an Idempotency-Key.",
        request=B2CRequestSerializer,
        waiting=PayoutRequestSerializer,
    )
    def post(self, request: Request) -> Response:
        return self.idempotent(request, self._pay_out)

    def _pay_out(self, request: Request) -> Response:
        serializer = B2CRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payout = payout_request_submit(maker=request.user, **serializer.validated_data)
        return approval_answer(payout, PayoutRequestSerializer)


class ReversalView(IdempotentPostMixin, StaffAPIView):
    required_permission = "payments.refund"
    idempotency_key_required = True

    @money_out_schema(
        operation_id="reversal_create",
        summary="Refund a payment with an M-Pesa reversal",
        description="Reverses all (default) or part of a successful STK or C2B payment, found by "
        "our id or its receipt. The refunds of one payment, sent or waiting for approval, never "
        "add up to more than it. A refund that would take your refunds sent without approval "
        "today, or those of this payment, above PAYMENTS['REFUND_APPROVAL_THRESHOLD'] is not "
        "sent: the 202 carries a refund request with state `awaiting_approval` for a second "
        "manager to approve in the back office. Needs the payments.refund permission and an "
        "Idempotency-Key.",
        request=ReversalRequestSerializer,
        waiting=RefundRequestSerializer,
    )
    def post(self, request: Request) -> Response:
        return self.idempotent(request, self._reverse)

    def _reverse(self, request: Request) -> Response:
        serializer = ReversalRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refund = refund_request_submit(
            maker=request.user,
            transaction_ref=data["transaction"],
            amount=data["amount"],
            remarks=data["remarks"],
        )
        return approval_answer(refund, RefundRequestSerializer)


class BalanceView(StaffAPIView):
    required_permission = "payments.view_balance"

    @extend_schema(
        operation_id="balance_list",
        summary="The latest balance of each M-Pesa account",
        responses={200: BalanceSnapshotSerializer(many=True), **_errors(401, 403)},
        tags=["Money out"],
    )
    def get(self, request: Request) -> Response:
        return Response(BalanceSnapshotSerializer(balances_latest(), many=True).data)

    @extend_schema(
        operation_id="balance_refresh",
        summary="Ask M-Pesa for the current balances",
        description="Without `shortcode`, asks about the PayBill (PAYMENTS SHORTCODE) and the "
        "shortcode that funds payouts (B2C_SHORTCODE): one inquiry each, labelled. 202: the "
        "balances arrive shortly at our result URL; GET shows them. An inquiry Daraja refused "
        "is listed as `failed` with its `result_code`; 502 only when every one was refused.",
        request=BalanceRequestSerializer,
        responses={
            202: BalanceRefreshSerializer,
            502: OpenApiResponse(ErrorSerializer, description="Daraja refused every request."),
            **_errors(400, 401, 403, 503),
        },
        tags=["Money out"],
    )
    def post(self, request: Request) -> Response:
        serializer = BalanceRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        inquiries = account_balances_request(user=request.user, **serializer.validated_data)
        answer = BalanceRefreshSerializer({"inquiries": inquiries}).data
        audit_record(
            actor=request.user,
            action="balance_refresh",
            outcome="asked: "
            + ", ".join(f"{i['label']} ({i['status']})" for i in answer["inquiries"]),
            details={"via": "api", "inquiries": [i["id"] for i in answer["inquiries"]]},
        )
        return Response(answer, status=status.HTTP_202_ACCEPTED)


class TransactionRefreshView(StaffAPIView):
    required_permission = "payments.query_status"

    @extend_schema(
        operation_id="transaction_refresh",
        summary="Ask M-Pesa for the current state of one transaction",
        description="An STK Push is checked with an STK query and answered at once (200). "
        "Other transactions are checked with Transaction Status, whose result arrives later "
        "(202 with the inquiry).",
        request=None,
        responses={
            200: TransactionRefreshSerializer,
            202: TransactionRefreshSerializer,
            502: OpenApiResponse(ErrorSerializer, description="Daraja refused the request."),
            **_errors(400, 401, 403, 404, 503),
        },
        tags=["Transactions"],
    )
    def post(self, request: Request, pk: str) -> Response:
        transaction = get_object_or_404(Transaction, pk=pk)
        refreshed, inquiry = transaction_refresh(transaction=transaction, user=request.user)
        audit_record(
            actor=request.user,
            action="status_query",
            transaction=transaction,
            outcome=f"asked ({inquiry.status})" if inquiry else refreshed.status,
            details={"via": "api"},
        )
        body = {
            "transaction": TransactionSerializer(refreshed).data,
            "inquiry": InquirySerializer(inquiry).data if inquiry else None,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED if inquiry else status.HTTP_200_OK)


class RegisterUrlsView(StaffAPIView):
    required_permission = "payments.register_c2b_urls"

    @extend_schema(
        operation_id="c2b_register_urls",
        summary="Register our C2B validation and confirmation URLs with M-Pesa",
        request=RegisterUrlsSerializer,
        responses={
            200: RegisterUrlsResultSerializer,
            502: OpenApiResponse(ErrorSerializer, description="Daraja refused the request."),
            **_errors(400, 401, 403, 503),
        },
        tags=["C2B"],
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterUrlsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        details = {"via": "api", **serializer.validated_data}
        with audit_failure(actor=request.user, action="register_c2b_urls", details=details):
            answer = c2b_urls_register(**serializer.validated_data)
        audit_record(
            actor=request.user,
            action="register_c2b_urls",
            outcome=f"{answer.response_code} {answer.response_description}",
            details=details,
        )
        return Response(
            {
                "response_code": answer.response_code,
                "response_description": answer.response_description,
                "originator_conversation_id": answer.originator_conversation_id,
            }
        )


class HoldsRequiredPermission(BasePermission):
    """Any account, staff or a server-side caller, holding the view's ``required_permission``."""

    message = "Your account needs the permission for this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(view.required_permission))


class CheckoutLinkView(PaymentsAPIView):
    permission_classes = (IsAuthenticated, HoldsRequiredPermission)
    required_permission = "payments.create_checkout_link"

    @extend_schema(
        operation_id="checkout_link_create",
        summary="Create a hosted checkout link",
        description="The amount, account reference and description are signed into the link; "
        "the customer only enters a phone number. Needs the payments.create_checkout_link "
        "permission.",
        request=CheckoutLinkRequestSerializer,
        responses={201: CheckoutLinkSerializer, **_errors(400, 401, 403)},
        tags=["Checkout"],
    )
    def post(self, request: Request) -> Response:
        serializer = CheckoutLinkRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token = checkout_link_create(
            amount=data["amount"],
            account_reference=data["account_reference"],
            description=data["description"],
            expires_at=data["expires_at"],
            created_by=request.user,
        )
        link = checkout_link_read(token)
        body = {
            "url": request.build_absolute_uri(checkout_path(token)),
            "token": token,
            "amount": link.amount,
            "account_reference": link.account_reference,
            "description": link.description,
            "expires_at": link.expires_at,
        }
        return Response(CheckoutLinkSerializer(body).data, status=status.HTTP_201_CREATED)


class CheckoutPayView(PaymentsAPIView):
    """The checkout page's Pay button. The signed link is the credential; no login."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = (CheckoutClientThrottle, StkPushPhoneThrottle)

    @extend_schema(exclude=True)
    def post(self, request: Request, token: str) -> Response:
        serializer = CheckoutPayRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            transaction = checkout_pay(
                token=token, phone_number=serializer.validated_data["phone_number"]
            )
        except CheckoutLinkUsedError as exc:
            # The page follows the link's payment instead: its receipt, or its progress.
            return Response(
                {
                    "code": exc.code,
                    "detail": exc.message,
                    "transaction": CheckoutStatusSerializer(exc.transaction).data,
                },
                status=status.HTTP_409_CONFLICT,
            )
        return transaction_answer(
            transaction, CheckoutStatusSerializer, accepted=status.HTTP_201_CREATED
        )


class CheckoutStatusView(PaymentsAPIView):
    """What the checkout page polls: its own transaction only, found through the link."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(exclude=True)
    def get(self, request: Request, token: str, transaction_id: str) -> Response:
        transaction = checkout_transaction(token=token, transaction_id=transaction_id)
        if transaction is None:
            raise exceptions.NotFound("No such payment for this link.")
        transaction = stk_push_refresh_if_stale(transaction=transaction)
        return Response(CheckoutStatusSerializer(transaction).data)

"""Staff money out: payouts, refunds, balances and status refreshes."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from payments.api.serializers import (
    B2CRequestSerializer,
    BalanceRefreshSerializer,
    BalanceRequestSerializer,
    BalanceSnapshotSerializer,
    ErrorSerializer,
    InquirySerializer,
    PayoutRequestSerializer,
    RefundRequestSerializer,
    ReversalRequestSerializer,
    StkPushFailedSerializer,
    TransactionRefreshSerializer,
    TransactionSerializer,
)
from payments.api.views.base import (
    REQUIRED_IDEMPOTENCY_HEADER,
    IdempotentPostMixin,
    StaffAPIView,
    error_responses,
    transaction_answer,
)
from payments.models import IdempotencyKey, Transaction
from payments.selectors import balances_latest
from payments.services.audit import audit_record
from payments.services.balances import account_balances_request
from payments.services.inquiries import transaction_refresh
from payments.services.payout_requests import payout_request_submit
from payments.services.refund_requests import refund_request_submit


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
            **error_responses(400, 401, 403, 409, 415, 422, 503),
        },
        tags=["Money out"],
    )


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

    def _pay_out(self, request: Request, key: IdempotencyKey | None) -> Response:
        serializer = B2CRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payout = payout_request_submit(
            maker=request.user, idempotency_key=key, **serializer.validated_data
        )
        return approval_answer(payout, PayoutRequestSerializer)

    def first_request_answer(self, record: IdempotencyKey) -> Response:
        return approval_answer(record.payout_request, PayoutRequestSerializer)


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

    def _reverse(self, request: Request, key: IdempotencyKey | None) -> Response:
        serializer = ReversalRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refund = refund_request_submit(
            maker=request.user,
            transaction_ref=data["transaction"],
            amount=data["amount"],
            remarks=data["remarks"],
            idempotency_key=key,
        )
        return approval_answer(refund, RefundRequestSerializer)

    def first_request_answer(self, record: IdempotencyKey) -> Response:
        return approval_answer(record.refund_request, RefundRequestSerializer)


class BalanceView(StaffAPIView):
    required_permission = "payments.view_balance"

    @extend_schema(
        operation_id="balance_list",
        summary="The latest balance of each M-Pesa account",
        responses={200: BalanceSnapshotSerializer(many=True), **error_responses(401, 403)},
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
            **error_responses(400, 401, 403, 415, 503),
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
            **error_responses(400, 401, 403, 404, 503),
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

"""Hosted checkout: links for staff, the login-free page's start and status calls."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from payments.api.serializers import (
    CheckoutLinkRequestSerializer,
    CheckoutLinkSerializer,
    CheckoutPayRequestSerializer,
    CheckoutStatusSerializer,
)
from payments.api.throttles import (
    CheckoutClientThrottle,
    StkPushPhoneThrottle,
)
from payments.api.views.base import (
    PaymentsAPIView,
    error_responses,
    transaction_answer,
)
from payments.services.checkout import (
    checkout_link_create,
    checkout_link_read,
    checkout_path,
    checkout_pay,
    checkout_transaction,
)
from payments.services.stk_push import (
    CheckoutLinkUsedError,
    stk_push_refresh_if_stale,
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
        responses={201: CheckoutLinkSerializer, **error_responses(400, 401, 403, 415)},
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

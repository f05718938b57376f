"""C2B URL registration."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework.request import Request
from rest_framework.response import Response

from payments.api.serializers import (
    ErrorSerializer,
    RegisterUrlsResultSerializer,
    RegisterUrlsSerializer,
)
from payments.api.views.base import (
    StaffAPIView,
    error_responses,
)
from payments.services.audit import audit_failure, audit_record
from payments.services.c2b import c2b_urls_register


class RegisterUrlsView(StaffAPIView):
    required_permission = "payments.register_c2b_urls"

    @extend_schema(
        operation_id="c2b_register_urls",
        summary="Register our C2B validation and confirmation URLs with M-Pesa",
        request=RegisterUrlsSerializer,
        responses={
            200: RegisterUrlsResultSerializer,
            502: OpenApiResponse(ErrorSerializer, description="Daraja refused the request."),
            **error_responses(400, 401, 403, 415, 503),
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

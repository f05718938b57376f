"""Baselines: the least a Django view can do for each benchmarked request (bench only)."""

from django.db import transaction as db_transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.authentication import TokenAuthentication
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.models import CallbackEvent, Transaction


@csrf_exempt
@require_POST
@db_transaction.non_atomic_requests
def bare_insert(request: HttpRequest, token: str) -> JsonResponse:
    """One INSERT of the raw body, as the callback's first step, and nothing else."""
    CallbackEvent.objects.create(kind="stk", token=token, body=request.body.decode())
    return JsonResponse({"ResultCode": 0, "ResultDesc": "Accepted"})


class BareRead(APIView):
    """DRF as it ships (its TokenAuthentication, IsAuthenticated), one row read by a unique
    key. DRF's own authentication class, not the project's compiled one: the baseline stays
    what it was measured as."""

    authentication_classes = (TokenAuthentication,)

    def get(self, request, checkout_request_id: str) -> Response:
        row = get_object_or_404(
            Transaction.objects.values("id", "status", "amount", "result_code"),
            checkout_request_id=checkout_request_id,
        )
        return Response({**row, "id": str(row["id"])})

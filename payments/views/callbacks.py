"""Endpoints Daraja posts results to. Store the raw request, process it, acknowledge.

Daraja signs nothing, so the unguessable token in the path is what ties a callback to a
transaction we started. These views are csrf-exempt (Daraja sends no token), POST-only and
non-atomic: the raw body must be committed even when processing fails.
"""

from __future__ import annotations

from django.db import transaction as db_transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from payments.enums import CallbackKind
from payments.selectors import transaction_get_by_token
from payments.services.callbacks import callback_event_process, callback_event_record

ACKNOWLEDGEMENT = {"ResultCode": 0, "ResultDesc": "Accepted"}


def client_ip(request: HttpRequest) -> str | None:
    """The connecting address. X-Forwarded-For is kept in the stored headers, not trusted."""
    return request.META.get("REMOTE_ADDR") or None


@method_decorator([csrf_exempt, db_transaction.non_atomic_requests], name="dispatch")
class StkCallbackView(View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, callback_token: str) -> JsonResponse:
        if transaction_get_by_token(callback_token) is None:
            raise Http404("unknown callback")
        event = callback_event_record(
            kind=CallbackKind.STK,
            token=callback_token,
            body=request.body,
            source_ip=client_ip(request),
            headers=dict(request.headers),
        )
        callback_event_process(event=event)
        # Acknowledged once stored, whatever processing made of it: Daraja does not retry
        # usefully, and the stored event keeps any error for a replay.
        return JsonResponse(ACKNOWLEDGEMENT)

"""Endpoints Daraja posts results to. Store the raw request, process it, acknowledge.

Daraja signs nothing, so an unguessable token in the path is what ties a result to a request we
made (a secret shared by all C2B notifications). These views are csrf-exempt (Daraja sends no
token), POST-only and non-atomic: the raw body must be committed even when processing fails.
"""

from __future__ import annotations

import hmac
import logging

from django.db import transaction as db_transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from payments.conf import is_missing, payments_settings
from payments.daraja.callbacks import parse_c2b_notification
from payments.daraja.errors import DarajaCallbackError
from payments.enums import CallbackKind, CallbackOutcome
from payments.models import CallbackEvent
from payments.network import callback_source_refusal, client_address
from payments.selectors import callback_token_exists
from payments.services.c2b import OTHER_ERROR, C2BValidationResult, c2b_validate
from payments.services.callbacks import (
    callback_event_process,
    callback_event_record,
    callback_event_refuse,
)

logger = logging.getLogger(__name__)

ACKNOWLEDGEMENT = {"ResultCode": 0, "ResultDesc": "Accepted"}
C2B_CONFIRMATION_ACKNOWLEDGEMENT = {"ResultCode": 0, "ResultDesc": "Success"}
REFUSAL = {"ResultCode": 1, "ResultDesc": "Refused: source address not allowed"}
# C2B events are not tied to one request; the shared secret is never stored as their token.
C2B_EVENT_LABEL = "c2b"


def _record(request: HttpRequest, kind: str, token: str) -> CallbackEvent:
    return callback_event_record(
        kind=kind,
        token=token,
        body=request.body,
        source_ip=client_address(request),
        headers=dict(request.headers),
    )


def _refusal(event: CallbackEvent) -> JsonResponse | None:
    """403 for a callback from outside the allowlist, once it is stored and marked refused.

    Nothing is lost: the event stays in the callback inbox, outcome "refused", for a person to
    check and re-process (a genuine callback from an address Safaricom added to its list).
    """
    reason = callback_source_refusal(event.source_ip)
    if reason is None:
        return None
    CallbackEvent.objects.filter(pk=event.pk).update(outcome=CallbackOutcome.REFUSED, error=reason)
    logger.warning(
        "%s callback event %s refused: %s",
        event.kind,
        event.pk,
        reason,
        extra={"callback_event": event.pk},
    )
    return JsonResponse(REFUSAL, status=403)


def _too_large(request: HttpRequest, kind: str, token: str) -> JsonResponse | None:
    """413 for a body longer than CALLBACK_MAX_BODY_SIZE, judged by its declared length before
    a byte of it is read; the refusal is recorded for a person. None for any other body."""
    limit = int(payments_settings.CALLBACK_MAX_BODY_SIZE)
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0  # as Django reads it: no body
    if size <= limit:
        return None
    callback_event_refuse(
        kind=kind,
        token=token,
        reason=f"refused unread (413): {size} bytes, over CALLBACK_MAX_BODY_SIZE ({limit})",
        source_ip=client_address(request),
        headers=dict(request.headers),
    )
    detail = f"The body is over {limit} bytes."
    return JsonResponse({"code": "payload_too_large", "detail": detail}, status=413)


@method_decorator([csrf_exempt, db_transaction.non_atomic_requests], name="dispatch")
class ResultCallbackView(View):
    """A result or queue-timeout for one request of ours, found by the token in the path."""

    http_method_names = ["post"]
    kind: str = CallbackKind.STK

    def post(self, request: HttpRequest, callback_token: str) -> JsonResponse:
        # A token of ours at the URL of another kind is stored, then refused by processing.
        if not callback_token_exists(callback_token):
            raise Http404("unknown callback")
        refusal = _too_large(request, self.kind, callback_token)
        if refusal is not None:
            return refusal
        event = _record(request, self.kind, callback_token)
        refused = _refusal(event)
        if refused is not None:
            return refused
        callback_event_process(event=event)
        # Acknowledged once stored, whatever processing made of it: the stored event keeps any
        # error for a human or a replay.
        return JsonResponse(ACKNOWLEDGEMENT)


@method_decorator([csrf_exempt, db_transaction.non_atomic_requests], name="dispatch")
class C2BCallbackView(View):
    """C2B validation or confirmation, or a Pull Transactions notice; the path carries
    MPESA_CALLBACK_SECRET."""

    http_method_names = ["post"]
    kind: str = CallbackKind.C2B_CONFIRMATION

    def post(self, request: HttpRequest, secret: str) -> JsonResponse:
        expected = str(payments_settings.CALLBACK_SECRET or "")
        if is_missing(expected) or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise Http404("unknown callback")
        refusal = _too_large(request, self.kind, C2B_EVENT_LABEL)
        if refusal is not None:
            return refusal
        event = _record(request, self.kind, C2B_EVENT_LABEL)
        refused = _refusal(event)
        if refused is not None:
            return refused
        if self.kind == CallbackKind.C2B_VALIDATION:
            return JsonResponse(self._validate(event).as_response())
        callback_event_process(event=event)
        return JsonResponse(C2B_CONFIRMATION_ACKNOWLEDGEMENT)

    @staticmethod
    def _validate(event: CallbackEvent) -> C2BValidationResult:
        try:
            notification = parse_c2b_notification(event.received_bytes)
        except DarajaCallbackError as exc:
            result = C2BValidationResult(OTHER_ERROR, "Rejected")
            outcome, error = CallbackOutcome.ERROR, f"unreadable C2B validation: {exc.message}"
        else:
            result = c2b_validate(notification=notification)
            outcome = CallbackOutcome.PROCESSED if result.accepted else CallbackOutcome.REJECTED
            error = "" if result.accepted else f"rejected with {result.result_code}"
        CallbackEvent.objects.filter(pk=event.pk).update(outcome=outcome, error=error)
        return result

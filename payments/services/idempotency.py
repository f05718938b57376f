"""Idempotency keys: a repeated POST with the same key and body gets the first answer again."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.utils import timezone

from payments.conf import payments_settings
from payments.daraja.jsontext import storable
from payments.exceptions import PaymentsError
from payments.models import IdempotencyKey

logger = logging.getLogger(__name__)

KEY_MAX_LENGTH = 255


class IdempotencyKeyReusedError(PaymentsError):
    """The key was first used with another request body."""

    code = "idempotency_key_reused"


class IdempotencyKeyInProgressError(PaymentsError):
    """The first request with this key is still being answered."""

    code = "idempotency_key_in_progress"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """A hash of what makes two requests the same: method, path and the JSON body."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def idempotency_key_claim(
    *, user: Any, key: str, fingerprint: str
) -> tuple[IdempotencyKey | None, StoredResponse | None]:
    """Claim ``key`` for this request, or return the response stored for it.

    Returns ``(record, None)`` when the caller must process the request and then call
    ``idempotency_key_complete``; ``(None, stored)`` when it must answer ``stored`` instead.
    The unique constraint on (user, key) makes concurrent first uses safe: one wins.
    """
    now = timezone.now()
    expires_at = now + timedelta(seconds=payments_settings.IDEMPOTENCY_KEY_TTL)
    IdempotencyKey.objects.filter(user=user, key=key, expires_at__lte=now).delete()
    try:
        with db_transaction.atomic():
            record = IdempotencyKey.objects.create(
                user=user, key=key, fingerprint=fingerprint, expires_at=expires_at
            )
        return record, None
    except IntegrityError:
        existing = IdempotencyKey.objects.get(user=user, key=key)
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was already used with a different request body."
        )
    if existing.response_status is None:
        raise IdempotencyKeyInProgressError(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        )
    return None, StoredResponse(existing.response_status, existing.response_body)


def idempotency_key_answered(*, user: Any, key: str) -> bool:
    """Whether a live key already holds the answer to its first request."""
    if not getattr(user, "is_authenticated", False):
        return False
    return IdempotencyKey.objects.filter(
        user=user, key=key, response_status__isnull=False, expires_at__gt=timezone.now()
    ).exists()


def idempotency_key_complete(*, record: IdempotencyKey, status: int, body: Any) -> None:
    """Store the answer given to the first request, for its repeats.

    The body goes through JSON once (ids and dates become strings), exactly as the client saw
    it, except for NUL and lone surrogates, which no jsonb column takes; a body that cannot be
    stored must never turn an answered payment into an error.
    """
    try:
        stored = storable(json.loads(json.dumps(body, cls=DjangoJSONEncoder)))
    except (TypeError, ValueError):
        logger.exception("idempotency key %s: answer not storable as JSON", record.pk)
        stored = {"code": "stored_answer_unavailable", "detail": "See the transaction history."}
    record.response_status = status
    record.response_body = stored
    record.save(update_fields=["response_status", "response_body"])


def idempotency_key_release(*, record: IdempotencyKey) -> None:
    """Forget a claim whose request failed before any answer, so the client can retry."""
    record.delete()

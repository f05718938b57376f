"""Idempotency keys: a repeated POST with the same key and body gets the first answer again.

The first request claims the key; the services it calls record on the key what they create
(``idempotency_key_link``) in the same commit as their write-ahead row. A retry therefore
knows, even when the first request's worker died mid-call, whether anything can have been
sent: if something was created, the retry answers from it as it is now; if nothing was, the
key is free again once the first request's lease has run out.
"""

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
from django.db.models import Q
from django.utils import timezone

from payments.conf import payments_settings
from payments.daraja.jsontext import storable
from payments.exceptions import PaymentsError
from payments.models import (
    ApprovalRequest,
    IdempotencyKey,
    PayoutRequest,
    RefundRequest,
    Transaction,
)

logger = logging.getLogger(__name__)

KEY_MAX_LENGTH = 255
# Daraja calls one request can make: the OAuth token and the operation, each once more when
# Daraja refuses the token (DarajaClient._post).
DARAJA_CALLS_PER_REQUEST = 4
# On top of the waits on Daraja: retry backoff and the database work around the calls.
LEASE_MARGIN_SECONDS = 60
# What a key may name as created by its first request; none of them means nothing was.
CREATED_FIELDS = ("transaction", "payout_request", "refund_request")
NOTHING_CREATED = Q(
    transaction__isnull=True, payout_request__isnull=True, refund_request__isnull=True
)


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


@dataclass(frozen=True)
class IdempotencyClaim:
    """What to do with a request that carries a key.

    ``process``: this request is the key's (first) user and must be processed. ``stored``: give
    the first answer again. Neither: answer from what the first request created, as it is now
    (``record.transaction``, ``record.payout_request`` or ``record.refund_request``).
    """

    record: IdempotencyKey
    process: bool = False
    stored: StoredResponse | None = None


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """A hash of what makes two requests the same: method, path and the JSON body."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def idempotency_key_lease() -> timedelta:
    """How long a first request that recorded nothing keeps its key before a retry may take it.

    Long enough for the longest legitimate request: each Daraja call it can make waiting out
    the connect and read timeouts (PAYMENTS HTTP_TIMEOUT) on every attempt, plus a margin.
    """
    connect, read = payments_settings.HTTP_TIMEOUT
    attempts = int(payments_settings.HTTP_MAX_RETRIES) + 1
    waits = DARAJA_CALLS_PER_REQUEST * attempts * (float(connect) + float(read))
    return timedelta(seconds=waits + LEASE_MARGIN_SECONDS)


def idempotency_key_claim(*, user: Any, key: str, fingerprint: str) -> IdempotencyClaim:
    """Claim ``key`` for this request, or say how its first request answers it.

    The unique constraint on (user, key) makes concurrent first uses safe: one wins. A key
    whose first request recorded nothing is taken over only after its lease, under the key's
    row lock; a request that outlived its lease then fails to record (``idempotency_key_link``).
    """
    now = timezone.now()
    IdempotencyKey.objects.filter(user=user, key=key, expires_at__lte=now).delete()
    expires_at = now + timedelta(seconds=payments_settings.IDEMPOTENCY_KEY_TTL)
    try:
        with db_transaction.atomic():
            record = IdempotencyKey.objects.create(
                user=user, key=key, fingerprint=fingerprint, claimed_at=now, expires_at=expires_at
            )
        return IdempotencyClaim(record, process=True)
    except IntegrityError:
        pass
    with db_transaction.atomic():
        record = (
            IdempotencyKey.objects.select_for_update(of=("self",))
            .select_related(*CREATED_FIELDS)
            .filter(user=user, key=key)
            .first()
        )
        if record is None:  # its first request failed and freed it a moment ago
            raise _in_progress()
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(
                "This Idempotency-Key was already used with a different request body."
            )
        if record.response_status is not None:
            return IdempotencyClaim(
                record, stored=StoredResponse(record.response_status, record.response_body)
            )
        if _answers_for_first_request(record):
            return IdempotencyClaim(record)
        if record.claimed_at > now - idempotency_key_lease():
            raise _in_progress()
        if not _withdraw_unsent_request(record):
            return IdempotencyClaim(record)  # it was sent after all, a moment ago
        logger.warning(
            "idempotency key %s: its first request recorded nothing within its lease; retried",
            record.pk,
        )
        record.claimed_at = now
        record.save(update_fields=["claimed_at", "payout_request", "refund_request"])
    return IdempotencyClaim(record, process=True)


def idempotency_key_link(
    *,
    record: IdempotencyKey | None,
    transaction: Transaction | None = None,
    payout_request: PayoutRequest | None = None,
    refund_request: RefundRequest | None = None,
) -> None:
    """Record on a claimed key what its request created. Call it inside the write-ahead
    transaction that creates the object, so that the key names it exactly when it exists.

    Raises IdempotencyKeyInProgressError when a retry took the key over (this request outlived
    its lease): the caller's transaction rolls back and nothing is sent.
    """
    if record is None:
        return
    created = {
        name: value
        for name, value in zip(
            CREATED_FIELDS, (transaction, payout_request, refund_request), strict=True
        )
        if value is not None
    }
    linked = (
        IdempotencyKey.objects.filter(NOTHING_CREATED, pk=record.pk, claimed_at=record.claimed_at)
        .filter(response_status__isnull=True)
        .update(**created)
    )
    if not linked:
        raise IdempotencyKeyInProgressError(
            "A retry with this Idempotency-Key took it over: this request sent nothing."
        )
    for name, value in created.items():
        setattr(record, name, value)


def idempotency_key_answered(*, user: Any, key: str) -> bool:
    """Whether a live key answers its repeats without processing them: it holds the first
    answer, or names what the first request created."""
    if not getattr(user, "is_authenticated", False):
        return False
    return (
        IdempotencyKey.objects.filter(user=user, key=key, expires_at__gt=timezone.now())
        .exclude(NOTHING_CREATED & Q(response_status__isnull=True))
        .exists()
    )


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
    IdempotencyKey.objects.filter(pk=record.pk, claimed_at=record.claimed_at).update(
        response_status=status, response_body=stored
    )


def idempotency_key_release(*, record: IdempotencyKey) -> None:
    """Free the key of a request that failed having created nothing, for a corrected retry.

    A key that names what its request created is kept: retries answer from that object.
    """
    IdempotencyKey.objects.filter(
        NOTHING_CREATED, pk=record.pk, claimed_at=record.claimed_at, response_status__isnull=True
    ).delete()


def _in_progress() -> IdempotencyKeyInProgressError:
    return IdempotencyKeyInProgressError(
        "A request with this Idempotency-Key is still being processed; retry shortly."
    )


def _answers_for_first_request(record: IdempotencyKey) -> bool:
    """Whether what the first request created can answer for it now.

    A payout or refund request its maker's own request was still sending (sent, with no
    transaction yet) cannot: until the lease ends it may be mid-send.
    """
    if record.transaction_id:
        return True
    request = record.payout_request or record.refund_request
    return request is not None and not _being_sent(request)


def _being_sent(request: ApprovalRequest) -> bool:
    return (
        request.state == ApprovalRequest.State.SENT
        and request.checker_id is None
        and request.transaction_id is None
    )


def _withdraw_unsent_request(record: IdempotencyKey) -> bool:
    """Delete the payout or refund request a dead first request left unsent; False if it was
    sent meanwhile. Its transaction is recorded in one commit with the request's link to it,
    so a request without one sent nothing; locked, it cannot gain one while it is deleted.
    """
    request = record.payout_request or record.refund_request
    if request is None:
        return True
    locked = type(request).objects.select_for_update().get(pk=request.pk)
    if locked.transaction_id is not None:
        setattr(record, "payout_request" if record.payout_request else "refund_request", locked)
        return False
    locked.delete()
    record.payout_request = record.refund_request = None
    return True

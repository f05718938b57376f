"""Helpers for the money-out tests (B2C, reversals, balance, transaction status).

Daraja is mocked at the HTTP layer only: these build its answers and result bodies from the
published samples in tests/fixtures/daraja/, re-addressed to the request a test made.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from payments.enums import TransactionStatus, TransactionType
from payments.models import Transaction

from .conftest import SANDBOX, load_fixture

B2C_URL = f"{SANDBOX}/mpesa/b2c/v3/paymentrequest"
REVERSAL_URL = f"{SANDBOX}/mpesa/reversal/v1/request"
BALANCE_URL = f"{SANDBOX}/mpesa/accountbalance/v1/query"
STATUS_URL = f"{SANDBOX}/mpesa/transactionstatus/v1/query"

B2C_PATH = "/api/v1/payments/mpesa/b2c"
REVERSE_PATH = "/api/v1/payments/mpesa/reverse"
BALANCE_PATH = "/api/v1/payments/mpesa/balance"
REFRESH_PATH = "/api/v1/payments/mpesa/transactions/{}/refresh"
RESULT_PATH = "/api/v1/payments/callbacks/{kind}/{token}/{which}"

ACCEPTED_FIXTURES = {
    B2C_URL: "b2c/b2c_response_accepted.portal.json",
    REVERSAL_URL: "reversal/reversal_response_accepted.portal.json",
    BALANCE_URL: "balance/account_balance_response_accepted.portal.json",
    STATUS_URL: "transaction_status/transaction_status_response_accepted.portal.json",
}

_sequence = itertools.count(1)


def new_key() -> dict[str, str]:
    """A fresh Idempotency-Key header: POST b2c and POST reverse refuse a request without one."""
    return {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}


def grant(user, *codenames: str):
    """``user`` with the payments.Transaction permissions ``codenames``, re-fetched.

    Django caches permissions on the user object, so the returned user is a fresh instance.
    """
    content_type = ContentType.objects.get_for_model(Transaction)
    for codename in codenames:
        user.user_permissions.add(
            Permission.objects.get(content_type=content_type, codename=codename)
        )
    return type(user).objects.get(pk=user.pk)


def staff_user_with(django_user_model, username: str, *codenames: str):
    user = django_user_model.objects.create_user(username, password=f"pw-{username}-1")
    user.is_staff = True
    user.save()
    return grant(user, *codenames)


def accept(mock, url: str) -> None:
    """Answer every POST to ``url`` as Daraja does when it accepts the request.

    The published sample, with a ConversationID of its own per request (Daraja's are unique,
    and ours are stored under a unique constraint) and our OriginatorConversationID echoed.
    """

    def answer(request) -> tuple[int, dict, str]:
        body = load_fixture(ACCEPTED_FIXTURES[url])
        sent = json.loads(request.body)
        number = next(_sequence)
        body["ConversationID"] = f"AG_20240706_{number:020x}"
        body["OriginatorConversationID"] = sent.get(
            "OriginatorConversationID", f"{number}-{body['OriginatorConversationID']}"
        )
        return 200, {}, json.dumps(body)

    mock.add_callback("POST", url, callback=answer, content_type="application/json")


def sent(mock, url: str) -> list[dict[str, Any]]:
    """The JSON bodies of the requests that reached ``url``."""
    return [json.loads(call.request.body) for call in mock.calls if call.request.url == url]


def result_body(
    fixture: str,
    *,
    originator_conversation_id: str | None = None,
    conversation_id: str | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    """A published Result body re-addressed to our request; ``parameters`` replace Values.

    A parameter the sample lacks is appended. ResultCode and the other top-level keys can be
    set by passing them with a ``result__`` prefix, e.g. ``result__ResultCode=1``.
    """
    body = copy.deepcopy(load_fixture(fixture))
    result = body["Result"]
    if originator_conversation_id is not None:
        result["OriginatorConversationID"] = originator_conversation_id
    if conversation_id is not None:
        result["ConversationID"] = conversation_id
    items = result.setdefault("ResultParameters", {}).setdefault("ResultParameter", [])
    for key, value in parameters.items():
        if key.startswith("result__"):
            result[key.removeprefix("result__")] = value
            continue
        item = next((item for item in items if item["Key"] == key), None)
        if item is None:
            items.append({"Key": key, "Value": value})
        else:
            item["Value"] = value
    return body


def addressed_to(fixture: str, transaction: Transaction, **parameters: Any) -> dict[str, Any]:
    """A B2C or reversal result body naming ``transaction``'s conversation ids."""
    return result_body(
        fixture,
        originator_conversation_id=transaction.originator_conversation_id,
        conversation_id=transaction.conversation_id,
        **parameters,
    )


def paid_transaction(
    *,
    amount: int = 100,
    receipt: str = "NLJ7RT61SV",
    transaction_type: str = TransactionType.STK_PUSH,
    status: str = TransactionStatus.SUCCESS,
    **fields: Any,
) -> Transaction:
    """A payment into our shortcode as the STK or C2B flow leaves it once settled."""
    if transaction_type == TransactionType.STK_PUSH:
        fields.setdefault("checkout_request_id", f"ws_CO_{next(_sequence):020d}")
    return Transaction.objects.create(
        transaction_type=transaction_type,
        status=status,
        amount=amount,
        mpesa_receipt_number=receipt,
        phone_number="254708374149",
        environment="sandbox",
        shortcode="174379",
        result_code="0" if status == TransactionStatus.SUCCESS else "1032",
        **fields,
    )

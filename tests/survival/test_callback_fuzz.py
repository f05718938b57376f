"""Garbage at every callback URL, in bulk (make fuzz): 2,000 generated bodies per URL.

Each body is a genuine Daraja result for a row of ours, mangled one of many ways (NUL bytes,
invalid UTF-8, deep nesting, huge and exponent numbers, wrong types, missing keys, truncation,
1 MB, wrong content types, ids of another request), or plain garbage. Every one must be answered
without a 5xx, stored byte-exact (or refused by the size limit), and settle nothing it is not a
valid result for. The generator is seeded: a failure names the seed, the case and the body.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from django.test import Client

from payments.enums import CallbackOutcome, InquiryStatus, TransactionStatus
from payments.models import CallbackEvent, DarajaInquiry, Transaction
from payments.selectors import callback_events_needing_a_person
from tests.survival.callback_targets import (
    AMOUNT,
    CONFIRMATION_ACK,
    RESULT_ACK,
    ROUTES,
    VALIDATION_REJECTED,
    Target,
    columns_overflowing,
    target,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

BODIES_PER_URL = 2_000
SEED = 10
LIMIT = 64 * 1024
INBOX = "/admin/payments/callbackevent/"
CODE = re.compile(r"[A-Za-z0-9_.-]{1,20}")
RECEIPT = re.compile(r"[A-Za-z0-9]{1,20}")

NASTY_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 10**30, -(10**30), 1e308, -0.0, float("nan"),
    float("inf"), "", " ", "\x00", "\udfff", "\ud800x", "\ufffd", "1e300000", "1e1000000",
    "-5", "NaN", "Infinity", "0x10", "1_000", "\u0663", "x" * 300, "A" * 70, [], {}, [1, 2],
    {"a": {"b": []}}, "0", "1032", "R000002", "ws_CO_x", "20191219102115", "99999999999999",
    "00010101000000", "2547 ***** 126", "<script>alert(1)</script>", "'; DROP TABLE x;--",
]  # fmt: skip
OTHER_CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "application/json; charset=latin-1",
    "",
]


# -- generating bodies -------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    found = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _set(document: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _delete(document: Any, path: tuple) -> None:
    for key in path[:-1]:
        document = document[key]
    del document[path[-1]]


def _dumps(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8", errors="surrogatepass")


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice([33, 100, 1_000, 5_000, 20_000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"0" + b"}" * depth


def _swapped(rng: random.Random, genuine: dict) -> bytes:
    document = copy.deepcopy(genuine)
    for _ in range(rng.randint(1, 3)):
        paths = _paths(document)
        if paths:
            _set(document, rng.choice(paths), copy.deepcopy(rng.choice(NASTY_VALUES)))
    return _dumps(document)


def _deleted(rng: random.Random, genuine: dict) -> bytes:
    document = copy.deepcopy(genuine)
    paths = _paths(document)
    for path in rng.sample(paths, min(len(paths), rng.randint(1, 3))):
        try:
            _delete(document, path)
        except (KeyError, IndexError, TypeError):
            continue  # a parent went first
    return _dumps(document)


def _deep_value(rng: random.Random, genuine: dict) -> bytes:
    document = copy.deepcopy(genuine)
    _set(document, rng.choice(_paths(document)), "DEEP")
    return _dumps(document).replace(b'"DEEP"', _nested(rng), 1)


def _inserted(rng: random.Random, genuine: dict, choices: bytes) -> bytes:
    raw = bytearray(_dumps(genuine))
    for _ in range(rng.randint(1, 4)):
        raw.insert(rng.randrange(len(raw) + 1), rng.choice(choices))
    return bytes(raw)


def _in_a_string(rng: random.Random, genuine: dict, insert: bytes) -> bytes:
    raw = _dumps(genuine)
    quotes = [m.end() for m in re.finditer(rb'": "', raw)]
    at = rng.choice(quotes) if quotes else 0
    return raw[:at] + insert + raw[at:]


def _huge(rng: random.Random, genuine: dict) -> bytes:
    size = rng.choice([LIMIT, LIMIT + 1, 1024 * 1024])
    raw = _dumps({**genuine, "padding": ""})
    return raw[:-2] + b" " * (size - len(raw)) + raw[-2:]


def _other_ids(rng: random.Random, genuine: dict) -> bytes:
    text = _dumps(genuine).decode()
    for name in ("CheckoutRequestID", "OriginatorConversationID", "ConversationID", "TransID"):
        text = re.sub(rf'("{name}": )"[^"]*"', rf'\1"OTHER{rng.randrange(10**6)}"', text)
    return text.encode()


def _garbage(rng: random.Random, genuine: dict) -> bytes:
    return rng.choice(
        [
            rng.randbytes(rng.randint(0, 300)),
            b"",
            b"null",
            b"[]",
            b'"Result"',
            b"0",
            b"true",
            b"<xml><Result>0</Result></xml>",
            b"ResultCode=0&ResultDesc=ok",
            b'{"Body": null}',
            b'{"Result": "0"}',
            b'{"Body": {"stkCallback": []}}',
            b"\xef\xbb\xbf" + _dumps(genuine),  # a UTF-8 BOM
            b"\xff\xfe" + _dumps(genuine).decode().encode("utf-16-le"),
            _dumps(genuine).replace(b": ", b": 1e400, ", 1),
        ]
    )


GENERATORS: dict[str, Callable[[random.Random, dict], bytes]] = {
    "garbage": _garbage,
    "nul-byte": lambda rng, genuine: _inserted(rng, genuine, b"\x00"),
    "nul-in-a-string": lambda rng, genuine: _in_a_string(rng, genuine, b"\x00"),
    "invalid-utf8": lambda rng, genuine: _inserted(rng, genuine, bytes(range(0x80, 0x100))),
    "invalid-utf8-in-a-string": lambda rng, genuine: _in_a_string(rng, genuine, b"\xc3\x28\xff"),
    "deep": lambda rng, genuine: _nested(rng),
    "deep-value": _deep_value,
    "value-swapped": _swapped,
    "key-deleted": _deleted,
    "truncated": lambda rng, genuine: _dumps(genuine)[: rng.randrange(len(_dumps(genuine)))],
    "huge": _huge,
    "other-ids": _other_ids,
    "genuine-odd-content-type": lambda rng, genuine: _dumps(genuine),
}
# How often each case is drawn: mostly mangled genuine bodies, a few megabytes.
WEIGHTS = {name: 10 for name in GENERATORS} | {"value-swapped": 40, "huge": 1}


def generated(rng: random.Random, genuine: dict) -> tuple[str, bytes, str]:
    case = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    body = GENERATORS[case](rng, genuine)
    odd = case == "genuine-odd-content-type" or rng.random() < 0.05
    return case, body, rng.choice(OTHER_CONTENT_TYPES) if odd else "application/json"


# -- what a body may do to its target ------------------------------------------------------------


def _document(body: bytes) -> Any:
    """The body as our parsers read it (a stray invalid byte as U+FFFD), or None."""
    try:
        return json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


def _code(value: Any) -> str | None:
    text = None if isinstance(value, bool | float) else _text(value)
    return text if text and CODE.fullmatch(text) else None


def _values_named(document: Any, name_key: str, name: str) -> list[Any]:
    """The Value of every {name_key: name, "Value": v} anywhere in the document."""
    found = []
    if isinstance(document, dict):
        if document.get(name_key) == name and "Value" in document:
            found.append(document["Value"])
        children = document.values()
    else:
        children = document if isinstance(document, list) else ()
    for child in children:
        found += _values_named(child, name_key, name)
    return found


def _is_amount(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        return Decimal(str(value).strip()) == AMOUNT
    except InvalidOperation:
        return False


def _names_no_other_request(result: dict, row: Transaction | DarajaInquiry) -> bool:
    ours = {row.originator_conversation_id, row.conversation_id} - {None, ""}
    theirs = {_text(result.get(k)) for k in ("OriginatorConversationID", "ConversationID")}
    theirs -= {None}
    return not theirs or bool(ours & theirs)


def may_settle(route: str, body: bytes, row: Any, after: State) -> str | None:
    """Why ``body`` must not have changed ``row`` into ``after``; None if it may have."""
    if route.endswith("timeout"):
        # The URL says it: pending becomes unknown (asked again later), never a final state.
        unsettled = (TransactionStatus.UNKNOWN, InquiryStatus.UNKNOWN, None)
        if after.status in unsettled and after.payout_status in unsettled:
            return None
        return f"a queue timeout made it {after}"
    document = _document(body)
    if route == "stk":
        callback = document.get("Body", {}) if isinstance(document, dict) else {}
        callback = callback.get("stkCallback") if isinstance(callback, dict) else None
        if not isinstance(callback, dict):
            return "no stkCallback object"
        if _text(callback.get("CheckoutRequestID")) != row.checkout_request_id:
            return "another CheckoutRequestID"
        code = _code(callback.get("ResultCode"))
        if code is None:
            return "no ResultCode"
        if after.status == TransactionStatus.SUCCESS:
            if code != "0":
                return f"paid on code {code}"
            if not any(_is_amount(v) for v in _values_named(callback, "Name", "Amount")):
                return "paid without our amount"
            receipts = _values_named(callback, "Name", "MpesaReceiptNumber")
            if not any(RECEIPT.fullmatch(_text(v) or "") for v in receipts):
                return "paid without a receipt"
        return None
    result = document.get("Result") if isinstance(document, dict) else None
    if not isinstance(result, dict):
        return "no Result object"
    code = _code(result.get("ResultCode"))
    if code is None:
        return "no ResultCode"
    if route == "balance-result":
        return None
    if not _names_no_other_request(result, row):
        return "another request's ids"
    if route == "status-result":
        if after.payout_status == TransactionStatus.SUCCESS:
            statuses = [_text(v) for v in _values_named(result, "Key", "TransactionStatus")]
            amounts = _values_named(result, "Key", "Amount")
            if code != "0" or "Completed" not in statuses or not any(map(_is_amount, amounts)):
                return "a payout paid by a status result that does not say so"
        return None
    if after.status == TransactionStatus.SUCCESS:
        key = "TransactionAmount" if route == "b2c-result" else "Amount"
        if code != "0" or not any(map(_is_amount, _values_named(result, "Key", key))):
            return f"succeeded on code {code} without our amount"
    return None


@dataclass(frozen=True)
class State:
    """What a body may change: the row's status, and for a status inquiry its payout's."""

    status: str
    payout_status: str | None = None


def state(row: Any) -> State | None:
    if row is None:
        return None
    if isinstance(row, DarajaInquiry):
        rows = DarajaInquiry.objects.values_list("status", "transaction__status")
        return State(*rows.get(pk=row.pk))
    return State(Transaction.objects.values_list("status", flat=True).get(pk=row.pk))


# -- the run -------------------------------------------------------------------------------------


def expected_answer(route: str, response) -> None:
    answer = response.json()
    if route == "c2b-validation":
        assert answer == VALIDATION_REJECTED or answer["ResultCode"] == "0", answer
    else:
        assert answer == (CONFIRMATION_ACK if route == "c2b-confirmation" else RESULT_ACK)


@pytest.fixture
def inbox(django_user_model) -> Client:
    browser = Client()
    browser.force_login(django_user_model.objects.create_superuser("root", password="pw-root-1"))
    return browser


@pytest.mark.parametrize("route", ROUTES)
def test_garbage_at_a_callback_url_is_stored_answered_and_settles_nothing(client, inbox, route):
    rng = random.Random(f"{SEED}-{route}")
    aim: Target = target(route)
    before = state(aim.row)
    sent: list[bytes] = []
    cases: Counter = Counter()
    ledger = Transaction.objects.count()

    for number in range(BODIES_PER_URL):
        case, body, content_type = generated(rng, aim.genuine)
        cases[case] += 1
        where = f"seed {SEED}, {route} #{number} ({case}): {body[:300]!r}"
        # generic(): post() would re-encode bytes sent with a charset in the content type.
        response = client.generic("POST", aim.path, body, content_type=content_type)

        if len(body) > LIMIT:
            assert response.status_code == 413, where
            sent.append(b"")
        else:
            assert response.status_code == 200, where
            expected_answer(route, response)
            sent.append(body)
        after = state(aim.row)
        if after != before:
            reason = may_settle(route, body, aim.row, after)
            assert reason is None, f"{reason}: {before} -> {after}; {where}"
            if not route.endswith("timeout"):  # a timed-out row must stay unsettled after it
                aim = target(route)  # a fresh row for the bodies still to come
            before = state(aim.row)
        elif route == "c2b-confirmation":
            aim = target(route)  # a fresh TransID, or every body would be a duplicate

    events = list(CallbackEvent.objects.order_by("pk"))
    assert [event.received_bytes for event in events] == sent
    assert [e.pk for e in events if e.outcome == CallbackOutcome.RECEIVED] == []
    assert columns_overflowing() == []
    if route == "c2b-validation":
        assert Transaction.objects.count() == ledger  # validation books nothing
    if route == "c2b-confirmation":
        # Acknowledged "Success": each is on the ledger, or waits for a person.
        waiting = set(
            callback_events_needing_a_person(CallbackEvent.objects.all()).values_list(
                "pk", flat=True
            )
        )
        silent = [e.pk for e in events if e.transaction_id is None and e.pk not in waiting]
        assert silent == []
    for event in events[:: BODIES_PER_URL // 20]:
        assert inbox.get(f"{INBOX}{event.pk}/change/").status_code == 200
    assert set(cases) == set(GENERATORS)
    # Not vacuous: a genuine body still settles a fresh row of this kind.
    fresh = target(route)
    unsettled = state(fresh.row)
    answer = client.post(fresh.path, json.dumps(fresh.genuine), content_type="application/json")
    assert answer.status_code == 200
    if fresh.row is not None:
        assert state(fresh.row) != unsettled
    elif route == "c2b-confirmation":
        assert Transaction.objects.filter(mpesa_receipt_number=fresh.genuine["TransID"]).exists()
    else:
        assert answer.json()["ResultCode"] == "0"

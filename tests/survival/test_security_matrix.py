"""Who may do what: every endpoint of the API, the back office and the checkout page, asked by
each kind of caller, with the answer each must get.

Roles (payments/services/roles.py, README "For finance"): nobody logged in; the customer who
owns the transactions; another customer; a finance clerk; a finance manager; staff holding no
permission. A refused request reaches neither Daraja nor the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from rest_framework.authtoken.models import Token

from payments.models import CallbackEvent, PayoutRequest, RefundRequest, Transaction
from payments.services.checkout import checkout_link_create, checkout_link_key
from payments.services.roles import CLERK, MANAGER
from tests.admin.conftest import ConfirmingClient
from tests.admin.helpers import (
    BALANCE,
    EXPORT,
    PAYOUT,
    QUERY_STATUS,
    REFUND_BULK,
    REPROCESS,
    decide_url,
    refund_url,
    stk_event,
)
from tests.payments.conftest import (
    OAUTH_URL,
    PUSH_PATH,
    SANDBOX,
    STATUS_PATH,
    STK_PUSH_URL,
    STK_QUERY_URL,
    TRANSACTIONS_PATH,
    load_fixture,
    push_accepted,
    stk_transaction,
)
from tests.payments.money_out import (
    B2C_PATH,
    B2C_URL,
    BALANCE_PATH,
    BALANCE_URL,
    REFRESH_PATH,
    REVERSAL_URL,
    REVERSE_PATH,
    STATUS_URL,
    accept,
    new_key,
    paid_transaction,
)

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "user", "other_user", "clerk", "manager", "staff")
API = "/api/v1/payments/mpesa"
REGISTER_URL = f"{SANDBOX}/mpesa/c2b/v2/registerurl"
REFUND_REQUESTS = "/admin/payments/refundrequest/"
CANCELLED = "stk/stk_query_response_cancelled_1032.2017.php-mpesa.json"
# The admin sends whoever is not active staff to its login page.
LOGIN = "login"


@dataclass
class World:
    """The callers, and what they ask about: a customer's push and payment, requests waiting
    for approval (made by another manager), a stored callback that failed, a checkout link."""

    users: dict[str, Any]
    push: Transaction
    payment: Transaction
    payout_request: PayoutRequest
    refund_request: RefundRequest
    event: CallbackEvent
    # One link per role to pay, and a last one already being paid.
    links: list[str]
    link_payment: Transaction

    def client(self, role: str, *, admin: bool) -> Client:
        user = self.users.get(role)
        if admin:
            client = ConfirmingClient()
            if user is not None:
                client.force_login(user)
            return client
        client = Client()
        if user is not None:
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.get(user=user).key}"
        return client


def staff_member(django_user_model, username: str, group: str | None):
    user = django_user_model.objects.create_user(username, password=f"pw-{username}-1")
    user.is_staff = group is not None or username == "staff"
    user.save()
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def world(django_user_model, daraja) -> World:
    users = {
        "user": staff_member(django_user_model, "user", None),
        "other_user": staff_member(django_user_model, "other_user", None),
        "clerk": staff_member(django_user_model, "clerk", CLERK),
        "manager": staff_member(django_user_model, "manager", MANAGER),
        "staff": staff_member(django_user_model, "staff", None),
    }
    for user in users.values():
        Token.objects.create(user=user)
    checker = staff_member(django_user_model, "checker", MANAGER)
    owner = users["user"]
    push = stk_transaction(checkout_request_id="ws_CO_matrix_push", user=owner)
    payment = paid_transaction(amount=100, user=owner)
    links = [
        checkout_link_create(amount=10, account_reference=f"INV{i}") for i in range(len(ROLES) + 1)
    ]
    for url in (B2C_URL, REVERSAL_URL, BALANCE_URL, STATUS_URL):
        accept(daraja, url)
    daraja.add_callback(
        "POST",
        STK_PUSH_URL,
        callback=lambda request: (200, {}, json.dumps(push_accepted(f"ws_CO_{id(request)}"))),
    )
    daraja.post(STK_QUERY_URL, json=load_fixture(CANCELLED))
    daraja.post(REGISTER_URL, json=load_fixture("c2b/c2b_register_url_response.portal.json"))
    return World(
        users=users,
        push=push,
        payment=payment,
        payout_request=PayoutRequest.objects.create(
            state=PayoutRequest.State.AWAITING_APPROVAL,
            phone_number="254708374149",
            amount=20_000,
            command_id="BusinessPayment",
            remarks="Supplier",
            maker=checker,
        ),
        refund_request=RefundRequest.objects.create(
            state=RefundRequest.State.AWAITING_APPROVAL,
            original=payment,
            amount=30,
            remarks="Refund",
            maker=checker,
        ),
        event=stk_event(push, outcome="error", error="boom"),
        links=links,
        link_payment=Transaction.objects.create(
            transaction_type="STK_PUSH",
            status="pending",
            amount=10,
            phone_number="254708374149",
            account_reference=f"INV{len(ROLES)}",
            environment="sandbox",
            checkout_request_id="ws_CO_matrix_link",
            checkout_link=checkout_link_key(links[-1]),
        ),
    )


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: Callable[[World], str]
    # The body each role sends (its index among ROLES tells it apart from the others).
    data: Callable[[World, int], dict] = lambda world, index: {}
    admin: bool = False
    # Whether an allowed request asks Daraja something.
    calls_daraja: bool = False


def phone(index: int) -> str:
    return f"07083741{index:02d}"


ENDPOINTS = {
    "stk-push": Endpoint(
        "post",
        lambda w: PUSH_PATH,
        lambda w, i: {"phone_number": phone(i), "amount": 1, "account_reference": "INV1"},
        calls_daraja=True,
    ),
    "stk-push status": Endpoint("get", lambda w: STATUS_PATH.format(w.push.checkout_request_id)),
    "transactions list": Endpoint("get", lambda w: TRANSACTIONS_PATH),
    "transaction detail": Endpoint("get", lambda w: f"{TRANSACTIONS_PATH}/{w.push.pk}"),
    "transaction refresh": Endpoint(
        "post", lambda w: REFRESH_PATH.format(w.push.pk), calls_daraja=True
    ),
    "b2c": Endpoint(
        "post",
        lambda w: B2C_PATH,
        lambda w, i: {"phone_number": phone(i), "amount": 100, "remarks": "Supplier"},
        calls_daraja=True,
    ),
    "reverse": Endpoint(
        "post",
        lambda w: REVERSE_PATH,
        lambda w, i: {"transaction": str(w.payment.pk), "amount": 10},
        calls_daraja=True,
    ),
    "balance GET": Endpoint("get", lambda w: BALANCE_PATH),
    "balance POST": Endpoint("post", lambda w: BALANCE_PATH, calls_daraja=True),
    "register-urls": Endpoint("post", lambda w: f"{API}/register-urls", calls_daraja=True),
    "checkout link": Endpoint(
        "post", lambda w: f"{API}/checkout", lambda w, i: {"amount": 10, "account_reference": "A"}
    ),
    "admin refund": Endpoint(
        "post",
        lambda w: refund_url(w.payment),
        lambda w, i: {"amount": "10", "remarks": "Refund", "step": "execute"},
        admin=True,
        calls_daraja=True,
    ),
    "admin refund selected": Endpoint(
        "post",
        lambda w: REFUND_BULK,
        lambda w, i: {"ids": [str(w.payment.pk)]},
        admin=True,
        calls_daraja=True,
    ),
    "admin payout": Endpoint(
        "post",
        lambda w: PAYOUT,
        lambda w, i: {
            "phone_number": phone(i),
            "amount": "500",
            "command_id": "BusinessPayment",
            "remarks": "Supplier",
            "step": "execute",
        },
        admin=True,
        calls_daraja=True,
    ),
    "admin balance GET": Endpoint("get", lambda w: BALANCE, admin=True),
    "admin balance refresh": Endpoint("post", lambda w: BALANCE, admin=True, calls_daraja=True),
    "admin export": Endpoint(
        "post", lambda w: EXPORT, lambda w, i: {"ids": [str(w.payment.pk)]}, admin=True
    ),
    "admin query status": Endpoint(
        "post",
        lambda w: QUERY_STATUS,
        lambda w, i: {"ids": [str(w.push.pk)]},
        admin=True,
        calls_daraja=True,
    ),
    "admin payout approval": Endpoint(
        "post",
        lambda w: decide_url(w.payout_request),
        lambda w, i: {"decision": "approve"},
        admin=True,
        calls_daraja=True,
    ),
    "admin refund approval": Endpoint(
        "post",
        lambda w: f"{REFUND_REQUESTS}{w.refund_request.pk}/decide/",
        lambda w, i: {"decision": "approve"},
        admin=True,
        calls_daraja=True,
    ),
    "admin callback re-process": Endpoint(
        "post", lambda w: REPROCESS, lambda w, i: {"ids": [str(w.event.pk)]}, admin=True
    ),
    # The checkout page: the signed link is the credential, whoever is logged in.
    "checkout page start": Endpoint(
        "post",
        lambda w: "/pay/{link}/start",
        lambda w, i: {"phone_number": phone(i)},
        calls_daraja=True,
    ),
    "checkout page": Endpoint("get", lambda w: "/pay/{link}"),
    "checkout page status": Endpoint(
        "get", lambda w: f"/pay/{w.links[-1]}/status/{w.link_payment.pk}"
    ),
    "checkout page status, another link": Endpoint(
        "get", lambda w: f"/pay/{w.links[0]}/status/{w.link_payment.pk}"
    ),
}

# fmt: off
#                                       anonymous user   other  clerk  manager staff
MATRIX: dict[str, tuple] = {
    "stk-push":                           (401,  201,   201,   201,   201,   201),
    "stk-push status":                    (401,  200,   404,   200,   200,   404),
    "transactions list":                  (401,  200,   200,   200,   200,   200),
    "transaction detail":                 (401,  200,   404,   200,   200,   404),
    "transaction refresh":                (401,  403,   403,   403,   200,   403),
    "b2c":                                (401,  403,   403,   403,   202,   403),
    "reverse":                            (401,  403,   403,   403,   202,   403),
    "balance GET":                        (401,  403,   403,   403,   200,   403),
    "balance POST":                       (401,  403,   403,   403,   202,   403),
    "register-urls":                      (401,  403,   403,   403,   200,   403),
    # Only an account holding payments.create_checkout_link; no finance role does.
    "checkout link":                      (401,  403,   403,   403,   403,   403),
    "admin refund":                       (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "admin refund selected":              (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "admin payout":                       (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "admin balance GET":                  (LOGIN, LOGIN, LOGIN, 403,  200,   403),
    "admin balance refresh":              (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "admin export":                       (LOGIN, LOGIN, LOGIN, 200,  200,   403),
    "admin query status":                 (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "admin payout approval":              (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "admin refund approval":              (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "admin callback re-process":          (LOGIN, LOGIN, LOGIN, 403,  302,   403),
    "checkout page start":                (201,  201,   201,   201,   201,   201),
    "checkout page":                      (200,  200,   200,   200,   200,   200),
    "checkout page status":               (200,  200,   200,   200,   200,   200),
    "checkout page status, another link": (404,  404,   404,   404,   404,   404),
}
# fmt: on
ALLOWED = (200, 201, 202, 302)


def _answer(response) -> int | str:
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith("/admin/login/"):
        return LOGIN
    return response.status_code


def _daraja_calls(daraja) -> int:
    return len([call for call in daraja.calls if call.request.url.split("?")[0] != OAUTH_URL])


@pytest.mark.parametrize("name", MATRIX)
def test_every_role_gets_the_answer_the_matrix_gives(name, world, daraja):
    endpoint = ENDPOINTS[name]
    answers, reached_daraja = {}, []
    for index, role in enumerate(ROLES):
        client = world.client(role, admin=endpoint.admin)
        path = endpoint.path(world).format(link=world.links[index])
        data = endpoint.data(world, index)
        before = _daraja_calls(daraja)
        if endpoint.method == "get":
            response = client.get(path)
        elif endpoint.admin:
            response = client.post(path, data)
        else:
            headers = new_key() if name in ("b2c", "reverse") else {}
            response = client.post(
                path, json.dumps(data), content_type="application/json", **headers
            )
        answers[role] = _answer(response)
        if _daraja_calls(daraja) > before:
            reached_daraja.append(role)

    assert answers == dict(zip(ROLES, MATRIX[name], strict=True))
    allowed = [role for role in ROLES if answers[role] in ALLOWED]
    assert reached_daraja == (allowed if endpoint.calls_daraja else [])


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, text)
        else:
            yield text, pattern.name


def test_the_matrix_asks_every_route_of_the_api_and_the_checkout_page(world):
    asked = {
        resolve(ENDPOINTS[name].path(world).format(link=world.links[0])).url_name for name in MATRIX
    }

    routes = {
        name
        for text, name in _routes(get_resolver().url_patterns)
        if text.startswith(("^api/v1/payments/mpesa/", "^pay/"))
    }
    assert routes <= asked
    assert len(routes) == 13  # the page, its start and status; ten API routes


def test_each_role_lists_only_the_transactions_it_may_see(world):
    counts = {
        role: world.client(role, admin=False).get(TRANSACTIONS_PATH).json().get("count")
        for role in ROLES
    }

    everything = Transaction.objects.count()
    assert counts == {
        "anonymous": None,
        "user": 2,
        "other_user": 0,
        "clerk": everything,
        "manager": everything,
        "staff": 0,
    }

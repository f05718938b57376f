"""Where a request comes from: the optional callback allowlist (API.md §11.2), the admin login
limits, and the checkout page's rate limit, all reading the client address behind the trusted
proxies only (payments/network.py)."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

from payments.checks import check_payments_settings
from payments.models import CallbackEvent, Transaction
from payments.services.checkout import checkout_link_create
from payments.services.roles import CLERK, MANAGER
from tests.admin.conftest import ConfirmingClient
from tests.admin.helpers import CALLBACKS, REPROCESS, stk_success_body
from tests.money_safety.test_checkout_once import accept_pushes
from tests.payments.conftest import load_fixture, stk_transaction

from .test_concurrency import DELIVERIES
from .test_security_matrix import phone, staff_member

pytestmark = pytest.mark.django_db

SAFARICOM_ADDRESS = "196.201.214.200"
ELSEWHERE = "203.0.113.9"
PROXY = "10.0.0.2"
SECRET = "test-callback-secret-0123456789abcdef"
CONFIRMATION_PATH = f"/api/v1/payments/callbacks/c2b/{SECRET}/confirmation"
VALIDATION_PATH = f"/api/v1/payments/callbacks/c2b/{SECRET}/validation"
MASKED_C2B = "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json"


def allowlist(networks, proxies: int = 0):
    return override_settings(
        PAYMENTS={**settings.PAYMENTS, "CALLBACK_ALLOWED_NETWORKS": networks},
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies},
    )


def post_stk_result(push: Transaction, **meta):
    body = stk_success_body(push)
    return Client().post(
        f"/api/v1/payments/callbacks/stk/{push.callback_token}",
        json.dumps(body),
        content_type="application/json",
        **meta,
    )


@pytest.fixture
def push() -> Transaction:
    return stk_transaction(checkout_request_id="ws_CO_allowlist")


def test_the_allowlist_is_off_by_default(push):
    response = post_stk_result(push, REMOTE_ADDR=ELSEWHERE)

    assert response.status_code == 200
    push.refresh_from_db()
    assert push.status == "success"


@pytest.mark.parametrize(
    ("networks", "address", "processed"),
    [
        (["safaricom"], SAFARICOM_ADDRESS, True),
        (["safaricom"], ELSEWHERE, False),
        ("safaricom, 203.0.113.0/24", ELSEWHERE, True),
        (["203.0.113.0/24"], SAFARICOM_ADDRESS, False),
        (["safaricom"], f"::ffff:{SAFARICOM_ADDRESS}", True),
    ],
)
def test_only_allowed_networks_have_their_callbacks_processed(push, networks, address, processed):
    with allowlist(networks):
        response = post_stk_result(push, REMOTE_ADDR=address)

    push.refresh_from_db()
    event = CallbackEvent.objects.get()
    if processed:
        assert (response.status_code, push.status, event.outcome) == (200, "success", "processed")
    else:
        assert (response.status_code, push.status, event.outcome) == (403, "pending", "refused")
        assert response.json() == {
            "ResultCode": 1,
            "ResultDesc": "Refused: source address not allowed",
        }


def test_a_refused_callback_is_stored_whole_logged_and_left_for_a_person(push, caplog):
    with allowlist(["safaricom"]):
        post_stk_result(push, REMOTE_ADDR=ELSEWHERE)

    event = CallbackEvent.objects.get()
    assert json.loads(event.body) == stk_success_body(push)
    assert event.source_ip == ELSEWHERE
    assert event.error == (
        f"source address {ELSEWHERE} is not in PAYMENTS['CALLBACK_ALLOWED_NETWORKS']"
    )
    assert f"callback event {event.pk} refused: source address {ELSEWHERE}" in caplog.text
    # A replay of failed callbacks leaves it alone: it may be forged.
    call_command("mpesa_replay_callbacks", "--failed", stdout=io.StringIO())
    push.refresh_from_db()
    assert push.status == "pending"


def test_a_manager_who_trusts_a_refused_callback_re_processes_it(push, django_user_model):
    with allowlist(["safaricom"]):
        post_stk_result(push, REMOTE_ADDR=ELSEWHERE)
    event = CallbackEvent.objects.get()
    manager = staff_member(django_user_model, "manager", MANAGER)
    client = ConfirmingClient()
    client.force_login(manager)

    assert client.get(f"{CALLBACKS}?outcome__exact=refused").context["cl"].result_count == 1
    response = client.post(REPROCESS, {"ids": [str(event.pk)]})

    assert response.status_code == 302
    push.refresh_from_db()
    event.refresh_from_db()
    assert (push.status, event.outcome) == ("success", "processed")


@pytest.mark.parametrize("kind", DELIVERIES)
def test_every_callback_url_stores_and_refuses_other_sources(kind):
    delivery = DELIVERIES[kind]()
    before = delivery.state()

    with allowlist(["safaricom"]):
        response = Client().post(
            delivery.path,
            json.dumps(delivery.body),
            content_type="application/json",
            REMOTE_ADDR=ELSEWHERE,
        )

    assert response.status_code == 403
    event = CallbackEvent.objects.get(token=delivery.token)
    assert (event.outcome, event.received_bytes) == ("refused", json.dumps(delivery.body).encode())
    assert delivery.state() == before


@pytest.mark.parametrize(
    ("path", "acknowledgement"),
    [
        (CONFIRMATION_PATH, {"ResultCode": 0, "ResultDesc": "Success"}),
        (VALIDATION_PATH, {"ResultCode": "0", "ResultDesc": "Accepted"}),
    ],
)
def test_c2b_notifications_are_held_to_the_allowlist_too(path, acknowledgement):
    body = json.dumps(load_fixture(MASKED_C2B))
    with allowlist(["safaricom"]):
        refused = Client().post(path, body, content_type="application/json", REMOTE_ADDR=ELSEWHERE)
        accepted = Client().post(
            path, body, content_type="application/json", REMOTE_ADDR=SAFARICOM_ADDRESS
        )

    assert refused.status_code == 403
    assert (accepted.status_code, accepted.json()) == (200, acknowledgement)
    assert sorted(CallbackEvent.objects.values_list("outcome", flat=True)) == [
        "processed",
        "refused",
    ]
    assert Transaction.objects.filter(transaction_type="C2B").count() == (
        1 if path == CONFIRMATION_PATH else 0
    )


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "processed"),
    [
        # No proxy: X-Forwarded-For is the client's own words.
        (0, ELSEWHERE, SAFARICOM_ADDRESS, False),
        # One proxy: it appends who connected to it; what the client wrote stays to the left.
        (1, PROXY, f"{SAFARICOM_ADDRESS}, {ELSEWHERE}", False),
        (1, PROXY, SAFARICOM_ADDRESS, True),
        (1, PROXY, f"{ELSEWHERE}, {SAFARICOM_ADDRESS}", True),
        # Two proxies but one hop: the request did not come through them.
        (2, PROXY, SAFARICOM_ADDRESS, False),
        (1, PROXY, "not-an-address", False),
        (1, SAFARICOM_ADDRESS, "", False),
    ],
)
def test_a_forged_x_forwarded_for_never_passes(push, proxies, remote, forwarded, processed):
    with allowlist(["safaricom"], proxies=proxies):
        response = post_stk_result(push, REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert response.status_code == (200 if processed else 403)
    push.refresh_from_db()
    assert push.status == ("success" if processed else "pending")


def test_an_unreadable_allowlist_is_a_system_check_error_and_refuses_everything(push):
    with allowlist(["safaricom", "196.201.214.300"]):
        errors = [m for m in check_payments_settings() if m.id == "payments.E011"]
        response = post_stk_result(push, REMOTE_ADDR=SAFARICOM_ADDRESS)

    assert len(errors) == 1
    assert "'196.201.214.300' is not an IP address or network" in errors[0].msg
    assert response.status_code == 403
    assert "cannot be read" in CallbackEvent.objects.get().error


def test_the_checkout_throttle_counts_the_address_behind_trusted_proxies_only(daraja):
    accept_pushes(daraja)

    def start(index: int) -> int:
        token = checkout_link_create(amount=10, account_reference=f"A{index}")
        return (
            Client()
            .post(
                f"/pay/{token}/start",
                json.dumps({"phone_number": phone(index)}),
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=f"198.51.100.{index}",
            )
            .status_code
        )

    with override_settings(
        PAYMENTS={**settings.PAYMENTS, "STK_RATE_PER_USER": "2/min"},
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": None},
    ):
        answers = [start(index) for index in range(3)]

    # DRF alone takes each forged header for a new client when NUM_PROXIES is unset.
    assert answers == [201, 201, 429]


# -- Admin login limits ---------------------------------------------------------------------------

LOGIN_PATH = "/admin/login/"
THROTTLED = "Too many failed logins"


def log_in(username: str, password: str, address: str = "127.0.0.1", **meta) -> Client:
    client = Client()
    client.post(
        LOGIN_PATH,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        **meta,
    )
    return client


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def manager(django_user_model):
    return staff_member(django_user_model, "manager", MANAGER)


def test_five_failed_logins_lock_the_username_even_with_the_right_password(manager, caplog):
    # Any spelling of the name counts against it.
    for username in ("manager", "Manager", " manager", "MANAGER", "manager"):
        assert not logged_in(log_in(username, "wrong"))

    client = Client()
    page = client.post(
        LOGIN_PATH, {"username": "manager", "password": "pw-manager-1", "next": "/admin/"}
    )

    assert not logged_in(client)
    assert THROTTLED in page.content.decode()
    assert "too many failed logins for this username" in caplog.text


def test_four_failed_logins_do_not_lock_it(manager):
    for _ in range(4):
        log_in("manager", "wrong")

    assert logged_in(log_in("manager", "pw-manager-1"))


def test_a_locked_username_does_not_lock_the_others_at_the_same_address(manager, django_user_model):
    staff_member(django_user_model, "clerk", CLERK)
    for _ in range(6):
        log_in("manager", "wrong")

    assert logged_in(log_in("clerk", "pw-clerk-1"))


def test_a_successful_login_clears_its_username_failures(manager):
    for _ in range(4):
        log_in("manager", "wrong")
    assert logged_in(log_in("manager", "pw-manager-1"))
    for _ in range(4):
        log_in("manager", "wrong")

    assert logged_in(log_in("manager", "pw-manager-1"))


def test_an_address_trying_many_usernames_is_locked_and_others_are_not(manager):
    for n in range(20):
        log_in(f"guess{n}", "wrong", address=ELSEWHERE)

    assert not logged_in(log_in("manager", "pw-manager-1", address=ELSEWHERE))
    assert logged_in(log_in("manager", "pw-manager-1", address=SAFARICOM_ADDRESS))


@pytest.mark.parametrize("proxies", [0, 1])
def test_a_forged_x_forwarded_for_does_not_escape_the_address_limit(manager, proxies):
    remote = ELSEWHERE if proxies == 0 else PROXY
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}):
        for n in range(20):
            forged = f"198.51.100.{n}"
            real = ", " + ELSEWHERE if proxies else ""
            log_in(f"guess{n}", "wrong", address=remote, HTTP_X_FORWARDED_FOR=forged + real)
        client = log_in(
            "manager",
            "pw-manager-1",
            address=remote,
            HTTP_X_FORWARDED_FOR="198.51.100.99" + (", " + ELSEWHERE if proxies else ""),
        )

    assert not logged_in(client)

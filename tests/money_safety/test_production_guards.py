"""Issue 9, production guards: points 17 (simulator mode), 18 (secrets in logged paths),
19 (both shortcodes' balances) and 21 (refunds in the dashboard's amount received)."""

from __future__ import annotations

import base64
import importlib
import io
import json
import logging
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import requests
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, clear_url_caches, reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

import mpesa_site.urls
import payments.urls
from payments.checks import check_payments_settings
from payments.enums import InquiryStatus, TransactionStatus, TransactionType
from payments.models import BalanceSnapshot, DarajaInquiry, Transaction
from payments.redaction import REDACTED, redact_callback_secrets
from payments.selectors import payments_dashboard
from payments.services.roles import MANAGER
from tests.payments.conftest import api_client_for, load_fixture
from tests.payments.money_out import (
    BALANCE_PATH,
    BALANCE_URL,
    accept,
    paid_transaction,
    sent,
    staff_user_with,
)
from tests.test_settings import REPO_ROOT, clean_env, manage, output_of, production_env

# -- 17. Simulator mode is a development mode --------------------------------------------------

OAUTH_PATH = "/simulator/daraja/oauth/v1/generate?grant_type=client_credentials"


def simulator_payments(base: dict) -> dict:
    return {
        **base,
        "ENVIRONMENT": "simulator",
        "BASE_URL": "http://127.0.0.1:8000/simulator/daraja",
    }


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@pytest.fixture
def load_site_urls():
    """mpesa_site.urls decides its routes when imported: import it again under the test's
    settings, and put the suite's routes back afterwards."""
    original = mpesa_site.urls.urlpatterns

    def load() -> None:
        importlib.reload(mpesa_site.urls)
        clear_url_caches()

    yield load
    mpesa_site.urls.urlpatterns = original
    clear_url_caches()


def test_p17_simulator_mode_without_debug_is_a_system_check_error(settings):
    settings.DEBUG = False
    settings.PAYMENTS = simulator_payments(settings.PAYMENTS)

    errors = [m for m in check_payments_settings() if m.id == "payments.E010"]

    assert len(errors) == 1
    assert errors[0].is_serious()
    assert "DJANGO_DEBUG" in errors[0].hint
    assert "sandbox" in errors[0].hint


def test_p17_simulator_mode_with_debug_passes_the_check(settings):
    settings.DEBUG = True
    settings.PAYMENTS = simulator_payments(settings.PAYMENTS)

    assert not [m for m in check_payments_settings() if m.id == "payments.E010"]


@pytest.mark.parametrize("command", [("check",), ("check", "--deploy")])
def test_p17_a_deployment_in_simulator_mode_fails_its_checks(tmp_path, command):
    env = {**production_env(tmp_path), "MPESA_ENVIRONMENT": "simulator"}

    result = manage(*command, env=env)

    assert result.returncode != 0, output_of(result)
    assert "payments.E010" in result.stderr, output_of(result)


@pytest.mark.django_db
@pytest.mark.parametrize(("debug", "status"), [(False, 404), (True, 200)])
def test_p17_simulated_daraja_is_mounted_only_with_debug_on(
    client, settings, load_site_urls, debug, status
):
    settings.DEBUG = debug
    settings.PAYMENTS = simulator_payments(settings.PAYMENTS)
    load_site_urls()

    # The simulator hands an OAuth token to whoever knows its consumer key and secret.
    response = client.get(
        OAUTH_PATH,
        HTTP_AUTHORIZATION=basic(
            settings.PAYMENTS["CONSUMER_KEY"], settings.PAYMENTS["CONSUMER_SECRET"]
        ),
    )

    assert response.status_code == status, response.content


PRINT_PAYMENTS = (
    "import json; from django.conf import settings; print(json.dumps(settings.PAYMENTS))"
)


def payments_of(env: dict[str, str]) -> dict:
    result = manage("shell", "--no-imports", "-c", PRINT_PAYMENTS, env=env)
    assert result.returncode == 0, output_of(result)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_p17_the_simulators_public_secrets_never_apply_without_debug(tmp_path):
    # Its keys and callback secret are in the source: with them, anyone could post a C2B
    # confirmation to /callbacks/c2b/<secret>/confirmation and book a payment that never was.
    env = {**clean_env(tmp_path, debug=False), "MPESA_ENVIRONMENT": "simulator"}

    payments = payments_of(env)

    for name in ("CONSUMER_KEY", "CONSUMER_SECRET", "PASSKEY", "CALLBACK_SECRET", "BASE_URL"):
        assert payments[name] == "", name
    assert payments["ENVIRONMENT"] == "simulator"


def test_p17_make_run_still_gets_the_simulators_values(tmp_path):
    env = {**clean_env(tmp_path, debug=True), "MPESA_ENVIRONMENT": "simulator"}

    payments = payments_of(env)

    assert payments["CONSUMER_KEY"] == "simulator-consumer-key"
    assert payments["BASE_URL"] == "http://127.0.0.1:8000/simulator/daraja"
    assert len(payments["CALLBACK_SECRET"]) >= 32


# -- 18. Callback paths are secrets: redacted in every log line --------------------------------

UNKNOWN_TOKEN = "Zq8w" + "x" * 20


def configured_handler(logger_name: str, handler_name: str) -> logging.Handler:
    """The handler the project's LOGGING attached (pytest adds its own beside it)."""
    (handler,) = [h for h in logging.getLogger(logger_name).handlers if h.name == handler_name]
    return handler


@pytest.fixture
def console():
    """What the project's console handler prints, read back."""
    handler = configured_handler("", "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.mark.django_db
def test_p18_unknown_callback_token_is_redacted_in_the_not_found_line(client, console):
    response = client.post(
        f"/api/v1/payments/callbacks/stk/{UNKNOWN_TOKEN}", "{}", content_type="application/json"
    )

    assert response.status_code == 404
    printed = console.getvalue()
    assert f"Not Found: /api/v1/payments/callbacks/stk/{REDACTED}" in printed
    assert UNKNOWN_TOKEN not in printed


@pytest.mark.django_db
def test_p18_the_c2b_secret_is_redacted_in_django_request_lines(client, console, settings):
    secret = settings.PAYMENTS["CALLBACK_SECRET"]

    response = client.get(f"/api/v1/payments/callbacks/c2b/{secret}/confirmation")
    near_miss = client.post(
        f"/api/v1/payments/callbacks/c2b/{secret[:-1]}X/validation",
        "{}",
        content_type="application/json",
    )

    assert (response.status_code, near_miss.status_code) == (405, 404)
    printed = console.getvalue()
    assert (
        f"Method Not Allowed (GET): /api/v1/payments/callbacks/c2b/{REDACTED}/confirmation"
        in printed
    )
    assert f"Not Found: /api/v1/payments/callbacks/c2b/{REDACTED}/validation" in printed
    assert secret[:-1] not in printed


def callback_paths(token: str) -> list[str]:
    """Every callback route of the app, with ``token`` in its secret segment."""
    paths = []
    for route in payments.urls.urlpatterns:
        if isinstance(route, URLPattern) and "callbacks/" in str(route.pattern):
            (segment,) = route.pattern.regex.groupindex
            paths.append(reverse(f"payments:{route.name}", kwargs={segment: token}))
    return paths


def test_p18_every_callback_route_is_redacted():
    paths = callback_paths(UNKNOWN_TOKEN)
    assert len(paths) >= 11

    for path in paths:
        line = f'"POST https://pay.example.co.ke{path}?x=1 HTTP/1.1" 200 36'
        assert redact_callback_secrets(line) == line.replace(UNKNOWN_TOKEN, REDACTED), path


def test_p18_a_secret_in_a_path_of_the_wrong_shape_is_redacted_too():
    for path in (f"callbacks/{UNKNOWN_TOKEN}", f"callbacks/stk/result/{UNKNOWN_TOKEN}"):
        line = f"Not Found: /api/v1/payments/{path}"
        assert redact_callback_secrets(line) == line.replace(UNKNOWN_TOKEN, REDACTED)


def test_p18_a_traceback_naming_a_callback_path_is_redacted(console):
    try:
        raise RuntimeError(f"could not process /api/v1/payments/callbacks/b2c/{UNKNOWN_TOKEN}")
    except RuntimeError:
        logging.getLogger("django.request").exception(
            "Internal Server Error: %s", f"/api/v1/payments/callbacks/b2c/{UNKNOWN_TOKEN}/result"
        )

    printed = console.getvalue()
    assert f"Internal Server Error: /api/v1/payments/callbacks/b2c/{REDACTED}/result" in printed
    assert f"RuntimeError: could not process /api/v1/payments/callbacks/b2c/{REDACTED}\n" in (
        printed
    )
    assert UNKNOWN_TOKEN not in printed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, *, timeout: float = 20.0, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    return True


@pytest.mark.parametrize(
    ("debug", "log_format"), [(False, "plain"), (True, "plain"), (False, "json")]
)
def test_p18_runserver_prints_callback_paths_redacted(tmp_path, debug, log_format):
    """Django's DEFAULT_LOGGING gives the django and django.server loggers handlers of their
    own; runserver's access lines and the django.request lines must pass the filter too, in
    either log format."""
    secret = secrets.token_urlsafe(32)
    env = {
        **clean_env(tmp_path, debug=debug),
        "DJANGO_LOG_FORMAT": log_format,
        "MPESA_CALLBACK_SECRET": secret,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    base = f"http://127.0.0.1:{free_port()}"
    server = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", base[7:]],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    confirmation = f"/api/v1/payments/callbacks/c2b/{secret}/confirmation"
    try:
        wait_until(lambda: answers(base + "/nothing-here"), message="runserver to answer")
        assert requests.get(base + confirmation, timeout=10).status_code == 405
        wait_until(lambda: any(" 405 " in line for line in lines), message="the access line")
    finally:
        server.terminate()
        server.wait(10)
        reader.join(10)
    printed = "".join(lines)
    assert secret not in printed
    if log_format == "json":
        # Each line one JSON object: what a log shipper reads is the message inside.
        printed = "\n".join(json.loads(line)["message"] for line in lines if line.startswith("{"))

    redacted = f"/api/v1/payments/callbacks/c2b/{REDACTED}/confirmation"
    assert f"Method Not Allowed (GET): {redacted}" in printed
    assert f'"GET {redacted} HTTP/1.1" 405' in printed
    # One handler per line: Django's own console handler no longer prints a second copy.
    assert printed.count(f"Method Not Allowed (GET): {redacted}") == 1


# -- 19. The balance of every shortcode that holds our money ----------------------------------


@pytest.fixture
def accountant(django_user_model):
    return staff_user_with(django_user_model, "accountant", "view_balance")


def balance_rows(shortcode: str, available: str) -> BalanceSnapshot:
    return BalanceSnapshot.objects.create(
        shortcode=shortcode,
        account="Utility Account",
        currency="KES",
        available=available,
        current=available,
        reported_at=timezone.now(),
    )


@pytest.mark.django_db
def test_p19_balance_refresh_asks_the_paybill_and_the_payout_shortcode(accountant, daraja):
    accept(daraja, BALANCE_URL)

    response = api_client_for(accountant).post(BALANCE_PATH, {}, format="json")

    assert response.status_code == 202, response.content
    asked = [request["PartyA"] for request in sent(daraja, BALANCE_URL)]
    assert asked == [174379, 600992]
    inquiries = response.json()["inquiries"]
    assert [(i["label"], i["shortcode"], i["status"]) for i in inquiries] == [
        ("PayBill 174379", "174379", "pending"),
        ("B2C payouts 600992", "600992", "pending"),
    ]
    assert {i["id"] for i in inquiries} == set(DarajaInquiry.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_p19_an_explicit_shortcode_asks_for_just_that_one(accountant, daraja):
    accept(daraja, BALANCE_URL)

    response = api_client_for(accountant).post(BALANCE_PATH, {"shortcode": "600992"}, format="json")

    assert response.status_code == 202, response.content
    assert [request["PartyA"] for request in sent(daraja, BALANCE_URL)] == [600992]
    [inquiry] = response.json()["inquiries"]
    assert (inquiry["label"], inquiry["shortcode"]) == ("B2C payouts 600992", "600992")


@pytest.mark.django_db
def test_p19_one_refused_shortcode_does_not_hide_the_other(accountant, daraja):
    refusal = load_fixture("errors/error_400.002.02_invalid_businessshortcode.portal.json")
    accepted = load_fixture("balance/account_balance_response_accepted.portal.json")

    def answer(request):
        if json.loads(request.body)["PartyA"] == 600992:
            return 400, {}, json.dumps(refusal)
        return 200, {}, json.dumps(accepted)

    daraja.add_callback("POST", BALANCE_URL, callback=answer, content_type="application/json")

    response = api_client_for(accountant).post(BALANCE_PATH, {}, format="json")

    assert response.status_code == 202, response.content
    statuses = {i["label"]: (i["status"], i["result_code"]) for i in response.json()["inquiries"]}
    assert statuses == {
        "PayBill 174379": (InquiryStatus.PENDING, ""),
        "B2C payouts 600992": (InquiryStatus.FAILED, refusal["errorCode"]),
    }


@pytest.mark.django_db
def test_p19_every_shortcode_refused_is_a_502(accountant, daraja):
    refusal = load_fixture("errors/error_400.002.02_invalid_businessshortcode.portal.json")
    daraja.post(BALANCE_URL, json=refusal, status=400)

    response = api_client_for(accountant).post(BALANCE_PATH, {}, format="json")

    assert response.status_code == 502, response.content
    assert response.json()["code"] == refusal["errorCode"]
    assert len(daraja.calls) == 3  # the token, then both shortcodes
    assert set(DarajaInquiry.objects.values_list("status", flat=True)) == {InquiryStatus.FAILED}


@pytest.mark.django_db
def test_p19_a_shortcode_used_for_both_is_asked_once(accountant, daraja, settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "B2C_SHORTCODE": "174379"}
    accept(daraja, BALANCE_URL)

    response = api_client_for(accountant).post(BALANCE_PATH, {}, format="json")

    assert [request["PartyA"] for request in sent(daraja, BALANCE_URL)] == [174379]
    [inquiry] = response.json()["inquiries"]
    assert inquiry["label"] == "PayBill and B2C payouts 174379"


def test_p19_the_schema_documents_the_labelled_inquiries():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    answer = schema["paths"][BALANCE_PATH]["post"]["responses"]["202"]
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    inquiries = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]["inquiries"]
    inquiry = schema["components"]["schemas"][inquiries["items"]["$ref"].rsplit("/", 1)[-1]]
    assert {"label", "shortcode", "id", "status", "result_code"} <= set(inquiry["properties"])
    listed = schema["components"]["schemas"]["BalanceSnapshot"]["properties"]
    assert {"label", "shortcode", "account", "available"} <= set(listed)


@pytest.mark.django_db
def test_p19_balances_are_listed_with_their_label(accountant):
    balance_rows("174379", "500.00")
    balance_rows("600992", "90000.00")

    rows = api_client_for(accountant).get(BALANCE_PATH).json()

    assert {(row["label"], row["available"]) for row in rows} == {
        ("PayBill 174379", "500.00"),
        ("B2C payouts 600992", "90000.00"),
    }


@pytest.fixture
def as_manager(django_user_model) -> Client:
    manager = django_user_model.objects.create_user("manager", password="pw-manager-1")
    manager.is_staff = True
    manager.save()
    manager.groups.add(Group.objects.get(name=MANAGER))
    client = Client()
    client.force_login(manager)
    return client


BALANCE_PAGE = "/admin/payments/transaction/balance/"


@pytest.mark.django_db
def test_p19_balance_page_refreshes_and_labels_both_shortcodes(as_manager, daraja):
    accept(daraja, BALANCE_URL)
    balance_rows("600992", "90000.00")

    page = as_manager.get(BALANCE_PAGE).content.decode()
    refreshed = as_manager.post(BALANCE_PAGE)

    assert "B2C payouts 600992" in page
    assert "PayBill 174379" in page  # named as asked about, though it has no figures yet
    assert refreshed.status_code == 302
    assert [request["PartyA"] for request in sent(daraja, BALANCE_URL)] == [174379, 600992]


# -- 21. Amount received is net of refunds -----------------------------------------------------


@pytest.mark.django_db
def test_p21_amount_received_subtracts_full_and_partial_refunds(as_manager):
    paid_transaction(amount=100, receipt="QAB1")
    paid_transaction(amount=300, receipt="QAB2", reversed_amount=120)  # partly refunded
    paid_transaction(
        amount=50, receipt="QAB3", status=TransactionStatus.REVERSED, reversed_amount=50
    )
    paid_transaction(
        amount=70, receipt="QAB4", transaction_type=TransactionType.C2B, reversed_amount=20
    )
    earlier = paid_transaction(amount=1000, receipt="QAB5", reversed_amount=400)
    Transaction.objects.filter(pk=earlier.pk).update(created_at=timezone.now() - timedelta(days=2))

    dashboard = payments_dashboard()

    assert dashboard["today"].amount == 100 + 180 + 0 + 50
    assert dashboard["week"].amount == 330 + 600
    page = as_manager.get("/admin/").content.decode()
    assert re.search(r'<th scope="row">Today</th><td>4</td><td>330</td>', page)
    assert re.search(r'<th scope="row">Last 7 days</th><td>5</td><td>930</td>', page)

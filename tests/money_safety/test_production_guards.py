"""Issue 9, production guards: points 17 (simulator mode), 18 (secrets in logged paths),
19 (both shortcodes' balances) and 21 (refunds in the dashboard's amount received)."""

from __future__ import annotations

import base64
import importlib
import json

import pytest
from django.urls import clear_url_caches

import mpesa_site.urls
from payments.checks import check_payments_settings
from tests.test_settings import clean_env, manage, output_of, production_env

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

"""mpesa_site/settings.py and .env.example, exercised through manage.py in a clean subprocess."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = REPO_ROOT / "mpesa_site" / "settings.py"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

# The variables the configuration issue asks .env.example to document.
DOCUMENTED_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "CORS_ALLOWED_ORIGINS",
    "DATABASE_URL",
    "CACHE_URL",
    "MPESA_ENVIRONMENT",
    "MPESA_BASE_URL",
    "MPESA_CONSUMER_KEY",
    "MPESA_CONSUMER_SECRET",
    "MPESA_SHORTCODE",
    "MPESA_PASSKEY",
    "MPESA_STK_TRANSACTION_TYPE",
    "MPESA_TILL_NUMBER",
    "MPESA_B2C_SHORTCODE",
    "MPESA_INITIATOR_NAME",
    "MPESA_INITIATOR_PASSWORD",
    "MPESA_CERTIFICATE_PATH",
    "MPESA_SECURITY_CREDENTIAL",
    "MPESA_CALLBACK_BASE_URL",
    "MPESA_CALLBACK_SECRET",
    "MPESA_HTTP_TIMEOUT",
    "MPESA_STK_RATE_PER_PHONE",
    "MPESA_STK_RATE_PER_USER",
    "MPESA_SIMULATOR_ORIGIN",
    "MPESA_SIMULATOR_CALLBACK_DELAY",
    "MPESA_SIMULATOR_LATE_DELAY",
    # deployment tuning beyond the list
    "DJANGO_LOG_LEVEL",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_PROXY_SSL_HEADER",
    "DATABASE_CONN_MAX_AGE",
    "DJANGO_NUM_PROXIES",
    "MPESA_CALLBACK_ALLOWED_NETWORKS",
    "MPESA_ADMIN_LOGIN_FAILURES_PER_USERNAME",
    "MPESA_ADMIN_LOGIN_FAILURES_PER_ADDRESS",
    "MPESA_ADMIN_LOGIN_LOCKOUT",
    "DJANGO_LOG_FORMAT",
    "DJANGO_STATIC_ROOT",
    "MPESA_HTTP_DEADLINE",
    "MPESA_UNKNOWN_ALERT_AFTER",
    "MPESA_PULL_NOMINATED_NUMBER",
    "EMAIL_URL",
    "DJANGO_DEFAULT_FROM_EMAIL",
)

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def settings_variables() -> set[str]:
    """Every environment variable mpesa_site/settings.py reads through ``env``."""
    return set(re.findall(r"\benv\.\w+\(\s*\"([A-Z0-9_]+)\"", SETTINGS_FILE.read_text()))


def clean_env(tmp_path: Path, *, debug: bool) -> dict[str, str]:
    """A minimal environment in which no developer's .env decides anything.

    Settings read BASE_DIR/.env with overwrite=False, so a variable set here always wins: every
    variable settings.py reads is set, to the value its default would give.
    """
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env.update(
        {
            "DJANGO_DEBUG": "true" if debug else "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "",
            "CORS_ALLOWED_ORIGINS": "",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DATABASE_CONN_MAX_AGE": "0",
            "CACHE_URL": "",
            "DJANGO_SECURE_SSL_REDIRECT": "false" if debug else "true",
            "DJANGO_SECURE_HSTS_SECONDS": "0" if debug else "31536000",
            "DJANGO_SECURE_PROXY_SSL_HEADER": "false",
            "DJANGO_NUM_PROXIES": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DJANGO_LOG_FORMAT": "",
            "DJANGO_STATIC_ROOT": "",
            "MPESA_ENVIRONMENT": "sandbox",
            "MPESA_BASE_URL": "",
            "MPESA_CONSUMER_KEY": "",
            "MPESA_CONSUMER_SECRET": "",
            "MPESA_SHORTCODE": "",
            "MPESA_PASSKEY": "",
            "MPESA_STK_TRANSACTION_TYPE": "CustomerPayBillOnline",
            "MPESA_TILL_NUMBER": "",
            "MPESA_B2C_SHORTCODE": "",
            "MPESA_INITIATOR_NAME": "",
            "MPESA_INITIATOR_PASSWORD": "",
            "MPESA_CERTIFICATE_PATH": "",
            "MPESA_SECURITY_CREDENTIAL": "",
            "MPESA_CALLBACK_BASE_URL": "",
            "MPESA_CALLBACK_SECRET": "",
            "MPESA_HTTP_TIMEOUT": "5,30",
            "MPESA_HTTP_DEADLINE": "45",
            "MPESA_STK_RATE_PER_PHONE": "5/min",
            "MPESA_STK_RATE_PER_USER": "30/min",
            "MPESA_CALLBACK_ALLOWED_NETWORKS": "",
            "MPESA_ADMIN_LOGIN_FAILURES_PER_USERNAME": "5",
            "MPESA_ADMIN_LOGIN_FAILURES_PER_ADDRESS": "20",
            "MPESA_ADMIN_LOGIN_LOCKOUT": "900",
            "MPESA_UNKNOWN_ALERT_AFTER": "3600",
            "MPESA_PULL_NOMINATED_NUMBER": "",
            "EMAIL_URL": "",
            "DJANGO_DEFAULT_FROM_EMAIL": "",
            "MPESA_SIMULATOR_ORIGIN": "",
            "MPESA_SIMULATOR_CALLBACK_DELAY": "",
            "MPESA_SIMULATOR_LATE_DELAY": "",
        }
    )
    return env


def production_env(tmp_path: Path) -> dict[str, str]:
    env = clean_env(tmp_path, debug=False)
    env.update(
        {
            "DJANGO_ALLOWED_HOSTS": "pay.example.co.ke",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://pay.example.co.ke",
            "MPESA_ENVIRONMENT": "production",
            "MPESA_CONSUMER_KEY": "GvzjNnYgNJtwgwfLBkZh65VPwfuKvs0V",
            "MPESA_CONSUMER_SECRET": "oOpJICRVlyrGSAkM",
            "MPESA_SHORTCODE": "4091283",
            "MPESA_PASSKEY": "3c1a5f2e9b7d4c8a6e0f1b2d3c4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4",
            "MPESA_B2C_SHORTCODE": "3029114",
            "MPESA_INITIATOR_NAME": "payouts_api",
            "MPESA_SECURITY_CREDENTIAL": "Q2FsbGJhY2tTZWN1cml0eUNyZWRlbnRpYWxGYWtlVmFsdWU=",
            "MPESA_CALLBACK_BASE_URL": "https://pay.example.co.ke",
            "MPESA_CALLBACK_SECRET": secrets.token_urlsafe(32),
        }
    )
    return env


def env_example_values() -> dict[str, str]:
    """The assignments in .env.example, parsed the way a shell-style .env reader would."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def manage(*args: str, env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def output_of(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_clean_env_sets_every_variable_settings_reads(tmp_path):
    """Otherwise a developer's .env could fill the gap and decide the tests below."""
    read = settings_variables()

    assert "DJANGO_SECRET_KEY" in read  # the pattern really finds the env reads
    assert read - clean_env(tmp_path, debug=False).keys() == set()


@pytest.mark.parametrize("secret_key", ["", "replace-me"])
def test_placeholder_secret_key_stops_manage_py_without_debug(tmp_path, secret_key):
    env = {**clean_env(tmp_path, debug=False), "DJANGO_SECRET_KEY": secret_key}

    result = manage("check", env=env)

    assert result.returncode != 0, output_of(result)
    assert "DJANGO_SECRET_KEY" in result.stderr.strip().splitlines()[-1], output_of(result)


def test_missing_secret_key_stops_manage_py_without_debug(tmp_path):
    # With the variable unset, a .env beside manage.py would supply it: run a copy of the
    # project package where no .env exists, importing the payments app from the repository.
    site = tmp_path / "site"
    shutil.copytree(
        REPO_ROOT / "mpesa_site", site / "mpesa_site", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO_ROOT / "manage.py", site / "manage.py")
    env = clean_env(tmp_path, debug=False)
    del env["DJANGO_SECRET_KEY"]
    env["PYTHONPATH"] = str(REPO_ROOT)

    result = manage("check", env=env, cwd=site)

    assert result.returncode != 0, output_of(result)
    assert str(site / "mpesa_site" / "settings.py") in result.stderr, output_of(result)
    assert "DJANGO_SECRET_KEY" in result.stderr.strip().splitlines()[-1], output_of(result)


def test_production_environment_passes_the_deploy_checks(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))

    assert result.returncode == 0, output_of(result)


def test_deploy_check_reports_payments_errors_from_the_environment(tmp_path):
    env = {**production_env(tmp_path), "MPESA_CALLBACK_BASE_URL": "https://mpesa.example.co.ke"}

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode != 0, output_of(result)
    assert "payments.E004" in result.stderr, output_of(result)


def test_env_example_runs_the_simulator_with_no_credential_warning(tmp_path):
    env = clean_env(tmp_path, debug=True)
    env.update(env_example_values())
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["CACHE_URL"] = ""
    assert env["MPESA_ENVIRONMENT"] == "simulator"
    assert env["MPESA_CONSUMER_KEY"] == "replace-me"

    result = manage("check", env=env)

    assert result.returncode == 0, output_of(result)
    # The simulator supplies its own credentials in place of the placeholders.
    assert "payments.W001" not in result.stdout + result.stderr, output_of(result)


def test_env_example_placeholders_never_stop_a_sandbox_development_server(tmp_path):
    env = clean_env(tmp_path, debug=True)
    env.update(env_example_values())
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["CACHE_URL"] = ""
    env["MPESA_ENVIRONMENT"] = "sandbox"
    assert env["DJANGO_DEBUG"] == "true"

    result = manage("check", env=env)

    assert result.returncode == 0, output_of(result)
    # The placeholders are noticed, as a warning rather than an error.
    assert "payments.W001" in result.stdout + result.stderr, output_of(result)


def test_every_variable_settings_reads_is_in_the_documented_list():
    assert settings_variables() <= set(DOCUMENTED_VARIABLES)


@pytest.mark.parametrize("name", DOCUMENTED_VARIABLES)
def test_env_example_documents_each_variable(name):
    lines = ENV_EXAMPLE.read_text().splitlines()
    positions = [i for i, line in enumerate(lines) if line.startswith(f"{name}=")]
    assert len(positions) == 1, f"{name} should be assigned exactly once in .env.example"

    above = positions[0] - 1
    assert above >= 0
    assert lines[above].startswith("#"), f"{name} has no comment above it in .env.example"
    assert len(lines[above].lstrip("# ").strip()) > 10


def redis_is_listening() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def test_redis_cache_url_is_shared_between_processes(tmp_path):
    if not redis_is_listening():
        pytest.skip(f"nothing listens on {REDIS_HOST}:{REDIS_PORT}; start Redis to run this test")
    env = {**clean_env(tmp_path, debug=True), "CACHE_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/1"}
    key, value = f"tests-settings-{uuid.uuid4().hex}", uuid.uuid4().hex

    writer = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; from django.core.cache import cache; "
        f"cache.set({key!r}, {value!r}, timeout=60); "
        "print(settings.CACHES['default']['BACKEND'])",
        env=env,
    )
    reader = manage(
        "shell",
        "--no-imports",
        "-c",
        f"from django.core.cache import cache; print(cache.get({key!r})); cache.delete({key!r})",
        env=env,
    )

    assert writer.returncode == 0, output_of(writer)
    assert writer.stdout.strip() == "mpesa_site.cache.RedisCache", output_of(writer)
    assert reader.returncode == 0, output_of(reader)
    assert reader.stdout.strip() == value, output_of(reader)


def django_values(env: dict[str, str], expression: str) -> str:
    """``expression`` evaluated in a configured Django, printed."""
    result = manage("shell", "--no-imports", "-c", f"import logging; print({expression})", env=env)
    assert result.returncode == 0, output_of(result)
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("debug", "log_format", "formatter"),
    [(False, "", "JsonFormatter"), (True, "", "Formatter"), (True, "json", "JsonFormatter")],
)
def test_logs_are_json_without_debug_and_plain_with_it(tmp_path, debug, log_format, formatter):
    env = {**clean_env(tmp_path, debug=debug), "DJANGO_LOG_FORMAT": log_format}

    printed = django_values(env, "type(logging.getLogger().handlers[0].formatter).__name__")

    assert printed == formatter


def test_an_unknown_log_format_stops_manage_py(tmp_path):
    env = {**clean_env(tmp_path, debug=True), "DJANGO_LOG_FORMAT": "xml"}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_LOG_FORMAT" in result.stderr.strip().splitlines()[-1], output_of(result)


@pytest.mark.parametrize(
    ("debug", "given", "kept"), [(False, "", 60), (True, "", 0), (False, "0", 0)]
)
def test_database_connections_persist_without_debug_and_are_checked_before_reuse(
    tmp_path, debug, given, kept
):
    env = {**clean_env(tmp_path, debug=debug), "DATABASE_CONN_MAX_AGE": given}

    printed = django_values(
        env,
        "(lambda d: (d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS']))"
        "(__import__('django.conf').conf.settings.DATABASES['default'])",
    )

    assert printed == f"({kept}, True)"


def test_sqlite_transactions_take_the_write_lock_at_begin_and_wait_for_it(tmp_path):
    # make screenshots (runserver, the simulator's callbacks and an API push writing at once)
    # failed an STK push with a 500 "database is locked": a deferred transaction that has read
    # cannot wait for the write lock.
    printed = django_values(
        clean_env(tmp_path, debug=True),
        "__import__('django.conf').conf.settings.DATABASES['default']['OPTIONS']",
    )

    assert printed == "{'transaction_mode': 'IMMEDIATE', 'timeout': 20}"


def preflight(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/serve_preflight.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG is true"),
        ({"DJANGO_SECRET_KEY": "replace-me"}, "DJANGO_SECRET_KEY is missing or a placeholder"),
        ({"MPESA_ENVIRONMENT": "simulator"}, "payments.E010"),
        ({"MPESA_CALLBACK_BASE_URL": "http://pay.example.co.ke"}, "payments.E003"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS is empty"),
    ],
)
def test_make_serve_refuses_what_is_not_a_production_configuration(tmp_path, change, named):
    result = preflight({**production_env(tmp_path), **change})

    assert result.returncode == 1, output_of(result)
    assert result.stderr.startswith("make serve: "), output_of(result)
    assert named in result.stderr, output_of(result)
    assert "Traceback" not in result.stderr, output_of(result)


def test_make_serve_starts_with_a_production_configuration(tmp_path):
    result = preflight(production_env(tmp_path))

    assert result.returncode == 0, output_of(result)

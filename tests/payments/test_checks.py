"""System checks in payments/checks.py: each id fires on its mistake and stays silent otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from payments.checks import check_payments_settings


def check_ids(*, debug: bool = False, **payments: Any) -> set[str]:
    """The ids reported with the test settings' PAYMENTS changed by ``payments``."""
    return {message.id for message in check_messages(debug=debug, **payments)}


def check_messages(*, debug: bool = False, **payments: Any) -> list:
    with override_settings(PAYMENTS={**settings.PAYMENTS, **payments}, DEBUG=debug):
        return check_payments_settings()


def test_test_settings_pass_every_payments_check():
    assert check_payments_settings() == []
    assert check_ids() == set()


def test_unknown_environment_is_an_error():
    assert "payments.E001" in check_ids(ENVIRONMENT="staging")
    assert "payments.E001" not in check_ids(ENVIRONMENT="production")


def test_missing_credentials_are_an_error_outside_debug():
    ids = check_ids(CONSUMER_KEY="")

    assert "payments.E002" in ids
    assert "payments.W001" not in ids


def test_placeholder_credentials_count_as_missing():
    assert "payments.E002" in check_ids(PASSKEY="replace-me")


def test_missing_credentials_in_production_are_an_error_even_with_debug():
    ids = check_ids(debug=True, ENVIRONMENT="production", CONSUMER_SECRET="")

    assert "payments.E002" in ids
    assert "payments.W001" not in ids


def test_error_names_every_missing_credential():
    messages = check_messages(CONSUMER_KEY="", SHORTCODE="replace-me")
    (error,) = [m for m in messages if m.id == "payments.E002"]

    assert "MPESA_CONSUMER_KEY" in error.hint
    assert "MPESA_SHORTCODE" in error.hint
    assert "MPESA_PASSKEY" not in error.hint


def test_missing_sandbox_credentials_only_warn_with_debug():
    ids = check_ids(debug=True, CONSUMER_KEY="replace-me", CONSUMER_SECRET="replace-me")

    assert "payments.W001" in ids
    assert "payments.E002" not in ids


def test_missing_callback_base_url_is_an_error_outside_debug():
    assert "payments.E003" in check_ids(CALLBACK_BASE_URL="")


def test_missing_callback_base_url_is_accepted_with_debug():
    assert "payments.E003" not in check_ids(debug=True, CALLBACK_BASE_URL="")


def test_plain_http_callback_base_url_is_an_error_outside_debug():
    assert "payments.E003" in check_ids(CALLBACK_BASE_URL="http://pay.example.co.ke")


def test_plain_http_callback_base_url_is_accepted_with_debug():
    assert "payments.E003" not in check_ids(debug=True, CALLBACK_BASE_URL="http://127.0.0.1:8000")


@pytest.mark.parametrize(
    "word", ["mpesa", "m-pesa", "safaricom", "exe", "exec", "cmd", "sql", "query"]
)
def test_callback_base_url_with_a_word_daraja_refuses_is_an_error(word):
    messages = check_messages(CALLBACK_BASE_URL=f"https://pay.example.co.ke/{word.upper()}/")
    (error,) = [m for m in messages if m.id == "payments.E004"]

    assert word in error.msg


@pytest.mark.parametrize(
    "url", ["https://pay.MPESA-shop.co.ke", "https://x.co.ke/SQL/", "https://SafariCom.example"]
)
def test_banned_callback_words_are_matched_in_any_case(url):
    assert "payments.E004" in check_ids(CALLBACK_BASE_URL=url)


def test_clean_callback_base_url_has_no_banned_words():
    assert "payments.E004" not in check_ids(CALLBACK_BASE_URL="https://pay.example.co.ke/hooks/")


def test_unknown_stk_transaction_type_is_an_error():
    assert "payments.E005" in check_ids(STK_TRANSACTION_TYPE="CustomerPayBill")


def test_buy_goods_without_till_number_is_an_error():
    ids = check_ids(STK_TRANSACTION_TYPE="CustomerBuyGoodsOnline", TILL_NUMBER="")

    assert "payments.E006" in ids
    assert "payments.E005" not in ids


def test_buy_goods_with_till_number_is_accepted():
    ids = check_ids(STK_TRANSACTION_TYPE="CustomerBuyGoodsOnline", TILL_NUMBER="5123456")

    assert ids == set()


def test_plain_http_base_url_on_a_network_host_is_an_error():
    assert "payments.E007" in check_ids(BASE_URL="http://daraja.example.co.ke")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000", "http://localhost", "https://daraja.example.co.ke"]
)
def test_loopback_http_or_https_base_url_is_accepted(url):
    assert "payments.E007" not in check_ids(BASE_URL=url)


def test_incomplete_b2c_settings_warn():
    assert "payments.W002" in check_ids(B2C_SHORTCODE="")
    assert "payments.W002" in check_ids(INITIATOR_NAME="replace-me")


def test_b2c_without_any_credential_warns():
    ids = check_ids(SECURITY_CREDENTIAL="", INITIATOR_PASSWORD="", CERTIFICATE_PATH="")

    assert "payments.W002" in ids


def test_security_credential_alone_satisfies_b2c_credentials():
    ids = check_ids(
        SECURITY_CREDENTIAL="precomputed-credential", INITIATOR_PASSWORD="", CERTIFICATE_PATH=""
    )

    assert "payments.W002" not in ids


def test_initiator_password_and_certificate_satisfy_b2c_credentials():
    ids = check_ids(
        SECURITY_CREDENTIAL="",
        INITIATOR_PASSWORD="initiator-password",
        CERTIFICATE_PATH="/etc/mpesa/production.cer",
    )

    assert "payments.W002" not in ids

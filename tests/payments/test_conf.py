"""payments_settings and the gateway: defaults, overrides, reloads and missing-value errors."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from payments.conf import DEFAULTS, REQUIRED_FOR_STK, payments_settings
from payments.gateway import get_daraja_client


def test_unset_keys_fall_back_to_defaults():
    with override_settings(PAYMENTS={"SHORTCODE": "600000"}):
        assert payments_settings.SHORTCODE == "600000"
        for name, default in DEFAULTS.items():
            if name != "SHORTCODE":
                assert getattr(payments_settings, name) == default, name
        assert payments_settings.HTTP_TIMEOUT == (5.0, 30.0)
        assert payments_settings.TOKEN_EXPIRY_MARGIN == 120


def test_empty_payments_setting_means_all_defaults():
    with override_settings(PAYMENTS={}):
        assert payments_settings.ENVIRONMENT == "sandbox"
        assert payments_settings.CONSUMER_KEY == ""
        assert payments_settings.STK_TRANSACTION_TYPE == "CustomerPayBillOnline"


def test_override_settings_is_picked_up_and_reverted():
    original = payments_settings.SHORTCODE  # fills the cache before the override
    assert original == "174379"

    with override_settings(PAYMENTS={**settings.PAYMENTS, "SHORTCODE": "600111"}):
        assert payments_settings.SHORTCODE == "600111"

    assert original == payments_settings.SHORTCODE


def test_unknown_keys_raise_naming_each_of_them():
    payments = {**settings.PAYMENTS, "SHORT_CODE": "1", "COLOUR": "red"}
    with override_settings(PAYMENTS=payments), pytest.raises(ImproperlyConfigured) as excinfo:
        payments_settings.SHORTCODE  # noqa: B018

    message = str(excinfo.value)
    assert "SHORT_CODE" in message
    assert "COLOUR" in message


def test_reading_an_undeclared_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        payments_settings.NOT_A_SETTING  # noqa: B018


def test_require_names_every_missing_setting_in_one_error():
    payments = {**settings.PAYMENTS, "CONSUMER_KEY": "", "PASSKEY": "replace-me"}
    with override_settings(PAYMENTS=payments), pytest.raises(ImproperlyConfigured) as excinfo:
        payments_settings.require(REQUIRED_FOR_STK)

    message = str(excinfo.value)
    assert "PAYMENTS['CONSUMER_KEY']" in message
    assert "MPESA_CONSUMER_KEY" in message
    assert "PAYMENTS['PASSKEY']" in message
    assert "MPESA_PASSKEY" in message
    assert "SHORTCODE" not in message
    assert "CONSUMER_SECRET" not in message


@pytest.mark.parametrize("placeholder", ["replace-me", "Replace-Me", "  ", "changeme"])
def test_require_treats_placeholders_as_missing(placeholder):
    with override_settings(PAYMENTS={**settings.PAYMENTS, "PASSKEY": placeholder}):
        assert payments_settings.missing(REQUIRED_FOR_STK) == ["PASSKEY"]
        with pytest.raises(ImproperlyConfigured, match="PASSKEY"):
            payments_settings.require(REQUIRED_FOR_STK)


def test_require_passes_when_every_setting_is_present():
    payments_settings.require(REQUIRED_FOR_STK)


def test_daraja_client_is_rebuilt_when_payments_changes():
    before = get_daraja_client()
    assert before.config.shortcode == "174379"

    with override_settings(PAYMENTS={**settings.PAYMENTS, "SHORTCODE": "600222"}):
        during = get_daraja_client()
        assert during is not before
        assert during.config.shortcode == "600222"
        assert get_daraja_client() is during

    assert get_daraja_client().config.shortcode == "174379"


def test_daraja_client_needs_a_consumer_key():
    payments = {**settings.PAYMENTS, "CONSUMER_KEY": "replace-me"}
    with override_settings(PAYMENTS=payments), pytest.raises(ImproperlyConfigured) as excinfo:
        get_daraja_client()

    assert "CONSUMER_KEY" in str(excinfo.value)
    assert "CONSUMER_SECRET" not in str(excinfo.value)

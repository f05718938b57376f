"""Test settings: the project's settings with deterministic values that no .env can change."""

import os
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnop")

from mpesa_site.settings import *  # noqa: F403

DEBUG = False
SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# First, so that it sees every answer as it leaves: tests/leaks.py scans the error bodies.
MIDDLEWARE = ["tests.leaks.ErrorBodyMiddleware", *MIDDLEWARE]  # noqa: F405
# A host project's app (the README's guide): orders paid through payments.testing, imported as
# `shop` as a host imports it, here and in the servers the tests start with these settings.
sys.path.insert(0, str(Path(__file__).resolve().parent / "host"))
INSTALLED_APPS = [*INSTALLED_APPS, "shop"]  # noqa: F405
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Static files straight from the apps: no collectstatic before a test run.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Fake credentials: Daraja is mocked at the HTTP layer, so these never leave the machine.
PAYMENTS = {
    "ENVIRONMENT": "sandbox",
    "BASE_URL": "",
    "CONSUMER_KEY": "test-consumer-key",
    "CONSUMER_SECRET": "test-consumer-secret-value",
    "SHORTCODE": "174379",
    "PASSKEY": "test-passkey-value-0123456789",
    "STK_TRANSACTION_TYPE": "CustomerPayBillOnline",
    "TILL_NUMBER": "",
    "B2C_SHORTCODE": "600992",
    "INITIATOR_NAME": "testapi",
    "INITIATOR_PASSWORD": "",
    "CERTIFICATE_PATH": "",
    "SECURITY_CREDENTIAL": "test-security-credential-value",
    "CALLBACK_BASE_URL": "https://pay.example.co.ke",
    "CALLBACK_SECRET": "test-callback-secret-0123456789abcdef",
    "HTTP_TIMEOUT": (2.0, 5.0),
}

"""Helpers shared by the services."""

from __future__ import annotations

from django.urls import reverse

from payments.conf import payments_settings


def callback_url(view_name: str, **kwargs: str) -> str:
    """The public URL Daraja calls for ``view_name``: CALLBACK_BASE_URL + our path."""
    base = str(payments_settings.CALLBACK_BASE_URL).rstrip("/")
    return base + reverse(view_name, kwargs=kwargs)

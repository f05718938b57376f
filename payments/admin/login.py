"""The admin login form, with failed logins limited per username and per client address.

Install it on the admin site the project uses: ``admin.site.login_form =
ThrottledAdminAuthenticationForm`` (mpesa_site/urls.py does).
"""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from payments.network import client_address
from payments.services.admin_login import (
    admin_login_allowed,
    admin_login_failure_record,
    admin_login_success_record,
)


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        # The same words whether or not the username exists.
        "throttled": "Too many failed logins for this username or from this address. "
        "Try again later.",
    }

    def clean(self):
        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request) if self.request is not None else None
        if not admin_login_allowed(username=username, address=address):
            # Refused before the password is checked: a locked account cannot be guessed.
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            admin_login_failure_record(username=username, address=address)
            raise
        admin_login_success_record(username=username)
        return cleaned

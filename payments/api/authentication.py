"""DRF's token authentication with its one query compiled once per process."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from payments.compiled import CompiledQuery

# DRF's own query (the token with its user), compiled once: it runs on every API request.
_TOKEN_WITH_USER = CompiledQuery(lambda key: Token.objects.select_related("user").filter(key=key))


class CompiledTokenAuthentication(TokenAuthentication):
    """``TokenAuthentication`` as DRF ships it, the same answers and the same one SELECT, without
    the ORM building that SELECT on each request (~0.5 ms CPU)."""

    def authenticate_credentials(self, key):
        if self.get_model() is not Token:  # a subclass with its own token model
            return super().authenticate_credentials(key)
        token = _TOKEN_WITH_USER.first_instance(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)

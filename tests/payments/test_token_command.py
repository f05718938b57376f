"""Operators issue API tokens with DRF's command."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from .conftest import TRANSACTIONS_PATH


@pytest.mark.django_db
def test_drf_create_token_issues_a_token_that_authenticates(user, client, capsys):
    call_command("drf_create_token", user.username)
    token = Token.objects.get(user=user)
    assert token.key in capsys.readouterr().out

    response = client.get(TRANSACTIONS_PATH, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200

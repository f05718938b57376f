"""Fixtures for the back-office tests: finance staff logged in, and Daraja mocked over HTTP."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from payments.services.roles import CLERK, MANAGER


class ConfirmingClient(Client):
    """A browser stand-in: each form it posts carries a fresh one-time confirmation nonce, as
    a confirmation page's form does, unless the test gives one."""

    def post(self, path, data=None, *args, **kwargs):
        if isinstance(data, dict) and "nonce" not in data:
            data = {**data, "nonce": uuid.uuid4().hex}
        return super().post(path, data, *args, **kwargs)


def _staff_in(django_user_model, username: str, group_name: str):
    # The groups come from post_migrate (payments/apps.py), not from this fixture.
    user = django_user_model.objects.create_user(username, password=f"pw-{username}-1")
    user.is_staff = True
    user.save()
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def clerk(django_user_model):
    return _staff_in(django_user_model, "clerk", CLERK)


@pytest.fixture
def manager(django_user_model):
    return _staff_in(django_user_model, "manager", MANAGER)


@pytest.fixture
def second_manager(django_user_model):
    return _staff_in(django_user_model, "checker", MANAGER)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root-1")


def _logged_in(user) -> Client:
    client = ConfirmingClient()
    client.force_login(user)
    return client


@pytest.fixture
def as_clerk(clerk) -> Client:
    return _logged_in(clerk)


@pytest.fixture
def as_manager(manager) -> Client:
    return _logged_in(manager)


@pytest.fixture
def as_second_manager(second_manager) -> Client:
    return _logged_in(second_manager)


@pytest.fixture
def as_superuser(superuser) -> Client:
    return _logged_in(superuser)

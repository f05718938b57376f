"""App configuration: registers the system checks and creates the finance roles."""

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "M-Pesa payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from payments import checks  # noqa: F401  (registers the checks)

        post_migrate.connect(_create_finance_roles, sender=self)


def _create_finance_roles(sender: AppConfig, **kwargs) -> None:
    from django.contrib.auth.management import create_permissions

    from payments.services.roles import finance_roles_ensure

    # The groups hold our permissions. Auth creates them in its own post_migrate handler, but
    # handlers run in the order the apps are listed, and a host lists payments before
    # django.contrib.admin (and so maybe before auth) for the dashboard: create them first.
    create_permissions(
        sender,
        verbosity=0,
        using=kwargs.get("using", DEFAULT_DB_ALIAS),
        apps=kwargs.get("apps", global_apps),
    )
    finance_roles_ensure()

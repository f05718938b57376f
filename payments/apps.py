"""App configuration: registers the system checks and creates the finance roles."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "M-Pesa payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from payments import checks  # noqa: F401  (registers the checks)

        post_migrate.connect(_create_finance_roles, sender=self)


def _create_finance_roles(**kwargs) -> None:
    # After migrate: the permissions the groups hold exist only once auth's own handler ran.
    from payments.services.roles import finance_roles_ensure

    finance_roles_ensure()

"""Print where to go after `make run`; in DEBUG, also make a demo staff user and a pay link."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from payments.conf import payments_settings
from payments.services.checkout import checkout_link_create, checkout_path

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-pass-2468"  # noqa: S105  (created only with DEBUG on, for local trials)
DEMO_PERMISSIONS = (
    "pay_out",
    "refund",
    "view_balance",
    "approve_payout",
    "approve_refund",
    "create_checkout_link",
    "view_statementimport",
    "view_statementline",
    "import_statement",
    "book_statement_line",
)


class Command(BaseCommand):
    help = "Print the demo links (checkout page, admin, API docs) and, in DEBUG, a demo user."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, **options) -> None:
        base = options["base_url"].rstrip("/")
        lines = [
            "",
            f"  M-Pesa environment: {payments_settings.ENVIRONMENT}",
            f"  Admin:              {base}/admin/",
            f"  API docs:           {base}/api/docs/",
        ]
        if settings.DEBUG:
            user = self._demo_user()
            token = Token.objects.get_or_create(user=user)[0]
            link = checkout_link_create(
                amount=10,
                account_reference="DEMO42",
                description="Demo order 42",
                created_by=user,
            )
            lines += [
                f"  Checkout demo:      {base}{checkout_path(link)}",
                f"  Demo staff user:    {DEMO_USERNAME} / {DEMO_PASSWORD} (DEBUG only)",
                f"  Demo API token:     Authorization: Token {token.key}",
            ]
        else:
            lines.append("  Staff user:         python manage.py createsuperuser")
        if payments_settings.ENVIRONMENT == "simulator":
            lines.append("  Simulator test numbers: see the README (0700000001 cancels, ...)")
            lines.append(
                f"  Today's statement:  {base}/simulator/daraja/statement.csv, to import at "
                f"{base}/admin/payments/statementimport/upload/"
            )
        self.stdout.write("\n".join([*lines, ""]))

    def _demo_user(self):
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        # Every run: a demo user from an older database gets the permissions added since.
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="payments", codename__in=DEMO_PERMISSIONS
            )
        )
        return user

"""Register our C2B validation and confirmation URLs with Daraja."""

from django.core.management.base import BaseCommand, CommandError

from payments.daraja.errors import DarajaError
from payments.exceptions import PaymentsError, PaymentValidationError
from payments.services.audit import audit_failure, audit_record, command_details
from payments.services.c2b import c2b_urls_register


class Command(BaseCommand):
    help = "Register the C2B validation and confirmation URLs of this site with M-Pesa."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--api-version", choices=("v1", "v2"), default="v2")
        parser.add_argument(
            "--response-type", choices=("Completed", "Cancelled"), default="Completed"
        )
        parser.add_argument("--shortcode", default="", help="Default: MPESA_SHORTCODE.")

    def handle(self, *args, **options) -> None:
        request = {name: options[name] for name in ("api_version", "response_type", "shortcode")}
        details = command_details("mpesa_register_urls", **request)
        try:
            with audit_failure(actor=None, action="register_c2b_urls", details=details):
                answer = c2b_urls_register(**request)
        except PaymentValidationError as exc:
            # Name the setting to fix (callback_base_url), as the API's 400 does.
            raise CommandError(f"{exc.field}: {exc.message}") from None
        except PaymentsError as exc:
            raise CommandError(exc.message) from None
        except DarajaError as exc:
            raise CommandError(f"M-Pesa refused the registration: {exc}") from None
        outcome = f"{answer.response_code} {answer.response_description}"
        audit_record(actor=None, action="register_c2b_urls", outcome=outcome, details=details)
        self.stdout.write(self.style.SUCCESS(f"Registered: {outcome}"))

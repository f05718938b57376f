"""Register our C2B validation and confirmation URLs with Daraja."""

from django.core.management.base import BaseCommand, CommandError

from payments.daraja.errors import DarajaError
from payments.exceptions import PaymentsError, PaymentValidationError
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
        try:
            answer = c2b_urls_register(
                api_version=options["api_version"],
                response_type=options["response_type"],
                shortcode=options["shortcode"],
            )
        except PaymentValidationError as exc:
            # Name the setting to fix (callback_base_url), as the API's 400 does.
            raise CommandError(f"{exc.field}: {exc.message}") from None
        except PaymentsError as exc:
            raise CommandError(exc.message) from None
        except DarajaError as exc:
            raise CommandError(f"M-Pesa refused the registration: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Registered: {answer.response_code} {answer.response_description}")
        )

"""Register our C2B validation and confirmation URLs with Daraja, or Pull Transactions."""

from django.core.management.base import BaseCommand, CommandError

from payments.daraja.errors import DarajaError
from payments.exceptions import PaymentsError, PaymentValidationError
from payments.services.audit import audit_failure, audit_record, command_details
from payments.services.c2b import c2b_urls_register
from payments.services.pull import pull_transactions_register


class Command(BaseCommand):
    help = (
        "Register the C2B validation and confirmation URLs of this site with M-Pesa; with "
        "--pull, register the shortcode for Pull Transactions instead (the nominated number "
        "MPESA_PULL_NOMINATED_NUMBER and this site's notice URL)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--api-version", choices=("v1", "v2"), default="v2")
        parser.add_argument(
            "--response-type", choices=("Completed", "Cancelled"), default="Completed"
        )
        parser.add_argument("--shortcode", default="", help="Default: MPESA_SHORTCODE.")
        parser.add_argument(
            "--pull", action="store_true", help="Register for Pull Transactions (production)."
        )
        parser.add_argument(
            "--nominated-number",
            default="",
            help="With --pull: the Safaricom number for Daraja's notices. Default: "
            "MPESA_PULL_NOMINATED_NUMBER.",
        )

    def handle(self, *args, **options) -> None:
        if options["pull"]:
            action, names = "register_pull", ("nominated_number", "shortcode")
        else:
            action, names = "register_c2b_urls", ("api_version", "response_type", "shortcode")
        request = {name: options[name] for name in names}
        details = command_details("mpesa_register_urls", pull=options["pull"], **request)
        try:
            with audit_failure(actor=None, action=action, details=details):
                if options["pull"]:
                    pulled = pull_transactions_register(**request)
                    outcome = f"{pulled.response_status} {pulled.response_description}"
                else:
                    answer = c2b_urls_register(**request)
                    outcome = f"{answer.response_code} {answer.response_description}"
        except PaymentValidationError as exc:
            # Name the setting to fix (callback_base_url), as the API's 400 does.
            raise CommandError(f"{exc.field}: {exc.message}") from None
        except PaymentsError as exc:
            raise CommandError(exc.message) from None
        except DarajaError as exc:
            raise CommandError(f"M-Pesa refused the registration: {exc}") from None
        audit_record(actor=None, action=action, outcome=outcome, details=details)
        self.stdout.write(self.style.SUCCESS(f"Registered: {outcome}"))

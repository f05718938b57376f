"""Ask the sandbox to simulate a customer paying our shortcode."""

from django.core.management.base import BaseCommand, CommandError

from payments.daraja.errors import DarajaError, InvalidFieldError
from payments.exceptions import PaymentsError, PaymentValidationError
from payments.services.c2b import c2b_simulate


class Command(BaseCommand):
    help = "Simulate a C2B payment in the M-Pesa sandbox (not available in production)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--phone", required=True, help="Paying phone number, e.g. 0708374149")
        parser.add_argument("--amount", type=int, required=True, help="Whole shillings")
        parser.add_argument("--bill-ref", default="", help="Account number the customer types")
        parser.add_argument("--shortcode", default="", help="Default: MPESA_SHORTCODE.")

    def handle(self, *args, **options) -> None:
        try:
            answer = c2b_simulate(
                phone_number=options["phone"],
                amount=options["amount"],
                bill_ref_number=options["bill_ref"],
                shortcode=options["shortcode"],
            )
        except (PaymentValidationError, InvalidFieldError) as exc:
            # Name the option at fault, as the API's 400 names the field.
            raise CommandError(f"{exc.field}: {exc.message}") from None
        except PaymentsError as exc:
            raise CommandError(exc.message) from None
        except DarajaError as exc:
            raise CommandError(f"M-Pesa refused the simulation: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Simulated: {answer.response_code} {answer.response_description}")
        )

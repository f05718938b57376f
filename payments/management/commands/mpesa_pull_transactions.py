"""Find C2B payments whose confirmation never reached us (Pull Transactions) and book them."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from payments.daraja.dates import NAIROBI
from payments.exceptions import PaymentsError, PaymentValidationError
from payments.services.audit import command_details
from payments.services.pull import pull_transactions_recover


def iso_datetime(text: str) -> datetime:
    """An ISO 8601 date and time; one without an offset is Kenyan time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not an ISO 8601 date and time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=NAIROBI)


class Command(BaseCommand):
    help = (
        "Ask M-Pesa's Pull Transactions for the C2B payments to the shortcode and book every "
        "one the ledger lacks, as its lost confirmation would have. Without --since: from where "
        "the last sweep ended (at most the 48 hours Daraja keeps)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--since", type=iso_datetime, metavar="ISO", help="Start (Kenyan time without offset)."
        )
        parser.add_argument("--until", type=iso_datetime, metavar="ISO", help="End; default now.")
        parser.add_argument("--shortcode", default="", help="Default: MPESA_SHORTCODE.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Ask M-Pesa and list; book nothing."
        )

    def handle(self, *args, **options) -> None:
        details = command_details(
            "mpesa_pull_transactions",
            since=options["since"] and options["since"].isoformat(),
            until=options["until"] and options["until"].isoformat(),
            shortcode=options["shortcode"],
        )
        try:
            report = pull_transactions_recover(
                since=options["since"],
                until=options["until"],
                shortcode=options["shortcode"],
                dry_run=options["dry_run"],
                audit_details=details,
                progress=self.stdout.write,
            )
        except PaymentValidationError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        except PaymentsError as exc:
            raise CommandError(exc.message) from None
        if report.error:
            raise CommandError(report.summary())
        style = self.style.WARNING if report.amount_differs or report.malformed else None
        self.stdout.write((style or self.style.SUCCESS)(report.summary()))

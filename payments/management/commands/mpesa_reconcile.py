"""Settle stuck transactions by asking Daraja; optionally sweep Pull Transactions; e-mail what
needs a person. Safe to run from several hosts at once."""

from smtplib import SMTPException

from django.core.management.base import BaseCommand

from payments.exceptions import PaymentsError
from payments.services.alerts import alerts_digest_send
from payments.services.audit import command_details
from payments.services.pull import pull_transactions_recover
from payments.services.reconcile import transactions_reconcile


class Command(BaseCommand):
    help = (
        "Ask M-Pesa about transactions still pending or unknown: STK query for STK Pushes, "
        "Transaction Status for payouts and reversals; with --pull, book the C2B payments whose "
        "confirmation never came (Pull Transactions). Then e-mail the Finance managers the "
        "problems not e-mailed before. Run it from cron every few minutes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            metavar="SECONDS",
            help="Only transactions at least this old (default 60).",
        )
        parser.add_argument("--limit", type=int, default=100, help="At most N transactions.")
        parser.add_argument(
            "--pull",
            action="store_true",
            help="Also sweep Pull Transactions since the last sweep (mpesa_pull_transactions).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be checked; change nothing."
        )

    def handle(self, *args, **options) -> None:
        dry_run = options["dry_run"]
        report = transactions_reconcile(
            older_than=options["older_than"],
            limit=options["limit"],
            dry_run=dry_run,
            progress=self.stdout.write,
        )
        style = self.style.WARNING if report.errors or report.stopped_early else self.style.SUCCESS
        self.stdout.write(style(report.summary()))
        if options["pull"]:
            self._pull(dry_run)
        self._alerts(dry_run)

    def _pull(self, dry_run: bool) -> None:
        try:
            report = pull_transactions_recover(
                dry_run=dry_run,
                audit_details=command_details("mpesa_reconcile", pull=True),
                progress=self.stdout.write,
            )
        except PaymentsError as exc:
            self.stdout.write(self.style.WARNING(f"Pull Transactions not swept: {exc.message}"))
            return
        problems = report.error or report.amount_differs or report.malformed
        style = self.style.WARNING if problems else self.style.SUCCESS
        self.stdout.write(style(report.summary()))

    def _alerts(self, dry_run: bool) -> None:
        try:
            report = alerts_digest_send(dry_run=dry_run)
        except (SMTPException, OSError) as exc:
            # Nothing was recorded as sent: the next run tries again.
            self.stdout.write(self.style.WARNING(f"Alerts not e-mailed: {exc}"))
            return
        for line in report.lines if dry_run else ():
            self.stdout.write(f"would e-mail: {line}")
        self.stdout.write(report.summary())

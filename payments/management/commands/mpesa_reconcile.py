"""Settle stuck transactions by asking Daraja. Safe to run from several hosts at once."""

from django.core.management.base import BaseCommand

from payments.services.reconcile import transactions_reconcile


class Command(BaseCommand):
    help = (
        "Ask M-Pesa about transactions still pending or unknown: STK query for STK Pushes, "
        "Transaction Status for payouts and reversals. Run it from cron every few minutes."
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
            "--dry-run", action="store_true", help="List what would be checked; ask nothing."
        )

    def handle(self, *args, **options) -> None:
        report = transactions_reconcile(
            older_than=options["older_than"],
            limit=options["limit"],
            dry_run=options["dry_run"],
            progress=self.stdout.write,
        )
        style = self.style.WARNING if report.errors or report.stopped_early else self.style.SUCCESS
        self.stdout.write(style(report.summary()))

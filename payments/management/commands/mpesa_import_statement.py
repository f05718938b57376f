"""Import an M-Pesa org portal statement from a file, as the back office does, and print the
report's counts and totals (for a statement fetched by a script)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.exceptions import PaymentsError
from payments.services.audit import command_details
from payments.services.statements import statement_import, statement_size_check, summary_text


class Command(BaseCommand):
    help = (
        "Import the statement exported from the M-Pesa org portal (CSV or XLSX), hold each line "
        "against the ledger and keep the report; importing the same file again changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The statement file, as exported.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the report; keep nothing."
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        try:
            statement_size_check(path.stat().st_size)
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}") from None
        except PaymentsError as exc:
            raise CommandError(f"{path.name}: {exc.message}") from None
        try:
            result = statement_import(
                data=data,
                file_name=path.name,
                dry_run=options["dry_run"],
                details=command_details(
                    "mpesa_import_statement", file=str(path), dry_run=options["dry_run"]
                ),
            )
        except PaymentsError as exc:
            raise CommandError(f"{path.name}: {exc.message}") from None
        statement = result.statement
        if statement is not None and not result.created:
            self.stdout.write(
                self.style.WARNING(
                    f"Already imported on {statement.created_at:%Y-%m-%d %H:%M} "
                    f"(statement {statement.pk}): nothing was changed."
                )
            )
        elif statement is None:
            self.stdout.write("Dry run: nothing was kept.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported as statement {statement.pk}."))
        self.stdout.write(summary_text(result.summary))

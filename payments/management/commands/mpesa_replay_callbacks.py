"""Process stored callbacks again, e.g. after fixing the bug that made them fail."""

from django.core.management.base import BaseCommand

from payments.services.audit import audit_record, command_details
from payments.services.callbacks import callback_events_replay


class Command(BaseCommand):
    help = (
        "Re-process stored Daraja callbacks. Processing is idempotent: replaying an event that "
        "was already processed changes nothing."
    )

    def add_arguments(self, parser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument(
            "--failed", action="store_true", help="Every event that errored or was never processed."
        )
        group.add_argument("--ids", nargs="+", type=int, metavar="ID", help="These events.")

    def handle(self, *args, **options) -> None:
        events = callback_events_replay(ids=options["ids"], failed=options["failed"])
        details = command_details(
            "mpesa_replay_callbacks", ids=options["ids"], failed=options["failed"]
        )
        for event in events:
            audit_record(
                actor=None,
                action="reprocess_callback",
                transaction=event.transaction,
                outcome=event.outcome,
                details={"callback_event": event.pk, **details},
            )
            detail = f": {event.error.splitlines()[-1]}" if event.error else ""
            self.stdout.write(f"event {event.pk} ({event.kind}): {event.outcome}{detail}")
        self.stdout.write(self.style.SUCCESS(f"{len(events)} event(s) replayed"))

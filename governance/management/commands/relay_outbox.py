"""Publish the outbox rows the broker did not take (governance/outbox.py, docs/deploy.md).

The beat schedule runs the same relay every ATTEST_OUTBOX_RELAY_SECONDS, but beat needs the
broker; this command needs only the database, for cron or for an operator after an outage.
Safe to run next to the beat relay and next to itself: rows are claimed with SKIP LOCKED.
Exit status 1 when a publish failed (the broker is still down; the rows stay pending).
"""

from django.core.management.base import BaseCommand, CommandError

from governance.outbox import outbox_pending_count, outbox_relay


class Command(BaseCommand):
    help = "Publish pending outbox rows to the broker; exit 1 if the broker refused one."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=100, help="rows claimed per transaction (default 100)")

    def handle(self, *args, **options):
        run = outbox_relay(batch=options["batch"])
        pending = outbox_pending_count()
        self.stdout.write(f"outbox: {run.sent} sent, {pending} pending")
        if run.error:
            raise CommandError(f"the broker did not take a message, {pending} rows still pending: {run.error}")

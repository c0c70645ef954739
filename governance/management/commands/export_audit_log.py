from pathlib import Path

from django.core.management.base import BaseCommand

from governance.audit_export import audit_log_export


class Command(BaseCommand):
    help = ("Write the audit log as JSON Lines (one event a line, in seq order) followed by the latest "
            "signed checkpoint; verify it with docs/verify_attest_log.py.")

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="file to write")

    def handle(self, *args, out, **options):
        path = Path(out)
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            summary = audit_log_export(out=handle, destination=str(path))
        cp = summary.checkpoint
        self.stdout.write(f"exported {summary.count} events, head {summary.head}, "
                          f"checkpoint size {cp['size']} root {cp['root']} to {path}")

"""manage.py run_drift_checks: run every due drift monitor now, printing progress (CONTRACT.md).

A monitor is due when its interval has passed since its last check (or it never ran); `--all`
ignores the schedule. Each unchecked batch of a due monitor is checked once (a check that ran
already is skipped by the service: one result per monitor and batch). `--batch FILE --monitor
ID` first ingests a file from disk, as a batch job would, then checks it.
"""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from mlops_site.common.errors import ApplicationError
from monitoring.models import DriftMonitor
from monitoring.services.batches import monitoring_batch_ingest_path
from monitoring.services.checks import batches_unchecked, drift_check_run, monitors_due


class Command(BaseCommand):
    help = "Run every due drift monitor now (each unchecked batch once), printing progress."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="every active monitor, due or not")
        parser.add_argument("--monitor", type=int, help="only this monitor (id)")
        parser.add_argument("--batch", help="ingest this CSV/Parquet/JSON file into --monitor first")

    def handle(self, *args, all: bool, monitor: int | None, batch: str | None, **options):  # noqa: A002
        started = time.monotonic()
        if batch:
            if monitor is None:
                raise CommandError("--batch needs --monitor.")
            target = DriftMonitor.objects.select_related("model_version__model", "reference").filter(
                pk=monitor).first()
            if target is None:
                raise CommandError(f"No monitor {monitor}.")
            try:
                stored, created = monitoring_batch_ingest_path(actor=None, monitor=target, path=batch,
                                                               check_on_commit=False)
            except ApplicationError as exc:
                raise CommandError(f"{exc.code}: {exc.message}") from exc
            self.stdout.write(f"batch #{stored.pk} ({stored.row_count} rows, sha256 {stored.sha256[:12]}…) "
                              f"{'stored' if created else 'already stored'}")
        if all or batch:
            monitors = list(DriftMonitor.objects.filter(is_active=True).select_related("model_version__model",
                                                                                         "reference"))
        else:
            monitors = monitors_due()
        if monitor is not None:
            monitors = [m for m in monitors if m.pk == monitor]
        work = [(m, b) for m in monitors for b in batches_unchecked(m)]
        self.stdout.write(f"{len(monitors)} monitor(s) due, {len(work)} batch(es) to check")
        drifted = alerts = 0
        with tqdm(total=len(work), desc="drift checks", unit="batch", file=self.stderr._out, disable=False) as bar:
            for target, unchecked in work:
                bar.set_postfix_str(f"monitor #{target.pk} batch #{unchecked.pk}")
                result = drift_check_run(monitor=target, batch=unchecked)
                drifted += result.dataset_drift
                alerts += len(result.alerts)
                bar.update(1)
                self.stdout.write(f"  monitor #{target.pk} batch #{unchecked.pk}: "
                                  f"{'DRIFT' if result.dataset_drift else 'no drift'}"
                                  f" ({', '.join(result.drifted_features) or 'no feature drifted'})"
                                  + (f", severity {result.severity}" if result.severity else ""))
        self.stdout.write(self.style.SUCCESS(
            f"Checked {len(work)} batch(es) of {len(monitors)} monitor(s): {drifted} with dataset drift, "
            f"{alerts} alert(s) raised or repeated ({time.monotonic() - started:.1f} s)."))

"""manage.py load_demo: register the demo data sets and models with their lineage (idempotent)."""

import time

from django.core.management.base import BaseCommand, CommandError

from mlops_site.common.errors import ApplicationError
from registry.demo import DemoPrerequisiteMissing, demo_load


class Command(BaseCommand):
    help = ("Register the demo data sets (Toronto arrests, diabetes) and three trained models with "
            "lineage, metrics and the code commit. Safe to run again: it registers only what is missing.")

    def handle(self, *args, **options):
        started = time.monotonic()
        try:
            result = demo_load(log=self.stdout.write)
        except DemoPrerequisiteMissing as exc:
            raise CommandError(str(exc)) from exc
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        elapsed = time.monotonic() - started
        if result.created:
            self.stdout.write(self.style.SUCCESS(
                f"Demo loaded: {len(result.created)} registered, {len(result.skipped)} already there "
                f"({elapsed:.1f} s)."
            ))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Nothing new: the demo was already loaded ({len(result.skipped)} records checked, {elapsed:.1f} s)."
            ))

"""manage.py import_mlflow --tracking-uri URL --as USERNAME --team TEAM [--risk-tier TIER] [--model NAME ...]

Imports registered models, their versions (run parameters, metrics, dataset digests, the
artifact's files and sha256) and aliases from an MLflow tracking server into Attest's
registry (governance/mlflow_import.py). Idempotent: running it again imports only what is new.
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance.mlflow_import import mlflow_import
from mlops_site.common.errors import ApplicationError
from registry.models import RegisteredModel, Team


class Command(BaseCommand):
    help = "Import an MLflow Model Registry (models, versions, runs, artifacts' sha256, aliases) into Attest."

    def add_arguments(self, parser):
        parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                            help="the MLflow tracking server's URL (default: MLFLOW_TRACKING_URI)")
        parser.add_argument("--as", dest="username", default=getattr(settings, "ATTEST_MLFLOW_IMPORT_USER", None),
                            help="the Attest user who registers what is imported (a member of --team)")
        parser.add_argument("--team", default=getattr(settings, "ATTEST_MLFLOW_TEAM", None),
                            help="the team that owns models created by the import")
        parser.add_argument("--risk-tier", default=getattr(settings, "ATTEST_MLFLOW_RISK_TIER", "high"),
                            choices=RegisteredModel.RiskTier.values,
                            help="risk tier of models created by the import (default high)")
        parser.add_argument("--model", action="append", dest="names", default=[], metavar="NAME",
                            help="import only this MLflow model (repeatable)")

    def handle(self, *args, tracking_uri, username, team, risk_tier, names, **options):
        if not tracking_uri:
            raise CommandError("--tracking-uri (or MLFLOW_TRACKING_URI) is required.")
        if not username or not team:
            raise CommandError("--as USERNAME and --team TEAM are required (or ATTEST_MLFLOW_IMPORT_USER/TEAM).")
        actor = get_user_model().objects.filter(username=username, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user named {username!r}.")
        owning = Team.objects.filter(name=team).first()
        if owning is None:
            raise CommandError(f"No team named {team!r}.")
        bar = tqdm(desc="MLflow versions", unit="version", file=self.stderr, disable=None)

        def progress(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1)

        try:
            summary = mlflow_import(actor=actor, tracking_uri=tracking_uri, team=owning, risk_tier=risk_tier,
                                    names=names or None, progress=progress)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        finally:
            bar.close()
        for name, mlflow_version, version in summary.versions_imported:
            self.stdout.write(f"imported {name} MLflow v{mlflow_version} -> Attest v{version}")
        for name, mlflow_version, reason in summary.versions_skipped:
            self.stdout.write(f"skipped {name} MLflow v{mlflow_version}: {reason}")
        for name, alias, before, after in summary.alias_moves:
            self.stdout.write(f"alias {name}@{alias}: {before if before is not None else '-'} -> {after}")
        for message in summary.alerts_opened:
            self.stdout.write(f"CRITICAL ALERT: {message}")
        for message in summary.alerts_repeated:
            self.stdout.write(f"CRITICAL ALERT repeated: {message}")
        self.stdout.write(
            f"MLflow import from {tracking_uri}: {len(summary.models_created)} models created, "
            f"{len(summary.versions_imported)} versions imported, {summary.versions_unchanged} already imported, "
            f"{len(summary.versions_skipped)} skipped, {len(summary.alias_moves)} alias moves, "
            f"{len(summary.alerts_opened)} critical alerts opened."
        )

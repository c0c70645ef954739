from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance.reports.snapshot import PROGRESS_STEPS
from governance.services.dossiers import dossier_generate, evidence_bundle_export
from mlops_site.common.errors import ApplicationError
from registry.models import ModelVersion, RegisteredModel


class Command(BaseCommand):
    help = ("Write the regulator's dossier (PDF) of a model, all versions or one (--version), built against a "
            "freshly signed checkpoint; optionally its evidence bundle (--bundle, verify with "
            "docs/verify_attest_log.py).")

    def add_base_argument(self, parser, *args, **kwargs):
        # CONTRACT.md: `--version N` is the model version, not Django's program version.
        if "--version" not in args:
            super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("model", help="the registered model's name")
        parser.add_argument("--version", type=int, help="only this version")
        parser.add_argument("--out", required=True, help="PDF file to write")
        parser.add_argument("--bundle", help="also write the evidence bundle (zip) here")

    def handle(self, *args, model, version, out, bundle, **options):
        registered = RegisteredModel.objects.filter(name=model).first()
        if registered is None:
            raise CommandError(f"No model named {model!r}.")
        if version is not None and not ModelVersion.objects.filter(model=registered, version=version).exists():
            raise CommandError(f"Model {model!r} has no version {version}.")
        steps = len(PROGRESS_STEPS) + (1 if bundle else 0)
        with tqdm(total=steps, desc="dossier", unit="step", file=self.stderr._out) as bar:
            def progress(step: str) -> None:
                bar.set_postfix_str(step)
                bar.update(1)

            try:
                if bundle:
                    exported = evidence_bundle_export(actor=None, model=registered, version=version,
                                                      progress=progress)
                    Path(bundle).write_bytes(exported.zip)
                    generated = exported.generated
                else:
                    generated = dossier_generate(actor=None, model=registered, version=version, progress=progress)
                Path(out).write_bytes(generated.pdf)
                dossier = generated.dossier
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        self.stdout.write(f"wrote {out}: {dossier.pages} pages, {dossier.size} bytes, sha256 {dossier.sha256}")
        self.stdout.write(f"evidence manifest sha256 {dossier.manifest_sha256}; checkpoint size "
                          f"{dossier.checkpoint_size} root {dossier.checkpoint_root}; "
                          f"{dossier.audit_events} audit events of the model")
        if bundle:
            self.stdout.write(f"wrote {bundle}; verify: python docs/verify_attest_log.py {bundle} "
                              f"--manifest {dossier.manifest_sha256} --public-key <the operator's published key>")


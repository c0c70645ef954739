"""Dossier benchmark (issue 7): the PDF of a model with 10,000 audit events, vs rendering every event as a row.

    python bench/dossier.py              # 10,000 events of one model (a few minutes with the set-up)
    python bench/dossier.py --quick      # 1,000 events, under a minute
    python bench/dossier.py --events N   # any size
    python bench/dossier.py --no-postgres

Set-up, on a scratch database (PostgreSQL when reachable, else SQLite): a `limited`-tier model
with a training dataset version, version 1 approved by a model validator and a compliance
officer (real re-authenticated signatures), asked at the gate and deployed to production; then
routine gate evaluations until the model has N audit events: each one a stored GateDecision and
its `governance.gate.evaluated` event through the real audit writer (written in batches of 500
per transaction rather than through HTTP, to keep the set-up short); then a signed checkpoint.

Measured, in one run:
* Attest: `dossier_snapshot_build()` + `dossier_pdf_render()` (what `manage.py dossier` does
  besides signing a checkpoint and storing the file), wall time, pages and peak memory. Older
  routine events are summarised by action and day (count, seq range, first and last hash); the
  latest 300 are listed in full.
* The peer: there is no open-source tool that produces a regulator's dossier from a signed audit
  log to compare with, so the comparison is the naive rendering of the same dossier with every
  event as one row of the audit-trail table (no summarising), measured the same way.
Each rendering runs in a forked process, so its wall time and its peak resident memory (VmHWM,
reset at the start, minus the RSS then) are its own.

Closing line (CONTRACT.md): `ratio` = naive seconds / Attest seconds; `goal` = 10 (seconds);
`met` = Attest under 10 s and under 200 pages.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    ScratchDatabase,
    django_setup,
    parse_args,
    postgres_url_choose,
    result_print,
    table_print,
)

BENCH = "dossier"
GOAL_SECONDS = 10.0
GOAL_PAGES = 200
PASSWORD = "pw-Bench-dossier-1"
BATCH = 500


def _arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=None, help="audit events of the model (default 10,000; "
                                                                  "1,000 with --quick)")


def _person(username: str, role: str):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username=username, password=PASSWORD, first_name=username.title(),
                                    last_name="Bench")
    user.groups.add(Group.objects.get(name=role))
    return user


def _world() -> dict[str, Any]:
    """A released limited-tier model, set up through the services."""
    import hashlib

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from governance.gate import gate_evaluate
    from governance.services.approvals import approval_request_open, approval_request_sign
    from governance.services.deployments import deployment_record
    from registry import services as registry

    engineer, ci = _person("eng", "ml_engineer"), _person("ci", "ci_service")
    validator, compliance = _person("val", "model_validator"), _person("comp", "compliance_officer")
    with transaction.atomic():
        team = registry.team_create(actor=None, name="bench-team")
    team.members.add(engineer, ci)
    model = registry.model_register(actor=engineer, name="bench-credit", team=team, risk_tier="limited",
                                    description="Benchmark model", intended_use="Benchmarking the dossier.",
                                    limitations="Synthetic.")
    dataset = registry.dataset_register(actor=engineer, name="bench-loans", team=team)
    rows = "age,income,approved\n" + "".join(f"{20 + i % 50},{30000 + i * 7}.5,{i % 2}\n" for i in range(200))
    data = registry.dataset_version_register(actor=engineer, dataset=dataset,
                                             file=SimpleUploadedFile("d.csv", rows.encode(), "text/csv"))
    digest = hashlib.sha256(b"bench-artifact").hexdigest()
    version = registry.model_version_register(
        actor=engineer, model=model, artifact_uri=f"https://models.example.com/{digest}.skops",
        declared_sha256=digest, training_datasets=[data], authors=[engineer], metrics={"accuracy": 0.91, "auc": 0.88})
    request = approval_request_open(actor=engineer, kind="deployment", model_version=version, environment="production")
    for signer in (validator, compliance):
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve",
                              reason="Benchmark sign-off.")
    decision = gate_evaluate(actor=ci, model_name=model.name, version=1, environment="production",
                             artifact_sha256=version.artifact_sha256)
    deployment_record(actor=ci, model_version=version, environment="production", decision_id=decision.decision_id)
    return {"model": model, "version": version, "ci": ci}


def _routine_events(world: dict[str, Any], count: int) -> None:
    """`count` gate evaluations (denied: staging is not approved), each a GateDecision and its audit event."""
    from django.db import transaction
    from django.utils import timezone

    from governance.audit import AuditAction, audit_event_record, audit_log_sequence
    from governance.gate import gate_checks_compute
    from governance.models import GateDecision

    version, ci = world["version"], world["ci"]
    checks, _approved = gate_checks_compute(model_version=version, environment="staging",
                                            artifact_sha256=version.artifact_sha256)
    done = 0
    while done < count:
        with transaction.atomic():
            for _ in range(min(BATCH, count - done)):
                decision = GateDecision(model_version=version, environment="staging",
                                        artifact_sha256=version.artifact_sha256, allowed=False, checks=checks,
                                        evaluated_by=ci, evaluated_at=timezone.now())
                decision.save()
                audit_event_record(actor=ci, action=AuditAction.GATE_EVALUATED, target=decision,
                                   object_repr=f"{version} → staging: denied",
                                   after={"allowed": False, "decision_id": decision.decision_id},
                                   payload={"checks": checks})
                done += 1
        audit_log_sequence()


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _render_child(connection, model_pk: int, recent_routine: int) -> None:
    from governance.reports.pdf import dossier_pdf_render
    from governance.reports.snapshot import dossier_snapshot_build
    from registry.models import RegisteredModel

    # The peak RSS (VmHWM) is inherited from the parent: reset it (Linux >= 4.0), then measure growth.
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")
    rss_before = _status_kib("VmRSS")

    model = RegisteredModel.objects.get(pk=model_pk)
    start = time.perf_counter()
    snapshot = dossier_snapshot_build(model=model, recent_routine=recent_routine)
    built = time.perf_counter()
    rendered = dossier_pdf_render(snapshot)
    done = time.perf_counter()
    peak = _status_kib("VmHWM")
    connection.send({"seconds": round(done - start, 3), "snapshot_seconds": round(built - start, 3),
                     "render_seconds": round(done - built, 3), "pages": rendered.pages, "bytes": len(rendered.pdf),
                     "peak_rss_growth_mib": round(max(0, peak - rss_before) / 1024, 1),
                     "rows_in_full": len(snapshot.audit_rows), "summary_rows": len(snapshot.audit_summary),
                     "events": snapshot.audit_event_count})
    connection.close()


def _measure(model, recent_routine: int) -> dict[str, Any]:
    """One rendering in a forked process: its own wall time and its peak RSS above the parent's at the fork."""
    from django.db import connections

    connections.close_all()  # the child opens its own connection
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_render_child, args=(sender, model.pk, recent_routine))
    child.start()
    figures = receiver.recv()
    child.join()
    return figures


def main(argv=None) -> int:
    args = parse_args("Dossier benchmark (issue 7)", argv, extra=_arguments)
    events = args.events or (1000 if args.quick else 10000)
    postgres = postgres_url_choose(args)
    with ScratchDatabase(postgres, BENCH) as db:
        django_setup(db.url, db.var_dir)
        from governance.checkpoints import audit_checkpoint_create
        from governance.models import AuditEvent
        from governance.reports.snapshot import RECENT_ROUTINE_IN_FULL
        from governance.services.dossiers import dossier_generate

        setup_start = time.perf_counter()
        world = _world()
        model = world["model"]
        existing = AuditEvent.objects.filter(object_type="governance.gatedecision").count()
        baseline = _measure_count(model)
        _routine_events(world, max(0, events - baseline))
        audit_checkpoint_create()
        setup_seconds = time.perf_counter() - setup_start
        print(f"# set-up: {events} events of the model ({existing} gate events before the routine ones) "
              f"in {setup_seconds:.1f} s on {db.vendor}", file=sys.stderr)

        attest = _measure(model, RECENT_ROUTINE_IN_FULL)
        naive = _measure(model, 10**9)
        service_start = time.perf_counter()
        stored = dossier_generate(actor=None, model=model)
        service_seconds = time.perf_counter() - service_start

    table_print(f"Dossier of a model with {attest['events']:,} audit events ({db.vendor}; shared 2-core machine)",
                ["rendering", "seconds", "snapshot s", "render s", "pages", "PDF bytes", "peak RSS +MiB",
                 "rows in full", "summary rows"],
                [[name, r["seconds"], r["snapshot_seconds"], r["render_seconds"], r["pages"], r["bytes"],
                  r["peak_rss_growth_mib"], r["rows_in_full"], r["summary_rows"]]
                 for name, r in (("Attest (older routine events summarised)", attest),
                                 ("naive (every event one row)", naive))])
    print(f"\nmanage.py dossier's service end to end (checkpoint, snapshot, render, store): {service_seconds:.2f} s, "
          f"{stored.dossier.pages} pages")
    print("No open-source peer produces a regulator's dossier from a signed audit log; the naive rendering of "
          "the same dossier is the comparison.")
    met = attest["seconds"] < GOAL_SECONDS and attest["pages"] < GOAL_PAGES
    figures = {"database": db.vendor, "events": attest["events"], "attest": attest, "naive": naive,
               "service_seconds": round(service_seconds, 3),
               "goals": {"seconds_lt_10": attest["seconds"] < GOAL_SECONDS,
                         "pages_lt_200": attest["pages"] < GOAL_PAGES}}
    result_print(bench=BENCH, figures=figures, peer="naive render (every event one row)",
                 ratio=naive["seconds"] / attest["seconds"] if attest["seconds"] else None, goal=GOAL_SECONDS,
                 met=met)
    return 0


def _measure_count(model) -> int:
    """Audit events of the model so far (the set-up's own), so the routine ones top it up to --events."""
    from governance.audit import audit_log_sequence
    from governance.checkpoints import audit_checkpoint_create
    from governance.reports.snapshot import dossier_snapshot_build

    audit_log_sequence()
    audit_checkpoint_create()
    return dossier_snapshot_build(model=model).audit_event_count


if __name__ == "__main__":
    sys.exit(main())

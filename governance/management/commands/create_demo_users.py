"""manage.py create_demo_users: one demo user per role, and an admin, with printed passwords.

Development only (refuses unless DEBUG, or --force). Idempotent: a second run creates and
grants nothing and prints the same table. The data scientist, the ML engineer and the CI
identity (which registers what the team builds) belong to the team that owns the demo
models; validators, officers and the auditor do not, so that they can later sign off models
they did not build (separation of duties).
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from governance.services.roles import role_grant, user_has_role
from governance.services.users import user_create
from mlops_site.common.errors import ApplicationError
from mlops_site.common.roles import Role
from registry import services as registry_services
from registry.demo import DEMO_DATA_SCIENTIST, DEMO_ML_ENGINEER, DEMO_TEAM, DEMO_TEAM_DESCRIPTION
from registry.models import Team


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role | None  # None: the superuser
    password: str
    in_team: bool = False


# Deterministic and public: these accounts exist for a demo on 127.0.0.1, never in production.
DEMO_USERS = (
    DemoUser("admin", "Ada", "Admin", None, "attest-demo-superuser"),
    DemoUser(DEMO_DATA_SCIENTIST, "Dana", "Scott", Role.DATA_SCIENTIST, "attest-demo-notebook", in_team=True),
    DemoUser(DEMO_ML_ENGINEER, "Emil", "Novak", Role.ML_ENGINEER, "attest-demo-pipeline", in_team=True),
    DemoUser("vera", "Vera", "Lindqvist", Role.MODEL_VALIDATOR, "attest-demo-challenge"),
    DemoUser("colm", "Colm", "Byrne", Role.COMPLIANCE_OFFICER, "attest-demo-regulation"),
    DemoUser("rita", "Rita", "Okafor", Role.RISK_OFFICER, "attest-demo-appetite"),
    DemoUser("aldo", "Aldo", "Ferreira", Role.AUDITOR, "attest-demo-evidence"),
    DemoUser("ci-bot", "CI", "Pipeline", Role.CI_SERVICE, "attest-demo-buildfarm", in_team=True),
)


class Command(BaseCommand):
    help = "Create one demo user per role (and an admin) with known passwords. Development only."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true",
                            help="run even when DEBUG is off (the passwords are public!)")

    def handle(self, *args, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("Refusing to create users with public passwords while DEBUG is off; "
                               "pass --force if this really is a demo installation.")
        try:
            changes = self._ensure()
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        for change in changes:
            self.stdout.write(f"  {change}")
        self.stdout.write(self._table())
        self.stdout.write(self.style.SUCCESS(
            f"Demo users ready ({len(changes)} change{'s' if len(changes) != 1 else ''})."
        ))

    @transaction.atomic
    def _ensure(self) -> list[str]:
        # One transaction: a failure half-way leaves no half-made demo (and no orphan events).
        User = get_user_model()
        changes: list[str] = []
        users = {}
        for demo in DEMO_USERS:
            user = User.objects.filter(username=demo.username).first()
            if user is None:
                user = user_create(
                    actor=None, username=demo.username, password=demo.password,
                    email=f"{demo.username}@attest.example", first_name=demo.first_name,
                    last_name=demo.last_name, is_staff=True, is_superuser=demo.role is None,
                )
                changes.append(f"created user {demo.username}")
            if demo.role is not None and not user_has_role(user, demo.role):
                role_grant(actor=None, user=user, role=demo.role)
                changes.append(f"granted {demo.role.value} to {demo.username}")
            users[demo.username] = user

        admin = users["admin"]
        team = Team.objects.filter(name=DEMO_TEAM).first()
        if team is None:
            team = registry_services.team_create(actor=admin, name=DEMO_TEAM, description=DEMO_TEAM_DESCRIPTION)
            changes.append(f"created team {DEMO_TEAM}")
        for demo in DEMO_USERS:
            user = users[demo.username]
            if demo.in_team and not team.members.filter(pk=user.pk).exists():
                registry_services.team_member_add(actor=admin, team=team, user=user)
                changes.append(f"added {demo.username} to team {DEMO_TEAM}")
        return changes

    def _table(self) -> str:
        User = get_user_model()
        rows = [("username", "password", "role", f"team {DEMO_TEAM}")]
        for demo in DEMO_USERS:
            user = User.objects.get(username=demo.username)
            # A password changed since creation is not reset (idempotent), so say so.
            password = demo.password if user.check_password(demo.password) else "(changed since creation)"
            rows.append((demo.username, password, demo.role.value if demo.role else "superuser",
                         "member" if demo.in_team else ""))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                 for row in rows]
        lines.insert(1, "-+-".join("-" * width for width in widths))
        return "\n".join(lines)
